"""The eval-mode musicnn blocks (ReLU and BatchNorm moved behind the max) equal the training-order layers."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from autotag.models.musicnn import MelMaxBlock, VggBlock


def _random_statistics(norm: torch.nn.BatchNorm2d, generator: torch.Generator) -> None:
    """Frozen statistics with both signs of scale (negative gammas are where the reorder could go wrong)."""
    channels = norm.num_features
    with torch.no_grad():
        norm.weight.copy_(torch.randn(channels, generator=generator))
        norm.bias.copy_(torch.randn(channels, generator=generator))
        norm.running_mean.copy_(torch.randn(channels, generator=generator))
        norm.running_var.copy_(torch.rand(channels, generator=generator) + 0.1)
    assert (norm.weight < 0).any() and (norm.weight > 0).any()


@pytest.mark.parametrize("time_kernel, mel_kernel, pad", [(7, 38, (3, 3)), (7, 67, (3, 3)), (32, 1, (15, 16))])
def test_mel_max_block_eval_equals_plain_order(time_kernel, mel_kernel, pad):
    generator = torch.Generator().manual_seed(time_kernel * 100 + mel_kernel)
    block = MelMaxBlock(24, time_kernel, mel_kernel, *pad)
    _random_statistics(block.norm, generator)
    x = torch.randn(3, 1, 40, 96, generator=generator)
    block.eval()
    with torch.no_grad():
        fast = block(x)
        plain = block.norm(F.relu(block.conv(F.pad(x, block.pad)))).amax(dim=3)
    assert fast.shape == plain.shape == (3, 24, 40)
    torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-5)


def test_vgg_block_eval_equals_plain_order():
    generator = torch.Generator().manual_seed(7)
    block = VggBlock(4, 16, (2, 2), (2, 2), dropout=0.25)
    _random_statistics(block.norm, generator)
    x = torch.randn(2, 4, 20, 12, generator=generator)
    block.eval()
    with torch.no_grad():
        fast = block(x)
        plain = block.pool(block.norm(F.relu(block.conv(x))))
    assert fast.shape == plain.shape == (2, 16, 10, 6)
    torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-5)


def test_training_mode_keeps_the_batch_statistics_path():
    """In training the BatchNorm normalises with the batch's statistics, so the reorder must not apply."""
    block = MelMaxBlock(8, 7, 38, 3, 3).train()
    x = torch.randn(4, 1, 30, 96, generator=torch.Generator().manual_seed(3))
    out = block(x)
    expected = F.batch_norm(F.relu(block.conv(F.pad(x, block.pad))), None, None, block.norm.weight, block.norm.bias,
                            training=True, eps=block.norm.eps).amax(dim=3)
    torch.testing.assert_close(out, expected)
