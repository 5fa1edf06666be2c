"""Read a run's prediction tables and line them up with manifest ground truth."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq


@dataclass
class Aligned:
    """Ground truth and scores for the evaluated tracks, in the same order."""

    track_ids: list[str]
    reference: list  # one label (multiclass) or list of labels (multilabel) per track
    scores: np.ndarray  # (n, k) in ``labels`` order
    labels: list[str]
    missing: list[str]  # tracks with ground truth but no ok prediction


def read_run_table(predictions_root: str | Path, table: str, run_id: str) -> pd.DataFrame:
    directory = Path(predictions_root) / table / run_id
    files = sorted(directory.glob("part-*.parquet"))
    if not files:
        raise FileNotFoundError(f"no {table} predictions for run {run_id!r} in {directory}; run pipelines.infer first")
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def align(truth: pd.DataFrame, label_key: str, tags: pd.DataFrame, labels: list[str]) -> Aligned:
    """Join manifest rows (``track_id`` + ``label_key``) with long-format tag scores."""
    truth = truth[truth[label_key].notna()]
    wide = tags.pivot_table(index="track_id", columns="tag", values="score", aggfunc="first")
    wide = wide.reindex(columns=labels)
    have = truth["track_id"].isin(wide.index)
    kept = truth[have]
    return Aligned(track_ids=kept["track_id"].tolist(), reference=kept[label_key].tolist(),
                   scores=wide.loc[kept["track_id"]].to_numpy(dtype=np.float32), labels=labels,
                   missing=truth.loc[~have, "track_id"].tolist())
