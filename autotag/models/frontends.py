"""Front-ends: waveform ``(B, N)`` → feature sequence ``(B, C, T)``.

A front-end is a fixed feature module (``features``: log-mel, constant-Q, or the waveform
itself, see :mod:`autotag.features`) followed by learned layers (:meth:`FrontEnd.encode`).
The split lets export put the feature computation inside the exported graph or leave it
outside (:mod:`autotag.models.export`).

Every front-end owns its time base:

- ``sample_rate``: the input sample rate (22,050 Hz);
- ``patch_samples`` / ``patch_hop_samples``: the training patch and hop, derived from its
  own frame settings (LMS 64 / 32 frames, waveform 3,200 / 1,000 samples, CQT 1,024 / 128
  frames as in the tutorial);
- ``output_hop_samples`` / ``output_offset_samples``: output frame ``t`` is centred on sample
  ``output_offset_samples + t · output_hop_samples``; ``frame_rate`` is
  ``sample_rate / output_hop_samples``. Frame-level back-ends keep this time axis.

``seed_compat=True`` gives every whole-example LayerNorm the tutorial's full-shape affine
parameters (see :class:`autotag.models.layers.SampleNorm`); the model then accepts exactly
``patch_samples`` samples. Off (the default), any length of at least one output frame works.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from autotag import SAMPLE_RATE
from autotag.features import ConstantQ, LogMel, Waveform
from autotag.models.layers import ConvPoolNorm, NormConv, SampleNorm, conv_lengths
from autotag.models.registry import FRONTENDS
from autotag.models.sinc import SincConv
from autotag.models.tcn import TemporalConvNet


class FrontEnd(nn.Module):
    """Base class: ``forward(wave, lengths) = encode(features(wave), feature lengths)``.

    Subclasses set ``features``, ``out_channels``, ``patch_samples``, ``patch_hop_samples``,
    ``output_hop_samples`` and ``output_offset_samples``, and implement :meth:`encode` and
    :meth:`encoded_lengths`.
    """

    sample_rate: int = SAMPLE_RATE
    features: nn.Module
    out_channels: int
    patch_samples: int
    patch_hop_samples: int
    output_hop_samples: int
    output_offset_samples: float
    track_context: bool = False
    """True when every output frame depends on the whole input (crema: a dB reference taken over
    the input, a bidirectional GRU), so that a track that fits one patch runs as one unpadded pass
    at inference instead of a zero-padded window."""

    def encode(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Learned layers on the features; ``lengths``: valid feature frames per example."""
        raise NotImplementedError

    def encoded_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Valid output frames for ``lengths`` valid feature frames."""
        raise NotImplementedError

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, N)`` → ``(B, out_channels, T)``; ``lengths``: valid samples per example."""
        feature_lengths = None if lengths is None else self.features.num_frames(lengths)
        return self.encode(self.features(wave), feature_lengths)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Valid output frames for ``lengths`` valid input samples."""
        return self.encoded_lengths(self.features.num_frames(lengths))

    def output_frames(self, num_samples: int | None = None) -> int:
        """Output length T for an input of ``num_samples`` (default: one patch)."""
        samples = self.patch_samples if num_samples is None else num_samples
        return int(self.output_lengths(torch.tensor([samples]))[0])

    @property
    def frame_rate(self) -> float:
        """Output frames per second."""
        return self.sample_rate / self.output_hop_samples

    def frame_times(self, num_frames: int) -> np.ndarray:
        """Centre time in seconds of each of ``num_frames`` output frames."""
        return (self.output_offset_samples + np.arange(num_frames) * self.output_hop_samples) / self.sample_rate


def _check_frames(name: str, frames: int, patch_samples: int) -> None:
    if frames < 1:
        raise ValueError(f"front-end {name!r}: a patch of {patch_samples} samples gives {frames} output frames; "
                         "use a longer patch or a smaller kernel, stride or pool")


@FRONTENDS.register("lms_conv2d")
class LmsConv2d(FrontEnd):
    """Log-mel spectrogram + one Conv2d whose kernel spans every mel band (Dieleman-style).

    ``LayerNorm → Conv2d(1 → channels, (n_mels, kernel_frames)) → LayerNorm → LeakyReLU``
    (the tutorial's D1-I1-C1 and D2-I1-C1, §2.2 of the seed recipe).

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
        self.output_hop_samples = hop_length
        self.output_offset_samples = (kernel_frames - 1) / 2 * hop_length
        self.out_channels = channels
        self.kernel_frames = kernel_frames
        conv_frames = patch_frames - kernel_frames + 1
        _check_frames("lms_conv2d", conv_frames, self.patch_samples)
        self.input_norm = SampleNorm(1, (1, n_mels, patch_frames) if seed_compat else None)
        self.conv = nn.Conv2d(1, channels, kernel_size=(n_mels, kernel_frames))
        self.output_norm = SampleNorm(channels, (channels, conv_frames) if seed_compat else None)
        self.activation = nn.LeakyReLU()

    def encoded_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return conv_lengths(lengths, self.kernel_frames)

    def encode(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        x = self.input_norm(features.unsqueeze(1), lengths)  # (B, 1, mels, T)
        x = self.conv(x).squeeze(2)  # (B, C, T')
        return self.activation(self.output_norm(x, None if lengths is None else self.encoded_lengths(lengths)))


class WaveformFrontEnd(FrontEnd):
    """``LayerNorm(patch) → filterbank → [|·|] → MaxPool → LayerNorm → LeakyReLU`` on the waveform.

    The common shape of the tutorial's waveform front-ends (seed recipe §2.3–2.5); the
    registered subclasses only choose the filterbank.

    Parameters
    ----------
    filterbank
        ``(B, 1, N) → (B, channels, (N − kernel_size) // stride + 1)``.
    channels, kernel_size, stride
        The filterbank's output channels and how it changes the length.
    pool
        Max-pool size and stride.
    patch_samples, patch_hop_samples
        Training patch and hop in samples (tutorial: 3,200 and 1,000).
    rectify
        ``|·|`` after the filterbank.
    seed_compat
        Full-shape LayerNorm affine parameters (fixes the input length).
    """

    def __init__(self, filterbank: nn.Module, channels: int, kernel_size: int, stride: int, pool: int,
                 patch_samples: int, patch_hop_samples: int, rectify: bool, seed_compat: bool):
        super().__init__()
        self.features = Waveform(self.sample_rate)
        self.patch_samples, self.patch_hop_samples = patch_samples, patch_hop_samples
        self.output_hop_samples = stride * pool
        self.output_offset_samples = (kernel_size - 1) / 2 + stride * (pool - 1) / 2
        self.out_channels = channels
        frames = int(conv_lengths(torch.tensor(patch_samples), kernel_size, stride, pool))
        _check_frames(getattr(self, "registry_name", type(self).__name__), frames, patch_samples)
        self.input_norm = SampleNorm(1, (1, patch_samples) if seed_compat else None)
        self.block = ConvPoolNorm(filterbank, channels, kernel_size, stride, pool,
                                  (channels, frames) if seed_compat else None, rectify=rectify)

    def encoded_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.block.output_lengths(lengths)

    def encode(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.block(self.input_norm(features, lengths), lengths)


@FRONTENDS.register("waveform_conv1d")
class WaveformConv1d(WaveformFrontEnd):
    """A strided Conv1d filterbank on the waveform (the tutorial's D1-I2-C3, 124 K parameters).

    Parameters
    ----------
    channels, kernel_size, stride
        The Conv1d (tutorial: 80 filters of 251 taps, stride 15).
    pool
        Max-pool size (tutorial: 3).
    patch_samples, patch_hop_samples
        Training patch and hop in samples (tutorial: 3,200 and 1,000).
    seed_compat
        Full-shape LayerNorm affine parameters (fixes the input length).
    """

    def __init__(self, channels: int = 80, kernel_size: int = 251, stride: int = 15, pool: int = 3,
                 patch_samples: int = 3200, patch_hop_samples: int = 1000, seed_compat: bool = False):
        conv = nn.Conv1d(1, channels, kernel_size, stride=stride)
        super().__init__(conv, channels, kernel_size, stride, pool, patch_samples, patch_hop_samples,
                         rectify=False, seed_compat=seed_compat)


@FRONTENDS.register("tcn")
class Tcn(WaveformFrontEnd):
    """A causal temporal convolutional network on the waveform (the tutorial's D1-I2-C4, 219 K).

    Parameters
    ----------
    channels
        Channels of each TCN level; level ``i`` has dilation ``2^i`` (tutorial: 4, 8, 16, 32).
    kernel_size
        Taps per causal convolution (tutorial: 2).
    dropout
        Dropout inside the TCN (tutorial: 0.2).
    pool
        Max-pool size (tutorial: 3).
    patch_samples, patch_hop_samples
        Training patch and hop in samples (tutorial: 3,200 and 1,000).
    seed_compat
        Full-shape LayerNorm affine parameters (fixes the input length).
    """

    def __init__(self, channels: Sequence[int] = (4, 8, 16, 32), kernel_size: int = 2, dropout: float = 0.2,
                 pool: int = 3, patch_samples: int = 3200, patch_hop_samples: int = 1000, seed_compat: bool = False):
        tcn = TemporalConvNet(1, list(channels), kernel_size=kernel_size, dropout=dropout)
        # The TCN keeps the length (causal padding), hence kernel 1 / stride 1 for length bookkeeping.
        super().__init__(tcn, list(channels)[-1], 1, 1, pool, patch_samples, patch_hop_samples,
                         rectify=False, seed_compat=seed_compat)


@FRONTENDS.register("sincnet")
class SincNet(WaveformFrontEnd):
    """SincNet band-pass filterbank on the waveform (seed recipe §2.3, without ``|·|``).

    Parameters
    ----------
    num_filters, kernel_size, stride
        The sinc filterbank (tutorial: 80 filters, 251 taps, stride 1).
    min_low_hz, min_band_hz, init_low_hz
        Cut-off constraints and initialisation (tutorial: 50, 50, 30 Hz); see
        :class:`autotag.models.sinc.SincConv`.
    pool
        Max-pool size (tutorial: 3).
    patch_samples, patch_hop_samples
        Training patch and hop in samples (tutorial: 3,200 and 1,000).
    seed_compat
        Full-shape LayerNorm affine parameters (fixes the input length).
    """

    rectify = False

    def __init__(self, num_filters: int = 80, kernel_size: int = 251, stride: int = 1, min_low_hz: float = 50.0,
                 min_band_hz: float = 50.0, init_low_hz: float = 30.0, pool: int = 3, patch_samples: int = 3200,
                 patch_hop_samples: int = 1000, seed_compat: bool = False):
        sinc = SincConv(num_filters, kernel_size, SAMPLE_RATE, stride=stride, min_low_hz=min_low_hz,
                        min_band_hz=min_band_hz, init_low_hz=init_low_hz)
        super().__init__(sinc, num_filters, sinc.kernel_size, stride, pool, patch_samples, patch_hop_samples,
                         rectify=self.rectify, seed_compat=seed_compat)


@FRONTENDS.register("sincnet_abs")
class SincNetAbs(SincNet):
    """SincNet followed by ``|·|`` before pooling: the tutorial's "SincNet/Abs" (D1-I2-C2, 313 K).

    Same parameters as :class:`SincNet`.
    """

    rectify = True


@FRONTENDS.register("cqt_conv2d")
class CqtConv2d(FrontEnd):
    """Constant-Q magnitude + the chord model's convolutions (seed recipe §3.2, stages 1–4).

    ``LayerNorm → Conv2d(1 → channels, (1, time_kernel), same) → LeakyReLU``, then
    ``freq_layers`` × ``LayerNorm → Conv2d(channels → channels, (freq_kernel, 1), stride
    (freq_stride, 1)) → LeakyReLU``, which collapse the 72 bins to 1 (72 → 23 → 7 → 1). Any
    remaining frequency rows are folded into the channels. The time axis is never
    down-sampled: output frames are CQT frames (43.07 per second).

    Parameters
    ----------
    hop_length, fmin, n_bins, bins_per_octave
        Constant-Q settings (tutorial: 512, 32.7 Hz, 72, 12); see :class:`autotag.features.ConstantQ`.
    patch_frames, patch_hop_frames
        Training patch and hop in CQT frames (tutorial: 1,024 and 128, i.e. 23.8 s and 2.97 s).
    channels
        Channels of every Conv2d (tutorial: 32).
    time_kernel
        Width of the first (time-only, 'same') kernel; odd (tutorial: 5).
    freq_kernel, freq_stride, freq_layers
        The frequency-only convolutions (tutorial: 5, 3, 3).
    seed_compat
        Full-shape LayerNorm affine parameters, as in the tutorial: 6.9 M of the chord
        model's 7.0 M parameters (fixes the input length).

    Raises
    ------
    ValueError
        If ``time_kernel`` is even or the frequency convolutions leave no rows.
    """

    def __init__(self, hop_length: int = 512, fmin: float = 32.7, n_bins: int = 72, bins_per_octave: int = 12,
                 patch_frames: int = 1024, patch_hop_frames: int = 128, channels: int = 32, time_kernel: int = 5,
                 freq_kernel: int = 5, freq_stride: int = 3, freq_layers: int = 3, seed_compat: bool = False):
        super().__init__()
        if time_kernel % 2 == 0:
            raise ValueError(f"cqt_conv2d: time_kernel={time_kernel}, expected an odd width ('same' padding)")
        self.features = ConstantQ(self.sample_rate, hop_length, fmin, n_bins, bins_per_octave)
        self.patch_samples = self.features.samples_for_frames(patch_frames)
        self.patch_hop_samples = patch_hop_frames * hop_length
        self.output_hop_samples, self.output_offset_samples = hop_length, 0.0
        rows = n_bins
        layers = [NormConv(SampleNorm(1, (1, rows, patch_frames) if seed_compat else None),
                           nn.Conv2d(1, channels, (1, time_kernel), padding=(0, time_kernel // 2)))]
        for _ in range(freq_layers):
            layers.append(NormConv(SampleNorm(channels, (channels, rows, patch_frames) if seed_compat else None),
                                   nn.Conv2d(channels, channels, (freq_kernel, 1), stride=(freq_stride, 1))))
            rows = (rows - freq_kernel) // freq_stride + 1
            if rows < 1:
                raise ValueError(f"cqt_conv2d: {freq_layers} frequency convolutions (kernel {freq_kernel}, stride "
                                 f"{freq_stride}) leave no rows of the {n_bins} bins")
        self.layers = nn.ModuleList(layers)
        self.out_channels = channels * rows

    def encoded_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return lengths

    def encode(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        x = features.unsqueeze(1)  # (B, 1, bins, T)
        for layer in self.layers:
            x = layer(x, lengths)
        return x.flatten(1, 2)  # (B, channels · rows, T)
