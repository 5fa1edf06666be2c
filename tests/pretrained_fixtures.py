"""Where the musicnn parity fixtures live, and the musicnn package when it is installed.

The fixtures (``tests/fixtures/pretrained/``) are written by ``benchmarks/pretrained_reference.py``
in a throwaway TensorFlow environment; the weights themselves come from the optional
``musicnn`` package (``pip install --no-deps musicnn==0.1.0``), found without importing it.
Tests that need the weights skip, with this reason, when it is missing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "pretrained"
NO_MUSICNN = "musicnn is not installed (optional: pip install --no-deps musicnn==0.1.0)"


def musicnn_dir() -> Path | None:
    """The installed musicnn package folder, or None."""
    spec = importlib.util.find_spec("musicnn")
    return Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None


def require_musicnn() -> Path:
    """The musicnn package folder; skips the calling test when it is not installed."""
    folder = musicnn_dir()
    if folder is None:
        pytest.skip(NO_MUSICNN)
    return folder


def reference() -> dict[str, np.ndarray]:
    """The arrays of ``musicnn_reference.npz`` (see benchmarks/pretrained_reference.py)."""
    with np.load(FIXTURES / "musicnn_reference.npz") as data:
        return {key: data[key] for key in data.files}
