"""Helpers shared by the adapters: track ids from paths, segment checks, the final split + validate."""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa

from autotag.data import manifest, splits
from autotag.data.audio import AUDIO_EXTENSIONS
from autotag.data.chords import reduce_to_majmin
from autotag.data.splits import SplitSpec
from autotag.storage import is_uri

_INVALID_ID_CHARS = re.compile(r"[^A-Za-z0-9_\-]")


def track_id_from_path(relative_path: str) -> str:
    """A stable track id from a path relative to the dataset root.

    The audio extension is dropped, every character other than a letter, digit, ``_``
    or ``-`` (``/``, ``.``, spaces, ...) becomes ``-``, and leading ``-``/``_`` are
    stripped: ``blues/blues.00012.wav`` -> ``blues-blues-00012``. The same file gives the
    same id in every adapter (the pyjama ``genre+++file`` form is read as ``genre/file``).

    Raises
    ------
    ValueError
        The path has no letter or digit to make an id from.
    """
    key = splits.normalize_key(relative_path)
    track_id = _INVALID_ID_CHARS.sub("-", key).lstrip("-_")
    if not track_id:
        raise ValueError(f"cannot derive a track id from path {relative_path!r}")
    return track_id


def join_audio_path(audio_root: Path | str, relative: str) -> str:
    """``relative`` under ``audio_root`` (an absolute local path), unless it is a URI or absolute."""
    if is_uri(relative) or Path(relative).is_absolute():
        return relative
    if isinstance(audio_root, str) and is_uri(audio_root):
        return f"{audio_root.rstrip('/')}/{relative}"
    return str((Path(audio_root) / relative).resolve())


def audio_files(root: Path) -> list[str]:
    """Paths (POSIX, relative to ``root``) of the audio files under ``root``, sorted; hidden files skipped."""
    found = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if path.suffix.lower() in AUDIO_EXTENSIONS:
            found.append(PurePosixPath(*rel.parts).as_posix())
    return sorted(found)


def segment(start_s: Any, end_s: Any, label: Any, *, where: str, chords: bool) -> dict[str, Any] | None:
    """One checked ``{start_s, end_s, label}`` segment; ``None`` for a zero-length one.

    ``chords=True`` reduces the label with :func:`autotag.data.chords.reduce_to_majmin`.

    Raises
    ------
    ValueError
        Non-numeric or non-finite times, a negative start or duration, an empty or
        invalid label; the message starts with ``where``.
    """
    try:
        start, end = float(start_s), float(end_s)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: segment times {start_s!r}, {end_s!r} are not numbers") from None
    if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end < start:
        raise ValueError(f"{where}: segment [{start}, {end}] must have finite times with 0 <= start <= end")
    if not isinstance(label, str) or not label.strip():
        raise ValueError(f"{where}: segment label {label!r} must be a non-empty string")
    if end == start:
        return None
    if chords:
        try:
            label = reduce_to_majmin(label)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    return {"start_s": start, "end_s": end, "label": label.strip()}


def sorted_segments(items: Iterable[dict[str, Any] | None], where: str) -> list[dict[str, Any]]:
    """Drop zero-length segments (one warning naming ``where``) and sort by start time."""
    items = list(items)
    kept = [s for s in items if s is not None]
    if len(kept) < len(items):
        warnings.warn(f"{where}: dropped {len(items) - len(kept)} zero-length segment(s)", stacklevel=3)
    return sorted(kept, key=lambda s: (s["start_s"], s["end_s"]))


def finish(
    rows: Sequence[dict[str, Any]],
    keys: Sequence[Sequence[str]],
    split: SplitSpec,
    *,
    source: str,
    artists: Sequence[str | None] | None = None,
) -> pa.Table:
    """Assign splits (dropping rows a split list leaves out), build and validate the manifest."""
    assigned = splits.resolve(split, keys, artists, source=source)
    kept = []
    for row, split_name in zip(rows, assigned):
        if split_name is not None:
            kept.append({**row, "split": split_name})
    columns = {name: [row.get(name) for row in kept] for name in manifest.SCHEMA.names}
    try:
        table = pa.table(columns, schema=manifest.SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
        raise manifest.ManifestError(f"{source}: rows do not match the manifest schema: {exc}") from None
    return manifest.validate(table, source)


def check_keys(mapping: Mapping[str, Any], allowed: Iterable[str], what: str) -> None:
    """Reject unknown keys (typos) in a user-supplied mapping."""
    unknown = sorted(set(mapping) - set(allowed))
    if unknown:
        raise ValueError(f"{what}: unknown key(s) {unknown}; expected some of {sorted(allowed)}")


@contextmanager
def reading(path: Path) -> Iterator[None]:
    """Turn a text file that is not UTF-8, or cannot be read, into a ``ValueError`` naming it."""
    try:
        yield
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path.name}: not UTF-8 text (byte {exc.start}: {exc.object[exc.start:exc.start + 1]!r})"
                         ) from None
    except OSError as exc:
        raise ValueError(f"{path.name}: cannot read ({exc.strerror or exc})") from None
