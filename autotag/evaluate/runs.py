"""A run's artefacts, as evaluation needs them: prediction tables, checkpoint, training history.

Conventions
-----------
A run is a ``run_id``. Its files, all optional except at least one prediction table:

- ``<predictions>/<table>/<run_id>/part-*.parquet`` for ``table`` in ``tracks``, ``tags``,
  ``chords``, ``instruments`` (schemas in :mod:`autotag.infer.tables` and the README); each
  file's key-value metadata holds JSON under ``autotag.*`` keys (``labels``, ``task``,
  ``model``, ``checkpoint``, ``config``);
- ``<checkpoints>/<run_id>/best`` (see :mod:`autotag.models.checkpoint`);
- ``<checkpoints>/<run_id>/history.parquet``: one row per epoch (``epoch``, ``train_loss``,
  ``val_loss``, ...).

The checkpoint used for checkpoint-based figures and patch-level scores is the one recorded in
the predictions' metadata (``autotag.checkpoint``, the model that made the predictions) when
that folder exists, else ``<checkpoints>/<run_id>/best``; without either those parts are skipped
with a warning. Nothing here needs Ray.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from autotag.evaluate.common import warn
from autotag.models import checkpoint as checkpoints

TABLES = ("tracks", "tags", "chords", "instruments")
TASK_TABLES = ("tags", "chords", "instruments")
HISTORY = "history.parquet"
BEST = "best"


@dataclass
class PredictionTable:
    """One prediction table of one run: rows and decoded ``autotag.*`` metadata."""

    name: str
    frame: pd.DataFrame
    metadata: dict[str, Any] = field(default_factory=dict)
    directory: Path = Path()


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

    def durations(self) -> dict[str, float]:
        """``{track_id: duration_s}`` from the ``tracks`` table (non-null values only)."""
        if "tracks" not in self.tables:
            return {}
        tracks = self.tables["tracks"].frame.dropna(subset=["duration_s"])
        return dict(zip(tracks["track_id"].astype(str), tracks["duration_s"].astype(float)))


def decode_metadata(raw: dict[bytes, bytes] | None, where: str) -> dict[str, Any]:
    """The ``autotag.*`` key-value metadata of a Parquet file as ``{key: JSON value}``.

    Raises
    ------
    ValueError
        A value under an ``autotag.`` key that is not JSON, naming the file and key.
    """
    out: dict[str, Any] = {}
    for key, value in (raw or {}).items():
        name = key.decode("utf-8", "replace")
        if not name.startswith("autotag."):
            continue
        try:
            out[name[len("autotag."):]] = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: metadata {name!r} is not JSON ({exc}); expected the JSON "
                             "written by pipelines.infer") from None
    return out


def read_table(predictions_root: str | os.PathLike[str], table: str, run_id: str) -> PredictionTable | None:
    """Read ``<root>/<table>/<run_id>/part-*.parquet``; ``None`` when the run has no such table."""
    directory = Path(predictions_root) / table / run_id
    files = sorted(directory.glob("part-*.parquet"))
    if not files:
        return None
    frames = [pq.read_table(f).to_pandas() for f in files]
    metadata = decode_metadata(pq.read_schema(files[0]).metadata, str(files[0]))
    return PredictionTable(table, pd.concat(frames, ignore_index=True), metadata, directory)


def known_runs(predictions_root: str | os.PathLike[str]) -> list[str]:
    """Run ids with at least one task table under the predictions root (for error messages)."""
    root = Path(predictions_root)
    return sorted({p.name for t in TASK_TABLES if (root / t).is_dir() for p in (root / t).iterdir()
                   if p.is_dir() and any(p.glob("part-*.parquet"))})


def find_checkpoint(checkpoints_root: str | os.PathLike[str], run_id: str, recorded: Any = None) -> Path | None:
    """The run's checkpoint folder (rule in the module docstring), or ``None``."""
    candidates = [Path(recorded)] if isinstance(recorded, str) and recorded else []
    candidates.append(Path(checkpoints_root) / run_id / BEST)
    for candidate in candidates:
        if (candidate / checkpoints.META).exists() and (candidate / checkpoints.WEIGHTS).exists():
            return candidate
    return None


def read_history(checkpoints_root: str | os.PathLike[str], run_id: str,
                 checkpoint_dir: Path | None = None) -> pd.DataFrame | None:
    """``history.parquet`` of the run, else the history in the checkpoint's ``meta.json``, else None."""
    path = Path(checkpoints_root) / run_id / HISTORY
    if path.exists():
        return pq.read_table(path).to_pandas()
    if checkpoint_dir is not None:
        history = checkpoints.read_meta(checkpoint_dir).get("history")
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
            f"run {run_id!r}: no predictions in {Path(predictions_root)}/{{{','.join(TASK_TABLES)}}}/{run_id}/"
            f"part-*.parquet; run pipelines.infer for it first (runs with predictions: {known or 'none'})")
    artefacts = RunArtefacts(run_id, tables, None, None)
    artefacts.checkpoint_dir = find_checkpoint(checkpoints_root, run_id, artefacts.metadata.get("checkpoint"))
    if artefacts.checkpoint_dir is None:
        recorded = artefacts.metadata.get("checkpoint")
        looked = f"{recorded} (recorded in the predictions) or " if recorded else ""
        warn(f"run {run_id!r}: no checkpoint at {looked}{Path(checkpoints_root) / run_id / BEST}; "
             "patch-level scores, tag-o-gram and filter figures are skipped")
    artefacts.history = read_history(checkpoints_root, run_id, artefacts.checkpoint_dir)
    if artefacts.history is None:
        warn(f"run {run_id!r}: no training history ({Path(checkpoints_root) / run_id / HISTORY}); "
             "training curves are skipped")
    return artefacts
