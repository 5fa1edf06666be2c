"""The manifest: one Parquet row per track, the contract every adapter writes.

Columns
-------
track_id : string, unique and stable; used as the WebDataset key, so no dots.
audio_path : string, a local path or a pyarrow-filesystem URI.
duration_s : float64, may be null before decoding.
split : string, one of ``train``, ``valid``, ``test``.
genre : string (multi-class label), may be null.
tags : list<string> (multi-label), may be null.
chords, instruments : list<struct{start_s, end_s, label}> (time-based labels), may be null.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from autotag.errors import InputError
from autotag.storage import atomic_write_table, is_uri, read_table

SPLITS = ("train", "valid", "test")
LABEL_COLUMNS = ("genre", "tags", "chords", "instruments")

SEGMENT = pa.struct([("start_s", pa.float64()), ("end_s", pa.float64()), ("label", pa.string())])

SCHEMA = pa.schema(
    [
        ("track_id", pa.string()),
        ("audio_path", pa.string()),
        ("duration_s", pa.float64()),
        ("split", pa.string()),
        ("genre", pa.string()),
        ("tags", pa.list_(pa.string())),
        ("chords", pa.list_(SEGMENT)),
        ("instruments", pa.list_(SEGMENT)),
    ]
)

_TRACK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


class ManifestError(InputError):
    """A manifest that breaks the contract above."""


def validate_track_id(track_id: str) -> str:
    """Return ``track_id`` or raise if it cannot be a WebDataset key."""
    if not isinstance(track_id, str) or not _TRACK_ID.match(track_id):
        raise ManifestError(
            f"track_id {track_id!r}: expected letters, digits, '_' or '-' (no dots, no slashes, "
            "not starting with '_' or '-')"
        )
    return track_id


def build_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Build a manifest table from dict rows (missing label columns become null)."""
    columns: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
    for row in rows:
        unknown = set(row) - set(SCHEMA.names)
        if unknown:
            raise ManifestError(f"unknown manifest column(s) {sorted(unknown)}; expected {SCHEMA.names}")
        for name in SCHEMA.names:
            columns[name].append(row.get(name))
    return validate(pa.table(columns, schema=SCHEMA))


def validate(table: pa.Table, source: str = "manifest") -> pa.Table:
    """Check the manifest contract and return the table cast to :data:`SCHEMA`.

    Raises
    ------
    ManifestError
        Missing required columns, bad or duplicate track ids, null paths, unknown splits.
    """
    missing = [c for c in ("track_id", "audio_path", "split") if c not in table.column_names]
    if missing:
        raise ManifestError(f"{source}: missing required column(s) {missing}")
    for name in SCHEMA.names:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(len(table), SCHEMA.field(name).type))
    table = table.select(SCHEMA.names)
    try:
        table = table.cast(SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ManifestError(f"{source}: columns do not match the manifest schema: {exc}") from None

    ids = table.column("track_id").to_pylist()
    for index, track_id in enumerate(ids):
        try:
            validate_track_id(track_id)
        except ManifestError as exc:
            raise ManifestError(f"{source} row {index}: {exc}") from None
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dupes = sorted({t for t in ids if t in seen or seen.add(t)})
        raise ManifestError(f"{source}: duplicate track_id(s) {dupes[:5]}")
    for index, (path, split) in enumerate(
        zip(table.column("audio_path").to_pylist(), table.column("split").to_pylist())
    ):
        if not path:
            raise ManifestError(f"{source} row {index} ({ids[index]}): audio_path is empty")
        if split not in SPLITS:
            raise ManifestError(f"{source} row {index} ({ids[index]}): split {split!r} not in {SPLITS}")
    return table


def write(table: pa.Table, path: str | Path) -> Path | str:
    """Validate and write a manifest atomically (temporary file, then rename)."""
    table = validate(table, str(path))
    return atomic_write_table(table, path)


def read(path: str | Path) -> pa.Table:
    """Read and validate a manifest Parquet file (a local path or a URI such as ``s3://b/m.parquet``)."""
    if not is_uri(path):
        path = Path(path)
        if not path.exists():
            raise ManifestError(f"manifest {path} does not exist")
    try:
        table = read_table(path)
    except FileNotFoundError:
        raise ManifestError(f"manifest {path} does not exist") from None
    except OSError as exc:
        raise ManifestError(f"manifest {path}: cannot read ({' '.join(str(exc).split())})") from None
    return validate(table, str(path))


def label_vocabulary(table: pa.Table, label_key: str) -> list[str]:
    """Sorted distinct labels of one label column (the class index order)."""
    if label_key not in LABEL_COLUMNS:
        raise ManifestError(f"label key {label_key!r} not in {LABEL_COLUMNS}")
    values = table.column(label_key).to_pylist()
    labels: set[str] = set()
    for value in values:
        if value is None:
            continue
        if isinstance(value, str):
            labels.add(value)
        else:
            for item in value:
                labels.add(item["label"] if isinstance(item, dict) else item)
    if not labels:
        raise ManifestError(f"manifest has no {label_key!r} labels")
    return sorted(labels)
