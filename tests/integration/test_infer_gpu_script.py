"""benchmarks/infer_gpu.py, the script a lent GPU machine runs first, works here in its smoke mode: every
row it can run without a GPU (decode only, fused CPU actors, the split pass) and the goal line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_infer_gpu_smoke_prints_every_cpu_row_and_the_goal(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run([sys.executable, "-m", "benchmarks.infer_gpu", "--smoke", "--root", str(tmp_path)],
                          cwd=REPO, env=env, text=True, capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    lines = done.stdout.splitlines()
    rows = json.loads(lines[-1])
    assert [row["what"] for row in rows][:2] == ["decode only, 1 processes", "CPU actors"]
    assert rows[-1]["what"].startswith("split, ")
    assert all(row["tracks"] == 4 and row["audio_s_per_s"] > 0 for row in rows)
    assert any(line.startswith("goal (split >= 0.8x decode-only, GPU util >= 60 %): ") for line in lines)
