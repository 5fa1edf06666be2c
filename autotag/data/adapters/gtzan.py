"""GTZAN genre collection: a folder per genre holding ``<genre>.<NNNNN>.<ext>`` clips.

Layout::

    root/blues/blues.00000.wav        (the Kaggle copy; the original tarball has .au)
    root/blues/blues.00001.wav
    ...
    root/rock/rock.00099.wav

``root`` may also be the folder above ``genres/`` or ``genres_original/``. Track ids come
from the relative path (``blues/blues.00012.wav`` -> ``blues-blues-00012``, the id the
pyjama adapter gives the tutorial's ``blues+++blues.00012.wav``); rows are in path order,
which is the order :func:`~autotag.data.splits.index_modulo` counts in. The fault-filtered
split (Kereliuk & Sturm, 443/197/290 clips, shipped as ``{train,valid,test}_filtered.txt``
by sota-music-tagging-models) is ``splits.from_lists(train_txt, valid_txt, test_txt,
unlisted="drop")``.

References
----------
G. Tzanetakis and P. Cook, "Musical genre classification of audio signals", IEEE TSAP 2002.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa

from autotag.data.adapters.common import audio_files, finish, track_id_from_path
from autotag.data.splits import SplitSpec

_CLIP = re.compile(r"^(?P<genre>[A-Za-z0-9_\-]+)\.(?P<number>\d+)$")
_SUBFOLDERS = ("genres", "genres_original")


def _dataset_root(root: Path) -> Path:
    if not root.is_dir():
        raise ValueError(f"GTZAN root {root} is not a directory")
    has_genre_folders = any(len(Path(rel).parts) == 2 for rel in audio_files(root))
    for name in _SUBFOLDERS:
        if not has_genre_folders and (root / name).is_dir():
            return root / name
    return root


def prepare_gtzan(root: str | Path, *, split: SplitSpec = "index_modulo") -> pa.Table:
    """Manifest rows for a GTZAN folder tree.

    Parameters
    ----------
    root
        The folder holding one sub-folder per genre (or the folder above ``genres/``).
    split
        A split strategy (see :mod:`autotag.data.splits`); list entries may be track ids or
        paths such as ``blues/blues.00012.wav``.

    Returns
    -------
    pyarrow.Table
        A validated manifest with ``genre`` set and ``duration_s`` null.

    Raises
    ------
    ValueError
        No audio found, audio outside a genre folder, or a file not named
        ``<genre>.<number>.<ext>`` after its folder.
    """
    root = _dataset_root(Path(root))
    relative_paths = audio_files(root)
    if not relative_paths:
        raise ValueError(f"GTZAN root {root}: no audio files found (expected <genre>/<genre>.<NNNNN>.wav)")
    rows, keys = [], []
    for rel in relative_paths:
        parts = Path(rel).parts
        if len(parts) != 2:
            raise ValueError(f"GTZAN root {root}: {rel}: expected <genre>/<genre>.<NNNNN>.<ext>, one folder deep")
        folder, name = parts
        match = _CLIP.match(Path(name).stem)
        if match is None or match["genre"] != folder:
            raise ValueError(f"GTZAN root {root}: {rel}: file name must be '{folder}.<number>.<ext>'")
        track_id = track_id_from_path(rel)
        rows.append({"track_id": track_id, "audio_path": str((root / rel).resolve()), "genre": folder})
        keys.append((track_id, rel))
    return finish(rows, keys, split, source=f"GTZAN {root}")
