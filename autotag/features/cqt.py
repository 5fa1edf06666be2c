"""Constant-Q magnitude as a torch module (the chord model's input).

Why our own module
------------------
The tutorial uses ``np.abs(librosa.cqt(y, sr=22050, fmin=32.7, hop_length=512,
bins_per_octave=12, n_bins=72))``. We need the same numbers on the model's device, inside
the model, exportable to TorchScript and ONNX. nnAudio (the maintained option) is not a
dependency of this project, and its ``CQT1992v2`` normalises its kernels differently from
librosa, so its output would need rescaling and a test anyway. The filter design below is
short, follows librosa's published definition, and runs as plain ``conv1d`` calls, which
every export target supports.

Method
------
Bin ``k`` has centre frequency ``f_k = fmin · 2^(k / bins_per_octave)`` and length
``L_k = filter_scale · sr / (α · f_k)`` samples, where ``α = (r − 1) / (r + 1)``,
``r = 2^(2 / bins_per_octave)`` is the relative bandwidth of equally spaced bins. The kernel is a
Hann-windowed complex exponential ``w(n) · exp(2πi f_k n / sr)`` on
``n = floor(−L_k / 2) … ceil(L_k / 2) − 1``, normalised to unit L1 norm. librosa computes the
response octave by octave at decimated sample rates and divides by ``sqrt(L_k)``; at the full
sample rate that equals

    |C[k, t]| = sqrt(L_k) · | Σ_n x[t · hop − n] · kernel_k[n] |,

with ``x`` zero-padded outside the signal (librosa's default ``pad_mode="constant"``), so frame
``t`` is centred on sample ``t · hop`` and ``1 + N // hop`` frames come out. Bins are grouped
by octave so that each group's ``conv1d`` kernel is only as long as its own longest filter.

Agreement with librosa (``tests/unit/features/test_cqt.py``): the response to a steady tone
matches in its peak bin within 1e-3; on broadband signals the relative Frobenius error is
about 0.6 % and the largest absolute error under 1 % of the largest magnitude. The residue
comes from librosa's decimation and its sparsified frequency-domain kernels, not from the
filter design.

References
----------
Schörkhuber, Klapuri. "Constant-Q transform toolbox for music processing", SMC 2010.
McFee et al. librosa 0.11, ``librosa.cqt`` / ``librosa.filters.wavelet``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from autotag import SAMPLE_RATE
from autotag.features.timebase import CentredFrames

HANN_BANDWIDTH = 1.50018310546875
"""Equivalent noise bandwidth of the Hann window, in bins (librosa's ``window_bandwidth``)."""


def cqt_frequencies(fmin: float, n_bins: int, bins_per_octave: int) -> np.ndarray:
    """Centre frequencies ``fmin · 2^(k / bins_per_octave)`` for ``k < n_bins``, in Hz."""
    return fmin * 2.0 ** (np.arange(n_bins) / bins_per_octave)


def quality_factor(bins_per_octave: int, filter_scale: float = 1.0) -> float:
    """``Q = filter_scale / α``, with ``α`` the relative bandwidth of equally spaced bins."""
    ratio = 2.0 ** (2.0 / bins_per_octave)
    return filter_scale * (ratio + 1) / (ratio - 1)


def cqt_lengths(freqs: np.ndarray, sample_rate: float, bins_per_octave: int,
                filter_scale: float = 1.0) -> np.ndarray:
    """Filter length ``Q · sr / f`` in (fractional) samples for each centre frequency."""
    return quality_factor(bins_per_octave, filter_scale) * sample_rate / freqs


def cqt_kernel(freq: float, length: float, sample_rate: float) -> np.ndarray:
    """One complex kernel: a periodic Hann window of ``floor(length)`` samples (zero-padded to
    ``ceil(length)``) times ``exp(2πi · freq · n / sr)``, normalised to unit L1 norm."""
    n = np.arange(-length // 2, length // 2, dtype=float)
    whole = int(np.floor(length))
    window = np.zeros(len(n))
    window[:whole] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(whole) / whole)
    kernel = window * np.exp(2j * np.pi * freq * n / sample_rate)
    return kernel / np.abs(kernel).sum()


HALFBAND_TAPS = 63
"""Taps of the down-by-two low-pass of :class:`ConstantQ`'s ``decimate`` (odd: zero phase)."""


def halfband_filter(taps: int = HALFBAND_TAPS, beta: float = 8.0) -> np.ndarray:
    """Kaiser-windowed half-band low-pass (cutoff a quarter of the input rate), unit gain at DC.

    Every even offset from the centre but the centre itself is zero, so :func:`halve` needs only
    the centre and the odd offsets. Its transition band (about 0.21 to 0.29 cycles per sample)
    lies between the 0.175 that the bins kept at the halved rate reach and the 0.325 whose aliases
    would land there.
    """
    n = np.arange(taps) - (taps - 1) / 2
    h = 0.5 * np.sinc(0.5 * n) * np.kaiser(taps, beta)
    h[(n != 0) & (n % 2 == 0)] = 0.0
    return h / h.sum()


def halve(wave: torch.Tensor, lowpass: torch.Tensor) -> torch.Tensor:
    """``(B, N)`` → ``(B, ceil(N / 2))``: the zero-phase half-band ``lowpass`` (odd length, zeros
    outside the signal), every second sample kept, so output sample ``m`` sits on input sample
    ``2m``. As sums of strided slices, pairing the symmetric taps and skipping the zero ones: a
    single-channel strided ``conv1d`` is many times slower on CPU."""
    taps, n = lowpass.shape[0], wave.shape[1]
    centre, out = taps // 2, (n + 1) // 2
    padded = F.pad(wave, (centre, centre + 1))
    result = padded[:, centre : centre + 2 * out : 2] * lowpass[centre]
    for offset in range(1, centre + 1):
        weight = float(lowpass[centre + offset])
        if weight:
            pair = padded[:, centre - offset : centre - offset + 2 * out : 2] + \
                padded[:, centre + offset : centre + offset + 2 * out : 2]
            result.add_(pair, alpha=weight)
    return result


def _decimation_level(top_hz: float, sample_rate: float, hop_length: int) -> int:
    """Most halvings ``j`` with ``top_hz <= 0.35 · sample_rate / 2^j`` and ``2^j`` dividing the hop."""
    level = 0
    while hop_length % 2 ** (level + 1) == 0 and top_hz <= 0.35 * sample_rate / 2 ** (level + 1):
        level += 1
    return level


class _OctaveConv(nn.Module):
    """Magnitude response of one group of bins as a single strided ``conv1d``."""

    def __init__(self, kernels: list[np.ndarray], scales: np.ndarray, hop_length: int):
        super().__init__()
        self.hop_length = hop_length
        self.bins = len(kernels)
        # Sample n of a kernel with m taps sits at offset d = n − ceil(m / 2) from the frame centre.
        self.left = max(math.ceil(len(k) / 2) for k in kernels)
        size = self.left + max(math.ceil(len(k) / 2) for k in kernels) + 1
        weight = np.zeros((2 * self.bins, 1, size), dtype=np.float64)
        for row, (kernel, scale) in enumerate(zip(kernels, scales)):
            taps = self.left - (np.arange(len(kernel)) - math.ceil(len(kernel) / 2))  # flip: convolution
            weight[row, 0, taps] = scale * kernel.real
            weight[self.bins + row, 0, taps] = scale * kernel.imag
        self.right = size - self.left  # makes the frame count exactly 1 + N // hop
        self.register_buffer("weight", torch.from_numpy(weight).float(), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = F.pad(wave.unsqueeze(1), (self.left, self.right))
        parts = F.conv1d(x, self.weight, stride=self.hop_length)
        real, imag = parts[:, : self.bins], parts[:, self.bins :]
        return torch.sqrt(real * real + imag * imag)


class ConstantQ(CentredFrames):
    """Waveform ``(B, N)`` → constant-Q magnitude ``(B, n_bins, 1 + N // hop_length)``.

    Matches ``np.abs(librosa.cqt(y, sr, hop_length, fmin, n_bins, bins_per_octave,
    filter_scale))`` with librosa's defaults otherwise (Hann window, L1 norm, ``scale=True``,
    tuning 0); see the module docstring for the method and the measured agreement.

    Parameters
    ----------
    sample_rate
        Input sample rate in Hz.
    hop_length
        Hop between frames in samples (tutorial: 512, i.e. 43.1 frames/s at 22,050 Hz).
    fmin
        Centre frequency of the lowest bin in Hz (tutorial: 32.7, C1).
    n_bins
        Number of bins (tutorial: 72, six octaves).
    bins_per_octave
        Bins per octave (tutorial: 12).
    filter_scale
        Multiplies every filter length (librosa's ``filter_scale``).

    decimate
        Compute each octave at the lowest sample rate ``sample_rate / 2^j`` (``2^j`` dividing the
        hop) at which its band stays below 0.35 of that rate, down-sampling by two at a time with
        :data:`HALFBAND_TAPS`-tap low-pass filters (as librosa does, with its own resampler): the
        same filters with ``2^j`` times fewer taps. Off (default): every octave at full rate.

    Raises
    ------
    ValueError
        If a parameter is not positive, or the highest filter's band reaches Nyquist.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE, hop_length: int = 512, fmin: float = 32.7,
                 n_bins: int = 72, bins_per_octave: int = 12, filter_scale: float = 1.0, decimate: bool = False):
        super().__init__()
        for name, value in [("hop_length", hop_length), ("fmin", fmin), ("n_bins", n_bins),
                            ("bins_per_octave", bins_per_octave), ("filter_scale", filter_scale)]:
            if value <= 0:
                raise ValueError(f"ConstantQ: {name}={value!r}, expected a positive number")
        self.sample_rate = sample_rate
        self.hop_length = hop_length
        self.n_bins = n_bins
        self.freqs = cqt_frequencies(fmin, n_bins, bins_per_octave)
        lengths = cqt_lengths(self.freqs, sample_rate, bins_per_octave, filter_scale)
        # How far the top filter reaches: f · (1 + 0.5 · B / Q), with B ≈ 1.5 bins the Hann bandwidth.
        cutoff = self.freqs[-1] * (1 + 0.5 * HANN_BANDWIDTH / quality_factor(bins_per_octave, filter_scale))
        if cutoff > sample_rate / 2:
            raise ValueError(f"ConstantQ: the top bin ({self.freqs[-1]:.1f} Hz) reaches {cutoff:.1f} Hz, above "
                             f"Nyquist ({sample_rate / 2:.1f} Hz); use fewer bins or a lower fmin")
        scales = np.sqrt(lengths)  # librosa's scale: the full-rate filter length, whatever rate computes it
        starts = list(range(0, n_bins, bins_per_octave))
        reach = 1 + 0.5 * HANN_BANDWIDTH / quality_factor(bins_per_octave, filter_scale)
        self.levels = [_decimation_level(self.freqs[min(a + bins_per_octave, n_bins) - 1] * reach, sample_rate,
                                         hop_length) if decimate else 0 for a in starts]
        self.octaves = nn.ModuleList(
            _OctaveConv([cqt_kernel(f, n / 2**level, sample_rate / 2**level)
                         for f, n in zip(self.freqs[a : a + bins_per_octave], lengths[a : a + bins_per_octave])],
                        scales[a : a + bins_per_octave], hop_length // 2**level)
            for a, level in zip(starts, self.levels))
        self.register_buffer("halfband", torch.from_numpy(halfband_filter()).float().view(1, 1, -1), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Magnitudes of ``wave`` ``(B, N)``, lowest bin first (float32 whatever the autocast)."""
        with torch.autocast(device_type=wave.device.type, enabled=False):
            wave = wave.float()
            frames = 1 + wave.shape[1] // self.hop_length
            signals = [wave]
            for _ in range(max(self.levels)):
                signals.append(halve(signals[-1], self.halfband.view(-1)))
            return torch.cat([octave(signals[level])[:, :, :frames]
                              for octave, level in zip(self.octaves, self.levels)], dim=1)


def amplitude_to_db(magnitude: torch.Tensor, reference: torch.Tensor, top_db: float | None = 80.0,
                    amin: float = 1e-5) -> torch.Tensor:
    """librosa's ``amplitude_to_db(S, ref, amin, top_db)``: ``20 log10(max(amin, S)) −
    20 log10(max(amin, ref))``, floored at ``top_db`` below its own maximum. ``reference`` and the
    maximum broadcast against ``magnitude`` (one value per example and channel, say)."""
    db = 20.0 * torch.log10(magnitude.clamp(min=amin)) - 20.0 * torch.log10(reference.clamp(min=amin))
    if top_db is None:
        return db
    return torch.maximum(db, db.amax(dim=(-2, -1), keepdim=True) - top_db)


class HarmonicLogCQT(CentredFrames):
    """pumpp's ``HCQTMag(log=True)`` (crema's input): constant-Q magnitude at each harmonic of
    ``fmin``, in dB below each harmonic's maximum over the input, ``(B, harmonics, T, n_bins)``.

    One :class:`ConstantQ` spans every harmonic's bins (``n_bins`` + the highest harmonic's
    offset of ``bins_per_octave · log2(h)`` bins) and each harmonic is a slice of it, so the
    shared bins are computed once; hence harmonics must be powers of two (crema: 1, 2).
    Frames: ``N // hop_length`` (pumpp crops librosa's ``1 + N // hop`` frames to the input's
    whole hops). The dB reference is the maximum of the frames given (``ref=np.max``): a track
    run in windows gets each window's own reference.

    Parameters
    ----------
    sample_rate, hop_length, fmin, bins_per_octave
        As for :class:`ConstantQ`.
    n_octaves
        Octaves per harmonic (``n_bins = n_octaves · bins_per_octave``).
    harmonics
        Multiples of ``fmin``, powers of two.
    top_db
        Floor below the maximum (librosa's default 80 dB); None: no floor.
    decimate
        :class:`ConstantQ`'s octave-wise decimation (default on: about 20 times fewer operations).

    Raises
    ------
    ValueError
        For a harmonic that is not a power of two, or a bin above Nyquist.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE, hop_length: int = 2048, fmin: float = 32.70319566257483,
                 n_octaves: int = 6, bins_per_octave: int = 36, harmonics: tuple[int, ...] = (1, 2),
                 top_db: float | None = 80.0, decimate: bool = True):
        super().__init__()
        if not harmonics or any(h < 1 or h & (h - 1) for h in harmonics):
            raise ValueError(f"HarmonicLogCQT: harmonics={list(harmonics)}, expected powers of two (1, 2, 4, ...)")
        self.sample_rate, self.hop_length = sample_rate, hop_length
        self.n_bins = n_octaves * bins_per_octave
        self.offsets = [bins_per_octave * (h.bit_length() - 1) for h in harmonics]
        self.top_db = top_db
        self.cqt = ConstantQ(sample_rate, hop_length, fmin, self.n_bins + max(self.offsets), bins_per_octave,
                             decimate=decimate)

    def num_frames(self, num_samples: int | torch.Tensor) -> int | torch.Tensor:
        """``N // hop_length`` frames (at least one)."""
        frames = num_samples // self.hop_length
        return frames.clamp(min=1) if isinstance(frames, torch.Tensor) else max(frames, 1)

    def samples_for_frames(self, num_frames: int) -> int:
        return num_frames * self.hop_length

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``(B, N)`` → ``(B, harmonics, T, n_bins)`` dB (float32)."""
        magnitude = self.cqt(wave)[:, :, : self.num_frames(wave.shape[1])]  # (B, bins, T)
        stacked = torch.stack([magnitude[:, k : k + self.n_bins] for k in self.offsets], dim=1).transpose(2, 3)
        return amplitude_to_db(stacked, stacked.amax(dim=(-2, -1), keepdim=True), self.top_db)
