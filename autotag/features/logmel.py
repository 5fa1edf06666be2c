"""Log-compressed mel spectrogram, as in the tutorial: log(1 + 10000 · mel power)."""

from __future__ import annotations

import torch
import torchaudio
from torch import nn

from autotag import SAMPLE_RATE


class LogMel(nn.Module):
    """Waveform ``(B, N)`` → log-mel ``(B, n_mels, frames)``.

    Matches ``librosa.feature.melspectrogram(y, sr, n_fft, hop_length, n_mels)`` (Slaney mel
    scale and norm, Hann window, centred frames with zero padding, power 2) followed by
    ``log(1 + compression · mel)``.

    Parameters
    ----------
    sample_rate, n_fft, hop_length, n_mels
        STFT and filterbank settings (defaults: the tutorial's 22,050 / 2048 / 1024 / 128).
    compression
        The multiplier inside the log (the tutorial uses 10,000).
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE, n_fft: int = 2048, hop_length: int = 1024,
                 n_mels: int = 128, compression: float = 10_000.0):
        super().__init__()
        self.sample_rate = sample_rate
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.compression = compression
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, power=2.0,
            norm="slaney", mel_scale="slaney", center=True, pad_mode="constant",
        )

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for ``num_samples`` input samples (centred framing)."""
        return 1 + num_samples // self.hop_length

    def samples_for_frames(self, num_frames: int) -> int:
        """The smallest input length that yields ``num_frames`` frames."""
        return (num_frames - 1) * self.hop_length

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=wave.device.type, enabled=False):
            return torch.log1p(self.compression * self.mel(wave.float()))
