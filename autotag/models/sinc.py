"""SincNet: a convolution whose filters are parametrised band-passes (two cut-offs each).

Each filter ``i`` is the windowed difference of two ideal low-passes,
``h_i[n] = (2 f₂ sinc(2π f₂ n) − 2 f₁ sinc(2π f₁ n)) · w[n] / (2 (f₂ − f₁))``, so only
``θ_i = {f₁, f₂}`` is learned: 160 parameters for 80 filters. The parametrisation keeps every
band valid during training:

- ``f₁ = min_low_hz + |low_hz|`` and ``f₂ = clamp(f₁ + min_band_hz + |band_hz|, min_low_hz, sr / 2)``;
- ``low_hz`` and ``band_hz`` start mel-spaced: ``num_filters + 1`` points evenly spaced in mel
  (``2595 · log10(1 + f / 700)``) from ``init_low_hz`` to ``sr / 2 − (min_low_hz + min_band_hz)``;
  ``low_hz`` takes the first ``num_filters`` and ``band_hz`` the differences. At 22,050 Hz the first
  band is [80, 155.7] Hz and the last [10,579.7, 11,025] Hz;
- ``w`` is a Hamming window and the filter is divided by its centre tap ``2 (f₂ − f₁)``, so the
  centre tap is 1 (the pass-band gain is then about ``sr / (2 (f₂ − f₁))``, as in the authors' code).

References
----------
Ravanelli, Bengio. "Speaker recognition from raw waveform with SincNet", IEEE SLT 2018
(arXiv:1808.00158). The tutorial uses the authors' ``SincConv_fast`` with its defaults.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from autotag import SAMPLE_RATE


def hz_to_mel(hz: torch.Tensor | float) -> torch.Tensor:
    """HTK mel scale, ``2595 · log10(1 + hz / 700)``."""
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(hz, dtype=torch.float64) / 700.0)


def mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


class SincConv(nn.Module):
    """Band-pass filterbank ``(B, 1, N) → (B, num_filters, (N − K) // stride + 1)``.

    Parameters
    ----------
    num_filters
        Number of band-pass filters (tutorial: 80).
    kernel_size
        Filter length ``K`` in samples (tutorial: 251); an even value is raised by one so the
        filters are symmetric.
    sample_rate
        Sample rate in Hz; bands are clamped at its Nyquist frequency.
    stride
        Convolution stride (tutorial: 1).
    min_low_hz, min_band_hz
        Lowest cut-off and narrowest band in Hz (tutorial: 50 and 50).
    init_low_hz
        Lower end of the mel-spaced initialisation (tutorial: 30).

    Raises
    ------
    ValueError
        If ``num_filters`` or ``kernel_size`` is not positive, or the minima leave no room
        below Nyquist.
    """

    def __init__(self, num_filters: int = 80, kernel_size: int = 251, sample_rate: int = SAMPLE_RATE,
                 stride: int = 1, min_low_hz: float = 50.0, min_band_hz: float = 50.0, init_low_hz: float = 30.0):
        super().__init__()
        if num_filters <= 0 or kernel_size <= 0:
            raise ValueError(f"SincConv: num_filters={num_filters} and kernel_size={kernel_size} must be positive")
        top = sample_rate / 2 - (min_low_hz + min_band_hz)
        if top <= init_low_hz:
            raise ValueError(f"SincConv: min_low_hz + min_band_hz = {min_low_hz + min_band_hz} Hz leaves no band "
                             f"above init_low_hz={init_low_hz} Hz below Nyquist ({sample_rate / 2} Hz)")
        self.kernel_size = kernel_size + 1 if kernel_size % 2 == 0 else kernel_size
        self.sample_rate, self.stride = sample_rate, stride
        self.min_low_hz, self.min_band_hz = min_low_hz, min_band_hz
        edges = mel_to_hz(torch.linspace(float(hz_to_mel(init_low_hz)), float(hz_to_mel(top)), num_filters + 1,
                                         dtype=torch.float64))
        self.low_hz = nn.Parameter(edges[:-1].float().unsqueeze(1))
        self.band_hz = nn.Parameter(torch.diff(edges).float().unsqueeze(1))
        half = self.kernel_size // 2
        # Left half of the time axis (in radians per Hz) and of a Hamming window of K samples.
        self.register_buffer("phase", 2 * math.pi * torch.arange(-half, 0, dtype=torch.float32) / sample_rate,
                             persistent=False)
        taps = torch.linspace(0, self.kernel_size / 2 - 1, half)
        self.register_buffer("window", 0.54 - 0.46 * torch.cos(2 * math.pi * taps / self.kernel_size),
                             persistent=False)

    def cutoff_frequencies(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Effective ``(f₁, f₂)`` in Hz, each ``(num_filters,)``."""
        low = self.min_low_hz + self.low_hz.abs()
        high = torch.clamp(low + self.min_band_hz + self.band_hz.abs(), self.min_low_hz, self.sample_rate / 2)
        return low.squeeze(1), high.squeeze(1)

    def filters(self) -> torch.Tensor:
        """The current filters ``(num_filters, 1, kernel_size)``: symmetric, centre tap 1."""
        low, high = self.cutoff_frequencies()
        band = (high - low).unsqueeze(1)
        left = (torch.sin(high.unsqueeze(1) * self.phase) - torch.sin(low.unsqueeze(1) * self.phase))
        left = left / (self.phase / 2) * self.window
        kernel = torch.cat([left, 2 * band, left.flip(1)], dim=1)
        return (kernel / (2 * band)).unsqueeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv1d(x, self.filters(), stride=self.stride)
