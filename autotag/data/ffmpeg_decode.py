"""Decode with FFmpeg (through PyAV) the files libsndfile cannot read.

libsndfile (:mod:`autotag.data.audio`'s fast path) reads WAV, FLAC up to 24 bits, OGG
Vorbis/Opus, MP3, AIFF, ... but not AAC/M4A, ALAC, WMA, APE, 32-bit FLAC, nor any audio
track inside MP4/MKV/MKA/WebM containers. :class:`FFmpegReader` opens those with the FFmpeg
bundled in PyAV's wheels (no system FFmpeg needed), picks the first audio stream (video
streams are never decoded) and hands out ``(frames, channels)`` float32 blocks of about
``block_frames`` frames at the source rate, converted the way libsndfile converts
integers (``x / 2**(bits - 1)``), so lossless sources give the same samples through either
decoder. The caller (:class:`autotag.data.audio.AudioStream`) down-mixes, checks and
resamples them exactly as it does libsndfile's blocks; memory is one block plus one frame.

Failures are :class:`FFmpegDecodeError` with FFmpeg's own message; a packet that fails at
the very end of the file (a cut-off last frame) is told apart from one in the middle
(corrupt data), so that "truncated" is only said of a file that stops early.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import av
import numpy as np

NEVER_LIBSNDFILE = frozenset({".aac", ".adts", ".m4a", ".m4b", ".mp4", ".m4v", ".mov", ".3gp", ".alac", ".wma",
                              ".asf", ".mka", ".mkv", ".webm", ".ape", ".wv", ".tta", ".ac3", ".eac3", ".dts",
                              ".mpc", ".tak", ".shn", ".dsf", ".avi"})
"""Suffixes (lower case) libsndfile never decodes: these go to FFmpeg straight away."""

_ESTIMATED_LENGTH = frozenset({"aac", "mp3", "ac3", "eac3", "dts", "loas", "mpc", "mpc8", "shn"})
"""Raw elementary-stream formats whose duration FFmpeg estimates from the bit rate: no frame
count to hold the decoded length against."""

_SHORTFALL = 0.01
_SHORTFALL_FRAMES = 4096
"""Lossy codecs drop encoder delay and padding (AAC 1,024-2,112 frames, Opus pre-skip 312):
the decoded length may fall short of the container's duration by 1 % plus 4,096 frames
before it counts as truncated."""

_SCALE = {"u8": 1.0 / 128, "s16": 1.0 / 2**15, "s32": 1.0 / 2**31, "s64": 1.0 / 2**63}


class FFmpegDecodeError(ValueError):
    """FFmpeg could not open or decode a file.

    ``kind`` is ``open`` (not a container FFmpeg knows, no audio stream), ``truncated``
    (the last packet is cut off) or ``corrupt`` (a packet before the end failed).
    ``frames`` is how many frames had been decoded when it failed.
    """

    def __init__(self, message: str, kind: str, frames: int = 0):
        super().__init__(message)
        self.kind, self.frames = kind, frames


def _message(exc: Exception) -> str:
    """FFmpeg's own words, without PyAV's errno prefix and function name."""
    if isinstance(exc, av.error.FFmpegError):
        return exc.strerror or str(exc)
    return str(exc)


def as_float(frame: av.AudioFrame) -> np.ndarray:
    """A decoded frame as ``(samples, channels)`` float32, integers scaled by ``2**-(bits-1)``."""
    data = frame.to_ndarray()
    channels = frame.layout.nb_channels
    data = data.T if frame.format.is_planar else data.reshape(-1, channels)
    base = frame.format.packed.name
    if base in ("flt", "dbl"):
        return data.astype(np.float32, copy=False)
    if base == "u8":
        return (data.astype(np.float32) - np.float32(128)) * np.float32(_SCALE[base])
    return data.astype(np.float32) * np.float32(_SCALE[base])


class FFmpegReader:
    """The first audio stream of a file, opened with FFmpeg.

    Parameters
    ----------
    source
        A local path, or a binary file object (encoded bytes, a pyarrow input file).

    Attributes
    ----------
    sample_rate, channels
        Of the audio stream.
    frames
        Frames the container declares (0 when unknown or only estimated).
    format
        The codec, upper case (``AAC``, ``ALAC``, ``FLAC``, ``WMAV2``, ...).
    allowed_shortfall
        Frames the decoded length may fall short of ``frames`` (encoder delay, padding).

    Raises
    ------
    FFmpegDecodeError
        (``kind="open"``) FFmpeg does not recognise the file, or it holds no audio stream.
    """

    decoder = "FFmpeg"

    def __init__(self, source: str | Path | IO[bytes]):
        target = str(source) if isinstance(source, (str, Path)) else source
        try:
            self._container = av.open(target, mode="r", metadata_errors="ignore")
        except av.error.EOFError:  # probing read to the end without finding a packet
            raise FFmpegDecodeError("the file ends before any audio data (End of file)", "open") from None
        except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
            raise FFmpegDecodeError(_message(exc), "open") from None
        try:
            self._stream = self._first_audio_stream()
            context = self._stream.codec_context
            self.sample_rate, self.channels = int(context.sample_rate or 0), int(context.channels or 0)
            self.format = context.name.upper()
            if not self.sample_rate or not self.channels:  # a demuxer chosen by the suffix, then no valid header
                raise FFmpegDecodeError(f"no valid {context.name} header (the {self._container.format.name} demuxer "
                                        f"found {self.sample_rate} Hz, {self.channels} channels)", "open")
            self.frames = self._declared_frames()
            self.frames_decoded = 0
            self.allowed_shortfall = int(self.frames * _SHORTFALL) + _SHORTFALL_FRAMES
        except BaseException:
            self._container.close()
            raise

    def _first_audio_stream(self) -> av.audio.stream.AudioStream:
        streams = self._container.streams.audio
        if not streams:
            kinds = ", ".join(sorted({s.type for s in self._container.streams})) or "no streams"
            raise FFmpegDecodeError(f"no audio stream in the {self._container.format.name} container ({kinds})",
                                    "open")
        stream = streams[0]
        stream.thread_type = "NONE"  # one decode per worker thread already; FFmpeg's own threads would oversubscribe
        return stream

    def _declared_frames(self) -> int:
        if self._container.format.name in _ESTIMATED_LENGTH or not self.sample_rate:
            return 0
        if self._stream.duration is not None and self._stream.time_base is not None:
            return round(float(self._stream.duration * self._stream.time_base) * self.sample_rate)
        if self._container.duration is not None:  # Matroska: the segment's duration, in microseconds
            return round(self._container.duration / 1e6 * self.sample_rate)
        return 0

    def close(self) -> None:
        self._container.close()

    def blocks(self, block_frames: int) -> Iterator[np.ndarray]:
        """``(frames, channels)`` float32 blocks of ``block_frames`` frames or more (the last may be shorter).

        Raises
        ------
        FFmpegDecodeError
            (``truncated``) the last packet does not decode; (``corrupt``) an earlier one
            does not, or the stream changes its rate or channel count midway.
        """
        pending: list[np.ndarray] = []
        held = 0
        failure: FFmpegDecodeError | None = None  # a failed packet: fatal unless it was the last one
        for packet in self._packets():
            try:
                frames = packet.decode()
            except (av.error.FFmpegError, ValueError) as exc:
                if failure is None:
                    failure = FFmpegDecodeError(_message(exc), "truncated", self.frames_decoded)
                continue
            if frames and failure is not None and packet.size:  # data decodes after it: the middle is corrupt
                # (a size-0 packet only flushes frames the decoder held back: the file ended at the failure)
                raise FFmpegDecodeError(str(failure), "corrupt", failure.frames)
            for frame in frames:
                if frame.sample_rate != self.sample_rate or frame.layout.nb_channels != self.channels:
                    raise FFmpegDecodeError(
                        f"the stream changes from {self.sample_rate} Hz x {self.channels} to "
                        f"{frame.sample_rate} Hz x {frame.layout.nb_channels} channels", "corrupt", self.frames_decoded)
                try:
                    pending.append(as_float(frame))
                except (ValueError, KeyError) as exc:  # a sample format numpy cannot hold
                    raise FFmpegDecodeError(f"cannot convert {frame.format.name} samples ({exc})", "corrupt",
                                            self.frames_decoded) from None
                held += len(pending[-1])
                self.frames_decoded += len(pending[-1])
                if held >= block_frames:
                    yield _joined(pending)
                    pending, held = [], 0
        if pending:
            yield _joined(pending)
        if failure is not None:
            raise failure

    def _packets(self) -> Iterator[av.Packet]:
        """The audio stream's packets; a container that cannot be read on ends the data there."""
        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except (av.error.FFmpegError, OSError) as exc:  # a cut-off or damaged container
                raise FFmpegDecodeError(_message(exc), "truncated", self.frames_decoded) from None
            yield packet


def _joined(blocks: list[np.ndarray]) -> np.ndarray:
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)


def open_bytes(data: bytes) -> FFmpegReader:
    """An :class:`FFmpegReader` over encoded bytes in memory."""
    return FFmpegReader(io.BytesIO(data))
