"""Decode any supported audio file to 22,050 Hz mono float32.

Decoding uses soundfile (libsndfile: WAV, FLAC, OGG/Vorbis, MP3, AIFF, ...) and
resampling uses soxr's "HQ" preset, the resampler librosa uses by default.
Every failure is an :class:`AudioDecodeError` that names the file and the problem,
so that batch stages can turn it into an error row and go on.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from autotag import SAMPLE_RATE

MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 192_000
MAX_CHANNELS = 8


class AudioDecodeError(ValueError):
    """An audio file that cannot be turned into a usable waveform."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class DecodedAudio:
    """A mono waveform at ``sample_rate`` plus what the source file was."""

    samples: np.ndarray  # float32, shape (n,)
    sample_rate: int
    source_sample_rate: int
    source_channels: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def resample(y: np.ndarray, source_rate: int, target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a mono or (n, channels) signal with soxr's high-quality preset."""
    if source_rate == target_rate:
        return np.ascontiguousarray(y, dtype=np.float32)
    return soxr.resample(y, source_rate, target_rate, quality="HQ").astype(np.float32, copy=False)


def _open(source: str | Path | bytes, label: str) -> sf.SoundFile:
    try:
        if isinstance(source, bytes):
            return sf.SoundFile(io.BytesIO(source))
        return sf.SoundFile(str(source))
    except sf.LibsndfileError as exc:
        raise AudioDecodeError(label, f"not a readable audio file ({exc.error_string})") from None
    except (RuntimeError, TypeError) as exc:
        raise AudioDecodeError(label, f"not a readable audio file ({exc})") from None


def decode_audio(
    source: str | Path | bytes,
    *,
    target_rate: int = SAMPLE_RATE,
    max_duration_s: float | None = None,
    name: str | None = None,
) -> DecodedAudio:
    """Read an audio file, down-mix to mono and resample to ``target_rate``.

    Parameters
    ----------
    source
        A local path, or the encoded bytes of a file.
    target_rate
        Output sample rate in Hz.
    max_duration_s
        Refuse files longer than this (checked from the header, before decoding).
    name
        How to name the file in errors (defaults to ``source`` when it is a path).

    Returns
    -------
    DecodedAudio

    Raises
    ------
    AudioDecodeError
        Missing, empty, truncated, non-audio, zero-length, non-finite, too long, or
        with an unsupported sample rate or channel count.
    """
    label = name or (str(source) if not isinstance(source, bytes) else "<bytes>")
    if not isinstance(source, bytes):
        path = Path(source)
        if not path.exists():
            raise AudioDecodeError(label, "file does not exist")
        if path.is_dir():
            raise AudioDecodeError(label, "is a directory, not an audio file")
        if path.stat().st_size == 0:
            raise AudioDecodeError(label, "file is empty (0 bytes)")
    elif len(source) == 0:
        raise AudioDecodeError(label, "file is empty (0 bytes)")

    with _open(source, label) as handle:
        rate, channels, frames = handle.samplerate, handle.channels, handle.frames
        if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
            raise AudioDecodeError(
                label, f"sample rate {rate} Hz outside the supported {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz"
            )
        if not 1 <= channels <= MAX_CHANNELS:
            raise AudioDecodeError(label, f"{channels} channels; expected 1 to {MAX_CHANNELS}")
        if max_duration_s is not None and frames > 0 and frames / rate > max_duration_s:
            raise AudioDecodeError(
                label, f"duration {frames / rate:.1f} s exceeds the limit of {max_duration_s:.1f} s"
            )
        try:
            data = handle.read(dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioDecodeError(label, f"truncated or corrupt audio data ({exc})") from None

    if data.shape[0] == 0:
        raise AudioDecodeError(label, "contains no audio samples (zero length)")
    if frames > 0 and data.shape[0] < frames:
        raise AudioDecodeError(label, f"truncated: header says {frames} frames, read {data.shape[0]}")
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise AudioDecodeError(label, f"{bad} non-finite (NaN/inf) samples")

    mono = data.mean(axis=1) if channels > 1 else data[:, 0]
    return DecodedAudio(
        samples=resample(mono, rate, target_rate),
        sample_rate=target_rate,
        source_sample_rate=rate,
        source_channels=channels,
    )


def encode_flac(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Encode a mono float waveform as 16-bit FLAC bytes (clipping to [-1, 1])."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(samples, -1.0, 1.0), sample_rate, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def decode_flac(data: bytes) -> np.ndarray:
    """Decode FLAC bytes written by :func:`encode_flac` to float32 mono."""
    samples, _ = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    return samples if samples.ndim == 1 else samples.mean(axis=1)
