"""Decoding: formats, rates, channels, resampling, streaming, URIs, and a clear error for every kind of bad file."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr

from autotag import SAMPLE_RATE
from autotag.data.audio import AudioDecodeError, decode_audio, decode_flac, encode_flac, open_audio
from tests.conftest import write_tone


def write_blocks(path, data: np.ndarray, sr: int, fmt: str, subtype: str | None = None, block: int = 8192):
    """Write in 8192-frame blocks: one big ``sf.write`` of OGG or MP3 crashes libsndfile 1.2."""
    data = data if data.ndim == 2 else data[:, None]
    with sf.SoundFile(path, "w", sr, data.shape[1], format=fmt, subtype=subtype) as handle:
        for start in range(0, len(data), block):
            handle.write(data[start : start + block])
    return path


def tone(sr: int, seconds: float, channels: int = 1, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    y = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([y] * channels, axis=1)


def peak_hz(samples: np.ndarray) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(samples))) * SAMPLE_RATE / len(samples))


@pytest.mark.parametrize("sr", [8_000, 16_000, 22_050, 44_100, 48_000, 96_000])
def test_any_rate_is_resampled_to_22050_with_the_same_duration(tmp_path, sr):
    audio = decode_audio(write_tone(tmp_path / "a.wav", sr=sr, seconds=1.0))
    assert audio.sample_rate == SAMPLE_RATE and audio.source_sample_rate == sr
    assert abs(len(audio.samples) - SAMPLE_RATE) <= 1
    # The 440 Hz tone survives resampling: the spectrum peaks at 440 Hz.
    assert abs(peak_hz(audio.samples) - 440) < 2


@pytest.mark.parametrize("channels", [1, 2, 6, 8])
def test_channels_are_downmixed_to_mono(tmp_path, channels):
    audio = decode_audio(write_tone(tmp_path / "a.flac", channels=channels))
    assert audio.samples.ndim == 1 and audio.source_channels == channels
    assert np.max(np.abs(audio.samples)) == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_U8"), ("WAV", "PCM_16"), ("WAV", "PCM_24"), ("WAV", "PCM_32"),
                                         ("WAV", "FLOAT"), ("WAV", "DOUBLE"), ("FLAC", "PCM_S8"), ("FLAC", "PCM_24"),
                                         ("AIFF", "PCM_16")])
def test_bit_depths(tmp_path, fmt, subtype):
    audio = decode_audio(write_tone(tmp_path / f"a.{fmt.lower()}", subtype=subtype, fmt=fmt))
    assert np.max(np.abs(audio.samples)) == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("fmt,sr,channels", [("OGG", 44_100, 2), ("OGG", 22_050, 1), ("MP3", 44_100, 2),
                                             ("MP3", 48_000, 1)])
def test_lossy_formats_decode_to_the_right_tone_and_length(tmp_path, fmt, sr, channels):
    path = write_blocks(tmp_path / f"a.{fmt.lower()}", tone(sr, 3.0, channels), sr, fmt)
    audio = decode_audio(path)
    assert audio.source_sample_rate == sr and audio.source_channels == channels
    assert abs(audio.duration_s - 3.0) < 0.1  # MP3 encoders pad a little
    assert abs(peak_hz(audio.samples) - 440) < 2
    assert np.max(np.abs(audio.samples)) == pytest.approx(0.5, abs=0.05)


def test_wrong_extension_is_decoded_by_content(tmp_path):
    # libsndfile recognises the format from the bytes: a FLAC file named .wav is a FLAC file.
    path = tmp_path / "really_flac.wav"
    sf.write(path, tone(44_100, 1.0)[:, 0], 44_100, format="FLAC")
    assert decode_audio(path).duration_s == pytest.approx(1.0, abs=1e-3)
    text = tmp_path / "not_audio.mp3"
    text.write_text("not audio at all\n" * 20)
    with pytest.raises(AudioDecodeError, match="not a readable audio file"):
        decode_audio(text)


def test_streamed_decoding_equals_whole_file_resampling(tmp_path):
    # Independent computation: the whole file read at once, averaged, and resampled in one call.
    rng = np.random.default_rng(0)
    data = (0.3 * rng.standard_normal((100_000, 2))).astype(np.float32)
    path = tmp_path / "noise.wav"
    sf.write(path, data, 44_100, subtype="FLOAT")
    expected = soxr.resample(data.mean(axis=1), 44_100, SAMPLE_RATE, quality="HQ")
    assert np.array_equal(decode_audio(path).samples, expected)
    with open_audio(path, block_frames=999) as stream:  # odd block sizes change nothing
        assert np.array_equal(np.concatenate(list(stream.blocks())), expected)
        assert stream.samples_out == len(expected) and stream.frames_read == 100_000


def test_bytes_and_file_uris_decode_like_paths(tmp_path):
    path = write_tone(tmp_path / "a b.flac", sr=48_000, seconds=0.5)
    expected = decode_audio(path).samples
    assert np.array_equal(decode_audio(path.read_bytes()).samples, expected)
    uri = path.as_uri()  # file:///.../a%20b.flac
    assert np.array_equal(decode_audio(uri).samples, expected)
    with pytest.raises(AudioDecodeError, match="does not exist") as info:
        decode_audio(uri.replace("a%20b", "missing"))
    assert info.value.stage == "open"


def test_flac_round_trip_within_16_bit_precision():
    y = (0.9 * np.sin(np.linspace(0, 200, SAMPLE_RATE))).astype(np.float32)
    assert np.max(np.abs(decode_flac(encode_flac(y)) - y)) <= 1.0 / 32768 + 1e-7


def test_shard_audio_at_another_rate_is_an_error():
    with pytest.raises(ValueError, match="shard audio at 16000 Hz; expected 22050 Hz"):
        decode_flac(encode_flac(np.zeros(1600, np.float32), sample_rate=16_000))


def _bad_files(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "text.wav"
    text.write_text("not audio at all\n" * 20)
    truncated = tmp_path / "truncated.flac"
    write_tone(truncated, seconds=3.0)
    truncated.write_bytes(truncated.read_bytes()[:2000])
    mp3 = write_blocks(tmp_path / "truncated.mp3", tone(44_100, 4.0), 44_100, "MP3")
    mp3.write_bytes(mp3.read_bytes()[: mp3.stat().st_size // 2])
    zero = tmp_path / "zero.wav"
    sf.write(zero, np.zeros(0), 22_050)
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.full(1000, np.nan, dtype=np.float32), 22_050, subtype="FLOAT")
    inf = tmp_path / "inf.wav"
    y = np.zeros(200_000, dtype=np.float32)
    y[150_000] = np.inf  # in the third 64k-frame block: found while streaming
    sf.write(inf, y, 22_050, subtype="FLOAT")
    return {
        "missing": (tmp_path / "missing.wav", "does not exist", "open"),
        "empty": (empty, "empty", "open"),
        "text": (text, "not a readable audio file", "open"),
        "truncated": (truncated, "truncated", "decode"),
        "truncated_mp3": (mp3, "truncated", "decode"),
        "zero": (zero, "no audio samples", "decode"),
        "nan": (nan, "non-finite", "decode"),
        "inf": (inf, "non-finite (NaN/inf) samples, the first at 6.80 s", "decode"),
        "dir": (tmp_path, "directory", "open"),
    }


@pytest.mark.parametrize("kind", ["missing", "empty", "text", "truncated", "truncated_mp3", "zero", "nan", "inf",
                                  "dir"])
def test_bad_files_raise_an_error_naming_file_stage_and_problem(tmp_path, kind):
    path, reason, stage = _bad_files(tmp_path)[kind]
    with pytest.raises(AudioDecodeError) as info:
        decode_audio(path)
    assert str(path) in str(info.value) and reason in info.value.reason and info.value.stage == stage


def test_too_long_is_refused_from_the_header(tmp_path):
    path = write_tone(tmp_path / "long.wav", sr=8_000, seconds=5.0)
    with pytest.raises(AudioDecodeError, match="exceeds the limit") as info:
        decode_audio(path, max_duration_s=4.0)
    assert info.value.stage == "header"
    assert decode_audio(path, max_duration_s=5.0).duration_s == pytest.approx(5.0, abs=1e-3)  # the limit itself is fine
