"""Helpers for the data tests: tiny audio files written into tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def write_tiny_audio(path: Path, seconds: float = 0.05, sr: int = 8000) -> Path:
    """A short sine written at ``path`` (format from the extension; ``.au``/``.mp3`` get WAV bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    fmt = {".flac": "FLAC", ".ogg": "OGG"}.get(path.suffix.lower(), "WAV")
    sf.write(path, 0.1 * np.sin(2 * np.pi * 440 * t), sr, format=fmt, subtype="PCM_16" if fmt != "OGG" else None)
    return path


@pytest.fixture
def tiny_audio():
    """The :func:`write_tiny_audio` helper."""
    return write_tiny_audio
