"""Rows of the prediction tables from one batch of predictor outputs (schemas in :mod:`autotag.predictions`).

:func:`output_tables` turns the numpy batch an infer actor returns (``track_id``,
``status``, ``scores`` or ``segments``, optional ``embedding`` / ``activations``) into one
Arrow table per prediction table; :func:`decide` states how scores become ``predicted``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from autotag.data.tasks import Task
from autotag.predictions import (
    ACTIVATIONS_SCHEMA,
    EMBEDDINGS_SCHEMA,
    SEGMENT_TABLES,
    TAGS_SCHEMA,
    TRACKS_SCHEMA,
)


def tracks_rows(batch: dict[str, np.ndarray], run_id: str, model: str, checkpoint: str) -> pa.Table:
    n = len(batch["track_id"])
    now = datetime.now(UTC)
    duration = [None if np.isnan(d) else float(d) for d in batch["duration_s"]]
    return pa.table({
        "run_id": [run_id] * n, "track_id": list(batch["track_id"]), "audio_path": list(batch["audio_path"]),
        "duration_s": duration, "model": [model] * n, "checkpoint": [checkpoint] * n,
        "status": list(batch["status"]), "error": [e or None for e in batch["error"]], "processed_at": [now] * n,
    }, schema=TRACKS_SCHEMA)


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
