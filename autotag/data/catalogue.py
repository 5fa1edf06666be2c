"""Which files of a folder are audio: by suffix, else by content, with a count of the rest.

A real music library holds audio in many containers next to cover art, cue sheets, logs,
playlists and hidden files. :func:`scan_folder` walks a folder (following symbolic links to
folders outside it, once each, never in a loop) and sorts every entry into exactly one of two lists:

- **candidates**: a suffix of :data:`autotag.data.audio.AUDIO_EXTENSIONS`, or content that
  starts like an audio container (:func:`sniff`), whatever the name. Each becomes a track
  (an ``ok`` or ``error`` row): a broken file or link is reported, not dropped.
- **skipped**, counted by reason: hidden files and folders (a name starting with ``.``),
  known sidecars (:data:`SIDECAR_EXTENSIONS`: labels, JAMS, JSON, cue sheets, images,
  playlists, text), and any other file whose content is not audio, counted by suffix.

Paths are kept as found under the root (``os.path.abspath``, never ``resolve``): a symbolic
link is listed under its own name, and two links to one file are two candidates.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from autotag.data.audio import AUDIO_EXTENSIONS

SIDECAR_EXTENSIONS = frozenset({
    ".lab", ".jams", ".jamz", ".json", ".cue", ".txt", ".nfo", ".log", ".md", ".pdf", ".csv", ".parquet", ".xml",
    ".m3u", ".m3u8", ".pls", ".xspf", ".sfv", ".md5", ".accurip", ".lrc", ".srt",
    ".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".heic", ".ico", ".svg",
})
"""Suffixes skipped by rule: annotations, sheets, lists and images that travel with audio."""

_MAGIC: tuple[tuple[int, bytes], ...] = (
    (0, b"RIFF"), (0, b"RIFX"), (0, b"RF64"), (0, b"BW64"), (0, b"riff"),  # WAV, W64
    (0, b"fLaC"), (0, b"OggS"), (0, b"ID3"), (0, b"FORM"), (0, b".snd"), (0, b"caff"),
    (0, b"MAC "), (0, b"wvpk"), (0, b"TTA1"), (0, b"MPCK"), (0, b"MP+"), (0, b"tBaK"), (0, b"ajkg"),
    (0, b"DSD "), (0, b"#!AMR"), (0, b"Creative Voice File"), (0, b"\x1aE\xdf\xa3"),  # Matroska/WebM
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"),  # ASF (WMA)
    (0, b"\x0b\x77"),  # AC-3
    (4, b"ftyp"),  # MP4/M4A/MOV
)
SNIFF_BYTES = 32


def sniff(head: bytes) -> bool:
    """Whether the first bytes of a file look like an audio container or an MPEG/ADTS stream."""
    if any(head[offset:offset + len(magic)] == magic for offset, magic in _MAGIC):
        return True
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0  # MPEG audio / ADTS frame sync


def _suffix_key(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return suffix if suffix else "(no suffix)"


@dataclass
class FolderScan:
    """Audio candidates (POSIX paths relative to the root, sorted) and the skipped entries by reason."""

    candidates: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    def add(self, path: str, relative: str) -> None:
        """File ``path`` (``relative`` to the root) as a candidate, or as a skip counted by its reason."""
        reason = classify(path, relative)
        if reason is None:
            self.candidates.append(relative)
        else:
            self.skipped[reason] += 1

    def skipped_summary(self) -> str:
        """``12 files: 9 .txt, 3 .jpg`` (most frequent first), or an empty string."""
        total = sum(self.skipped.values())
        if not total:
            return ""
        parts = ", ".join(f"{n} {key}" for key, n in sorted(self.skipped.items(), key=lambda kv: (-kv[1], kv[0])))
        return f"{total} file{'s' if total != 1 else ''}: {parts}"


def classify(path: str, relative: str) -> str | None:
    """``None`` for an audio candidate, else the reason it is skipped (a suffix or a rule)."""
    if any(part.startswith(".") for part in Path(relative).parts):
        return "hidden"
    suffix = Path(relative).suffix.lower()
    if suffix in AUDIO_EXTENSIONS:
        return None  # even when broken, missing (a dangling link) or empty: it gets an error row
    if suffix in SIDECAR_EXTENSIONS:
        return suffix
    if not os.path.isfile(path):
        return "dangling links" if os.path.islink(path) else "not regular files"
    try:
        with open(path, "rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError:
        return "unreadable files"
    return None if sniff(head) else _suffix_key(relative)


def scan_folder(root: str | Path) -> FolderScan:
    """Every entry under ``root``: an audio candidate or a counted skip.

    Raises
    ------
    OSError
        ``root`` is missing, not a folder, or cannot be listed.
    """
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root}: no such folder")
    os.listdir(root)  # raises PermissionError for an unreadable root; os.walk would say nothing
    scan, seen = FolderScan(), {os.path.realpath(root)}
    unreadable: list[str] = []
    for folder, dirs, files in os.walk(root, followlinks=True, onerror=lambda exc: unreadable.append(exc.filename)):
        dirs[:] = sorted(_new_folders(folder, dirs, seen, scan))
        for name in files:
            path = os.path.join(folder, name)
            scan.add(path, Path(os.path.relpath(path, root)).as_posix())
    scan.skipped["unreadable folders"] += len(unreadable)
    scan.skipped = Counter({k: n for k, n in scan.skipped.items() if n})
    scan.candidates.sort()
    return scan


def _new_folders(folder: str, names: Iterable[str], seen: set[str], scan: FolderScan) -> list[str]:
    """Sub-folders to descend into: real ones, and links to folders outside the input, each once.

    A link to a folder inside the input is not followed (its files are listed where they lie),
    nor a second link to a folder already scanned, so a link loop ends.
    """
    kept = []
    for name in sorted(names):
        path = os.path.join(folder, name)
        if name.startswith("."):
            scan.skipped["hidden folders"] += 1
            continue
        if os.path.islink(path):
            real = os.path.realpath(path)
            if any(real == s or real.startswith(s.rstrip(os.sep) + os.sep) for s in seen):
                scan.skipped["folder links already scanned"] += 1
                continue
            seen.add(real)
        kept.append(name)
    return kept
