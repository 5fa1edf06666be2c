"""Small layers shared by front-ends and back-ends."""

from __future__ import annotations

import torch
from torch import nn


class SampleNorm(nn.Module):
    """Normalise each example over all of its non-batch dimensions.

    This is the tutorial's ``LayerNorm(normalized_shape=-1)``: statistics over the whole
    (C, T) or (C, F, T) tensor of one example. With ``full_shape`` (``seed_compat``) the
    affine parameters have that full shape, exactly as in the tutorial, which ties the
    model to one input length and dominates some parameter counts. Without it (our
    default) the affine parameters are per channel along ``channel_dim``, so the layer
    accepts any length.
    """

    def __init__(self, channels: int, full_shape: tuple[int, ...] | None = None, channel_dim: int = 1,
                 eps: float = 1e-5):
        super().__init__()
        self.full = nn.LayerNorm(full_shape, eps=eps) if full_shape else None
        self.channel_dim = channel_dim
        self.eps = eps
        if self.full is None:
            self.weight = nn.Parameter(torch.ones(channels))
            self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.full is not None:
            return self.full(x)
        dims = tuple(range(1, x.ndim))
        var, mean = torch.var_mean(x, dim=dims, keepdim=True, unbiased=False)
        x = (x - mean) * torch.rsqrt(var + self.eps)
        shape = [1] * x.ndim
        shape[self.channel_dim] = -1
        return x * self.weight.view(shape) + self.bias.view(shape)


class BatchNormTime(nn.Module):
    """``BatchNorm1d`` over the channel axis of a ``(B, T, C)`` tensor."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class AutoPoolWeightSplit(nn.Module):
    """Attention pooling over time with channel splitting and a learnable auto-pool α.

    Input ``(B, C, T)``: channels ``[0, C/2)`` are values, ``[C/2, C)`` their attention
    logits. Each value channel ``c`` is averaged over time with weights
    ``softmax_t(α · a[c + C/2, t])``. α = 0 gives the mean, α → ∞ the max.
    Output ``(B, C/2)``.

    References
    ----------
    McFee, Salamon, Bello. "Adaptive pooling operators for weakly labeled sound event
    detection", IEEE/ACM TASLP 2018 (arXiv:1804.10070).
    """

    def __init__(self, alpha: float = 0.0):
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor(float(alpha)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = x.shape[1] // 2
        values, logits = x[:, :half], x[:, half : 2 * half]
        weights = torch.softmax(self.alpha * logits, dim=-1)
        return (values * weights).sum(dim=-1)
