"""AutoPoolWeightSplit: mean at α = 0, max as α grows, masking of padded frames."""

import pytest
import torch

from autotag.models.layers import AutoPoolWeightSplit


def pool(alpha: float, x: torch.Tensor, lengths=None) -> torch.Tensor:
    with torch.no_grad():
        return AutoPoolWeightSplit(alpha)(x, lengths)


@pytest.fixture
def values() -> torch.Tensor:
    return torch.randn(3, 4, 9, generator=torch.Generator().manual_seed(0))


def test_alpha_zero_is_the_mean(values):
    logits = torch.randn(3, 4, 9)
    out = pool(0.0, torch.cat([values, logits], dim=1))
    torch.testing.assert_close(out, values.mean(dim=-1))


def test_growing_alpha_approaches_the_max(values):
    x = torch.cat([values, values], dim=1)  # attention logits = the values themselves
    maximum = values.amax(dim=-1)
    gaps = [(maximum - pool(alpha, x)).abs().max().item() for alpha in (0.0, 1.0, 10.0, 100.0, 1000.0)]
    assert gaps == sorted(gaps, reverse=True)
    assert gaps[-1] < 1e-3
    assert gaps[0] > 0.1


def test_weights_are_per_channel_pair():
    values = torch.tensor([[[1.0, 2.0], [3.0, 5.0]]])
    logits = torch.tensor([[[100.0, 0.0], [0.0, 100.0]]])  # channel 0 attends to t=0, channel 1 to t=1
    torch.testing.assert_close(pool(1.0, torch.cat([values, logits], dim=1)), torch.tensor([[1.0, 5.0]]))


def test_padded_frames_are_ignored(values):
    x = torch.cat([values, torch.randn(3, 4, 9)], dim=1)
    lengths = torch.tensor([9, 5, 2])
    padded = pool(0.7, x, lengths)
    for i, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(padded[i], pool(0.7, x[i : i + 1, :, :n])[0])
