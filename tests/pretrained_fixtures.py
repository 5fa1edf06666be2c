"""Where the musicnn and crema parity fixtures live, and the weight packages when they are installed.

The fixtures (``tests/fixtures/pretrained/``) are written by ``benchmarks/pretrained_reference.py``
(musicnn) and ``benchmarks/crema_reference.py`` (crema) in a throwaway TensorFlow environment; the
weights themselves come from the optional packages (``pip install --no-deps musicnn==0.1.0
crema==0.2.0``), found without importing them. Tests that need the weights skip, with this
reason, when they are missing.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "pretrained"
NO_MUSICNN = "musicnn is not installed (optional: pip install --no-deps musicnn==0.1.0)"
NO_CREMA = "crema or h5py is not installed (optional: pip install --no-deps crema==0.2.0, and h5py)"


def installed_dir(package: str) -> Path | None:
    """The installed ``package`` folder, or None (never imported)."""
    spec = importlib.util.find_spec(package)
    return Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None


def musicnn_dir() -> Path | None:
    """The installed musicnn package folder, or None."""
    return installed_dir("musicnn")


def require_crema() -> Path:
    """The crema package folder; skips the calling test when crema or h5py is not installed."""
    folder = installed_dir("crema")
    if folder is None or importlib.util.find_spec("h5py") is None:
        pytest.skip(NO_CREMA)
    return folder


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


def crema_reference() -> tuple[dict[str, np.ndarray], dict]:
    """The arrays of ``crema_reference.npz`` and the decodes of ``crema_reference.json``
    (see benchmarks/crema_reference.py)."""
    with np.load(FIXTURES / "crema_reference.npz") as data:
        arrays = {key: data[key] for key in data.files}
    return arrays, json.loads((FIXTURES / "crema_reference.json").read_text())
