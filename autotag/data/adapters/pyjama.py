"""The tutorial's pyjama JSON annotations (GTZAN genre, MagnaTagATune tags, RWC-Pop chords).

Format (Peeters et al., *Deep Learning 101 for Audio-based MIR*)::

    {"schemaversion": 1.31,
     "collection": {"descriptiondefinition": {...},
                    "entry": [{"filepath": [{"value": "blues+++blues.00000.wav"}],
                               "genre": [{"value": "blues"}]},
                              {"filepath": [{"value": "001"}],
                               "chord": [{"value": "G#:min", "time": 0.104, "duration": 1.754}, ...]},
                              ...]}}

Every field is a list of ``{"value": ...}`` atoms; segment atoms add ``time`` and
``duration`` (seconds). ``filepath`` uses ``+++`` as the folder separator, so the audio of
``blues+++blues.00000.wav`` is ``<audio_root>/blues/blues.00000.wav`` and its track id
``blues-blues-00000`` (the GTZAN adapter's id for the same clip). The tutorial keeps its
audio in an HDF5 file keyed by ``filepath``; export it to files under ``audio_root`` first.

Labels: ``genre`` (exactly one atom), ``tag`` (any number; sorted, duplicates removed),
``chord`` segments reduced to the 25-class vocabulary (``N:-`` -> ``N``; see
:mod:`autotag.data.chords`) unless ``reduce_chords=False``, and optionally instrument
segments. ``descriptiondefinition`` is ignored, as in the tutorial. Rows keep entry
order, the order the tutorial's ``idx % 5`` split counts in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from autotag.data.adapters.common import (
    finish,
    join_audio_path,
    reading,
    segment,
    sorted_segments,
    track_id_from_path,
)
from autotag.data.splits import SplitSpec

FOLDER_SEPARATOR = "+++"


def load_entries(path: Path) -> list[dict[str, Any]]:
    """The ``collection.entry`` list of a pyjama file.

    Raises
    ------
    ValueError
        Invalid JSON (with its line and column) or a missing ``collection.entry`` list.
    """
    try:
        with reading(path):
            data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path.name} line {exc.lineno} column {exc.colno}: invalid JSON ({exc.msg})") from None
    entries = data.get("collection", {}).get("entry") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{path.name}: expected a JSON object with a 'collection' holding an 'entry' list")
    return entries


def _atoms(entry: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    atoms = entry.get(key, [])
    if not isinstance(atoms, list) or not all(isinstance(a, dict) and "value" in a for a in atoms):
        raise ValueError(f"{where}: field {key!r} must be a list of {{'value': ...}} atoms")
    return atoms


def _single_value(entry: dict[str, Any], key: str, where: str) -> str | None:
    atoms = _atoms(entry, key, where)
    if not atoms:
        return None
    if len(atoms) > 1:
        raise ValueError(f"{where}: field {key!r} has {len(atoms)} values; expected one")
    value = atoms[0]["value"]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: field {key!r} value {value!r} must be a non-empty string")
    return value


def _segments(entry: dict[str, Any], key: str, where: str, chords: bool) -> list[dict[str, Any]] | None:
    if key not in entry:
        return None
    items = []
    for i, atom in enumerate(_atoms(entry, key, where)):
        if "time" not in atom or "duration" not in atom:
            raise ValueError(f"{where}: {key} atom {i} needs 'time' and 'duration'")
        try:
            end = float(atom["time"]) + float(atom["duration"])
        except (TypeError, ValueError):
            end = atom["duration"]  # let segment() name the bad value
        items.append(segment(atom["time"], end, atom["value"], where=f"{where} {key} atom {i}", chords=chords))
    return sorted_segments(items, where)


def _entry_row(entry: Any, index: int, source: str, keys: dict[str, str | None], audio: tuple[str | Path, str],
               reduce_chords: bool) -> tuple[dict[str, Any], str, str | None]:
    where = f"{source} entry {index}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a JSON object")
    filepath = _single_value(entry, "filepath", where)
    if filepath is None:
        raise ValueError(f"{where}: missing 'filepath'")
    relative = filepath.replace(FOLDER_SEPARATOR, "/")
    try:
        track_id = track_id_from_path(relative)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    row: dict[str, Any] = {"track_id": track_id, "audio_path": join_audio_path(audio[0], relative + audio[1])}
    if keys["genre"]:
        row["genre"] = _single_value(entry, keys["genre"], where)
    if keys["tags"] and keys["tags"] in entry:
        row["tags"] = sorted({str(a["value"]) for a in _atoms(entry, keys["tags"], where)})
    if keys["chords"]:
        row["chords"] = _segments(entry, keys["chords"], where, chords=reduce_chords)
    if keys["instruments"]:
        row["instruments"] = _segments(entry, keys["instruments"], where, chords=False)
    artist = _single_value(entry, "artist", where) if entry.get("artist") else None
    return row, relative, artist


def prepare_pyjama(
    path: str | Path,
    *,
    audio_root: str | Path | None = None,
    audio_suffix: str = "",
    genre_key: str | None = "genre",
    tags_key: str | None = "tag",
    chords_key: str | None = "chord",
    instruments_key: str | None = None,
    reduce_chords: bool = True,
    split: SplitSpec = "index_modulo",
) -> pa.Table:
    """Manifest rows for a pyjama file.

    Parameters
    ----------
    path
        The ``.pyjama`` (JSON) file.
    audio_root
        Folder the ``filepath`` values are relative to (default: the file's folder).
    audio_suffix
        Appended to every ``filepath`` (RWC-Pop's ``"001"`` with ``".wav"``).
    genre_key, tags_key, chords_key, instruments_key
        Which pyjama fields hold each label (``None``: not read). Absent fields give nulls.
    reduce_chords
        Reduce chord labels to the 25-class vocabulary (otherwise keep the Harte labels).
    split
        A strategy of :mod:`autotag.data.splits`; ``artist_disjoint`` uses the ``artist`` field.

    Raises
    ------
    ValueError
        Invalid JSON, a malformed entry or label; the message names the file and entry index.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"pyjama file {path} does not exist")
    entries = load_entries(path)
    keys = {"genre": genre_key, "tags": tags_key, "chords": chords_key, "instruments": instruments_key}
    audio = (audio_root if audio_root is not None else path.parent, audio_suffix)
    rows, row_keys, artists = [], [], []
    for index, entry in enumerate(entries):
        row, relative, artist = _entry_row(entry, index, path.name, keys, audio, reduce_chords)
        rows.append(row)
        row_keys.append((row["track_id"], relative))
        artists.append(artist)
    return finish(rows, row_keys, split, source=str(path), artists=artists)
