"""The FFmpeg (PyAV) decoder: formats libsndfile cannot read, equality with libsndfile, memory, true reasons.

Every file is encoded by a real encoder (libsndfile through soundfile, or FFmpeg through
PyAV, see ``tests/audio_corpus.py``); nothing is mocked. APE cannot be tested: FFmpeg has
an APE decoder but no encoder.
"""

from __future__ import annotations

import re
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from autotag import SAMPLE_RATE
from autotag.data.audio import AudioDecodeError, decode_audio, open_audio
from tests.audio_corpus import FORMATS, encode, tone, write_format

EXACT = 0.0
"""Lossless sources: FFmpeg's samples equal libsndfile's bit for bit (measured: 0.0)."""
LOSSY = 1e-5
"""Vorbis and MP3: FFmpeg's decoders and libvorbis/mpg123 differ by at most 1.6e-6 (measured)."""


def faded(rate: int, seconds: float, channels: int = 1) -> np.ndarray:
    """A 440 Hz tone with 50-ms fades, so lossy codecs do not ring at a hard cut."""
    y = tone(rate, seconds, channels)
    ramp = np.minimum(1.0, np.minimum(np.arange(len(y)), np.arange(len(y))[::-1]) / (0.05 * rate))
    return (y * ramp[:, None]).astype(np.float32)


def peak_hz(samples: np.ndarray) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(samples))) * SAMPLE_RATE / len(samples))


@pytest.mark.parametrize("name", sorted(FORMATS))
@pytest.mark.parametrize("channels", [1, 2])
def test_formats_libsndfile_cannot_read_decode_to_22050_mono(tmp_path, name, channels):
    rate = FORMATS[name][3]
    path = write_format(tmp_path, name, faded(rate, 1.0, channels))
    audio = decode_audio(path)
    assert audio.sample_rate == SAMPLE_RATE and audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.source_sample_rate == rate and audio.source_channels == channels
    assert abs(audio.duration_s - 1.0) < 0.1  # codec delay and padding (AAC, WMA) move the length a little
    assert abs(peak_hz(audio.samples) - 440) < 3
    assert np.max(np.abs(audio.samples)) == pytest.approx(0.5, abs=0.06)


@pytest.mark.parametrize("name,channels", [("opus-ogg", 8), ("flac-32bit", 4), ("flac-32bit", 8), ("aac-m4a", 6)])
def test_multichannel_files_decode(tmp_path, name, channels):
    path = write_format(tmp_path, name, faded(FORMATS[name][3], 1.0, channels))
    audio = decode_audio(path)
    assert audio.source_channels == channels and abs(audio.duration_s - 1.0) < 0.1


def test_a_flac_libsndfile_rejects_is_decoded_by_ffmpeg_and_the_refusal_names_libsndfile(tmp_path):
    path = write_format(tmp_path, "flac-32bit", faded(44_100, 1.0, 4))
    with pytest.raises(AudioDecodeError, match=r"not a readable audio file \(libsndfile: .*unimplemented"):
        decode_audio(path, decoder="libsndfile")
    with open_audio(path) as stream:
        assert stream.decoder == "FFmpeg" and stream.source_format == "FLAC"
        samples = np.concatenate(list(stream.blocks()))
    assert len(samples) == SAMPLE_RATE


def _both(path):
    return decode_audio(path, decoder="libsndfile").samples, decode_audio(path, decoder="ffmpeg").samples


@pytest.mark.parametrize("fmt,subtype,suffix,tolerance", [
    ("WAV", "PCM_U8", "wav", EXACT), ("WAV", "PCM_16", "wav", EXACT), ("WAV", "PCM_24", "wav", EXACT),
    ("WAV", "PCM_32", "wav", EXACT), ("WAV", "FLOAT", "wav", EXACT), ("FLAC", "PCM_16", "flac", EXACT),
    ("FLAC", "PCM_24", "flac", EXACT), ("AIFF", "PCM_16", "aiff", EXACT), ("OGG", "VORBIS", "ogg", LOSSY),
    ("MP3", "MPEG_LAYER_III", "mp3", LOSSY)])
def test_ffmpeg_equals_libsndfile_on_formats_both_read(tmp_path, fmt, subtype, suffix, tolerance):
    rng = np.random.default_rng(0)
    noise = (0.3 * rng.standard_normal((44_100 * 2, 2))).astype(np.float32)
    path = tmp_path / f"both.{suffix}"
    with sf.SoundFile(path, "w", 44_100, 2, format=fmt, subtype=subtype) as handle:
        for start in range(0, len(noise), 8192):  # in blocks: one big write of OGG/MP3 crashes libsndfile 1.2
            handle.write(noise[start:start + 8192])
    sndfile, ffmpeg = _both(path)
    assert len(sndfile) == len(ffmpeg) == 2 * SAMPLE_RATE
    assert np.max(np.abs(sndfile - ffmpeg)) <= tolerance


def test_ffmpeg_decodes_in_bounded_memory(tmp_path):
    """Ten minutes of 8 kHz audio in Matroska (FFmpeg only): the stream never holds the track."""
    seconds, rate = 600, 8_000
    silence = np.zeros((rate * seconds, 1), dtype=np.float32)
    path = encode(tmp_path / "long.mka", silence, rate, "pcm_s16le", container="matroska", block=1 << 16)
    whole_at_source_rate = silence.nbytes  # 19 MB: what decoding in one go would hold, before resampling
    del silence
    tracemalloc.start()
    try:
        with open_audio(path) as stream:
            total = sum(len(block) for block in stream.blocks())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert total == seconds * SAMPLE_RATE
    assert peak < whole_at_source_rate / 4, f"peak {peak / 1e6:.1f} MB"


def test_encoded_bytes_decode_through_ffmpeg(tmp_path):
    path = write_format(tmp_path, "aac-m4a", faded(44_100, 1.0, 2))
    from_bytes = decode_audio(path.read_bytes(), name="in-memory.m4a")
    assert np.array_equal(from_bytes.samples, decode_audio(path).samples)


def _broken(tmp_path):
    good = write_format(tmp_path, "flac-mka", faded(44_100, 2.0, 2))
    truncated_mka = tmp_path / "truncated.mka"
    truncated_mka.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text = tmp_path / "text.mp3"
    text.write_text("not audio at all\n" * 20)
    empty = tmp_path / "empty.m4a"
    empty.write_bytes(b"")
    flac = tmp_path / "corrupt.flac"
    sf.write(flac, faded(44_100, 4.0, 2), 44_100)
    data = bytearray(flac.read_bytes())
    data[len(data) // 2: len(data) // 2 + 2000] = np.random.default_rng(1).integers(0, 256, 2000, np.uint8).tobytes()
    flac.write_bytes(bytes(data))
    wav = tmp_path / "truncated.wav"
    sf.write(wav, faded(44_100, 2.0, 2), 44_100, subtype="PCM_16")
    wav.write_bytes(wav.read_bytes()[: wav.stat().st_size // 2])
    m4a = write_format(tmp_path, "aac-m4a", faded(44_100, 2.0, 2), stem="cut")
    m4a.write_bytes(m4a.read_bytes()[: m4a.stat().st_size // 2])
    return {
        "truncated_mka": (truncated_mka, r"^truncated: header says 88200 frames, read \d+$", "decode"),
        "text": (text, r"^not a readable audio file \(libsndfile: .+; FFmpeg: .+\)$", "open"),
        "empty": (empty, "empty", "open"),
        "corrupt_flac": (flac, r"^corrupt audio data after \d\.\d\d s \(libsndfile: .+; FFmpeg: .+\)$", "decode"),
        "truncated_wav": (wav, r"^truncated: header says 88200 frames, the file holds \d+$", "decode"),
        "cut_m4a": (m4a, r"^not a readable audio file \(FFmpeg: .+\)$", "open"),  # the index (moov) is at the end
    }


@pytest.mark.parametrize("kind", ["truncated_mka", "text", "empty", "corrupt_flac", "truncated_wav", "cut_m4a"])
def test_broken_files_get_true_reasons(tmp_path, kind):
    path, reason, stage = _broken(tmp_path)[kind]
    with pytest.raises(AudioDecodeError) as info:
        decode_audio(path)
    assert str(path) in str(info.value) and info.value.stage == stage
    assert re.search(reason, info.value.reason), info.value.reason
