"""A run's artefacts, as evaluation needs them: prediction tables, checkpoint folder, training history.

Conventions
-----------
A run is a ``run_id``; where its files are is :mod:`autotag.layout`. All are optional except
at least one prediction table:

- the prediction tables ``tracks``, ``tags``, ``chords``, ``instruments`` and ``activations``
  (schemas and reader in :mod:`autotag.predictions`; ``<predictions>/<table>/run_id=<run_id>/``
  or the older ``<predictions>/<table>/<run_id>/``); each file's key-value metadata holds JSON
  under ``autotag.*`` keys (``labels``, ``task``, ``model``, ``checkpoint``, ``config``,
  ``timebase``);
- ``<checkpoints>/<run_id>/best``: only its ``meta.json`` is read (for the history when
  ``history.parquet`` is missing), never its weights;
- ``<checkpoints>/<run_id>/history.parquet``: one row per epoch (``epoch``, ``train_loss``,
  ``val_loss``, ...).

The checkpoint folder reported (and offered to the learned-filter figure) is the one recorded
in the predictions' metadata (``autotag.checkpoint``, the model that made the predictions) when
that folder exists, else ``<checkpoints>/<run_id>/best``. Nothing here needs Ray or torch.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from autotag import layout, storage
from autotag.evaluate.common import warn
from autotag.predictions import TASK_TABLES, PredictionTable, known_runs, read_table
from autotag.storage import location

TABLES = ("tracks", *TASK_TABLES, "activations")


@dataclass
class RunArtefacts:
    """Everything found for one run; ``tables`` maps table name to :class:`PredictionTable`."""

    run_id: str
    tables: dict[str, PredictionTable]
    checkpoint_dir: Path | None
    history: pd.DataFrame | None

    @property
    def metadata(self) -> dict[str, Any]:
        """Metadata of the first task table present (``tags``, then ``chords``, ``instruments``)."""
        for name in TASK_TABLES:
            if name in self.tables:
                return self.tables[name].metadata
        return {}

    @property
    def timebase(self) -> dict[str, Any]:
        """The ``autotag.timebase`` recorded by inference (sample rate, patch length and hop in
        seconds, frame rate); ``{}`` for runs written before it was recorded."""
        timebase = self.metadata.get("timebase")
        return timebase if isinstance(timebase, dict) else {}

    @property
    def recorded_dataset(self) -> dict[str, Any]:
        """The ``dataset`` part of the config recorded with the predictions (``{}`` when absent)."""
        config = self.metadata.get("config")
        dataset = config.get("dataset") if isinstance(config, dict) else None
        return dataset if isinstance(dataset, dict) else {}

    @property
    def model_name(self) -> str:
        """``frontend+backend`` from the predictions' metadata, or ``""`` when not recorded."""
        model = self.metadata.get("model") or {}
        if isinstance(model, dict) and "frontend" in model and "backend" in model:
            return f"{model['frontend']}+{model['backend']}"
        return str(model) if model else ""

    def ok_track_ids(self, table: str) -> set[str]:
        """Tracks the run predicted: ``status == 'ok'`` rows of ``tracks``, else those in ``table``."""
        if "tracks" in self.tables:
            tracks = self.tables["tracks"].frame
            return set(tracks.loc[tracks["status"] == "ok", "track_id"].astype(str))
        return set(self.tables[table].frame["track_id"].astype(str))

    def failed_tracks(self) -> list[dict[str, Any]]:
        """``{track_id, audio_path, error}`` of the ``status == 'error'`` rows of ``tracks``."""
        if "tracks" not in self.tables:
            return []
        tracks = self.tables["tracks"].frame
        failed = tracks.loc[tracks["status"] != "ok", ["track_id", "audio_path", "error"]]
        return [{k: (None if pd.isna(v) else str(v)) for k, v in row.items()}
                for row in failed.sort_values("track_id").to_dict("records")]

    def durations(self) -> dict[str, float]:
        """``{track_id: duration_s}`` from the ``tracks`` table (non-null values only)."""
        if "tracks" not in self.tables:
            return {}
        tracks = self.tables["tracks"].frame.dropna(subset=["duration_s"])
        return dict(zip(tracks["track_id"].astype(str), tracks["duration_s"].astype(float)))


def find_checkpoint(checkpoints_root: str | os.PathLike[str], run_id: str, recorded: Any = None) -> Path | None:
    """The run's checkpoint folder (rule in the module docstring), or ``None``."""
    candidates = [location(recorded)] if isinstance(recorded, str) and recorded else []
    candidates.append(layout.best_checkpoint(checkpoints_root, run_id))
    for candidate in candidates:
        if (candidate / layout.META).exists() and (candidate / layout.WEIGHTS).exists():
            return candidate
    return None


def read_history(checkpoints_root: str | os.PathLike[str], run_id: str,
                 checkpoint_dir: Path | None = None) -> pd.DataFrame | None:
    """``history.parquet`` of the run, else the history in the checkpoint's ``meta.json``, else None."""
    path = layout.history_path(checkpoints_root, run_id)
    if path.exists():
        return storage.read_table(path).to_pandas()
    if checkpoint_dir is not None:
        history = json.loads((checkpoint_dir / layout.META).read_text()).get("history")
        if history:
            return pd.DataFrame(history)
    return None


def load_run(predictions_root: str | os.PathLike[str], checkpoints_root: str | os.PathLike[str],
             run_id: str) -> RunArtefacts:
    """Find every artefact of ``run_id``.

    Raises
    ------
    FileNotFoundError
        The run has none of the ``tags``, ``chords``, ``instruments`` tables; the message lists
        the runs that do.
    """
    tables = {name: t for name in TABLES if (t := read_table(predictions_root, name, run_id)) is not None}
    if not any(name in tables for name in TASK_TABLES):
        known = known_runs(predictions_root)
        raise FileNotFoundError(
            f"run {run_id!r}: no predictions in {Path(predictions_root)}/{{{','.join(TASK_TABLES)}}}/"
            f"{layout.RUN_KEY}={run_id}/part-*.parquet; run pipelines.infer for it first "
            f"(runs with predictions: {known or 'none'})")
    artefacts = RunArtefacts(run_id, tables, None, None)
    artefacts.checkpoint_dir = find_checkpoint(checkpoints_root, run_id, artefacts.metadata.get("checkpoint"))
    if artefacts.checkpoint_dir is None:
        recorded = artefacts.metadata.get("checkpoint")
        looked = f"{recorded} (recorded in the predictions) or " if recorded else ""
        warn(f"run {run_id!r}: no checkpoint at {looked}{layout.best_checkpoint(checkpoints_root, run_id)}; "
             "the learned-filter figure is skipped")
    artefacts.history = read_history(checkpoints_root, run_id, artefacts.checkpoint_dir)
    if artefacts.history is None:
        warn(f"run {run_id!r}: no training history ({layout.history_path(checkpoints_root, run_id)}); "
             "training curves are skipped")
    return artefacts
