"""Stage 4 — evaluate: predictions × manifest ground truth → metrics.json, metrics.parquet, figures.

    python -m pipelines.evaluate [evaluate.split=test]

Writes to ``paths.reports/<run_id>/``: ``metrics.json`` (every number), ``metrics.parquet``
(one row per metric × label) and ``confusion_matrix.png`` for multi-class tasks.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from autotag.config import AutotagConfig
from autotag.data import manifest
from autotag.evaluate import classification, plots, tagging
from autotag.evaluate.common import atomic_write_bytes
from autotag.evaluate.predictions import align, read_run_table
from autotag.evaluate.tables import write_metrics
from pipelines.common import cli

log = logging.getLogger("autotag.evaluate")


def _labels_from_metadata(predictions_root: str, run_id: str) -> tuple[list[str], dict[str, Any]]:
    first = sorted((Path(predictions_root) / "tags" / run_id).glob("part-*.parquet"))[0]
    metadata = pq.read_schema(first).metadata
    return json.loads(metadata[b"autotag.labels"]), json.loads(metadata[b"autotag.task"])


def run(cfg: AutotagConfig) -> dict[str, Any]:
    """Evaluate the run's predictions on ``evaluate.split``; returns the headline metrics."""
    truth = manifest.read(cfg.dataset.manifest).to_pandas()
    truth = truth[truth["split"] == cfg.evaluate.split]
    tags = read_run_table(cfg.paths.predictions, "tags", cfg.run_id)
    labels, task = _labels_from_metadata(cfg.paths.predictions, cfg.run_id)
    aligned = align(truth, cfg.dataset.label_key, tags, labels)
    if not aligned.track_ids:
        raise ValueError(f"no predicted track of split {cfg.evaluate.split!r} has a {cfg.dataset.label_key!r} label")
    out_dir = Path(cfg.paths.reports) / cfg.run_id
    if task["kind"] == "multiclass":
        estimate = [labels[i] for i in aligned.scores.argmax(1)]
        metrics = {"genre": classification.evaluate(aligned.reference, estimate, labels)}
        png = plots.confusion_matrix(np.asarray(metrics["genre"]["confusion_matrix"]), labels,
                                     title=f"{cfg.run_id} — {cfg.evaluate.split} split")
        atomic_write_bytes(out_dir / "confusion_matrix.png", png)
        headline = {k: metrics["genre"][k] for k in ("accuracy", "recall_macro", "precision_macro", "f1_macro")}
    else:
        y_true = np.array([[tag in set(ref) for tag in labels] for ref in aligned.reference], dtype=np.int64)
        metrics = {"tagging": tagging.evaluate(y_true, aligned.scores, labels, thresholds=task["threshold"])}
        headline = {k: v for k, v in metrics["tagging"].items() if isinstance(v, float)}
    metrics["coverage"] = {"evaluated_tracks": len(aligned.track_ids), "missing_predictions": len(aligned.missing)}
    paths = write_metrics(out_dir, {cfg.run_id: metrics}, {
        "dataset": cfg.dataset.name, "split": cfg.evaluate.split, "run_id": cfg.run_id,
        "missing_track_ids": aligned.missing})
    if aligned.missing:
        log.warning("%d %s tracks have no prediction (decode errors?): %s", len(aligned.missing),
                    cfg.evaluate.split, aligned.missing[:10])
    return {"run_id": cfg.run_id, "split": cfg.evaluate.split, **headline, **metrics["coverage"],
            "metrics_json": str(paths["json"]), "report_dir": str(out_dir)}


if __name__ == "__main__":
    raise SystemExit(cli(run))
