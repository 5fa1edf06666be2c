"""The raw waveform as a feature, and framing of a waveform into overlapping patches.

:class:`Waveform` is the "feature" of the waveform front-ends: it only adds the channel axis
and carries the time base (one frame per sample). :class:`Frames` cuts a waveform into
patches, as the tutorial's ``f_get_patches`` does for the waveform models (3,200 samples,
hop 1,000); without ``pad_end`` it is exactly ``librosa.util.frame(y, frame_length=L,
hop_length=H, axis=0)``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from autotag import SAMPLE_RATE


class Waveform(nn.Module):
    """Waveform ``(B, N)`` → ``(B, 1, N)``: the input of the waveform front-ends.

    Parameters
    ----------
    sample_rate
        Sample rate in Hz; also the frame rate, since every sample is a frame.
    """

    hop_length = 1

    def __init__(self, sample_rate: int = SAMPLE_RATE):
        super().__init__()
        self.sample_rate = sample_rate

    @property
    def frame_rate(self) -> float:
        """Frames per second (the sample rate)."""
        return float(self.sample_rate)

    def num_frames(self, num_samples: int | torch.Tensor) -> int | torch.Tensor:
        """Frames produced for ``num_samples`` samples: the same number."""
        return num_samples

    def samples_for_frames(self, num_frames: int) -> int:
        """Samples needed for ``num_frames`` frames: the same number."""
        return num_frames

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return wave.unsqueeze(1)


class Frames(nn.Module):
    """Cut ``(..., N)`` into overlapping frames ``(..., n_frames, frame_length)``.

    Parameters
    ----------
    frame_length
        Samples per frame.
    hop_length
        Samples between the starts of consecutive frames.
    pad_end
        ``False`` (the tutorial): keep only whole frames, ``1 + (N − frame_length) // hop``
        of them, dropping the tail. ``True``: zero-pad the end so that every sample falls in
        a frame, giving ``1 + ceil(max(N − frame_length, 0) / hop)`` frames; use
        :meth:`valid_samples` to know how much of each frame is signal.

    Raises
    ------
    ValueError
        If ``frame_length`` or ``hop_length`` is not positive.
    """

    def __init__(self, frame_length: int, hop_length: int, pad_end: bool = False):
        super().__init__()
        if frame_length <= 0 or hop_length <= 0:
            raise ValueError(f"Frames: frame_length={frame_length} and hop_length={hop_length} must be positive")
        self.frame_length = frame_length
        self.hop_length = hop_length
        self.pad_end = pad_end

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for ``num_samples`` samples (0 if too short without ``pad_end``)."""
        if self.pad_end:
            if num_samples <= 0:
                return 0
            excess = max(num_samples - self.frame_length, 0)
            return 1 + -(-excess // self.hop_length)  # ceil division
        return max(0, 1 + (num_samples - self.frame_length) // self.hop_length)

    def valid_samples(self, num_samples: int) -> torch.Tensor:
        """Samples of signal (not padding) in each frame, ``(n_frames,)`` int64."""
        starts = torch.arange(self.num_frames(num_samples)) * self.hop_length
        return (num_samples - starts).clamp(max=self.frame_length)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Frames of ``wave`` along its last axis.

        Raises
        ------
        ValueError
            If ``wave`` is shorter than one frame and ``pad_end`` is off, or empty.
        """
        length = wave.shape[-1]
        count = self.num_frames(length)
        if count == 0:
            raise ValueError(f"Frames: {length} samples, expected at least "
                             f"{self.frame_length if not self.pad_end else 1}")
        if self.pad_end:
            wave = F.pad(wave, (0, (count - 1) * self.hop_length + self.frame_length - length))
        return wave.unfold(-1, self.frame_length, self.hop_length)
