"""The predictions contract: table schemas, the atomic resumable writer, the reader, the run manifest.

Layout under the predictions root (:mod:`autotag.layout`; one folder per table, one Hive-style
sub-folder per run)::

    tracks/run_id=<id>/part-00000.parquet       run_id, track_id, audio_path, duration_s, model,
                                                checkpoint, status, error, processed_at
    tracks/run_id=<id>/_run.json                the run manifest: checkpoint and its fingerprint
    tags/run_id=<id>/part-00000.parquet         run_id, track_id, tag, score, rank, predicted
    chords/run_id=<id>/part-00000.parquet       run_id, track_id, start_s, end_s, chord, confidence
    instruments/run_id=<id>/part-00000.parquet  run_id, track_id, start_s, end_s, instrument, confidence
    embeddings/run_id=<id>/part-00000.parquet   run_id, track_id, embedding (list<float>)      [on request]
    activations/run_id=<id>/part-00000.parquet  run_id, track_id, time_s, scores (list<float>)  [on request]

The files keep their ``run_id`` column, so a reader that ignores the folder names sees the
same rows. Genre and tag models write ``tags``; chord models ``chords``; instrument models
``instruments``; every model writes ``tracks``. Every file is written atomically
(:func:`autotag.storage.atomic_write_table`). The ``tracks`` part is renamed last: a track
listed in ``tracks`` always has its other rows, a re-run skips exactly the tracks listed
there, and a part left without its ``tracks`` part by a crash is deleted on restart.

Label vocabulary, task, model, checkpoint (and its fingerprint), config and the time base
(``timebase``: sample rate, patch length and hop in seconds, frame rate) travel in the
Parquet key-value metadata as JSON under ``autotag.<key>``; evaluation needs nothing else.

A run holds the predictions of one checkpoint: :func:`check_resume` refuses to add to a run
made by another one (:class:`RunMismatchError`), unless the caller asks to overwrite it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from autotag import layout, storage
from autotag.data.tasks import Task
from autotag.storage import TMP_MARK, UriPath, atomic_write_bytes, atomic_write_table, location

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
EMBEDDINGS_SCHEMA = pa.schema([("run_id", pa.string()), ("track_id", pa.string()),
                               ("embedding", pa.list_(pa.float32()))])
ACTIVATIONS_SCHEMA = pa.schema([("run_id", pa.string()), ("track_id", pa.string()), ("time_s", pa.float64()),
                                ("scores", pa.list_(pa.float32()))])
SEGMENT_TABLES = {"frame_multiclass": ("chords", "chord", CHORDS_SCHEMA),
                  "frame_multilabel": ("instruments", "instrument", INSTRUMENTS_SCHEMA)}
SCHEMAS = {"tracks": TRACKS_SCHEMA, "tags": TAGS_SCHEMA, "chords": CHORDS_SCHEMA,
           "instruments": INSTRUMENTS_SCHEMA, "embeddings": EMBEDDINGS_SCHEMA, "activations": ACTIVATIONS_SCHEMA}
TASK_TABLES = ("tags", "chords", "instruments")
"""The tables that hold a task's predictions (a run has one of them)."""
METADATA_PREFIX = "autotag."

_PART = re.compile(r"^part-(\d{5,})\.parquet$")


class RunMismatchError(ValueError):
    """A run id whose predictions were made by another checkpoint than the one given now."""


def main_table(task: Task) -> str:
    """The table a model of this task writes besides ``tracks``."""
    return SEGMENT_TABLES[task.kind][0] if task.frame_level else "tags"


def fingerprint(checkpoint_dir: str | os.PathLike[str]) -> str:
    """``sha256:<hex>`` of a checkpoint's weights and ``meta.json``: two checkpoints with the same
    fingerprint make the same predictions."""
    digest = hashlib.sha256()
    for name in (layout.WEIGHTS, layout.META):
        with storage.open_input(location(checkpoint_dir) / name) as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def read_manifest(predictions: str | os.PathLike[str], run_id: str) -> dict[str, Any] | None:
    """The run manifest (``_run.json`` beside the run's ``tracks`` parts), or None."""
    directory = layout.existing_table_dir(predictions, "tracks", run_id)
    path = directory / layout.RUN_MANIFEST if directory is not None else None
    return json.loads(path.read_text()) if path is not None and path.exists() else None


def _recorded_checkpoint(predictions: str | os.PathLike[str], run_id: str) -> dict[str, Any] | None:
    """What made an existing run: its manifest, else (runs written before manifests) the checkpoint
    its ``tracks`` rows name."""
    manifest = read_manifest(predictions, run_id)
    if manifest is not None:
        return manifest
    table = read_table(predictions, "tracks", run_id, columns=["checkpoint"])
    if table is None or table.frame.empty:
        return None
    return {"checkpoint": str(table.frame["checkpoint"].iloc[0]), "fingerprint": None}


def check_resume(predictions: str | os.PathLike[str], run_id: str, checkpoint: str, checkpoint_print: str) -> None:
    """Refuse to resume ``run_id`` with a checkpoint other than the one that made it.

    Parameters
    ----------
    predictions
        The predictions root.
    run_id
        The run about to be written.
    checkpoint
        The checkpoint folder about to be used.
    checkpoint_print
        Its :func:`fingerprint`.

    Raises
    ------
    RunMismatchError
        The run's manifest records another fingerprint (or, for a run written before manifests,
        another checkpoint folder whose fingerprint differs).
    """
    recorded = _recorded_checkpoint(predictions, run_id)
    if recorded is None:
        return
    old_print = recorded.get("fingerprint")
    if old_print is None:  # written before run manifests: compare the checkpoint it names, if it is there
        old = location(str(recorded.get("checkpoint", "")))
        if storage.same_place(old, checkpoint) or not (old / layout.WEIGHTS).exists():
            return
        old_print = fingerprint(old)
    if old_print != checkpoint_print:
        raise RunMismatchError(
            f"run {run_id!r} in {predictions} was tagged with checkpoint {recorded.get('checkpoint')} "
            f"({str(old_print)[:19]}…), not with {checkpoint} ({checkpoint_print[:19]}…); use a new run_id, or "
            "infer.overwrite=true to replace the run")


def drop_run(predictions: str | os.PathLike[str], run_id: str) -> list[Path | UriPath]:
    """Delete every table folder of ``run_id`` (both layouts); returns the folders removed."""
    root = location(predictions)
    removed = [d for table in (root.iterdir() if root.is_dir() else []) if table.name != layout.EXPORTS
               for d in layout.run_dirs(root, table.name, run_id)]
    for directory in removed:
        storage.remove_tree(directory)
    return removed


def drop_error_rows(predictions: str | os.PathLike[str], run_id: str) -> int:
    """Rewrite the run's ``tracks`` parts without their ``status = 'error'`` rows, so that those
    tracks are tagged again (each exactly once); returns the rows dropped. The other tables hold
    no rows for error tracks."""
    directory = layout.existing_table_dir(predictions, "tracks", run_id)
    dropped = 0
    for part in sorted(directory.glob("part-*.parquet")) if directory is not None else []:
        table = storage.read_table(part)
        ok = table.filter(pc.equal(table.column("status"), "ok"))
        if ok.num_rows < table.num_rows:
            dropped += table.num_rows - ok.num_rows
            atomic_write_table(ok.replace_schema_metadata(table.schema.metadata), part)
    return dropped


class PredictionWriter:
    """Writes numbered parts of the prediction tables of one run, atomically.

    Parameters
    ----------
    root
        The predictions root.
    run_id
        The run; each table gets a ``<table>/run_id=<run_id>/`` folder (or keeps the
        ``<table>/<run_id>/`` folder of a run begun in the older layout).
    metadata
        Stored (as JSON) in every file's key-value metadata under ``autotag.<key>``; its
        ``checkpoint`` and ``fingerprint`` also go to the run manifest.
    tables
        The tables besides ``tracks`` this run writes (``tags``, ``chords`` or ``instruments``).
    """

    def __init__(self, root: str | os.PathLike[str], run_id: str, metadata: dict[str, Any],
                 tables: tuple[str, ...] = ("tags",)):
        self.run_id = run_id
        self.dirs = {name: layout.run_table_dir(root, name, run_id) for name in ("tracks", *tables)}
        for directory in self.dirs.values():
            directory.mkdir(parents=True, exist_ok=True)
        self.metadata = {f"{METADATA_PREFIX}{k}": json.dumps(v, default=str) for k, v in metadata.items()}
        self._manifest = {"run_id": run_id, "checkpoint": metadata.get("checkpoint"),
                          "fingerprint": metadata.get("fingerprint"), "model": metadata.get("model")}
        self._remove_orphans()
        self.next_part = 1 + max((int(m.group(1)) for d in self.dirs.values() for p in d.iterdir()
                                  if (m := _PART.match(p.name))), default=-1)

    def _remove_orphans(self) -> None:
        """Drop parts whose ``tracks`` part never landed (a crash between the two)."""
        for name, directory in self.dirs.items():
            for part in directory.glob("part-*.parquet"):
                if name != "tracks" and not (self.dirs["tracks"] / part.name).exists():
                    part.unlink()
        for tmp in (p for d in self.dirs.values() for p in d.glob(".part-*")
                    if TMP_MARK in p.name or p.name.endswith(".tmp")):
            tmp.unlink()

    def done_track_ids(self) -> set[str]:
        """Tracks already written by earlier attempts of this run (skipped on re-run)."""
        files = sorted(self.dirs["tracks"].glob("part-*.parquet"))
        return {t for f in files for t in storage.read_table(f, columns=["track_id"]).column("track_id").to_pylist()}

    def status_counts(self) -> dict[str, int]:
        """``{"ok": n, "error": m}`` over every track this run has written, in any attempt."""
        counts = {"ok": 0, "error": 0}
        for f in sorted(self.dirs["tracks"].glob("part-*.parquet")):
            for status in storage.read_table(f, columns=["status"]).column("status").to_pylist():
                counts[status] = counts.get(status, 0) + 1
        return counts

    def _write(self, table: pa.Table, name: str, part: int) -> Path | UriPath:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **self.metadata})
        return atomic_write_table(table, self.dirs[name] / f"part-{part:05d}.parquet")

    def write(self, tables: dict[str, pa.Table]) -> int:
        """Write one part of every table; ``tracks`` last. Returns the part number."""
        unknown = set(tables) - set(self.dirs)
        if unknown or "tracks" not in tables:
            raise ValueError(f"tables {sorted(tables)}: expected 'tracks' plus some of {sorted(self.dirs)}")
        if not (self.dirs["tracks"] / layout.RUN_MANIFEST).exists():
            atomic_write_bytes(self.dirs["tracks"] / layout.RUN_MANIFEST,
                               json.dumps(self._manifest, indent=1, default=str).encode())
        part, self.next_part = self.next_part, self.next_part + 1
        for name, table in tables.items():
            if name != "tracks":
                self._write(table, name, part)
        self._write(tables["tracks"], "tracks", part)
        return part


# ---------------------------------------------------------------------------------------------- reading


@dataclass
class PredictionTable:
    """One prediction table of one run: rows and decoded ``autotag.*`` metadata."""

    name: str
    frame: pd.DataFrame
    metadata: dict[str, Any] = field(default_factory=dict)
    directory: Path | UriPath = Path()


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
        if not name.startswith(METADATA_PREFIX):
            continue
        try:
            out[name[len(METADATA_PREFIX):]] = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: metadata {name!r} is not JSON ({exc}); expected the JSON "
                             "written by pipelines.infer") from None
    return out


def read_table(predictions: str | os.PathLike[str], table: str, run_id: str,
               columns: list[str] | None = None) -> PredictionTable | None:
    """Every part of ``table`` of ``run_id`` (either layout); None when the run has no such table."""
    directory = layout.existing_table_dir(predictions, table, run_id)
    files = sorted(directory.glob("part-*.parquet")) if directory is not None else []
    if not files:
        return None
    frames = [storage.read_table(f, columns=columns).to_pandas() for f in files]
    metadata = decode_metadata(storage.read_schema(files[0]).metadata, str(files[0]))
    return PredictionTable(table, pd.concat(frames, ignore_index=True), metadata, directory)


def known_runs(predictions: str | os.PathLike[str]) -> list[str]:
    """Run ids with at least one task table under the predictions root (for error messages)."""
    root = location(predictions)
    return sorted({layout.run_id_of(p) for t in TASK_TABLES if (root / t).is_dir() for p in (root / t).iterdir()
                   if p.is_dir() and any(p.glob("part-*.parquet"))})
