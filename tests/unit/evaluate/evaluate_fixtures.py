"""Hand-made evaluation inputs for the ``pipelines.evaluate`` tests: manifest, audio, prediction
tables, checkpoints and training histories under one output root, written as the other stages
write them (the ``tags``/``tracks`` tables through :class:`autotag.infer.tables.PredictionWriter`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from autotag.config import AutotagConfig
from autotag.data import manifest
from autotag.infer.tables import PredictionWriter, tags_rows, tracks_rows
from autotag.models import build_model
from autotag.train import checkpoint
from autotag.train.tasks import Task
from pipelines.common import load_config
from tests.conftest import write_tone

GENRES = ("a", "b", "c")
TAGS = ("x", "y", "z")  # "z" is never in the ground truth: reported and excluded
TEST_IDS = ("t0", "t1", "t2", "t3", "t4", "t5")
GENRE_TRUTH = dict(zip(TEST_IDS, ("a", "a", "b", "b", "c", "c")))
TAG_TRUTH = {"t0": ["x"], "t1": ["x", "y"], "t2": ["y"], "t3": [], "t4": ["x"], "t5": ["y"]}
DURATION_S = 5.0
# Chords: two segments per track; instruments: piano for the first 2 s, drums throughout.
CHORD_TRUTH = {t: [{"start_s": 0.0, "end_s": 2.5, "label": "C:maj"},
                   {"start_s": 2.5, "end_s": DURATION_S, "label": "A:min"}] for t in TEST_IDS}
INSTRUMENT_TRUTH = {t: [{"start_s": 0.0, "end_s": 2.0, "label": "piano"},
                        {"start_s": 0.0, "end_s": DURATION_S, "label": "drums"}] for t in TEST_IDS}
LMS = {"frontend": "lms_conv2d", "frontend_params": {}, "backend": "autopool", "backend_params": {}}
CONV1D = {"frontend": "waveform_conv1d", "frontend_params": {"channels": 8, "kernel_size": 63},
          "backend": "autopool", "backend_params": {}}


def write_manifest(root: Path) -> Path:
    """Six labelled test tracks (5 s tones), one train track and one unreadable test track."""
    rows = []
    for i, track in enumerate(TEST_IDS):
        audio = write_tone(root / "audio" / f"{track}.wav", seconds=DURATION_S, freq=220.0 * (1 + i))
        rows.append({"track_id": track, "audio_path": str(audio), "duration_s": DURATION_S, "split": "test",
                     "genre": GENRE_TRUTH[track], "tags": TAG_TRUTH[track], "chords": CHORD_TRUTH[track],
                     "instruments": INSTRUMENT_TRUTH[track]})
    train = write_tone(root / "audio" / "tr0.wav", seconds=1.0)
    rows.append({"track_id": "tr0", "audio_path": str(train), "split": "train", "genre": "a", "tags": ["x"]})
    rows.append({"track_id": "broken", "audio_path": str(root / "audio" / "missing.wav"), "split": "test",
                 "genre": "a", "tags": ["x"], "chords": CHORD_TRUTH["t0"], "instruments": INSTRUMENT_TRUTH["t0"]})
    return manifest.write(manifest.build_table(rows), root / "data" / "m" / "manifest.parquet")


def config(root: Path, run_id: str, *overrides: str) -> AutotagConfig:
    """The composed config of a run on the hand-made manifest."""
    return load_config([f"paths.root={root}", "dataset=manifest",
                        f"dataset.manifest={root / 'data' / 'm' / 'manifest.parquet'}", f"run_id={run_id}",
                        *overrides])


def write_checkpoint(root: Path, run_id: str, task: Task, spec: dict[str, Any], seed: int = 0) -> Path:
    """A randomly initialised model saved as ``checkpoints/<run_id>/best``."""
    torch.manual_seed(seed)
    model = build_model(spec["frontend"], spec["backend"], task.num_outputs, spec["frontend_params"],
                        spec["backend_params"])
    return checkpoint.save(root / "checkpoints" / run_id / "best", model,
                           {"model": spec, "task": task.to_dict(), "config": {}, "epoch": 0})


def write_history(root: Path, run_id: str, val_loss: list[float]) -> Path:
    """``checkpoints/<run_id>/history.parquet`` with the columns pipelines.train writes."""
    n = len(val_loss)
    frame = pd.DataFrame({"epoch": np.arange(n), "train_loss": np.linspace(2.0, 1.0, n),
                          "train_accuracy": np.linspace(0.3, 0.9, n), "val_loss": val_loss,
                          "val_accuracy": np.linspace(0.3, 0.7, n), "improved": [True] * n,
                          "epoch_seconds": [1.5] * n, "samples_per_s": [900.0] * n})
    path = root / "checkpoints" / run_id / "history.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return path


def write_tags(root: Path, run_id: str, task: Task, scores: dict[str, list[float]],
               spec: dict[str, Any] = LMS, errors: tuple[str, ...] = ("broken",)) -> Path:
    """``tracks`` and ``tags`` tables of a run, through the infer stage's own writer."""
    ids = [*scores, *errors]
    batch = {"track_id": np.array(ids, dtype=object),
             "audio_path": np.array([f"/audio/{t}.wav" for t in ids], dtype=object),
             "duration_s": np.array([DURATION_S] * len(scores) + [np.nan] * len(errors)),
             "status": np.array(["ok"] * len(scores) + ["error"] * len(errors), dtype=object),
             "error": np.array([""] * len(scores) + ["file does not exist"] * len(errors), dtype=object),
             "scores": np.array([*scores.values(), *([[0.0] * task.num_outputs] * len(errors))], dtype=np.float32)}
    ckpt = str(root / "checkpoints" / run_id / "best")
    writer = PredictionWriter(root / "predictions", run_id, {
        "labels": list(task.vocabulary), "task": task.to_dict(), "model": spec, "checkpoint": ckpt,
        "config": {"dataset": {"manifest": str(root / "data" / "m" / "manifest.parquet")}}})
    writer.write(tracks_rows(batch, run_id, f"{spec['frontend']}+{spec['backend']}", ckpt),
                 tags_rows(batch, run_id, task))
    return writer.dirs["tags"]


def write_segments(root: Path, table: str, run_id: str, rows: list[tuple], label_column: str,
                   labels: list[str] | None = None, ok_tracks: tuple[str, ...] | None = None) -> Path:
    """A ``chords`` or ``instruments`` table (``run_id, track_id, start_s, end_s, <label>, confidence``).

    With ``ok_tracks`` a ``tracks`` table is written too, listing them as ``ok``.
    """
    frame = pd.DataFrame(rows, columns=["track_id", "start_s", "end_s", label_column])
    frame.insert(0, "run_id", run_id)
    frame["confidence"] = 0.9
    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    metadata = {"autotag.task": json.dumps({"kind": "frame_multiclass" if table == "chords" else "frame_multilabel",
                                            "label_key": table})}
    if labels is not None:
        metadata["autotag.labels"] = json.dumps(labels)
    path = root / "predictions" / table / run_id / "part-00000.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(arrow.replace_schema_metadata(metadata), path)
    if ok_tracks is not None:
        tracks = pd.DataFrame({"run_id": run_id, "track_id": list(ok_tracks), "status": "ok",
                               "duration_s": DURATION_S})
        tracks_path = root / "predictions" / "tracks" / run_id / "part-00000.parquet"
        tracks_path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pandas(tracks, preserve_index=False), tracks_path)
    return path
