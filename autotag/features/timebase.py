"""The time base shared by centred-frame features (log-mel, constant-Q)."""

from __future__ import annotations

import torch
from torch import nn


class CentredFrames(nn.Module):
    """A feature module whose frame ``t`` is centred on sample ``t · hop_length``.

    Subclasses set ``sample_rate`` and ``hop_length``.
    """

    sample_rate: int
    hop_length: int

    @property
    def frame_rate(self) -> float:
        """Frames per second."""
        return self.sample_rate / self.hop_length

    def num_frames(self, num_samples: int | torch.Tensor) -> int | torch.Tensor:
        """Frames produced for ``num_samples`` input samples (centred framing)."""
        return 1 + num_samples // self.hop_length

    def samples_for_frames(self, num_frames: int) -> int:
        """The smallest input length that yields ``num_frames`` frames."""
        return (num_frames - 1) * self.hop_length
