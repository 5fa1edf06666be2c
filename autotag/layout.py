"""The run path layout: where every stage puts and finds the files of a ``run_id``.

This module is the one statement of the layout; train, infer, evaluate, sweeps and the
exports ask it instead of spelling paths (``conf/infer/default.yaml`` interpolates the same
``<checkpoints>/<run_id>/best``, and a test checks that the two agree).

===============================================  ==============================================
path                                             what
===============================================  ==============================================
``<checkpoints>/<run_id>/best/``                 the published checkpoint (``model.safetensors``,
                                                 ``meta.json``; :mod:`autotag.models.checkpoint`)
``<checkpoints>/<run_id>/history.parquet``       one row per epoch
``<predictions>/<table>/run_id=<run_id>/``       one prediction table of the run
                                                 (``part-NNNNN.parquet``; Hive-style, so DuckDB,
                                                 Polars and Spark prune by run)
``<predictions>/tracks/run_id=<run_id>/_run.json``  the run manifest (checkpoint fingerprint)
``<predictions>/exports/<run_id>/``              per-track ``.lab`` / JAMS files, ``top_tags.csv``
``<reports>/<run_id>/``                          ``metrics.json``, ``metrics.parquet``, report
===============================================  ==============================================

Every function takes a local path or a URI (``s3://bucket/autotag/predictions``) and answers
with a :class:`pathlib.Path` or an :class:`autotag.storage.UriPath` to match.

Runs written before the Hive layout, ``<predictions>/<table>/<run_id>/``, are still found
(:func:`existing_table_dir`), resumed in place and evaluated. Nothing here imports a stage.
"""

from __future__ import annotations

import os
from pathlib import Path

from autotag.storage import UriPath, location

BEST = "best"
HISTORY = "history.parquet"
WEIGHTS = "model.safetensors"
META = "meta.json"
OPTIMIZER = "optimizer.pt"
RUN_MANIFEST = "_run.json"
EXPORTS = "exports"
RUN_KEY = "run_id"
"""The Hive partition key of prediction folders (``run_id=<run_id>``)."""


def best_checkpoint(checkpoints: str | os.PathLike[str], run_id: str) -> Path | UriPath:
    """``<checkpoints>/<run_id>/best``."""
    return location(checkpoints) / run_id / BEST


def history_path(checkpoints: str | os.PathLike[str], run_id: str) -> Path | UriPath:
    """``<checkpoints>/<run_id>/history.parquet``."""
    return location(checkpoints) / run_id / HISTORY


def table_dir(predictions: str | os.PathLike[str], table: str, run_id: str) -> Path | UriPath:
    """Where a new run writes ``table``: ``<predictions>/<table>/run_id=<run_id>``."""
    return location(predictions) / table / f"{RUN_KEY}={run_id}"


def legacy_table_dir(predictions: str | os.PathLike[str], table: str, run_id: str) -> Path | UriPath:
    """Where runs written before the Hive layout keep ``table``: ``<predictions>/<table>/<run_id>``."""
    return location(predictions) / table / run_id


def existing_table_dir(predictions: str | os.PathLike[str], table: str, run_id: str) -> Path | UriPath | None:
    """The folder of ``table`` of ``run_id`` that exists (Hive layout first), or None."""
    for directory in (table_dir(predictions, table, run_id), legacy_table_dir(predictions, table, run_id)):
        if directory.is_dir():
            return directory
    return None


def run_table_dir(predictions: str | os.PathLike[str], table: str, run_id: str) -> Path | UriPath:
    """The folder a run writes ``table`` into: the one its earlier attempts used (either layout,
    judged by its ``tracks`` folder), else the Hive layout."""
    if existing_table_dir(predictions, "tracks", run_id) == legacy_table_dir(predictions, "tracks", run_id):
        return legacy_table_dir(predictions, table, run_id)
    return existing_table_dir(predictions, table, run_id) or table_dir(predictions, table, run_id)


def run_dirs(predictions: str | os.PathLike[str], table: str, run_id: str) -> list[Path | UriPath]:
    """Every existing folder of ``table`` of ``run_id`` (both layouts)."""
    return [d for d in (table_dir(predictions, table, run_id), legacy_table_dir(predictions, table, run_id))
            if d.is_dir()]


def run_id_of(folder: str | os.PathLike[str]) -> str:
    """The run id a prediction folder holds: ``run_id=<id>`` → ``<id>``, a legacy ``<id>`` as is."""
    name = location(folder).name
    prefix = f"{RUN_KEY}="
    return name[len(prefix):] if name.startswith(prefix) else name


def exports_dir(predictions: str | os.PathLike[str], run_id: str) -> Path | UriPath:
    """``<predictions>/exports/<run_id>``."""
    return location(predictions) / EXPORTS / run_id


def report_dir(reports: str | os.PathLike[str], run_id: str) -> Path | UriPath:
    """``<reports>/<run_id>``."""
    return location(reports) / run_id
