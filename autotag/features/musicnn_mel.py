"""musicnn's input representation as a torch module: 16 kHz log-mel, ``log10(1 + 10000 · mel power)``.

musicnn (Pons & Serra, 2019) computes, in ``musicnn/extractor.py``::

    audio, sr = librosa.load(path, sr=16000)
    mel = librosa.feature.melspectrogram(y=audio, sr=16000, hop_length=256, n_fft=512, n_mels=96).T
    mel = np.log10(10000 * mel.astype(np.float16) + 1)

:class:`MusicnnMel` takes autotag's 22,050 Hz waveform, resamples it to 16 kHz on the
model's device with ``torchaudio.functional.resample`` (:data:`RESAMPLING`: a Kaiser-windowed
sinc, 64 zero crossings, roll-off 0.96), then takes the same mel spectrogram as librosa (centred frames,
zero padding, Hann window, Slaney mel filters, power 2) through
:class:`autotag.features.LogMel`'s STFT and filterbank, and ``log10(1 + 10000 · mel)``.

Two deliberate differences from the extractor:

- **Resampling.** ``librosa.load(sr=16000)`` resamples the decoded file (at its own rate) with
  soxr's high-quality filter; here the file has been decoded and resampled to 22,050 Hz by
  autotag and then goes 22,050 → 16,000 Hz through torchaudio's filter. The filters differ
  near the 8 kHz band edge, which moves the top mel bands slightly
  (``tests/unit/models/test_musicnn_parity.py`` measures the effect on the tags). :data:`RESAMPLING`
  was chosen to come close to soxr: over 30-s excerpts of librosa's eight example recordings, the
  largest tag-probability difference to the same chain resampled by soxr is 0.007 (MTT) / 0.005
  (MSD), against 0.043 / 0.036 with torchaudio's default filter (Hann window, 6 zero crossings).
- **Float32 log.** The extractor casts the mel power to float16 and computes ``10000 · mel + 1``
  in float16, which overflows to ``inf`` wherever the power exceeds 6.55 (the loud low bands of
  real music: 18 to 369 values per 6-s clip in the fixtures); TensorFlow then propagates NaNs
  that its ReLU turns into zeros and every clip gets the same tags. Here the log is taken in
  float32. ``extractor_float16=True`` reproduces the extractor's float16 arithmetic, ``inf``
  included, for comparisons only.

References
----------
J. Pons and X. Serra, "musicnn: pre-trained convolutional neural networks for music audio
tagging", ISMIR late-breaking/demo, 2019. https://github.com/jordipons/musicnn
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torchaudio
from torch import nn

from autotag import SAMPLE_RATE
from autotag.features.logmel import LogMel

MUSICNN_SAMPLE_RATE = 16_000
"""The rate musicnn's networks were trained at (``configuration.SR``)."""

RESAMPLING = {"lowpass_filter_width": 64, "rolloff": 0.96, "resampling_method": "sinc_interp_kaiser", "beta": 14.77}
"""``torchaudio.functional.resample`` settings for 22,050 → 16,000 Hz, closer to ``librosa.load``'s soxr
than torchaudio's defaults (the module docstring gives the measurement)."""


class MusicnnMel(nn.Module):
    """Waveform ``(B, N)`` at ``sample_rate`` → musicnn log-mel ``(B, n_mels, frames)``.

    Frame ``t`` is centred on sample ``t · hop_length`` of the 16 kHz signal, i.e. at
    ``t · hop_length / 16000`` seconds.

    Parameters
    ----------
    sample_rate
        Rate of the input waveform (autotag: 22,050 Hz).
    n_fft, hop_length, n_mels
        musicnn's settings at 16 kHz (``configuration.py``: 512, 256, 96).
    extractor_float16
        Reproduce ``extractor.py``'s float16 arithmetic (power, product, sum and log each rounded
        to float16; overflows to ``inf`` for loud input). Off by default.

    Raises
    ------
    ValueError
        If ``sample_rate`` is not positive.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE, n_fft: int = 512, hop_length: int = 256, n_mels: int = 96,
                 extractor_float16: bool = False):
        super().__init__()
        if sample_rate <= 0:
            raise ValueError(f"MusicnnMel: sample_rate={sample_rate}, expected a positive rate in Hz")
        self.sample_rate = sample_rate
        self.model_rate = MUSICNN_SAMPLE_RATE
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.extractor_float16 = extractor_float16
        self.mel = LogMel(MUSICNN_SAMPLE_RATE, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)
        divisor = math.gcd(sample_rate, MUSICNN_SAMPLE_RATE)
        self._orig, self._new = sample_rate // divisor, MUSICNN_SAMPLE_RATE // divisor
        self.resampler = None
        if self._orig != self._new:
            # The module form of torchaudio.functional.resample: its kernel is computed once here (not per
            # call), which also keeps the Bessel function out of exported graphs (ONNX has no i0). The kernel
            # is derived from the settings, so it stays out of the checkpoint (non-persistent buffer).
            self.resampler = torchaudio.transforms.Resample(self._orig, self._new, **RESAMPLING)
            kernel = self.resampler.kernel
            del self.resampler._buffers["kernel"]
            self.resampler.register_buffer("kernel", kernel, persistent=False)

    @property
    def frame_rate(self) -> float:
        """Frames per second (62.5)."""
        return self.model_rate / self.hop_length

    @property
    def input_hop_samples(self) -> float:
        """The frame hop in input samples (352.8 at 22,050 Hz)."""
        return self.hop_length * self.sample_rate / self.model_rate

    def resampled_length(self, num_samples: int | torch.Tensor) -> int | torch.Tensor:
        """Samples at 16 kHz that ``torchaudio.functional.resample`` gives for ``num_samples``."""
        return -((-num_samples * self._new) // self._orig)

    def num_frames(self, num_samples: int | torch.Tensor) -> int | torch.Tensor:
        """Frames produced for ``num_samples`` input samples."""
        return 1 + self.resampled_length(num_samples) // self.hop_length

    def samples_for_frames(self, num_frames: int) -> int:
        """The smallest input length (at ``sample_rate``) that yields ``num_frames`` frames."""
        needed = (num_frames - 1) * self.hop_length  # samples at 16 kHz
        samples = needed * self._orig // self._new
        while self.resampled_length(samples) < needed:
            samples += 1
        return samples

    def resample(self, wave: torch.Tensor) -> torch.Tensor:
        """``(B, N)`` at ``sample_rate`` → ``(B, resampled_length(N))`` at 16 kHz."""
        return wave if self.resampler is None else self.resampler(wave)

    def log_mel(self, wave16k: torch.Tensor) -> torch.Tensor:
        """musicnn's log-mel of a 16 kHz waveform ``(B, M)``: ``(B, n_mels, 1 + M // hop_length)``."""
        power = self.mel.power_spectrogram(wave16k.float())
        mel = torch.cat([torch.matmul(self.mel.filterbank[m0:m1, b0:b1], power[:, b0:b1])
                         for m0, m1, b0, b1 in self.mel.bands], dim=1)
        if not self.extractor_float16:
            return torch.log10(1.0 + 10_000.0 * mel)
        # numpy's float16 ufuncs compute in float32 and round each result to float16.
        scaled = (10_000.0 * mel.half().float()).half().float()
        return torch.log10((scaled + 1.0).half().float()).half().float()

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Log-mel of ``wave`` ``(B, N)`` (float32 whatever the autocast context)."""
        with torch.autocast(device_type=wave.device.type, enabled=False):
            return self.log_mel(self.resample(wave.float()))

    def patch_features(self, track: torch.Tensor, starts: Sequence[int], patch_samples: int) -> torch.Tensor:
        """Log-mel patches of ``track`` (1-D) at ``starts``, framed as musicnn frames them.

        ``musicnn.extractor`` takes the log-mel of the whole track and cuts 187-frame patches
        out of it; inference here does the same over the span of ``starts`` (resampled once,
        framed once, patch ``k`` starting at the frame nearest to ``starts[k]``), so only the
        span's ends see zero padding, not every patch edge as in :meth:`forward` of stacked
        patches (what training sees). Returns ``(P, n_mels, num_frames(patch_samples))``;
        falls back to :meth:`forward` of the stacked patches when the span's frames do not
        cover the last patch.
        """
        starts = [int(s) for s in starts]
        frames = int(self.num_frames(patch_samples))
        first = starts[0]
        # Samples past the last patch, where the track has them: its last frames and the resampler's
        # filter then see the music that follows, as in musicnn's whole-track log-mel.
        context = 2 * self.mel.n_fft * self._orig // self._new
        with torch.autocast(device_type=track.device.type, enabled=False):
            span = track[first : starts[-1] + patch_samples + context].float().unsqueeze(0)
            mel = self.log_mel(self.resample(span))[0]  # (n_mels, M)
        offsets = [round((s - first) * self._new / self._orig / self.hop_length) for s in starts]
        if min(offsets) < 0 or max(offsets) + frames > mel.shape[1]:
            return self(torch.stack([track[s : s + patch_samples] for s in starts]))
        return torch.stack([mel[:, o : o + frames] for o in offsets])
