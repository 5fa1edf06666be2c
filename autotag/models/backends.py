"""Back-ends: feature sequence ``(B, C, T)`` → embedding.

Two kinds, told apart by the class attribute ``frame_level``:

- track-level (``frame_level = False``, e.g. ``autopool``): embedding ``(B, D)``; the model's
  logits are ``(B, num_outputs)``, one decision per patch;
- frame-level (``frame_level = True``, e.g. ``conv_bilstm``): embedding ``(B, T, D)`` on the
  front-end's time axis (same ``T``, same ``frame_rate``); the model's logits are
  ``(B, T, num_outputs)``.

Every back-end takes the front-end's ``in_channels`` and ``in_frames`` (per patch) from
:func:`autotag.models.build_model`, exposes ``embedding_dim``, and accepts an optional
``lengths`` tensor (valid input frames per example) for padded batches.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from autotag.models.layers import AutoPoolWeightSplit, BatchNormTime, ConvPoolNorm, NormConv, SampleNorm
from autotag.models.registry import BACKENDS


class BackEnd(nn.Module):
    """Base class.

    Attributes
    ----------
    frame_level
        True when the output keeps the time axis.
    embedding_dim
        Size of the last axis of the embedding (the head's input).
    leaky_logits
        ``seed_compat`` quirk of the chord model: LeakyReLU applied to the logits.
    min_input_frames
        Fewest input frames that give an output.
    """

    frame_level: bool = False
    leaky_logits: bool = False
    min_input_frames: int = 1
    embedding_dim: int

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Valid output frames (frame-level back-ends keep the input's)."""
        return lengths


@BACKENDS.register("autopool")
class AutoPoolBackend(BackEnd):
    """The tutorial's shared back-end (seed recipe §2.1 and §3.1), track-level.

    2 × ``Conv1d(k) → MaxPool(pool) → LayerNorm → LeakyReLU``, then ``LayerNorm`` over
    ``(T, C)``, 3 × ``Linear(hidden) → BatchNorm → LeakyReLU`` per frame, then
    :class:`AutoPoolWeightSplit` over time. Embedding: ``(B, hidden // 2)``.

    Parameters
    ----------
    in_channels, in_frames
        Shape of the front-end output for one patch.
    conv_channels, conv_kernel, pool
        The two Conv1d stages (tutorial: 60, 5, 3).
    hidden
        Width of the Linear stack (tutorial: 128); the embedding is ``hidden // 2``.
    seed_compat
        Full-shape LayerNorm affine parameters, as in the tutorial (fixes the input length).

    Raises
    ------
    ValueError
        If ``in_frames`` is too short for the two stages (fewer than :meth:`min_frames`).
    """

    def __init__(self, in_channels: int, in_frames: int, conv_channels: int = 60, conv_kernel: int = 5,
                 pool: int = 3, hidden: int = 128, seed_compat: bool = False):
        super().__init__()
        self.min_input_frames = self.min_frames(conv_kernel, pool)
        if in_frames < self.min_input_frames:
            raise ValueError(f"autopool back-end: needs at least {self.min_input_frames} input frames (two Conv1d "
                             f"k={conv_kernel} + MaxPool {pool} stages), the front-end gives {in_frames} per patch")
        frames, channels = in_frames, in_channels
        stages = []
        for _ in range(2):
            frames = (frames - conv_kernel + 1) // pool
            stages.append(ConvPoolNorm(nn.Conv1d(channels, conv_channels, conv_kernel), conv_channels, conv_kernel, 1,
                                       pool, (conv_channels, frames) if seed_compat else None))
            channels = conv_channels
        self.convs = nn.ModuleList(stages)
        self.sequence_norm = SampleNorm(conv_channels, (frames, conv_channels) if seed_compat else None,
                                        channel_dim=-1, time_dim=1)
        layers: list[nn.Module] = []
        width = conv_channels
        for _ in range(3):
            layers += [nn.Linear(width, hidden), BatchNormTime(hidden), nn.LeakyReLU()]
            width = hidden
        self.dense = nn.Sequential(*layers)
        self.pool = AutoPoolWeightSplit()
        self.embedding_dim = hidden // 2

    @staticmethod
    def min_frames(conv_kernel: int = 5, pool: int = 3) -> int:
        """Fewest input frames that leave one frame after both conv + pool stages."""
        frames = 1
        for _ in range(2):
            frames = frames * pool + conv_kernel - 1
        return frames

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, C, T)`` → ``(B, hidden // 2)``; ``lengths``: valid frames per example."""
        for stage in self.convs:
            x = stage(x, lengths)
            lengths = None if lengths is None else stage.output_lengths(lengths)
        x = self.dense(self.sequence_norm(x.transpose(1, 2), lengths))  # (B, T, hidden)
        return self.pool(x.transpose(1, 2), lengths)


@BACKENDS.register("conv_bilstm")
class ConvBiLstmBackend(BackEnd):
    """The chord model's sequence back-end (seed recipe §3.2, stages 5–8), frame-level.

    ``num_convs`` × ``LayerNorm → Conv1d(conv_channels, conv_kernel, same) → LeakyReLU``,
    then a bidirectional LSTM with ``lstm_hidden // 2`` units per direction returning every
    step. Embedding: ``(B, T, lstm_hidden)``; no temporal down-sampling.

    Parameters
    ----------
    in_channels, in_frames
        Shape of the front-end output for one patch (``in_frames`` only matters with
        ``seed_compat``).
    conv_channels, conv_kernel, num_convs
        The Conv1d stages (tutorial: 16, 15, 2); ``conv_kernel`` must be odd.
    lstm_hidden
        Both directions together (tutorial: 16, i.e. 8 per direction); must be even.
    seed_compat
        Full-shape LayerNorm affine parameters and LeakyReLU on the logits, both as in the
        tutorial.

    Raises
    ------
    ValueError
        If ``conv_kernel`` is even or ``lstm_hidden`` odd.
    """

    frame_level = True

    def __init__(self, in_channels: int, in_frames: int, conv_channels: int = 16, conv_kernel: int = 15,
                 num_convs: int = 2, lstm_hidden: int = 16, seed_compat: bool = False):
        super().__init__()
        if conv_kernel % 2 == 0 or lstm_hidden % 2:
            raise ValueError(f"conv_bilstm back-end: conv_kernel={conv_kernel} must be odd ('same' padding) and "
                             f"lstm_hidden={lstm_hidden} even (split over two directions)")
        stages = []
        channels = in_channels
        for _ in range(num_convs):
            stages.append(NormConv(SampleNorm(channels, (channels, in_frames) if seed_compat else None),
                                   nn.Conv1d(channels, conv_channels, conv_kernel, padding=conv_kernel // 2)))
            channels = conv_channels
        self.convs = nn.ModuleList(stages)
        self.lstm = nn.LSTM(channels, lstm_hidden // 2, batch_first=True, bidirectional=True)
        self.embedding_dim = lstm_hidden
        self.leaky_logits = seed_compat

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, C, T)`` → ``(B, T, lstm_hidden)``; steps past ``lengths`` come out as zeros."""
        for stage in self.convs:
            x = stage(x, lengths)
        x = x.transpose(1, 2)  # (B, T, C)
        if lengths is None:
            return self.lstm(x)[0]
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        return pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=x.shape[1])[0]
