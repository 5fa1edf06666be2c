"""Metrics as files: ``metrics.json`` (everything) and ``metrics.parquet`` (one row per number).

Conventions
-----------
A run's metrics are a nested dict as returned by the ``evaluate()`` functions, keyed by task,
e.g. ``{"tagging": tagging.evaluate(...), "chords": chords.evaluate(...)}``. Several runs are
``{run_id: metrics}``.

The long table has the columns ``run_id``, ``metric``, ``label``, ``value`` (float64):

- ``metric`` is the dot-joined key path, e.g. ``tagging.roc_auc_macro``,
  ``chords.wcsr.majmin``, ``instruments.frame.f1_micro``;
- values under a ``per_label`` key become one row per label, the ``per_label`` key itself left
  out of the name (``tagging.roc_auc`` with ``label = "rock"``); other ``per_<thing>`` keys
  (``chords.per_track.majmin``) keep their name and put the track id in ``label``;
- dataset-level values have ``label = ""`` (an empty string, not null, so that group-bys keep
  them).

Only numbers go to the table; strings, lists (a confusion matrix) and flags stay in the JSON.
Both files carry ``metadata`` (data set, split, config...) and are written atomically.

Examples
--------
>>> metrics_table({"r1": {"tagging": {"roc_auc_macro": 0.8, "per_label": {"roc_auc": {"rock": 0.9}}}}})
  run_id                 metric label  value
0     r1  tagging.roc_auc_macro          0.8
1     r1        tagging.roc_auc  rock    0.9
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from autotag.evaluate.common import to_jsonable, warn
from autotag.storage import atomic_write_bytes, location, read_table

SCHEMA = pa.schema([("run_id", pa.string()), ("metric", pa.string()), ("label", pa.string()),
                    ("value", pa.float64())])
ALL_LABELS = ""
JSON_NAME = "metrics.json"
PARQUET_NAME = "metrics.parquet"


def _is_number(value: Any) -> bool:
    numeric = isinstance(value, (int, float, np.integer, np.floating))
    return numeric and not isinstance(value, (bool, np.bool_))


def _per_label_rows(prefix: str, values: Mapping[str, Any]) -> Iterator[tuple[str, str, float]]:
    for name, by_label in values.items():
        metric = f"{prefix}.{name}" if prefix else str(name)
        if not isinstance(by_label, Mapping):
            raise ValueError(f"{metric}: expected a {{label: value}} dict under a per_ key, "
                             f"got {type(by_label).__name__}")
        for label, value in by_label.items():
            if _is_number(value):
                yield metric, str(label), float(value)


def flatten(metrics: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str, float]]:
    """Yield ``(metric, label, value)`` for every number in ``metrics`` (rules in the module doc)."""
    for key, value in metrics.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key == "per_label" and isinstance(value, Mapping):
            yield from _per_label_rows(prefix, value)
        elif str(key).startswith("per_") and isinstance(value, Mapping):
            yield from _per_label_rows(path, value)
        elif isinstance(value, Mapping):
            yield from flatten(value, path)
        elif _is_number(value):
            yield path, ALL_LABELS, float(value)


def metrics_table(metrics_by_run: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """The long table (``run_id, metric, label, value``) of several runs' metrics.

    Raises
    ------
    ValueError
        An empty run id, or a non-finite value (named by run, metric and label).
    """
    rows = []
    for run_id, metrics in metrics_by_run.items():
        if not isinstance(run_id, str) or not run_id:
            raise ValueError(f"run_id {run_id!r}: expected a non-empty string")
        for metric, label, value in flatten(metrics):
            if not math.isfinite(value):
                raise ValueError(f"run {run_id!r} metric {metric!r} label {label!r}: value {value} "
                                 "is not finite; metric functions must give a defined value")
            rows.append((run_id, metric, label, value))
    return pd.DataFrame(rows, columns=SCHEMA.names).astype(
        {"run_id": str, "metric": str, "label": str, "value": np.float64})


def _parquet_bytes(table: pd.DataFrame, metadata: Mapping[str, Any]) -> bytes:
    arrow = pa.Table.from_pandas(table, schema=SCHEMA, preserve_index=False)
    extra = {b"autotag.metrics": json.dumps(to_jsonable(metadata, "metadata"), sort_keys=True).encode()}
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), **extra})
    buffer = io.BytesIO()
    pq.write_table(arrow, buffer)
    return buffer.getvalue()


def write_metrics(
    out_dir: str | os.PathLike[str],
    metrics_by_run: Mapping[str, Mapping[str, Any]],
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write ``metrics.json`` and ``metrics.parquet`` into ``out_dir``, each atomically.

    Parameters
    ----------
    out_dir
        Folder (created if missing).
    metrics_by_run
        ``{run_id: metrics}``.
    metadata
        What the numbers are about (data set, split, checkpoint, config); stored in the JSON
        under ``metadata`` and in the Parquet key-value metadata under ``autotag.metrics``.

    Returns
    -------
    dict
        ``{"json": path, "parquet": path}``.
    """
    metadata = dict(metadata or {})
    table = metrics_table(metrics_by_run)
    document = {"metadata": metadata, "runs": dict(metrics_by_run)}
    text = json.dumps(to_jsonable(document, "metrics.json"), indent=2, allow_nan=False)
    out_dir = location(out_dir)
    json_path = atomic_write_bytes(out_dir / JSON_NAME, (text + "\n").encode())
    parquet_path = atomic_write_bytes(out_dir / PARQUET_NAME, _parquet_bytes(table, metadata))
    return {"json": json_path, "parquet": parquet_path}


def read_metrics_table(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a ``metrics.parquet`` back as ``(table, metadata)``."""
    arrow = read_table(path)
    raw = (arrow.schema.metadata or {}).get(b"autotag.metrics", b"{}")
    return arrow.to_pandas(), json.loads(raw)


def results_table(table: pd.DataFrame, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Runs x metrics (dataset-level values only), like the tutorial's results table.

    Parameters
    ----------
    table
        A long metrics table (several runs).
    metrics
        Columns to keep, in order; default every dataset-level metric. A metric missing for a
        run is left empty (the run did not compute it), not filled with a number.

    Raises
    ------
    ValueError
        A requested metric that no run has.
    """
    overall = table[table["label"] == ALL_LABELS]
    wide = overall.pivot(index="run_id", columns="metric", values="value")
    if metrics is not None:
        unknown = [m for m in metrics if m not in wide.columns]
        if unknown:
            raise ValueError(f"results table: metric(s) {unknown} not in any run; "
                             f"known: {sorted(wide.columns)[:20]}")
        wide = wide[list(metrics)]
    wide.columns.name = None
    if wide.isna().any().any():
        warn("results table: some runs lack some metrics; those cells are empty")
    return wide.reset_index()
