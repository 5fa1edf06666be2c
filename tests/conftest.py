"""Shared fixtures: small synthetic audio on disk, and one embedded Ray per test session."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def write_tone(path: Path, sr: int = 22_050, seconds: float = 1.0, channels: int = 1, freq: float = 440.0,
               subtype: str = "PCM_16", fmt: str | None = None) -> Path:
    """A sine tone file (amplitude 0.5) for decode tests."""
    t = np.arange(int(sr * seconds)) / sr
    tone = 0.5 * np.sin(2 * np.pi * freq * t)
    data = np.stack([tone] * channels, axis=1) if channels > 1 else tone
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, sr, subtype=subtype, format=fmt)
    return path


@pytest.fixture(scope="session")
def ray_session():
    """One embedded 2-CPU Ray instance for every integration test of the session."""
    import ray
    import ray.data

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, object_store_memory=512 * 1024**2, include_dashboard=False,
                 log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}})
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()
