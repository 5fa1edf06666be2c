"""SampleNorm: the fused fast paths equal the plain per-example statistics they replace."""

from __future__ import annotations

import pytest
import torch

from autotag.models.layers import SampleNorm


def _reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, channel_dim: int) -> torch.Tensor:
    var, mean = torch.var_mean(x, dim=tuple(range(1, x.ndim)), keepdim=True, unbiased=False)
    shape = [1] * x.ndim
    shape[channel_dim] = -1
    return (x - mean) * torch.rsqrt(var + 1e-5) * weight.view(shape) + bias.view(shape)


@pytest.mark.parametrize(("shape", "channel_dim"), [((3, 5, 7, 11), 1), ((3, 6, 40), 1), ((3, 40, 6), 2)])
def test_fast_path_matches_the_plain_statistics(shape, channel_dim):
    torch.manual_seed(0)
    norm = SampleNorm(shape[channel_dim], channel_dim=channel_dim)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    x = 3 * torch.randn(shape) + 2
    expected = _reference(x, norm.weight, norm.bias, channel_dim)
    torch.testing.assert_close(norm(x), expected, rtol=1e-5, atol=1e-5)
    # with every step valid, the masked path (used for padded batches) agrees too
    full = torch.full((shape[0],), shape[-1])
    time_dim = -1
    norm.time_dim = time_dim
    torch.testing.assert_close(norm(x, full), expected, rtol=1e-5, atol=1e-5)
