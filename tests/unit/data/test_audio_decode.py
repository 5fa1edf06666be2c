"""Decoding: formats, rates, channels, resampling, and a clear error for every kind of bad file."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from autotag import SAMPLE_RATE
from autotag.data.audio import AudioDecodeError, decode_audio, decode_flac, encode_flac
from tests.conftest import write_tone


@pytest.mark.parametrize("sr", [8_000, 16_000, 22_050, 44_100, 48_000, 96_000])
def test_any_rate_is_resampled_to_22050_with_the_same_duration(tmp_path, sr):
    audio = decode_audio(write_tone(tmp_path / "a.wav", sr=sr, seconds=1.0))
    assert audio.sample_rate == SAMPLE_RATE and audio.source_sample_rate == sr
    assert abs(len(audio.samples) - SAMPLE_RATE) <= 1
    # The 440 Hz tone survives resampling: the spectrum peaks at 440 Hz.
    spectrum = np.abs(np.fft.rfft(audio.samples))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / len(audio.samples) - 440) < 2


@pytest.mark.parametrize("channels", [1, 2, 6, 8])
def test_channels_are_downmixed_to_mono(tmp_path, channels):
    audio = decode_audio(write_tone(tmp_path / "a.flac", channels=channels))
    assert audio.samples.ndim == 1 and audio.source_channels == channels
    assert np.max(np.abs(audio.samples)) == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_bit_depths(tmp_path, subtype):
    audio = decode_audio(write_tone(tmp_path / "a.wav", subtype=subtype))
    assert np.max(np.abs(audio.samples)) == pytest.approx(0.5, abs=0.01)


def test_flac_round_trip_within_16_bit_precision():
    y = (0.9 * np.sin(np.linspace(0, 200, SAMPLE_RATE))).astype(np.float32)
    assert np.max(np.abs(decode_flac(encode_flac(y)) - y)) <= 1.0 / 32768 + 1e-7


def _bad_files(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "text.wav"
    text.write_text("not audio at all\n" * 20)
    truncated = tmp_path / "truncated.flac"
    write_tone(truncated, seconds=3.0)
    truncated.write_bytes(truncated.read_bytes()[:2000])
    zero = tmp_path / "zero.wav"
    sf.write(zero, np.zeros(0), 22_050)
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.full(1000, np.nan, dtype=np.float32), 22_050, subtype="FLOAT")
    return {
        "missing": (tmp_path / "missing.wav", "does not exist"),
        "empty": (empty, "empty"),
        "text": (text, "not a readable audio file"),
        "truncated": (truncated, "truncated"),
        "zero": (zero, "no audio samples"),
        "nan": (nan, "non-finite"),
        "dir": (tmp_path, "directory"),
    }


@pytest.mark.parametrize("kind", ["missing", "empty", "text", "truncated", "zero", "nan", "dir"])
def test_bad_files_raise_an_error_naming_file_and_problem(tmp_path, kind):
    path, reason = _bad_files(tmp_path)[kind]
    with pytest.raises(AudioDecodeError) as info:
        decode_audio(path)
    assert str(path) in str(info.value) and reason in info.value.reason


def test_too_long_is_refused_from_the_header(tmp_path):
    path = write_tone(tmp_path / "long.wav", sr=8_000, seconds=5.0)
    with pytest.raises(AudioDecodeError, match="exceeds the limit"):
        decode_audio(path, max_duration_s=4.0)
