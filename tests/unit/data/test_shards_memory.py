"""A one-hour file is sharded in bounded memory: the peak RSS of the writing process barely moves.

Decoded whole, one hour at 22,050 Hz mono float32 is 303 MiB (and the 8 kHz source 110 MiB
more); streamed, the writer holds one block, the resampler and at most ``spool_bytes`` of FLAC.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
SPOOL_MIB = 16
WRITE_ONE = """
import json, resource, sys
from autotag.data import shards
row = {"track_id": "long", "audio_path": sys.argv[1], "split": "train", "genre": "g"}
result = shards.write_shard(shards.ShardPlan("train-000000", "train", [row]), sys.argv[2], max_duration_s=3600.0,
                            spool_bytes=int(sys.argv[3]) * 1024**2)
print(json.dumps({"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "tracks": result.tracks, "errors": result.errors}))
"""


def write_noise(path: Path, seconds: int, sr: int = 8_000) -> Path:
    """Quiet noise (FLAC cannot shrink it much, so the spool really spills), written in blocks."""
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", sr, 1, subtype="PCM_16") as handle:
        for start in range(0, seconds * sr, 60 * sr):
            handle.write((0.05 * rng.standard_normal(min(60 * sr, seconds * sr - start))).astype(np.float32))
    return path


def peak_of_writing(audio: Path, out: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", WRITE_ONE, str(audio), str(out), str(SPOOL_MIB)], cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_one_hour_file_is_sharded_with_bounded_peak_memory(tmp_path):
    short = peak_of_writing(write_noise(tmp_path / "short.wav", 10), tmp_path / "short")
    long = peak_of_writing(write_noise(tmp_path / "hour.wav", 3600), tmp_path / "long")
    assert long["errors"] == [] and long["tracks"][0]["duration_s"] == pytest.approx(3600.0, abs=1e-3)
    growth = long["peak_mib"] - short["peak_mib"]
    print(f"peak RSS: 10-s file {short['peak_mib']:.0f} MiB, 1-hour file {long['peak_mib']:.0f} MiB (+{growth:.0f})")
    assert growth < SPOOL_MIB + 48, (short, long)
    assert (tmp_path / "long" / "train" / "train-000000.tar").stat().st_size > 4 * SPOOL_MIB * 1024**2  # spilled
