"""What a person sees: the demo's console is short, each stage shows its progress, Ray stays quiet."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> subprocess.CompletedProcess:
    root = tmp_path_factory.mktemp("console")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.demo", f"paths.root={root}", "dataset.synthetic.tracks_per_class=6",
         "dataset.synthetic.duration_s=6.0", "train.batch_size=16", "train.max_epochs=3", "train.patience=10"],
        cwd=REPO, env=env, text=True, capture_output=True, timeout=900)


def test_the_demo_succeeds_with_a_short_console(demo):
    assert demo.returncode == 0, demo.stderr[-4000:]
    lines = (demo.stdout + demo.stderr).splitlines()
    assert len(lines) <= 60, "\n".join(lines)
    assert "autotag demo finished" in demo.stdout


def test_ray_internals_stay_in_rays_logs(demo):
    console = demo.stdout + demo.stderr
    for chatter in ("TrainingReport(", "RayTrainWorker", "Checkpoint successfully created", "Traceback",
                    "Execution plan of Dataset", "Started a local Ray instance"):
        assert chatter not in console


def test_each_epoch_line_appears_once(demo):
    # The lines that end each epoch; an epoch slower than train.progress_interval_s also gets
    # progress lines ("epoch   0  12/20 batches ..."), which are not counted here.
    epochs = re.findall(r"^\S+ epoch +(\d+)  train_loss ", demo.stderr, flags=re.M)
    assert epochs == ["0", "1", "2"]


def test_sharding_and_inference_show_done_of_total_rate_and_eta(demo):
    shard_lines = [line for line in demo.stderr.splitlines() if " shard " in line and "tracks/s" in line]
    assert shard_lines and re.search(r"\d+/62 tracks \(\d+%\), [\d.]+ tracks/s", shard_lines[-1])
    assert re.search(r"tagged \d+/62 tracks \(100%\), [\d.]+ tracks/s", demo.stderr)
