"""Front-ends: waveform patch ``(B, N)`` → feature sequence ``(B, C, T)``.

Every front-end owns its time base: ``sample_rate``, the training patch length
``patch_samples`` and hop ``patch_hop_samples`` (both derived from its own frame
settings), and the output frame rate.
"""

from __future__ import annotations

import torch
from torch import nn

from autotag import SAMPLE_RATE
from autotag.features import LogMel
from autotag.models.layers import SampleNorm
from autotag.models.registry import FRONTENDS


class FrontEnd(nn.Module):
    """Base class; subclasses set ``patch_samples``, ``patch_hop_samples`` and ``out_channels``."""

    sample_rate: int = SAMPLE_RATE
    patch_samples: int
    patch_hop_samples: int
    out_channels: int

    def output_frames(self, num_samples: int | None = None) -> int:
        """Output length T for an input of ``num_samples`` (default: one patch)."""
        was_training = self.training
        self.eval()
        with torch.no_grad():
            out = self(torch.zeros(1, num_samples or self.patch_samples))
        self.train(was_training)
        return int(out.shape[-1])

    @property
    def frame_rate(self) -> float:
        """Output frames per second (for frame-level tasks)."""
        return self.output_frames() * self.sample_rate / self.patch_samples


@FRONTENDS.register("lms_conv2d")
class LmsConv2d(FrontEnd):
    """Log-mel spectrogram + one Conv2d whose kernel spans every mel band (Dieleman-style).

    Parameters
    ----------
    n_fft, hop_length, n_mels
        Log-mel settings (tutorial: 2048, 1024, 128).
    patch_frames, patch_hop_frames
        Training patch length and hop in spectrogram frames (tutorial: 64 and 32, i.e.
        2.97 s and 1.49 s at 22,050 Hz).
    channels, kernel_frames
        Conv2d output channels and kernel width in frames (tutorial: 80 and 5).
    seed_compat
        Use the tutorial's full-shape LayerNorm affine parameters (fixes the input length).
    """

    def __init__(self, n_fft: int = 2048, hop_length: int = 1024, n_mels: int = 128, patch_frames: int = 64,
                 patch_hop_frames: int = 32, channels: int = 80, kernel_frames: int = 5, seed_compat: bool = False):
        super().__init__()
        self.features = LogMel(self.sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)
        self.patch_samples = self.features.samples_for_frames(patch_frames)
        self.patch_hop_samples = patch_hop_frames * hop_length
        self.out_channels = channels
        conv_frames = patch_frames - kernel_frames + 1
        self.input_norm = SampleNorm(1, (1, n_mels, patch_frames) if seed_compat else None)
        self.conv = nn.Conv2d(1, channels, kernel_size=(n_mels, kernel_frames))
        self.output_norm = SampleNorm(channels, (channels, conv_frames) if seed_compat else None)
        self.activation = nn.LeakyReLU()

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.input_norm(self.features(wave).unsqueeze(1))  # (B, 1, mels, T)
        x = self.conv(x).squeeze(2)  # (B, C, T')
        return self.activation(self.output_norm(x))
