"""A folder of audio files with matching ``.lab`` segment files (chords, or instrument activity).

A ``.lab`` file has one segment per line, ``<start_s> <end_s> <label>``, separated by
spaces or tabs (the format of the Isophonics, Billboard and RWC chord annotations and
of mir_eval's ``load_labeled_intervals``); blank lines and lines starting with ``#`` are
skipped. ``song.wav`` is labelled by ``song.lab`` at the same relative path under
``lab_root`` (default: beside the audio).

Chord labels are reduced to the 25-class vocabulary of :mod:`autotag.data.chords` unless
``reduce_chords=False``; with ``kind="instruments"`` labels are kept as written.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from autotag.data.adapters.common import audio_files, finish, reading, segment, sorted_segments, track_id_from_path
from autotag.data.splits import SplitSpec

KINDS = ("chords", "instruments")


def lab_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, str, list[str]]]:
    """The segment lines of a ``.lab`` file: ``(line number, line, whitespace-split fields)``.

    The one reader of the format: blank lines and ``#`` comments are skipped; callers check
    the fields (:func:`read_lab` for manifests, :func:`autotag.evaluate.chords.load_lab` for
    mir_eval references).

    Raises
    ------
    ValueError
        The file is not UTF-8 text or cannot be read (``<name>: not UTF-8 text ...``).
    """
    with reading(Path(path)):
        text = Path(path).read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            yield number, line, line.split()


def read_lab(path: str | Path, *, chords: bool = True) -> list[dict[str, Any]]:
    """Segments ``{start_s, end_s, label}`` of a ``.lab`` file, sorted by start.

    Parameters
    ----------
    path
        The ``.lab`` file.
    chords
        Reduce labels with :func:`autotag.data.chords.reduce_to_majmin` (invalid Harte
        labels then raise).

    Raises
    ------
    ValueError
        A line without three fields, non-numeric or decreasing times, a bad label; the
        message names the file and line.
    """
    path = Path(path)
    items = []
    for number, line, fields in lab_lines(path):
        where = f"{path.name} line {number}"
        if len(fields) < 3:
            raise ValueError(f"{where}: expected '<start_s> <end_s> <label>', got {len(fields)} field(s)")
        label = line.strip().split(None, 2)[2]
        if len(fields) > 3:
            raise ValueError(f"{where}: label {label!r} contains whitespace; expected one Harte label")
        items.append(segment(fields[0], fields[1], label, where=where, chords=chords))
    return sorted_segments(items, path.name)


def prepare_lab(
    root: str | Path,
    *,
    lab_root: str | Path | None = None,
    kind: str = "chords",
    reduce_chords: bool = True,
    require_labels: bool = True,
    split: SplitSpec = "index_modulo",
) -> pa.Table:
    """Manifest rows for the audio files under ``root`` and their ``.lab`` files.

    Parameters
    ----------
    root
        Folder searched recursively for audio files (rows in path order).
    lab_root
        Folder mirroring ``root`` that holds the ``.lab`` files (default ``root``).
    kind
        Which manifest column the segments fill: ``chords`` or ``instruments``.
    reduce_chords
        For ``kind="chords"``: reduce labels to the 25-class vocabulary.
    require_labels
        Raise for an audio file without a ``.lab`` (otherwise its label is null).
    split
        A strategy of :mod:`autotag.data.splits`.

    Raises
    ------
    ValueError
        No audio, a missing ``.lab`` (with ``require_labels``), or a malformed ``.lab``.
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}: expected one of {KINDS}")
    root = Path(root)
    labs = Path(lab_root) if lab_root is not None else root
    if not root.is_dir():
        raise ValueError(f".lab dataset root {root} is not a directory")
    relative_paths = audio_files(root)
    if not relative_paths:
        raise ValueError(f".lab dataset root {root}: no audio files found")
    rows, keys, used = [], [], set()
    for rel in relative_paths:
        lab = (labs / rel).with_suffix(".lab")
        row = {"track_id": track_id_from_path(rel), "audio_path": str((root / rel).resolve())}
        if lab.is_file():
            row[kind] = read_lab(lab, chords=kind == "chords" and reduce_chords)
            used.add(lab.resolve())
        elif require_labels:
            raise ValueError(f"{root / rel}: no label file {lab} (pass require_labels=False to keep it unlabelled)")
        rows.append(row)
        keys.append((row["track_id"], rel))
    orphans = [p for p in labs.rglob("*.lab") if p.resolve() not in used]
    if orphans:
        warnings.warn(f"{labs}: {len(orphans)} .lab file(s) without audio, e.g. {orphans[0]}", stacklevel=2)
    return finish(rows, keys, split, source=f".lab dataset {root}")
