"""MagnaTagATune: ``annotations_final.csv`` with a top-N tag selection.

The file is tab-separated with a header ``clip_id, <188 tags>, mp3_path``; each row holds
the clip id, a 0/1 per tag and the clip path (``f/<artist>-<album>-<track>-<title>-<start>-<end>.mp3``,
in one of the 16 folders ``0``..``f``). Values may be double-quoted.

Tag selection: the ``top_n`` tags with the most positive clips (ties broken by tag name),
as the tutorial keeps the 50 most frequent tags; or an explicit ``tags`` list. No
synonyms are merged (``no vocal``/``no vocals`` stay apart, as in the tutorial). Each
clip's ``tags`` is the sorted list of its selected tags, empty when it has none
(``drop_untagged=True`` leaves such clips out, as many MTT papers do).

Splits: any strategy of :mod:`autotag.data.splits` (``index_modulo`` counts rows in file
order), plus ``"mtt_folders"``, the split of Dieleman & Schrauwen (2014) used by most MTT
papers: folders ``0``-``b`` train, ``c`` valid, ``d``-``f`` test. The artist needed by
``artist_disjoint`` is the first ``-``-separated field of the file name.

References
----------
E. Law et al., "Evaluation of algorithms using games: the case of music tagging", ISMIR 2009.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import pyarrow as pa

from autotag.data.adapters.common import finish, join_audio_path, reading, track_id_from_path
from autotag.data.splits import SplitSpec

_FOLDER_SPLITS = {**{f: "train" for f in "0123456789ab"}, "c": "valid", "d": "test", "e": "test", "f": "test"}


def read_annotations(path: Path) -> tuple[list[str], list[tuple[int, str, list[str]]]]:
    """Parse ``annotations_final.csv``.

    Returns
    -------
    tags, clips
        The tag names in column order, and per clip ``(line number, mp3_path, positive tags)``.

    Raises
    ------
    ValueError
        A bad header, a row with the wrong number of columns, a tag value other than 0/1,
        or an empty clip path; the message names the file and line.
    """
    name = path.name
    with reading(path), path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t", quotechar='"')
        header = next(reader, None)
        if not header or header[0] != "clip_id" or header[-1] != "mp3_path" or len(header) < 3:
            raise ValueError(f"{name} line 1: expected a tab-separated header 'clip_id', <tags...>, 'mp3_path'")
        tags = header[1:-1]
        clips = []
        for row in reader:
            line = reader.line_num
            if not row or row == [""]:
                continue
            if len(row) != len(header):
                raise ValueError(f"{name} line {line}: expected {len(header)} columns, got {len(row)}")
            values = row[1:-1]
            bad = next((i for i, v in enumerate(values) if v not in ("0", "1")), None)
            if bad is not None:
                raise ValueError(f"{name} line {line}: tag {tags[bad]!r} is {values[bad]!r}; expected 0 or 1")
            if not row[-1].strip():
                raise ValueError(f"{name} line {line}: empty mp3_path")
            clips.append((line, row[-1].strip(), [t for t, v in zip(tags, values) if v == "1"]))
    return tags, clips


def select_tags(tags: Sequence[str], clips: Sequence[tuple[int, str, list[str]]], top_n: int | None) -> list[str]:
    """The ``top_n`` most frequent tags (ties by name), sorted by name; all tags for ``None``."""
    counts = {tag: 0 for tag in tags}
    for _line, _path, positive in clips:
        for tag in positive:
            counts[tag] += 1
    ranked = sorted(counts, key=lambda t: (-counts[t], t))
    if top_n is not None:
        if top_n < 1:
            raise ValueError(f"top_n={top_n}: expected a positive number of tags")
        ranked = ranked[:top_n]
    return sorted(ranked)


def prepare_mtt(
    annotations: str | Path,
    *,
    audio_root: str | Path | None = None,
    top_n: int | None = 50,
    tags: Sequence[str] | None = None,
    drop_untagged: bool = False,
    split: SplitSpec = "index_modulo",
) -> pa.Table:
    """Manifest rows for MagnaTagATune clips.

    Parameters
    ----------
    annotations
        Path of ``annotations_final.csv``.
    audio_root
        The folder holding ``0/``..``f/`` (default: the CSV's folder).
    top_n
        Keep the ``top_n`` most frequent tags (``None``: all 188). Ignored when ``tags`` is given.
    tags
        An explicit tag vocabulary (every name must be a column of the file).
    drop_untagged
        Leave out clips with none of the selected tags.
    split
        A strategy of :mod:`autotag.data.splits` or ``"mtt_folders"``.

    Returns
    -------
    pyarrow.Table
        A validated manifest with ``tags`` set.
    """
    path = Path(annotations)
    if not path.is_file():
        raise ValueError(f"MagnaTagATune annotations {path} do not exist")
    all_tags, clips = read_annotations(path)
    if tags is not None:
        unknown = sorted(set(tags) - set(all_tags))
        if unknown:
            raise ValueError(f"{path.name}: tag(s) {unknown} are not columns of the file")
        vocabulary = set(tags)
    else:
        vocabulary = set(select_tags(all_tags, clips, top_n))
    root = Path(audio_root) if audio_root is not None else path.parent
    rows, keys, artists, folder_splits = [], [], [], {}
    for line, mp3_path, positive in clips:
        clip_tags = sorted(t for t in positive if t in vocabulary)
        if drop_untagged and not clip_tags:
            continue
        track_id = track_id_from_path(mp3_path)
        rows.append({"track_id": track_id, "audio_path": join_audio_path(root, mp3_path), "tags": clip_tags})
        keys.append((track_id, mp3_path))
        artists.append(PurePosixPath(mp3_path).name.split("-")[0])
        folder = PurePosixPath(mp3_path).parts[0]
        if split == "mtt_folders" and folder not in _FOLDER_SPLITS:
            raise ValueError(f"{path.name} line {line}: split 'mtt_folders' needs a path in folders 0..f, "
                             f"got {mp3_path!r}")
        folder_splits[track_id] = _FOLDER_SPLITS.get(folder)
    if split == "mtt_folders":
        split = folder_splits
    return finish(rows, keys, split, source=str(path), artists=artists)
