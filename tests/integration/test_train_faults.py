"""Training survives a killed worker and resumes a stopped run, with every epoch counted once.

Both tests run the train stage's own ``TorchTrainer`` (``pipelines.train.build_trainer``) on a
tiny synthetic genre set. A Ray Train callback (it runs in the controller process) appends every
reported epoch to a file, so the test sees what was *run*, not only the history the checkpoints
carry: a restart from scratch would also leave a contiguous history, but would report epoch 0 twice.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import ray.cloudpickle
from ray.train import UserCallback

from pipelines import shard, train
from pipelines.common import load_config

pytestmark = pytest.mark.slow

# The callback is defined here, so ship it to Ray's processes by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

# Streaming (no patch cache): every epoch reads and decodes the shards, so an epoch lasts long
# enough for the kill to land inside one, and the harder of the two data paths is the one restarted.
OVERRIDES = ["dataset.synthetic.tracks_per_class=6", "dataset.synthetic.duration_s=6.0", "shard.tracks_per_shard=30",
             "train.batch_size=16", "train.patience=50", "train.max_failures=2", "runtime.progress_bars=false",
             "train.cache_patches=false"]


class EpochLog(UserCallback):
    """Appends ``{"epoch", "time"}`` per report to a JSON-lines file (same machine as the test)."""

    def __init__(self, path: Path):
        self.path = str(path)

    def after_report(self, run_context, metrics, checkpoint):
        with open(self.path, "a") as handle:
            handle.write(json.dumps({"epoch": metrics[0]["epoch"], "time": time.time()}) + "\n")


def reported(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def descendants(root: int) -> list[int]:
    """Pids of every process below ``root`` (Ray's raylet and workers are children of this test)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier]
        found += children
        frontier = children
    return found


def train_worker_pids() -> list[int]:
    pids = []
    for pid in descendants(os.getpid()):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith("ray::RayTrainWorker"):
            pids.append(pid)
    return sorted(pids)


@pytest.fixture(scope="module")
def root(ray_session, tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    shard.run(load_config([*OVERRIDES, f"paths.root={root}"]))
    return root


def fit(root: Path, run_id: str, max_epochs: int, epochs_file: Path) -> dict:
    cfg = load_config([*OVERRIDES, f"paths.root={root}", f"run_id={run_id}", f"train.max_epochs={max_epochs}"])
    result = train.build_trainer(cfg, callbacks=(EpochLog(epochs_file),)).fit()
    return train.publish_best(cfg, result, 0.0)


def history_epochs(published: dict) -> list[int]:
    return pq.read_table(published["history"]).column("epoch").to_pylist()


def test_a_killed_worker_resumes_from_the_last_checkpoint(root, tmp_path):
    epochs_file, killed = tmp_path / "epochs.jsonl", {}

    def kill_after_first_checkpoint():
        deadline = time.time() + 300
        # Epoch 0's report, with its checkpoint, is in once its line is complete.
        while time.time() < deadline and not (epochs_file.exists() and epochs_file.read_text().endswith("\n")):
            time.sleep(0.1)
        time.sleep(0.3)  # into epoch 1
        pids = train_worker_pids()
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            killed.update(pid=pids[0], time=time.time(), workers=pids)

    killer = threading.Thread(target=kill_after_first_checkpoint, daemon=True)
    killer.start()
    published = fit(root, "kill", 3, epochs_file)
    killer.join(timeout=5)

    assert killed, "no RayTrainWorker process was found to kill"
    assert len(killed["workers"]) == 2
    runs = reported(epochs_file)
    assert [r["epoch"] for r in runs] == [0, 1, 2], runs  # nothing lost, nothing run twice
    assert runs[0]["time"] < killed["time"] < runs[-1]["time"], (runs, killed)
    assert history_epochs(published) == [0, 1, 2]
    assert published["epochs_run"] == 3


def test_a_stopped_run_resumes_where_it_stopped(root, tmp_path):
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    published = fit(root, "resume", 2, first)
    assert history_epochs(published) == [0, 1]
    published = fit(root, "resume", 4, second)
    assert [r["epoch"] for r in reported(first)] == [0, 1]
    assert [r["epoch"] for r in reported(second)] == [2, 3]  # only the new epochs ran
    assert history_epochs(published) == [0, 1, 2, 3]
