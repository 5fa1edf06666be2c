"""Back-ends: feature sequence ``(B, C, T)`` → embedding ``(B, D)`` (track-level) ."""

from __future__ import annotations

import torch
from torch import nn

from autotag.models.layers import AutoPoolWeightSplit, BatchNormTime, SampleNorm
from autotag.models.registry import BACKENDS


@BACKENDS.register("autopool")
class AutoPoolBackend(nn.Module):
    """The tutorial's shared back-end: 2 × (Conv1d + MaxPool + norm), 3 × (Linear + BN),
    then :class:`AutoPoolWeightSplit` over time.

    Parameters
    ----------
    in_channels, in_frames
        Shape of the front-end output (``in_frames`` only matters with ``seed_compat``).
    conv_channels, conv_kernel, pool
        The two Conv1d stages (tutorial: 60, 5, 3).
    hidden
        Width of the Linear stack (tutorial: 128); the embedding is ``hidden // 2``.
    seed_compat
        Full-shape LayerNorm affine parameters, as in the tutorial.
    """

    embedding_dim: int

    def __init__(self, in_channels: int, in_frames: int, conv_channels: int = 60, conv_kernel: int = 5,
                 pool: int = 3, hidden: int = 128, seed_compat: bool = False):
        super().__init__()
        frames = in_frames
        stages: list[nn.Module] = []
        channels = in_channels
        for _ in range(2):
            frames = (frames - conv_kernel + 1) // pool
            stages += [
                nn.Conv1d(channels, conv_channels, conv_kernel),
                nn.MaxPool1d(pool),
                SampleNorm(conv_channels, (conv_channels, frames) if seed_compat else None),
                nn.LeakyReLU(),
            ]
            channels = conv_channels
        self.convs = nn.Sequential(*stages)
        self.sequence_norm = SampleNorm(conv_channels, (frames, conv_channels) if seed_compat else None,
                                        channel_dim=-1)
        layers: list[nn.Module] = []
        width = conv_channels
        for _ in range(3):
            layers += [nn.Linear(width, hidden), BatchNormTime(hidden), nn.LeakyReLU()]
            width = hidden
        self.dense = nn.Sequential(*layers)
        self.pool = AutoPoolWeightSplit()
        self.embedding_dim = hidden // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convs(x).transpose(1, 2)  # (B, T, C)
        x = self.dense(self.sequence_norm(x))  # (B, T, hidden)
        return self.pool(x.transpose(1, 2))  # (B, hidden/2)
