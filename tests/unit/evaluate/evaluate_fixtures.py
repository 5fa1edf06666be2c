"""Hand-made evaluation inputs for the ``pipelines.evaluate`` tests: manifest, audio, prediction
tables, checkpoints and training histories under one output root, written as the other stages
write them (the ``tags``/``tracks`` tables through :class:`autotag.predictions.PredictionWriter`).
"""

from __future__ import annotations

import base64
import io
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from autotag.config import AutotagConfig
from autotag.data import manifest
from autotag.data.audio import decode_audio
from autotag.data.tasks import Task
from autotag.evaluate.report import PNG_SIGNATURE
from autotag.infer.predictor import TrackPredictor
from autotag.infer.rows import output_tables
from autotag.models import build_model, checkpoint
from autotag.predictions import PredictionWriter
from pipelines.common import load_config
from tests.conftest import write_tone
from tests.unit.evaluate.test_evaluate_report import parse

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
CQT = {"frontend": "cqt_conv2d", "frontend_params": {"patch_frames": 128, "patch_hop_frames": 64, "channels": 4},
       "backend": "conv_bilstm", "backend_params": {"conv_channels": 4, "lstm_hidden": 4}}
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
                        spec["backend_params"], task=task.kind)
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


def write_predictions(root: Path, run_id: str, task: Task, outputs: dict[str, Any], spec: dict[str, Any],
                      errors: tuple[str, ...] = ("broken",), manifest_path: Path | None = None) -> Path:
    """A run's ``tracks`` table and its ``tags``, ``chords`` or ``instruments`` table, through the
    infer stage's own writer; when the run has a checkpoint (:func:`write_checkpoint` first), also
    its ``activations`` table, computed by the infer stage's predictor on the test audio, as
    ``pipelines.infer`` writes it for patch-level evaluation.

    ``outputs`` maps each ok track to its scores (track-level task) or to its segments, a list
    of ``(start_s, end_s, label)`` (frame-level task); ``errors`` are tracks that failed;
    ``manifest_path`` is the manifest recorded in the config metadata (default: the test one).
    """
    manifest_path = manifest_path or root / "data" / "m" / "manifest.parquet"
    ids = [*outputs, *errors]
    ok = len(outputs)
    segments = [json.dumps([{"start_s": a, "end_s": b, "label": c, "confidence": 0.9} for a, b, c in v])
                if task.frame_level else "" for v in outputs.values()]
    scores = [[0.0] * task.num_outputs] * ok if task.frame_level else list(outputs.values())
    batch = {"track_id": np.array(ids, dtype=object),
             "audio_path": np.array([f"/audio/{t}.wav" for t in ids], dtype=object),
             "duration_s": np.array([DURATION_S] * ok + [np.nan] * len(errors)),
             "status": np.array(["ok"] * ok + ["error"] * len(errors), dtype=object),
             "error": np.array([""] * ok + ["file does not exist"] * len(errors), dtype=object),
             "scores": np.array([*scores, *([[0.0] * task.num_outputs] * len(errors))], dtype=np.float32),
             "segments": np.array(segments + [""] * len(errors), dtype=object)}
    ckpt = str(root / "checkpoints" / run_id / "best")
    if (Path(ckpt) / "meta.json").exists():
        batch["activations"] = np.array([*_activations(root, ckpt, list(outputs)), *([""] * len(errors))], dtype=object)
    tables = output_tables(batch, run_id, task, f"{spec['frontend']}+{spec['backend']}", ckpt)
    timebase = checkpoint.timebase(checkpoint.model_from_meta({"model": spec, "task": task.to_dict()}))
    writer = PredictionWriter(root / "predictions", run_id, {
        "labels": list(task.vocabulary), "task": task.to_dict(), "model": spec, "checkpoint": ckpt,
        "timebase": timebase,
        "config": {"dataset": {"name": manifest_path.parent.name, "manifest": str(manifest_path)}}},
        tables=tuple(name for name in tables if name != "tracks"))
    writer.write(tables)
    return root / "predictions"


def _activations(root: Path, ckpt: str, tracks: list[str]) -> list[str]:
    """The ``activations`` column the infer actors return for ``tracks`` (JSON per track)."""
    predictor = TrackPredictor(ckpt, device="cpu", activations=True)
    out = []
    for track in tracks:
        audio = root / "audio" / f"{track}.wav"
        out.append(json.dumps(predictor.predict(decode_audio(str(audio)).samples)["activations"])
                   if audio.exists() else "")
    return out


def write_segments(root: Path, table: str, run_id: str, rows: list[tuple], labels: list[str]) -> Path:
    """A hand-built ``chords`` or ``instruments`` table and no ``tracks`` table (the columns of the
    contract: ``run_id, track_id, start_s, end_s, chord | instrument, confidence``), in the folder
    layout of runs written before the Hive-style ``run_id=<id>`` folders (still read)."""
    label_column = {"chords": "chord", "instruments": "instrument"}[table]
    frame = pd.DataFrame(rows, columns=["track_id", "start_s", "end_s", label_column])
    frame.insert(0, "run_id", run_id)
    frame["confidence"] = 0.9
    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    metadata = {"autotag.labels": json.dumps(labels)}
    path = root / "predictions" / table / run_id / "part-00000.parquet"  # the layout before run_id=<id>
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(arrow.replace_schema_metadata(metadata), path)
    return path


class TableParser(HTMLParser):
    """The header and body cells of the ``<table id=...>`` of a page."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id, self.inside, self.rows, self.cell = table_id, False, [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and dict(attrs).get("id") == self.table_id:
            self.inside = True
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False
        elif self.inside and tag in ("td", "th"):
            self.rows[-1].append(self.cell.strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def html_table(path: Path, table_id: str) -> list[dict[str, str]]:
    """The rows of a report table as ``{column: cell text}``."""
    parser = TableParser(table_id)
    parser.feed(path.read_text())
    header, *rows = parser.rows
    return [dict(zip(header, row)) for row in rows]


def decoded_images(path: Path) -> dict[str, np.ndarray]:
    parsed = parse(path)
    prefix = "data:image/png;base64,"
    images = {}
    for figure, image in zip(parsed.figures, parsed.images):
        png = base64.b64decode(image["src"][len(prefix):], validate=True)
        assert png.startswith(PNG_SIGNATURE) and image["alt"]
        images[figure] = matplotlib.image.imread(io.BytesIO(png), format="png")
    return images
