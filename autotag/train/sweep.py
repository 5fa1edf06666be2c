"""Sweeps over front-end × back-end × hyper-parameter combinations: the plan and the results table.

Conventions
-----------
A sweep (``conf/sweep/``, :class:`autotag.config.SweepConfig`) is a list of *combinations*, each a
mapping of Hydra overrides (a config group such as ``frontend: tcn``, or a dotted key such as
``frontend.params.patch_hop_samples: 11025``), crossed with a *grid* (dotted key → list of values).
Every (combination, grid point) is one *trial*: the train stage composed exactly as
``python -m pipelines.train <base overrides> <trial overrides>`` would compose it, so a trial is
reproduced by that command. A trial's run id is the composed ``run_id`` (by default
``<dataset>-<frontend>-<backend>``) followed by ``-<key><value>`` for every dotted grid key, e.g.
``synthetic_genre-tcn-autopool-lr0.001``.

The results table has one row per trial, in the layout of the tutorial's results table
(seed-recipe §6): the combination, the test-split metrics of its best checkpoint (track level),
the best epoch's validation loss and accuracy (patch level), parameters, epochs run (best epoch),
the median time per epoch and the median training throughput. Failed trials keep a row with
``status = "error"`` and the reason.

Nothing here needs Ray; ``pipelines/sweep.py`` runs the trials with Ray Tune.
"""

from __future__ import annotations

import itertools
import json
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from autotag.errors import ConfigError
from autotag.storage import atomic_write_bytes

RESULTS_NAME = "results"
# Fixed columns; test metrics follow as ``test_<metric>`` (float64), in the order first seen.
COLUMNS = [("combo", pa.string()), ("run_id", pa.string()), ("status", pa.string()), ("error", pa.string()),
           ("val_loss", pa.float64()), ("val_accuracy", pa.float64()), ("params", pa.int64()),
           ("epochs_run", pa.int64()), ("best_epoch", pa.int64()), ("epoch_seconds", pa.float64()),
           ("samples_per_s", pa.float64()), ("overrides", pa.list_(pa.string()))]
METRIC_TITLES = {"accuracy": "accuracy", "recall_macro": "macro recall", "precision_macro": "macro precision",
                 "f1_macro": "macro F1", "roc_auc_macro": "ROC-AUC (macro)", "average_precision_macro": "AP (macro)"}
_BARE = re.compile(r"^[A-Za-z_][\w\-./]*$")
_KEYWORDS = {"null", "true", "false", "nan", "inf"}


class SweepError(ConfigError):
    """A sweep that cannot be planned: a malformed combination or grid, or clashing trials."""


@dataclass(frozen=True)
class Trial:
    """One point of a sweep: its settings (key → value), as Hydra overrides, and its run-id suffix."""

    settings: dict[str, Any]
    overrides: tuple[str, ...]
    suffix: str


def format_value(value: Any) -> str:
    """``value`` in Hydra's override grammar (strings quoted unless they are plain names).

    Raises
    ------
    SweepError
        A value of a type that has no override syntax.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        if _BARE.match(value) and value.lower() not in _KEYWORDS:
            return value
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{format_value(v)}" for k, v in value.items()) + "}"
    raise SweepError(f"sweep value {value!r}: expected a number, string, bool, null, list or mapping")


def format_override(key: str, value: Any) -> str:
    return f"{key}={format_value(value)}"


def _suffix_part(key: str, value: Any) -> str:
    text = f"{key.rsplit('.', 1)[-1]}{value}"
    return re.sub(r"[^\w.]+", "_", text)


def _check_keys(keys: Iterable[Any], where: str) -> None:
    for key in keys:
        if not isinstance(key, str) or not key or key.startswith(("+", "~")):
            raise SweepError(f"{where}: key {key!r} must be a config group or a dotted key (no +/~ prefix)")


def plan(combinations: Sequence[Mapping[str, Any]], grid: Mapping[str, Sequence[Any]] | None) -> list[Trial]:
    """Every combination crossed with every grid point, combinations outermost.

    No combinations means one empty combination (the base config); no grid means one point.

    Raises
    ------
    SweepError
        A combination that is not a mapping, a grid entry that is not a non-empty list, a key
        set both by a combination and by the grid, or two identical trials.

    Examples
    --------
    >>> [t.overrides for t in plan([{"frontend": "tcn"}], {"train.lr": [0.1, 0.01]})]
    [('frontend=tcn', 'train.lr=0.1'), ('frontend=tcn', 'train.lr=0.01')]
    """
    grid = dict(grid or {})
    _check_keys(grid, "sweep.grid")
    for key, values in grid.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise SweepError(f"sweep.grid.{key}: expected a non-empty list of values, got {values!r}")
    combos = list(combinations) or [{}]
    trials, seen = [], set()
    for i, combo in enumerate(combos):
        if not isinstance(combo, Mapping):
            raise SweepError(f"sweep.combinations[{i}]: expected a mapping of overrides, got {combo!r}")
        _check_keys(combo, f"sweep.combinations[{i}]")
        if clash := sorted(set(combo) & set(grid)):
            raise SweepError(f"sweep.combinations[{i}]: {clash} also in sweep.grid; set each key in one place")
        for point in itertools.product(*grid.values()):
            settings = {**combo, **dict(zip(grid, point, strict=True))}
            overrides = tuple(format_override(k, v) for k, v in settings.items())
            if overrides in seen:
                raise SweepError(f"sweep: trial {list(overrides)} appears twice")
            seen.add(overrides)
            suffix = "".join(f"-{_suffix_part(k, v)}" for k, v in zip(grid, point, strict=True) if "." in k)
            trials.append(Trial(settings, overrides, suffix))
    return trials


def combo_label(frontend: str, backend: str, settings: Mapping[str, Any]) -> str:
    """``"tcn + autopool"``, then the trial's other settings as ``key=value`` (last key part)."""
    extra = [f"{k.rsplit('.', 1)[-1]}={v}" for k, v in settings.items() if k not in ("frontend", "backend")]
    return " ".join([f"{frontend} + {backend}", *extra])


def history_summary(history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Best epoch (lowest ``val_loss``) and median epoch time / throughput of a training history.

    Medians keep the first, warming-up epoch from skewing the timings.

    Raises
    ------
    ValueError
        An empty history.
    """
    if not history:
        raise ValueError("training history is empty: no epoch was run")
    best = min(history, key=lambda h: h["val_loss"])
    return {"val_loss": float(best["val_loss"]), "val_accuracy": float(best["val_accuracy"]),
            "best_epoch": int(best["epoch"]), "epochs_run": len(history),
            "epoch_seconds": float(statistics.median(h["epoch_seconds"] for h in history)),
            "samples_per_s": float(statistics.median(h["samples_per_s"] for h in history))}


def _metric_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    names: list[str] = []
    for row in rows:
        names += [k for k in row if k.startswith("test_") and k not in names]
    return names


def results_table(rows: Sequence[Mapping[str, Any]], metadata: Mapping[str, Any]) -> pa.Table:
    """The rows as Arrow, metadata JSON-encoded under ``autotag.<key>``; missing values are null."""
    tests = _metric_columns(rows)
    schema = pa.schema(COLUMNS + [(name, pa.float64()) for name in tests])
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    return pa.table(columns, schema=schema).replace_schema_metadata(
        {f"autotag.{k}": json.dumps(v, default=str) for k, v in metadata.items()})


def _number(value: Any, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def markdown(rows: Sequence[Mapping[str, Any]], title: str, best_run_id: str | None = None) -> str:
    """The tutorial-style table: the best value of each test metric in bold, the selected trial
    (lowest val loss) marked ★."""
    tests = _metric_columns(rows)
    best = {t: max((row[t] for row in rows if row["status"] == "ok" and row.get(t) is not None), default=None)
            for t in tests}
    head = ["Combo", *(f"Test {METRIC_TITLES.get(t[5:], t[5:])}" for t in tests), "Val loss (best)",
            "Val accuracy", "Params", "Epochs run (best)", "Time/epoch", "Samples/s"]
    lines = [f"### {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        name = row["combo"] + (" ★" if row["run_id"] == best_run_id else "")
        if row["status"] != "ok":
            lines.append(f"| {name} | error: {str(row.get('error') or '')[:120]} |" + " |" * (len(head) - 2))
            continue
        marks = ["**" if row.get(t) is not None and row.get(t) == best[t] else "" for t in tests]
        cells = [name, *(f"{m}{_number(row.get(t), '.4f')}{m}" for t, m in zip(tests, marks)),
                 _number(row["val_loss"], ".4f"),
                 _number(row["val_accuracy"], ".4f"), f"{row['params']:,}",
                 f"{row['epochs_run']} (ep {row['best_epoch']})", f"{row['epoch_seconds']:.1f} s",
                 f"{row['samples_per_s']:,.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_results(out_dir: str | Path, rows: Sequence[Mapping[str, Any]], title: str,
                  metadata: Mapping[str, Any], best_run_id: str | None = None) -> dict[str, Path]:
    """Write ``results.md`` and ``results.parquet`` atomically; returns their paths."""
    out_dir = Path(out_dir)
    md, parquet = out_dir / f"{RESULTS_NAME}.md", out_dir / f"{RESULTS_NAME}.parquet"
    atomic_write_bytes(md, markdown(rows, title, best_run_id).encode())
    sink = pa.BufferOutputStream()
    pq.write_table(results_table(rows, {**metadata, "best_run_id": best_run_id}), sink)
    atomic_write_bytes(parquet, sink.getvalue().to_pybytes())
    return {"markdown": md, "parquet": parquet}
