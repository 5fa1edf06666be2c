"""A plain CSV, TSV or Parquet table of tracks, with a mapping from its columns to the manifest's.

Recognised manifest columns: ``track_id``, ``audio_path`` (required), ``duration_s``,
``split``, ``genre``, ``tags``, ``chords``, ``instruments``, plus ``artist`` (only used by the
artist-disjoint split). ``columns`` maps these names to the table's own column names;
names not mapped are looked up as themselves, other columns are ignored.

Cell formats in CSV/TSV (Parquet may hold the native types directly):

- ``tags``: a JSON list (``["rock", "guitar"]``) or names separated by ``tag_separator``
  (default ``;``); an empty cell is null (not labelled), ``[]`` is no tags;
- ``chords``/``instruments``: a JSON list of ``{"start_s", "end_s", "label"}`` objects or of
  ``[start_s, end_s, label]`` triples; chord labels are reduced to the 25-class vocabulary
  unless ``reduce_chords=False``;
- ``audio_path``: absolute, a URI (``s3://...``), or relative to ``audio_root`` (default: the
  table's folder).

A missing or empty ``track_id`` is derived from the audio path (relative to
``audio_root`` when under it). ``split=None`` keeps the table's ``split`` column when it has
one and otherwise uses the tutorial's ``index_modulo`` split over row order.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from autotag.data import manifest
from autotag.data.adapters.common import (
    check_keys,
    finish,
    join_audio_path,
    reading,
    segment,
    sorted_segments,
    track_id_from_path,
)
from autotag.data.splits import SplitSpec
from autotag.storage import is_uri

COLUMNS = (*manifest.SCHEMA.names, "artist")
_READERS = {".csv": ",", ".tsv": "\t", ".txt": "\t"}


def _read_rows(path: Path) -> tuple[list[dict[str, Any]], Callable[[int], str]]:
    """Rows as dicts, and a function naming row ``i`` in messages (CSV line or Parquet row)."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            rows = pq.read_table(path).to_pylist()
        except (pa.ArrowInvalid, OSError) as exc:
            raise ValueError(f"{path.name}: not a readable Parquet file ({exc})") from None
        return rows, lambda i: f"{path.name} row {i}"
    if suffix not in _READERS:
        raise ValueError(f"{path.name}: unknown table format {suffix!r}; expected .csv, .tsv or .parquet")
    with reading(path), path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter=_READERS[suffix])
        header = next(reader, [])
        rows, lines = [], []
        for values in reader:
            if not values:
                continue
            if len(values) != len(header):
                raise ValueError(
                    f"{path.name} line {reader.line_num}: expected {len(header)} columns, got {len(values)}")
            rows.append(dict(zip(header, values)))
            lines.append(reader.line_num)
    return rows, lambda i: f"{path.name} line {lines[i]}"


def _parse_tags(value: Any, separator: str, where: str) -> list[str] | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: tags {value!r} is not a JSON list ({exc.msg})") from None
    if isinstance(value, str):
        value = value.split(separator)
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise ValueError(f"{where}: tags must be a list of strings, got {value!r}")
    return sorted({t.strip() for t in value if t.strip()})


def _parse_segments(value: Any, where: str, chords: bool) -> list[dict[str, Any]] | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: segments are not valid JSON ({exc.msg})") from None
    if not isinstance(value, list):
        raise ValueError(f"{where}: segments must be a list, got {type(value).__name__}")
    items = []
    for i, item in enumerate(value):
        if isinstance(item, dict) and {"start_s", "end_s", "label"} <= set(item):
            fields = (item["start_s"], item["end_s"], item["label"])
        elif isinstance(item, (list, tuple)) and len(item) == 3:
            fields = tuple(item)
        else:
            raise ValueError(
                f"{where}: segment {i} {item!r}: expected {{start_s, end_s, label}} or [start, end, label]")
        items.append(segment(*fields, where=f"{where} segment {i}", chords=chords))
    return sorted_segments(items, where)


def _derive_track_id(audio_path: str, audio_root: Path | str) -> str:
    if is_uri(audio_path):
        return track_id_from_path(audio_path.split("://", 1)[1])
    path = Path(audio_path)
    if path.is_absolute() and not is_uri(str(audio_root)):
        try:
            path = path.relative_to(Path(audio_root).resolve())
        except ValueError:
            pass
    return track_id_from_path(path.as_posix())


def _convert(raw: Mapping[str, Any], mapping: Mapping[str, str], where: str, options: dict[str, Any]) -> dict:
    get = {name: raw.get(mapping.get(name, name)) for name in COLUMNS}
    audio_path = get["audio_path"]
    if not isinstance(audio_path, str) or not audio_path.strip():
        raise ValueError(f"{where}: empty audio_path")
    audio_path = audio_path.strip()
    row: dict[str, Any] = {"audio_path": join_audio_path(options["audio_root"], audio_path)}
    try:
        row["track_id"] = get["track_id"] or _derive_track_id(audio_path, options["audio_root"])
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    try:
        row["duration_s"] = float(get["duration_s"]) if get["duration_s"] not in (None, "") else None
    except (TypeError, ValueError):
        raise ValueError(f"{where}: duration_s {get['duration_s']!r} is not a number") from None
    row["split"] = get["split"] or None
    row["genre"] = get["genre"] or None
    row["tags"] = _parse_tags(get["tags"], options["tag_separator"], where)
    row["chords"] = _parse_segments(get["chords"], f"{where} chords", chords=options["reduce_chords"])
    row["instruments"] = _parse_segments(get["instruments"], f"{where} instruments", chords=False)
    return row


def _split_column(rows: list[dict[str, Any]], name_row: Callable[[int], str]) -> dict[str, str]:
    for i, row in enumerate(rows):
        if row["split"] not in manifest.SPLITS:
            raise ValueError(f"{name_row(i)}: split {row['split']!r} not in {manifest.SPLITS}")
    return {row["track_id"]: row["split"] for row in rows}


def prepare_table(
    path: str | Path,
    *,
    columns: Mapping[str, str] | None = None,
    audio_root: str | Path | None = None,
    tag_separator: str = ";",
    reduce_chords: bool = True,
    split: SplitSpec | None = None,
) -> pa.Table:
    """Manifest rows from a CSV/TSV/Parquet table.

    Parameters
    ----------
    path
        ``.csv``, ``.tsv`` or ``.parquet`` file.
    columns
        Manifest column (or ``artist``) -> the table's column name, for names that differ.
    audio_root
        What relative audio paths are relative to (default: the table's folder).
    tag_separator
        Separator of tag names in a non-JSON ``tags`` cell.
    reduce_chords
        Reduce chord labels to the 25-class vocabulary.
    split
        ``None``: the table's ``split`` column if any, else ``index_modulo``; or any strategy
        of :mod:`autotag.data.splits` (which then overrides the column).

    Raises
    ------
    ValueError
        An unknown mapping key, a missing ``audio_path`` column, or a malformed cell (the
        message names the file and line or row).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"table {path} does not exist")
    mapping = dict(columns or {})
    check_keys(mapping, COLUMNS, f"{path.name} column mapping")
    rows_in, name_row = _read_rows(path)
    present = set(rows_in[0]) if rows_in else set()
    if rows_in and mapping.get("audio_path", "audio_path") not in present:
        column = mapping.get("audio_path", "audio_path")
        raise ValueError(f"{path.name}: no {column!r} column; columns are {sorted(present)}")
    options = {"audio_root": audio_root if audio_root is not None else path.parent,
               "tag_separator": tag_separator, "reduce_chords": reduce_chords}
    rows = [_convert(raw, mapping, name_row(i), options) for i, raw in enumerate(rows_in)]
    artists = [raw.get(mapping.get("artist", "artist")) or None for raw in rows_in]
    has_artists = mapping.get("artist", "artist") in present
    if split is None:
        split = _split_column(rows, name_row) if mapping.get("split", "split") in present else "index_modulo"
    keys = [(row["track_id"],) for row in rows]
    return finish(rows, keys, split, source=str(path), artists=artists if has_artists else None)
