"""JAMS annotation files (``.jams``, or gzipped ``.jamz``), read as plain JSON (no ``jams`` package needed).

A JAMS file (Humphrey et al., ISMIR 2014) holds ``file_metadata`` (``duration``,
``artist``, ...) and a list of ``annotations``, each with a ``namespace`` and ``data``:
a list of observations ``{"time", "duration", "value", "confidence"}`` (JAMS >= 0.3), or
the older column form ``{"time": [...], "duration": [...], "value": [...]}``.

Which namespaces fill which manifest column is configurable; by default:

- ``chords`` <- ``chord``, ``chord_harte`` (segments, reduced to the 25-class vocabulary);
- ``genre`` <- ``tag_gtzan``, ``tag_msd_tagtraum_cd1``, ``tag_msd_tagtraum_cd2`` (the first value);
- ``tags`` <- ``tag_open``, ``tag_cal500``, ``tag_cal10k`` (distinct values, sorted);
- ``instruments`` <- ``tag_medleydb_instruments`` (segments).

When a file has several annotations of one column's namespaces (several annotators),
the first one in file order is used. The audio for ``a/b.jams`` is the file ``a/b.<ext>``
under ``audio_root`` (default: beside the JAMS file); exactly one must exist.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from autotag.data.adapters.common import check_keys, finish, segment, sorted_segments, track_id_from_path
from autotag.data.audio import AUDIO_EXTENSIONS
from autotag.data.splits import SplitSpec

DEFAULT_NAMESPACES: dict[str, tuple[str, ...]] = {
    "chords": ("chord", "chord_harte"),
    "genre": ("tag_gtzan", "tag_msd_tagtraum_cd1", "tag_msd_tagtraum_cd2"),
    "tags": ("tag_open", "tag_cal500", "tag_cal10k"),
    "instruments": ("tag_medleydb_instruments",),
}


JAMS_SUFFIXES = (".jams", ".jamz")
_GZIP_MAGIC = b"\x1f\x8b"


def _text(path: Path, name: str) -> str:
    """The JSON text of a ``.jams`` file, or of a gzipped one (``.jamz``, as ``jams.save`` writes it)."""
    try:
        raw = path.read_bytes()
        if raw[:2] == _GZIP_MAGIC:
            raw = gzip.decompress(raw)
        elif path.suffix.lower() == ".jamz":
            raise ValueError(f"{name}: a .jamz file must be gzip-compressed JSON (no gzip header)")
        return raw.decode("utf-8")
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{name}: cannot read ({exc})") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{name}: not UTF-8 text at byte {exc.start} (a JAMS file is JSON)") from None


def _load(path: Path, name: str) -> dict[str, Any]:
    try:
        data = json.loads(_text(path, name))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name} line {exc.lineno} column {exc.colno}: invalid JSON ({exc.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise ValueError(f"{name}: not a JAMS file (expected a JSON object with an 'annotations' list)")
    return data


def observations(annotation: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    """The observations of one annotation, in either JAMS data layout."""
    data = annotation.get("data", [])
    if isinstance(data, dict):
        columns = [data.get(k, []) for k in ("time", "duration", "value")]
        if len({len(c) for c in columns}) != 1:
            raise ValueError(f"{where}: data columns time/duration/value differ in length")
        return [{"time": t, "duration": d, "value": v} for t, d, v in zip(*columns)]
    if not isinstance(data, list) or not all(isinstance(o, dict) and "value" in o for o in data):
        raise ValueError(f"{where}: 'data' must be a list of observations with a 'value'")
    return data


def _first_annotation(data: dict[str, Any], namespaces: Sequence[str]) -> tuple[int, dict] | None:
    for index, annotation in enumerate(data["annotations"]):
        if isinstance(annotation, dict) and annotation.get("namespace") in namespaces:
            return index, annotation
    return None


def _segments(annotation: dict[str, Any], where: str, chords: bool) -> list[dict[str, Any]]:
    items = []
    for i, obs in enumerate(observations(annotation, where)):
        try:
            end = float(obs.get("time")) + float(obs.get("duration"))
        except (TypeError, ValueError):
            end = obs.get("duration")
        items.append(segment(obs.get("time"), end, obs["value"], where=f"{where} observation {i}", chords=chords))
    return sorted_segments(items, where)


def jams_labels(data: dict[str, Any], name: str, namespaces: Mapping[str, Sequence[str]],
                reduce_chords: bool = True) -> dict[str, Any]:
    """The manifest label columns found in one parsed JAMS document (absent ones omitted)."""
    labels: dict[str, Any] = {}
    for column, spaces in namespaces.items():
        found = _first_annotation(data, spaces)
        if found is None:
            continue
        index, annotation = found
        where = f"{name} annotation {index} ({annotation['namespace']})"
        if column in ("chords", "instruments"):
            labels[column] = _segments(annotation, where, chords=column == "chords" and reduce_chords)
            continue
        values = [str(o["value"]) for o in observations(annotation, where)]
        if column == "genre":
            if not values:
                raise ValueError(f"{where}: no genre value")
            labels["genre"] = values[0]
        else:
            labels["tags"] = sorted(set(values))
    return labels


def _audio_for(jams_path: Path, rel: Path, audio_root: Path) -> Path:
    candidates = [audio_root / rel.with_suffix(ext) for ext in AUDIO_EXTENSIONS]
    found = [p for p in candidates if p.is_file()]
    if len(found) != 1:
        what = "no audio file" if not found else f"{len(found)} audio files"
        raise ValueError(f"{jams_path}: {what} for it under {audio_root} (looked for {rel.with_suffix('.*')})")
    return found[0]


def prepare_jams(
    root: str | Path,
    *,
    audio_root: str | Path | None = None,
    namespaces: Mapping[str, Sequence[str]] | None = None,
    reduce_chords: bool = True,
    split: SplitSpec = "index_modulo",
) -> pa.Table:
    """Manifest rows for a folder of ``.jams`` files (or a single one) and their audio.

    Parameters
    ----------
    root
        A ``.jams`` or ``.jamz`` file, or a folder searched recursively for both (rows in path order).
    audio_root
        Folder mirroring ``root`` that holds the audio (default: ``root``'s folder).
    namespaces
        Manifest column -> JAMS namespaces (default :data:`DEFAULT_NAMESPACES`).
    reduce_chords
        Reduce chord labels to the 25-class vocabulary.
    split
        A strategy of :mod:`autotag.data.splits`; ``artist_disjoint`` uses ``file_metadata.artist``.

    Raises
    ------
    ValueError
        Invalid JSON, a malformed annotation, or no single audio file for a JAMS file.
    """
    root = Path(root)
    namespaces = dict(DEFAULT_NAMESPACES if namespaces is None else namespaces)
    check_keys(namespaces, DEFAULT_NAMESPACES, "JAMS namespaces")
    if root.is_file():
        base, files = root.parent, [root]
    elif root.is_dir():
        base = root
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in JAMS_SUFFIXES and p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(root).parts))
    else:
        raise ValueError(f"JAMS root {root} does not exist")
    if not files:
        raise ValueError(f"JAMS root {root}: no .jams files found (nor gzipped .jamz)")
    audio_base = Path(audio_root) if audio_root is not None else base
    rows, keys, artists = [], [], []
    for path in files:
        rel = path.relative_to(base)
        data = _load(path, str(rel))
        metadata = data.get("file_metadata") or {}
        duration = metadata.get("duration")
        audio = _audio_for(path, rel, audio_base)
        row = {"track_id": track_id_from_path(rel.with_suffix("").as_posix()), "audio_path": str(audio.resolve()),
               "duration_s": float(duration) if isinstance(duration, (int, float)) and duration > 0 else None,
               **jams_labels(data, str(rel), namespaces, reduce_chords)}
        rows.append(row)
        keys.append((row["track_id"], rel.as_posix(), audio.relative_to(audio_base).as_posix()))
        artists.append(metadata.get("artist") or None)
    return finish(rows, keys, split, source=f"JAMS {root}", artists=artists)
