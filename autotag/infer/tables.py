"""The prediction tables of the output contract and their atomic, resumable writer.

Layout under the predictions root (one folder per table, one sub-folder per run)::

    tracks/<run_id>/part-00000.parquet       run_id, track_id, audio_path, duration_s, model,
                                             checkpoint, status, error, processed_at
    tags/<run_id>/part-00000.parquet         run_id, track_id, tag, score, rank, predicted
    chords/<run_id>/part-00000.parquet       run_id, track_id, start_s, end_s, chord, confidence
    instruments/<run_id>/part-00000.parquet  run_id, track_id, start_s, end_s, instrument, confidence
    embeddings/<run_id>/part-00000.parquet   run_id, track_id, embedding (list<float>)      [on request]
    activations/<run_id>/part-00000.parquet  run_id, track_id, time_s, scores (list<float>)  [on request]

Genre and tag models write ``tags``; chord models ``chords``; instrument models
``instruments``; every model writes ``tracks``. Every file is written to a hidden
temporary name and renamed, so a reader never sees a partial file. The ``tracks`` part is
renamed last: a track listed in ``tracks`` always has its other rows, a re-run skips
exactly the tracks listed there, and a part left without its ``tracks`` part by a crash
is deleted on restart.
Label vocabulary, task and config travel in the Parquet key-value metadata.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from autotag.data.tasks import Task

TRACKS_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("track_id", pa.string()), ("audio_path", pa.string()), ("duration_s", pa.float64()),
    ("model", pa.string()), ("checkpoint", pa.string()), ("status", pa.string()), ("error", pa.string()),
    ("processed_at", pa.timestamp("us", tz="UTC")),
])
TAGS_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("track_id", pa.string()), ("tag", pa.string()), ("score", pa.float32()),
    ("rank", pa.int32()), ("predicted", pa.bool_()),
])
SEGMENT_FIELDS = [("run_id", pa.string()), ("track_id", pa.string()), ("start_s", pa.float64()),
                  ("end_s", pa.float64())]
CHORDS_SCHEMA = pa.schema([*SEGMENT_FIELDS, ("chord", pa.string()), ("confidence", pa.float32())])
INSTRUMENTS_SCHEMA = pa.schema([*SEGMENT_FIELDS, ("instrument", pa.string()), ("confidence", pa.float32())])
SEGMENT_TABLES = {"frame_multiclass": ("chords", "chord", CHORDS_SCHEMA),
                  "frame_multilabel": ("instruments", "instrument", INSTRUMENTS_SCHEMA)}


def main_table(task: Task) -> str:
    """The table a model of this task writes besides ``tracks``."""
    return SEGMENT_TABLES[task.kind][0] if task.frame_level else "tags"


_PART = re.compile(r"^part-(\d{5,})\.parquet$")


def tracks_rows(batch: dict[str, np.ndarray], run_id: str, model: str, checkpoint: str) -> pa.Table:
    n = len(batch["track_id"])
    now = datetime.now(UTC)
    duration = [None if np.isnan(d) else float(d) for d in batch["duration_s"]]
    return pa.table({
        "run_id": [run_id] * n, "track_id": list(batch["track_id"]), "audio_path": list(batch["audio_path"]),
        "duration_s": duration, "model": [model] * n, "checkpoint": [checkpoint] * n,
        "status": list(batch["status"]), "error": [e or None for e in batch["error"]], "processed_at": [now] * n,
    }, schema=TRACKS_SCHEMA)


EMBEDDINGS_SCHEMA = pa.schema([("run_id", pa.string()), ("track_id", pa.string()),
                               ("embedding", pa.list_(pa.float32()))])
ACTIVATIONS_SCHEMA = pa.schema([("run_id", pa.string()), ("track_id", pa.string()), ("time_s", pa.float64()),
                                ("scores", pa.list_(pa.float32()))])


def decide(task: Task, scores: np.ndarray, ranks: np.ndarray, thresholds: dict[str, float] | None = None,
           top_k: int | None = None) -> np.ndarray:
    """``predicted`` flags: argmax (multi-class), or score >= the tag's threshold and, with
    ``top_k``, rank <= top_k (multi-label). ``thresholds`` maps tag → threshold (default
    ``task.threshold``)."""
    if not task.multilabel:
        return task.predicted(scores)
    unknown = sorted(set(thresholds or {}) - set(task.vocabulary))
    if unknown:
        raise ValueError(f"thresholds for unknown tag(s) {unknown}; vocabulary: {list(task.vocabulary)}")
    limit = np.array([(thresholds or {}).get(t, task.threshold) for t in task.vocabulary], dtype=np.float32)
    flags = scores >= limit[None, :]
    return flags & (ranks <= top_k) if top_k else flags


def tags_rows(batch: dict[str, np.ndarray], run_id: str, task: Task, thresholds: dict[str, float] | None = None,
              top_k: int | None = None) -> pa.Table:
    """Long format: one row per (ok track, label), ranked by score (1 = best)."""
    ok = np.asarray(batch["status"]) == "ok"
    scores = np.asarray(batch["scores"], dtype=np.float32)[ok]
    track_ids = np.asarray(batch["track_id"], dtype=object)[ok]
    n, k = scores.shape if scores.ndim == 2 else (0, task.num_outputs)
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, k + 1)[None, :].repeat(n, 0), axis=1)
    predicted = decide(task, scores, ranks, thresholds, top_k) if n else np.zeros((0, k), bool)
    return pa.table({
        "run_id": [run_id] * (n * k), "track_id": np.repeat(track_ids, k).tolist(),
        "tag": list(task.vocabulary) * n, "score": scores.reshape(-1), "rank": ranks.reshape(-1).astype(np.int32),
        "predicted": predicted.reshape(-1),
    }, schema=TAGS_SCHEMA)


def segment_rows(batch: dict[str, np.ndarray], run_id: str, task: Task) -> tuple[str, pa.Table]:
    """The ``chords`` or ``instruments`` table rows of a batch (segments are JSON per track)."""
    name, column, schema = SEGMENT_TABLES[task.kind]
    rows = []
    for track_id, status, encoded in zip(batch["track_id"], batch["status"], batch["segments"]):
        if status != "ok":
            continue
        for seg in json.loads(encoded):
            rows.append({"run_id": run_id, "track_id": track_id, "start_s": seg["start_s"], "end_s": seg["end_s"],
                         column: seg["label"], "confidence": seg["confidence"]})
    return name, pa.Table.from_pylist(rows, schema=schema)


def embedding_rows(batch: dict[str, np.ndarray], run_id: str) -> pa.Table:
    ok = np.asarray(batch["status"]) == "ok"
    return pa.table({"run_id": [run_id] * int(ok.sum()), "track_id": list(np.asarray(batch["track_id"])[ok]),
                     "embedding": list(np.asarray(batch["embedding"], dtype=np.float32)[ok])}, schema=EMBEDDINGS_SCHEMA)


def activation_rows(batch: dict[str, np.ndarray], run_id: str) -> pa.Table:
    rows = []
    for track_id, status, encoded in zip(batch["track_id"], batch["status"], batch["activations"]):
        if status == "ok" and encoded:
            data = json.loads(encoded)
            rows += [{"run_id": run_id, "track_id": track_id, "time_s": t, "scores": s}
                     for t, s in zip(data["time_s"], data["scores"])]
    return pa.Table.from_pylist(rows, schema=ACTIVATIONS_SCHEMA)


def output_tables(batch: dict[str, np.ndarray], run_id: str, task: Task, model: str, checkpoint: str,
                  thresholds: dict[str, float] | None = None, top_k: int | None = None) -> dict[str, pa.Table]:
    """Every table a batch of predictions contributes to, keyed by table name."""
    tables = {"tracks": tracks_rows(batch, run_id, model, checkpoint)}
    if task.frame_level:
        name, table = segment_rows(batch, run_id, task)
        tables[name] = table
    else:
        tables["tags"] = tags_rows(batch, run_id, task, thresholds, top_k)
    if "embedding" in batch:
        tables["embeddings"] = embedding_rows(batch, run_id)
    if any(batch.get("activations", [])):
        tables["activations"] = activation_rows(batch, run_id)
    return tables


class PredictionWriter:
    """Writes numbered parts of the prediction tables of one run, atomically.

    Parameters
    ----------
    root
        The predictions root.
    run_id
        The run; each table gets a ``<table>/<run_id>/`` folder.
    metadata
        Stored (as JSON) in every file's key-value metadata under ``autotag.<key>``.
    tables
        The tables besides ``tracks`` this run writes (``tags``, ``chords`` or ``instruments``).
    """

    def __init__(self, root: str | Path, run_id: str, metadata: dict[str, Any], tables: tuple[str, ...] = ("tags",)):
        self.run_id = run_id
        self.dirs = {name: Path(root) / name / run_id for name in ("tracks", *tables)}
        for directory in self.dirs.values():
            directory.mkdir(parents=True, exist_ok=True)
        self.metadata = {f"autotag.{k}": json.dumps(v, default=str) for k, v in metadata.items()}
        self._remove_orphans()
        self.next_part = 1 + max((int(m.group(1)) for d in self.dirs.values() for p in d.iterdir()
                                  if (m := _PART.match(p.name))), default=-1)

    def _remove_orphans(self) -> None:
        """Drop parts whose ``tracks`` part never landed (a crash between the two)."""
        for name, directory in self.dirs.items():
            for part in directory.glob("part-*.parquet"):
                if name != "tracks" and not (self.dirs["tracks"] / part.name).exists():
                    part.unlink()
        for tmp in (p for d in self.dirs.values() for p in d.glob(".part-*.tmp")):
            tmp.unlink()

    def done_track_ids(self) -> set[str]:
        """Tracks already written by earlier attempts of this run (skipped on re-run)."""
        files = sorted(self.dirs["tracks"].glob("part-*.parquet"))
        return {t for f in files for t in pq.read_table(f, columns=["track_id"]).column("track_id").to_pylist()}

    def _write(self, table: pa.Table, name: str, part: int) -> Path:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **self.metadata})
        path = self.dirs[name] / f"part-{part:05d}.parquet"
        tmp = path.with_name(f".{path.name}.tmp")
        pq.write_table(table, tmp)
        tmp.replace(path)
        return path

    def write(self, tables: dict[str, pa.Table]) -> int:
        """Write one part of every table; ``tracks`` last. Returns the part number."""
        unknown = set(tables) - set(self.dirs)
        if unknown or "tracks" not in tables:
            raise ValueError(f"tables {sorted(tables)}: expected 'tracks' plus some of {sorted(self.dirs)}")
        part, self.next_part = self.next_part, self.next_part + 1
        for name, table in tables.items():
            if name != "tracks":
                self._write(table, name, part)
        self._write(tables["tracks"], "tracks", part)
        return part
