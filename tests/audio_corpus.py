"""Audio files of every format a real catalogue holds, encoded by the tests with PyAV's FFmpeg.

libsndfile writes WAV/FLAC/OGG/MP3 (``soundfile``); everything else (AAC/M4A, ALAC, Opus,
WMA, MKA/MKV/MP4, WavPack, 32-bit FLAC) is encoded here with the FFmpeg bundled in PyAV,
so the tests decode real files made by real encoders. FFmpeg has no APE (Monkey's Audio)
encoder: APE is decoded in production but cannot be generated here.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
_PREFERRED = ("fltp", "flt", "s16", "s16p", "s32", "s32p")


def tone(rate: int, seconds: float, channels: int = 1, freq: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    """A ``(frames, channels)`` float32 sine tone."""
    t = np.arange(int(round(rate * seconds))) / rate
    y = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.repeat(y[:, None], channels, axis=1)


def _frame(block: np.ndarray, sample_format: str, layout: str, rate: int, pts: int) -> av.AudioFrame:
    fmt = av.AudioFormat(sample_format)
    data = block.T if fmt.is_planar else block.reshape(1, -1)
    base = fmt.packed.name
    if base == "s16":
        data = np.clip(np.round(data * 32768), -32768, 32767).astype(np.int16)
    elif base == "s32":
        data = np.clip(np.round(data.astype(np.float64) * 2**31), -2**31, 2**31 - 1).astype(np.int32)
    elif base == "u8":
        data = np.clip(np.round(data * 128 + 128), 0, 255).astype(np.uint8)
    elif base == "dbl":
        data = data.astype(np.float64)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=sample_format, layout=layout)
    frame.sample_rate, frame.pts = rate, pts
    return frame


def encode(path: Path, samples: np.ndarray, rate: int, codec: str, *, container: str | None = None,
           sample_format: str | None = None, bit_rate: int | None = None, options: dict[str, str] | None = None,
           block: int = 4096) -> Path:
    """Encode ``(frames, channels)`` float samples with an FFmpeg encoder into ``path``.

    ``container`` names the muxer when the suffix does not (``adts`` for ``.aac``, ``asf`` for
    ``.wma``); the samples are fed in blocks, so a long file costs little memory.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = samples if samples.ndim == 2 else samples[:, None]
    layout = LAYOUTS[samples.shape[1]]
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, options=options or {})
        stream.layout = layout
        names = [f.name for f in stream.codec_context.codec.audio_formats or ()]
        stream.format = sample_format or next((n for n in _PREFERRED if n in names), names[0])
        if bit_rate:
            stream.bit_rate = bit_rate
        for start in range(0, len(samples), block):
            for packet in stream.encode(_frame(samples[start:start + block], stream.format.name, layout, rate, start)):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


FORMATS = {
    # name: (suffix, codec, container, rate, extra keyword arguments)
    "aac-m4a": (".m4a", "aac", None, 44_100, {}),
    "aac-adts": (".aac", "aac", "adts", 44_100, {}),
    "alac-m4a": (".m4a", "alac", "ipod", 44_100, {}),
    "opus-ogg": (".opus", "libopus", "ogg", 48_000, {}),
    "opus-mka": (".mka", "libopus", "matroska", 48_000, {}),
    "wma": (".wma", "wmav2", "asf", 44_100, {"bit_rate": 128_000}),
    "flac-mka": (".mka", "flac", "matroska", 44_100, {}),
    "aac-mkv": (".mkv", "aac", "matroska", 48_000, {}),
    "aac-mp4": (".mp4", "aac", "mp4", 44_100, {}),
    "wavpack": (".wv", "wavpack", "wv", 44_100, {}),
    "flac-32bit": (".flac", "flac", "flac", 44_100, {"sample_format": "s32", "options": {"strict": "experimental"}}),
}
"""Formats libsndfile cannot read, as FFmpeg writes them."""


def write_format(folder: Path, name: str, samples: np.ndarray, stem: str | None = None) -> Path:
    """One file of ``FORMATS[name]`` with ``samples`` (at that format's rate) under ``folder``."""
    suffix, codec, container, rate, extra = FORMATS[name]
    return encode(folder / f"{stem or name}{suffix}", samples, rate, codec, container=container, **extra)
