"""Temporal convolutional network: stacked causal, dilated, weight-normalised convolutions.

Level ``i`` is a residual block with dilation ``2^i``: two ``weight_norm(Conv1d(k, dilation d))``
sub-layers, each left-padded by ``(k − 1) · d`` so that output ``t`` depends on inputs ``≤ t``
only (the locuslab code pads both sides and chops the right; the result is the same), each
followed by ReLU and dropout; a 1 × 1 convolution matches channels on the residual path when
they change, and a ReLU follows the sum. Conv weights start as N(0, 0.01): we draw ``v`` and
set ``g = ‖v‖``, so the effective weights are exactly those draws (the locuslab code draws
after wrapping in weight norm, which the next forward pass overwrites).

Weight norm is :class:`WeightNormConv1d` (a few lines) rather than
``torch.nn.utils.parametrizations.weight_norm``: parametrised modules refuse to be pickled,
and Ray pickles whatever it ships between processes. Same parameters (``g``: one per output
channel, ``v``: the weight's shape), same count.

References
----------
Bai, Kolter, Koltun. "An empirical evaluation of generic convolutional and recurrent
networks for sequence modeling", arXiv:1803.01271, 2018 (github.com/locuslab/TCN).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


def _normal_conv(in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1) -> nn.Conv1d:
    conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation)
    nn.init.normal_(conv.weight, 0.0, 0.01)
    return conv


class WeightNormConv1d(nn.Module):
    """``Conv1d`` with weight normalisation: ``w = g · v / ‖v‖``, the norm taken per output channel.

    Parameters
    ----------
    in_channels, out_channels, kernel_size, dilation
        As for ``nn.Conv1d`` (no padding: the caller pads).

    References
    ----------
    Salimans, Kingma. "Weight normalization", NeurIPS 2016 (arXiv:1602.07868).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1):
        super().__init__()
        conv = _normal_conv(in_channels, out_channels, kernel_size, dilation)
        self.dilation = dilation
        self.weight_v = nn.Parameter(conv.weight.detach().clone())
        self.weight_g = nn.Parameter(conv.weight.detach().norm(dim=(1, 2), keepdim=True))
        self.bias = nn.Parameter(conv.bias.detach().clone())

    def weight(self) -> torch.Tensor:
        """The effective convolution weight ``(out_channels, in_channels, kernel_size)``."""
        return self.weight_g * self.weight_v / self.weight_v.norm(dim=(1, 2), keepdim=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv1d(x, self.weight(), self.bias, dilation=self.dilation)


class TemporalBlock(nn.Module):
    """One residual level: 2 × (causal weight-normed conv → ReLU → dropout) + residual → ReLU.

    Parameters
    ----------
    in_channels, out_channels
        Channels in and out.
    kernel_size
        Taps per convolution.
    dilation
        Spacing between taps.
    dropout
        Dropout probability after each convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        self.padding = (kernel_size - 1) * dilation
        self.conv1 = WeightNormConv1d(in_channels, out_channels, kernel_size, dilation)
        self.conv2 = WeightNormConv1d(out_channels, out_channels, kernel_size, dilation)
        self.dropout = nn.Dropout(dropout)
        self.downsample = (_normal_conv(in_channels, out_channels, 1) if in_channels != out_channels
                           else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dropout(F.relu(self.conv1(F.pad(x, (self.padding, 0)))))
        y = self.dropout(F.relu(self.conv2(F.pad(y, (self.padding, 0)))))
        return F.relu(y + self.downsample(x))


class TemporalConvNet(nn.Module):
    """``(B, C_in, T) → (B, channels[-1], T)``, causal.

    Parameters
    ----------
    in_channels
        Input channels (1 for a waveform).
    channels
        Output channels of each level (tutorial: 4, 8, 16, 32, i.e. dilations 1, 2, 4, 8).
    kernel_size
        Taps per convolution (tutorial: 2).
    dropout
        Dropout probability (tutorial: 0.2).

    Raises
    ------
    ValueError
        If ``channels`` is empty or ``kernel_size`` is not positive.
    """

    def __init__(self, in_channels: int, channels: Sequence[int], kernel_size: int = 2, dropout: float = 0.2):
        super().__init__()
        if not channels or kernel_size <= 0:
            raise ValueError(f"TemporalConvNet: channels={list(channels)} must be non-empty and "
                             f"kernel_size={kernel_size} positive")
        widths = [in_channels, *channels]
        self.levels = nn.Sequential(*(TemporalBlock(widths[i], widths[i + 1], kernel_size, 2**i, dropout)
                                      for i in range(len(channels))))
        self.receptive_field = 1 + 2 * (kernel_size - 1) * (2 ** len(channels) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.levels(x)
