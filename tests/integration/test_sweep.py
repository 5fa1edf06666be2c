"""A Ray Tune sweep on tiny data: trials train, evaluate and fill the results table (its plan and
table format are unit-tested in tests/unit/train/test_sweep_plan.py)."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines import sweep
from pipelines.common import load_config

TINY = ["dataset.synthetic.tracks_per_class=6", "dataset.synthetic.duration_s=6.0", "shard.tracks_per_shard=30",
        "train.batch_size=16", "train.max_epochs=1", "runtime.progress_bars=false"]


# ---- a real sweep on embedded Ray: two front-ends x AutoPool, one epoch each -------------------
# Two combinations, not four: on a 2-core machine a trial costs about a minute (worker start-up,
# one epoch, inference and evaluation of the test split), so four took 5.5 min. Every option of
# conf/sweep/ is still composed, trial by trial, in tests/unit/train/test_sweep_plan.py.

SMOKE = ["sweep=smoke", "sweep.combinations=[{frontend:lms_conv2d,backend:autopool},"
         "{frontend:sincnet_abs,backend:autopool,frontend.params.patch_hop_samples:11025}]"]


@pytest.fixture(scope="module")
def smoke(ray_session, tmp_path_factory):
    overrides = [*SMOKE, f"paths.root={tmp_path_factory.mktemp('sweep')}", *TINY]
    cfg = load_config(overrides)
    return cfg, sweep.run(cfg, overrides)


@pytest.mark.slow
def test_the_sweep_trains_and_evaluates_every_combination(smoke):
    cfg, result = smoke
    assert result["trials"] == result["ok"] == 2 and result["errors"] == 0, result
    rows = pq.read_table(result["results_parquet"]).to_pylist()
    assert [r["run_id"] for r in rows] == [f"synthetic_genre-{f}-autopool" for f in ("lms_conv2d", "sincnet_abs")]
    assert result["best_run_id"] == min(rows, key=lambda r: r["val_loss"])["run_id"]
    for row in rows:
        assert row["status"] == "ok" and row["epochs_run"] == 1 and row["best_epoch"] == 0
        assert row["params"] > 10_000 and row["epoch_seconds"] > 0 and row["samples_per_s"] > 0
        assert math.isfinite(row["val_loss"]) and 0.0 <= row["test_recall_macro"] <= 1.0
        assert (Path(cfg.paths.checkpoints) / row["run_id"] / "best" / "model.safetensors").exists()
        assert (Path(cfg.paths.reports) / row["run_id"] / "metrics.json").exists()
        assert load_config(row["overrides"]).run_id == row["run_id"]
    assert rows[0]["params"] != rows[1]["params"]
    markdown = Path(result["results_md"]).read_text()
    assert markdown.count("+ autopool") == 2 and "★" in markdown and "Test macro recall" in markdown
