"""Inference at catalogue scale: inputs, exactly-once under crashes and actor loss, exports.

These tests use an untrained checkpoint: they check the plumbing (rows, schemas, counts,
resumption), not what the model learned (see test_pipeline.py and test_presets.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import torch

from autotag.data.chords import CHORD_LABELS
from autotag.data.tasks import Task
from autotag.models import build_model, checkpoint
from pipelines import infer
from pipelines.common import load_config

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
N_GOOD = 24


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    """A folder of short audio files (mixed formats, nested) plus two bad files, and a checkpoint."""
    root = tmp_path_factory.mktemp("infer")
    rng = np.random.default_rng(0)
    music = root / "music"
    for i in range(N_GOOD):
        sr = [16_000, 22_050, 44_100][i % 3]
        path = music / f"album{i % 4}" / f"song {i}.{['wav', 'flac'][i % 2]}"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, 0.1 * rng.standard_normal(int(sr * (3 + i % 3))), sr)
    (music / "broken.wav").write_text("not audio")
    (music / "empty.flac").write_bytes(b"")
    torch.manual_seed(0)
    task = Task("multilabel", "tags", ("bass", "drums", "piano"))
    spec = {"frontend": "lms_conv2d", "frontend_params": {}, "backend": "autopool", "backend_params": {}}
    checkpoint.save(root / "ckpt", build_model("lms_conv2d", "autopool", 3, task="multilabel"),
                    {"model": spec, "task": task.to_dict(), "config": {}, "epoch": 0})
    return root


def _cfg(root: Path, run_id: str, *extra: str):
    return load_config([f"paths.root={root}", f"run_id={run_id}", f"infer.checkpoint={root / 'ckpt'}",
                        f"infer.input={root / 'music'}", "runtime.progress_bars=false", "infer.rows_per_file=4",
                        "infer.tracks_per_batch=2", *extra])


N_MANY = 240


@pytest.fixture(scope="module")
def many_tracks(tmp_path_factory) -> Path:
    """240 half-second tracks plus one broken file: enough work that a kill lands mid-run on any machine."""
    music = tmp_path_factory.mktemp("many") / "music"
    rng = np.random.default_rng(1)
    for i in range(N_MANY):
        path = music / f"disc{i % 8}" / f"t{i:03d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, 0.1 * rng.standard_normal(8_000), 16_000)
    (music / "broken.wav").write_text("not audio")
    return music


def _tracks(root: Path, run_id: str) -> list[tuple[str, str]]:
    parts = f"{root}/predictions/tracks/run_id={run_id}/*.parquet"
    return duckdb.sql(f"SELECT track_id, status FROM read_parquet('{parts}') ORDER BY track_id").fetchall()


def test_folder_input_every_file_once_with_error_rows_and_extras(ray_session, catalogue):
    result = infer.run(_cfg(catalogue, "folder", "infer.embeddings=true", "infer.activations=true",
                            "infer.exports=[jams,csv]", "infer.top_k=2", "+infer.thresholds.piano=0.0"))
    rows = _tracks(catalogue, "folder")
    assert len(rows) == len({t for t, _ in rows}) == N_GOOD + 2
    assert {t for t, s in rows if s == "error"} == {"broken", "empty"}
    assert result["tracks_ok"] == N_GOOD and result["exports"] == {"jams": N_GOOD, "csv": 1}
    pred = catalogue / "predictions"
    tags = pq.read_table(pred / "tags" / "run_id=folder").to_pandas()
    assert len(tags) == 3 * N_GOOD and (tags.groupby("track_id")["predicted"].sum() <= 2).all()
    assert tags[tags["tag"] == "piano"].eval("predicted == (rank <= 2)").all()  # threshold 0: only top-k limits
    embeddings = pq.read_table(pred / "embeddings" / "run_id=folder")
    assert embeddings.num_rows == N_GOOD and len(embeddings.column("embedding")[0]) == 64
    activations = pq.read_table(pred / "activations" / "run_id=folder").to_pandas()
    assert set(activations["track_id"]) == set(tags["track_id"]) and len(activations["scores"].iloc[0]) == 3
    assert (pred / "exports" / "folder" / "top_tags.csv").read_text().count("\n") == N_GOOD + 1


def _predictor_pids() -> list[int]:
    """Ray names actor processes after their class: ``ray::MapWorker(MapBatches(BatchPredictor))``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"BatchPredictor" in cmdline and entry.name != str(os.getpid()):
                pids.append(int(entry.name))
    return pids


def test_killed_actor_loses_and_duplicates_nothing(ray_session, catalogue, many_tracks):
    """SIGKILL the predictor actor once it has delivered its first part; Ray restarts it and
    the run still writes every track exactly once."""
    before = set(_predictor_pids())
    parts = catalogue / "predictions" / "tracks" / "run_id=killed"
    killed = []

    def kill_the_predictor():
        deadline = time.time() + 120
        while time.time() < deadline and not any(parts.glob("part-*.parquet")):
            time.sleep(0.01)
        fresh = [pid for pid in _predictor_pids() if pid not in before]
        if fresh:
            os.kill(fresh[0], signal.SIGKILL)
            killed.append(fresh[0])

    thread = threading.Thread(target=kill_the_predictor, daemon=True)
    thread.start()
    result = infer.run(_cfg(catalogue, "killed", "infer.num_actors=1", f"infer.input={many_tracks}",
                            "infer.rows_per_file=2"))
    thread.join(timeout=5)
    assert killed, "no predictor actor was found to kill"
    rows = _tracks(catalogue, "killed")
    assert len(rows) == len({t for t, _ in rows}) == N_MANY + 1
    assert result["tracks_ok"] == N_MANY


def test_crash_then_rerun_gives_every_track_exactly_once(catalogue, many_tracks, tmp_path):
    """SIGKILL the whole infer process group as soon as its first part lands, then re-run.

    The folder holds many short tracks and each part two of them, so the run is still writing
    when the kill comes, however fast the machine (26 tracks could all land between two polls)."""
    music = many_tracks
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-m", "pipelines.infer", f"paths.root={tmp_path}", "run_id=crash",
            f"infer.checkpoint={catalogue / 'ckpt'}", f"infer.input={music}",
            "runtime.progress_bars=false", "infer.rows_per_file=2", "infer.tracks_per_batch=1", "runtime.num_cpus=2"]
    parts = tmp_path / "predictions" / "tracks" / "run_id=crash"
    process = subprocess.Popen(args, cwd=REPO, env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline and not any(parts.glob("part-*.parquet")):
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = len(_tracks(tmp_path, "crash"))
    assert 0 < before < N_MANY + 1, before
    rerun = subprocess.run(args, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    rows = _tracks(tmp_path, "crash")
    assert len(rows) == len({t for t, _ in rows}) == N_MANY + 1
    assert [t for t, s in rows if s == "error"] == ["broken"]
    parts = f"{tmp_path}/predictions/tags/run_id=crash/*.parquet"
    tags = duckdb.sql(f"SELECT track_id, count(*) FROM read_parquet('{parts}') "
                      "GROUP BY track_id HAVING count(*) != 3").fetchall()
    assert tags == []
    assert duckdb.sql(f"SELECT count(DISTINCT track_id) FROM read_parquet('{parts}')").fetchall() == [(N_MANY,)]


def test_several_models_in_one_pass_each_write_their_own_run_and_resume(ray_session, catalogue):
    torch.manual_seed(1)
    chords = Task("frame_multiclass", "chords", CHORD_LABELS)
    params = {"channels": 2, "patch_frames": 128, "patch_hop_frames": 32}
    spec = {"frontend": "cqt_conv2d", "frontend_params": params, "backend": "conv_bilstm", "backend_params": {}}
    checkpoint.save(catalogue / "chords_ckpt", build_model("cqt_conv2d", "conv_bilstm", 25, params, {},
                                                           task=chords.kind),
                    {"model": spec, "task": chords.to_dict(), "config": {}, "epoch": 0})
    models = f"infer.models={{tags: '{catalogue / 'ckpt'}', chords: '{catalogue / 'chords_ckpt'}'}}"
    result = infer.run(_cfg(catalogue, "multi", models))
    assert result["tracks_ok"] == N_GOOD and result["tracks_error"] == 2
    assert {name: r["run_id"] for name, r in result["runs"].items()} == {"tags": "multi-tags", "chords": "multi-chords"}
    pred = catalogue / "predictions"
    for run_id in ("multi-tags", "multi-chords"):
        rows = _tracks(catalogue, run_id)
        assert len(rows) == len({t for t, _ in rows}) == N_GOOD + 2
    assert pq.read_table(pred / "tags" / "run_id=multi-tags").num_rows == 3 * N_GOOD
    segments = pq.read_table(pred / "chords" / "run_id=multi-chords").to_pandas()
    assert segments["track_id"].nunique() == N_GOOD and set(segments["chord"]) <= set(CHORD_LABELS)
    meta = pq.read_schema(next((pred / "chords" / "run_id=multi-chords").glob("part-*.parquet"))).metadata
    assert json.loads(meta[b"autotag.labels"]) == list(CHORD_LABELS)

    # A crash after the tags part of a batch landed but before its chords part: the re-run tags
    # those tracks again for chords only, and no run holds a track twice.
    last = max((pred / "tracks" / "run_id=multi-chords").glob("part-*.parquet"))
    lost = set(pq.read_table(last).column("track_id").to_pylist())
    for table in ("tracks", "chords"):
        (pred / table / "run_id=multi-chords" / last.name).unlink(missing_ok=True)
    again = infer.run(_cfg(catalogue, "multi", models))
    assert again["runs"]["chords"]["tracks_ok"] + again["runs"]["chords"]["tracks_error"] == len(lost)
    assert again["runs"]["tags"]["tracks_ok"] + again["runs"]["tags"]["tracks_error"] == 0
    for run_id in ("multi-tags", "multi-chords"):
        rows = _tracks(catalogue, run_id)
        assert len(rows) == len({t for t, _ in rows}) == N_GOOD + 2


def test_an_input_with_nothing_to_tag_is_a_clear_error(tmp_path, catalogue):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no audio files found"):
        infer.run(_cfg(catalogue, "nothing", f"infer.input={tmp_path / 'empty'}"))
