"""A run holds one checkpoint's predictions: resume, refusal, ``infer.overwrite``, ``infer.retry_errors``,
the Hive-style folders and runs written in the older layout (no Ray: the driver-side steps)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from autotag import layout, predictions
from autotag.config import ConfigError
from autotag.data.tasks import Task
from autotag.infer.rows import output_tables
from autotag.models import build_model, checkpoint
from pipelines.common import load_config
from pipelines.infer import model_runs, prepare_run

TASK = Task("multiclass", "genre", ("a", "b"))
SPEC = {"frontend": "lms_conv2d", "frontend_params": {}, "backend": "autopool", "backend_params": {}}


def _checkpoint(root: Path, name: str, seed: int) -> str:
    torch.manual_seed(seed)
    model = build_model("lms_conv2d", "autopool", 2, task="multiclass")
    return str(checkpoint.save(root / "checkpoints" / name / "best", model,
                               {"model": SPEC, "task": TASK.to_dict(), "config": {}, "epoch": 0}))


def _batch(ids: list[str], status: list[str]) -> dict[str, np.ndarray]:
    n = len(ids)
    return {"track_id": np.array(ids, dtype=object), "audio_path": np.array([f"/m/{i}.wav" for i in ids], dtype=object),
            "duration_s": np.full(n, 3.0), "status": np.array(status, dtype=object),
            "error": np.array(["" if s == "ok" else "file does not exist" for s in status], dtype=object),
            "scores": np.full((n, 2), 0.5, dtype=np.float32)}


def _config(root: Path, ckpt: str, *overrides: str):
    return load_config([f"paths.root={root}", "run_id=r", f"infer.checkpoint={ckpt}", *overrides])


def _write(root: Path, ckpt: str, ids: list[str], status: list[str]) -> None:
    """One part of run ``r``, written as pipelines.infer writes it."""
    cfg = _config(root, ckpt)
    run = model_runs(cfg)[0]
    run.writer.write({k: v for k, v in output_tables(_batch(ids, status), "r", TASK, "m", ckpt).items()
                      if k in run.writer.dirs})


def _track_rows(root: Path) -> list[dict]:
    table = predictions.read_table(root / "predictions", "tracks", "r")
    return table.frame.sort_values("track_id").to_dict("records")


def test_hive_folders_manifest_and_timebase(tmp_path):
    ckpt = _checkpoint(tmp_path, "one", 0)
    _write(tmp_path, ckpt, ["t0", "t1"], ["ok", "ok"])
    folder = tmp_path / "predictions" / "tracks" / "run_id=r"
    assert sorted(p.name for p in folder.iterdir()) == ["_run.json", "part-00000.parquet"]
    manifest = json.loads((folder / "_run.json").read_text())
    assert manifest["fingerprint"] == predictions.fingerprint(ckpt) and manifest["checkpoint"] == ckpt
    metadata = predictions.read_table(tmp_path / "predictions", "tags", "r").metadata
    assert metadata["timebase"]["hop_s"] > 0 and metadata["fingerprint"] == manifest["fingerprint"]
    assert pq.read_table(folder / "part-00000.parquet").column("run_id").to_pylist() == ["r", "r"]


def test_another_checkpoint_is_refused_before_anything_is_written(tmp_path):
    one, two = _checkpoint(tmp_path, "one", 0), _checkpoint(tmp_path, "two", 1)
    _write(tmp_path, one, ["t0"], ["ok"])
    with pytest.raises(ConfigError, match=r"run 'r' .* tagged with checkpoint .*one/best.* not with .*two/best.*"
                                          r"use a new run_id, or infer.overwrite=true"):
        prepare_run(_config(tmp_path, two), "r", two)
    assert [r["track_id"] for r in _track_rows(tmp_path)] == ["t0"]
    prepare_run(_config(tmp_path, one), "r", one)  # the same checkpoint resumes


def test_a_copy_of_the_same_checkpoint_resumes(tmp_path):
    one = _checkpoint(tmp_path, "one", 0)
    copy = tmp_path / "elsewhere" / "best"
    shutil.copytree(one, copy)
    _write(tmp_path, one, ["t0"], ["ok"])
    prepare_run(_config(tmp_path, str(copy)), "r", str(copy))


def test_overwrite_drops_the_old_run(tmp_path):
    one, two = _checkpoint(tmp_path, "one", 0), _checkpoint(tmp_path, "two", 1)
    _write(tmp_path, one, ["t0", "t1"], ["ok", "ok"])
    prepare_run(_config(tmp_path, two, "infer.overwrite=true"), "r", two)
    assert predictions.read_table(tmp_path / "predictions", "tracks", "r") is None
    _write(tmp_path, two, ["t0"], ["ok"])
    assert [(r["track_id"], r["checkpoint"]) for r in _track_rows(tmp_path)] == [("t0", two)]


def test_retry_errors_tags_failed_tracks_again_once(tmp_path):
    ckpt = _checkpoint(tmp_path, "one", 0)
    _write(tmp_path, ckpt, ["t0", "t1", "t2"], ["ok", "error", "ok"])
    cfg = _config(tmp_path, ckpt, "infer.retry_errors=true")
    prepare_run(cfg, "r", ckpt)
    run = model_runs(_config(tmp_path, ckpt))[0]
    assert run.done == {"t0", "t2"}
    _write(tmp_path, ckpt, ["t1"], ["ok"])
    rows = _track_rows(tmp_path)
    assert [(r["track_id"], r["status"]) for r in rows] == [("t0", "ok"), ("t1", "ok"), ("t2", "ok")]
    tags = predictions.read_table(tmp_path / "predictions", "tags", "r").frame
    assert sorted(tags.groupby("track_id").size().items()) == [("t0", 2), ("t1", 2), ("t2", 2)]


def test_without_retry_errors_failed_tracks_stay_done(tmp_path):
    ckpt = _checkpoint(tmp_path, "one", 0)
    _write(tmp_path, ckpt, ["t0", "t1"], ["ok", "error"])
    assert model_runs(_config(tmp_path, ckpt))[0].done == {"t0", "t1"}


def test_a_run_in_the_older_layout_is_read_resumed_and_checked(tmp_path):
    one, two = _checkpoint(tmp_path, "one", 0), _checkpoint(tmp_path, "two", 1)
    _write(tmp_path, one, ["t0"], ["ok"])
    root = tmp_path / "predictions"
    for table in ("tracks", "tags", "activations"):
        if (root / table / "run_id=r").exists():
            (root / table / "run_id=r").rename(root / table / "r")
    (root / "tracks" / "r" / layout.RUN_MANIFEST).unlink()  # written before run manifests
    with pytest.raises(ConfigError, match="infer.overwrite=true"):
        prepare_run(_config(tmp_path, two), "r", two)
    assert model_runs(_config(tmp_path, one))[0].done == {"t0"}
    _write(tmp_path, one, ["t1"], ["ok"])
    assert not (root / "tracks" / "run_id=r").exists()  # resumed in its own folder
    assert [r["track_id"] for r in _track_rows(tmp_path)] == ["t0", "t1"]


def test_conf_spells_the_layout_of_the_best_checkpoint(tmp_path):
    cfg = load_config([f"paths.root={tmp_path}", "run_id=r"])
    assert Path(cfg.infer.checkpoint) == layout.best_checkpoint(cfg.paths.checkpoints, "r")
    assert cfg.infer.overwrite is False and cfg.infer.retry_errors is False
