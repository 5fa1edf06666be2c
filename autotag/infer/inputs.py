"""What to tag: a manifest, a folder, a glob, a CSV/Parquet list, or WebDataset shards.

Every source becomes rows of ``track_id`` and ``audio_path`` (local path or pyarrow
filesystem URI such as ``s3://bucket/a.flac``); WebDataset shards are read by Ray Data
directly and carry the FLAC bytes instead (see ``pipelines/infer.py``). Tagging a
catalogue never requires copying or sharding it first.
"""

from __future__ import annotations

import glob as globlib
import hashlib
import logging
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from autotag import errors, storage
from autotag.data.adapters.common import track_id_from_path
from autotag.data.audio import AUDIO_EXTENSIONS
from autotag.data.catalogue import FolderScan, scan_folder
from autotag.storage import is_uri

ROWS_SCHEMA = pa.schema([("track_id", pa.string()), ("audio_path", pa.string())])
log = logging.getLogger("autotag.infer")


class InputError(errors.InputError):
    """An inference input that does not exist, cannot be read, or holds nothing to tag.

    A :class:`~autotag.errors.UserError`: ``infer.input`` (or the manifest) names it, and the
    command line ends with its one line and exit code 2, like any bad setting.
    """


def check_source(source: str | None, manifest_path: str) -> None:
    """Fail before Ray starts when the input is a local path that is missing or unreadable.

    Raises
    ------
    InputError
        A missing folder, manifest or shard file, or a folder that cannot be listed.
    """
    if source is None:
        if not is_uri(manifest_path) and not Path(manifest_path).exists():
            raise InputError(f"infer: no infer.input and the dataset manifest {manifest_path} does not exist "
                             "(run pipelines.shard first, or give infer.input=<folder, glob, list or shards>)")
        return
    if is_uri(source) or any(c in source for c in "*?["):
        return
    path = Path(source)
    if not path.exists():
        raise InputError(f"infer input {source}: no such folder, glob, manifest or shard")
    if path.is_dir() and not os.access(path, os.R_OK | os.X_OK):
        raise InputError(f"infer input {source}: the folder cannot be read (permission denied)")


def kind_of(source: str) -> str:
    """``manifest`` (.parquet/.csv), ``shards`` (.tar files), ``glob`` or ``folder``."""
    lower = source.lower()
    if lower.endswith((".parquet", ".csv")):
        return "manifest"
    if lower.endswith(".tar") or (not any(c in source for c in "*?[") and _has_tars(source)):
        return "shards"
    if any(c in source for c in "*?["):
        return "glob"
    return "folder"


def _has_tars(source: str) -> bool:
    path = Path(source)
    return not is_uri(source) and path.is_dir() and next(path.rglob("*.tar"), None) is not None


def unique_ids(relative_paths: list[str]) -> list[str]:
    """Track ids from relative paths; colliding ids get a short hash of their path."""
    ids = [track_id_from_path(p) for p in relative_paths]
    seen: dict[str, int] = {}
    for i in ids:
        seen[i] = seen.get(i, 0) + 1
    return [i if seen[i] == 1 else f"{i}-{hashlib.sha1(p.encode()).hexdigest()[:8]}"
            for i, p in zip(ids, relative_paths)]


def _listing(source: str) -> tuple[list[str], list[str], FolderScan]:
    """(full paths, paths relative to the source, the scan) of the audio files under a folder or URI.

    Local paths stay as found under the root (symbolic links keep their own names).
    """
    if is_uri(source):
        scan = FolderScan()
        try:
            for relative in storage.relative_files(source):  # one paginated listing of the prefix
                if relative.lower().endswith(AUDIO_EXTENSIONS) and not relative.startswith("."):
                    scan.candidates.append(relative)
                else:  # no content sniffing on object stores: a request per file
                    scan.skipped[Path(relative).suffix.lower() or "(no suffix)"] += 1
        except OSError as exc:  # no such prefix or bucket, an endpoint that refuses, no credentials
            raise InputError(f"infer input {source}: cannot list ({' '.join(str(exc).split())})") from None
        scan.candidates.sort()
        return [storage.join(source, r) for r in scan.candidates], scan.candidates, scan
    try:
        scan = scan_folder(source)
    except OSError as exc:
        raise InputError(f"infer input {source}: no such folder, glob, manifest or shard, or unreadable "
                         f"({exc.strerror or exc})") from None
    root = os.path.abspath(source)
    return [os.path.join(root, *r.split("/")) for r in scan.candidates], scan.candidates, scan


def _globbed(source: str) -> tuple[list[str], list[str], FolderScan]:
    """(full paths, paths relative to the glob's fixed part, the scan) of the audio files a glob matches."""
    base = os.path.abspath(Path(source.split("*")[0]).parent if "*" in source else Path(source).parent)
    scan = FolderScan()
    for match in sorted(globlib.glob(source, recursive=True)):
        if os.path.isdir(match):
            continue
        path = os.path.abspath(match)
        scan.add(path, Path(os.path.relpath(path, base)).as_posix())
    return [os.path.join(base, *r.split("/")) for r in scan.candidates], scan.candidates, scan


def track_rows(source: str) -> pa.Table:
    """``track_id``/``audio_path`` rows for a folder, glob or manifest (not shards)."""
    kind = kind_of(source)
    if kind == "manifest":
        table = _read_table(source)
        if "audio_path" not in table.column_names:
            raise InputError(f"infer input {source}: no audio_path column (columns: {table.column_names})")
        if "track_id" not in table.column_names:
            table = table.append_column("track_id", pa.array(unique_ids(table.column("audio_path").to_pylist())))
        table = table.select(["track_id", "audio_path"]).cast(ROWS_SCHEMA)
    else:
        paths, relative, scan = _globbed(source) if kind == "glob" else _listing(source)
        if scan.skipped:
            log.info("infer input %s: %d audio file(s); skipped %s", source, len(paths), scan.skipped_summary())
        table = pa.table({"track_id": unique_ids(relative), "audio_path": paths}, schema=ROWS_SCHEMA)
    if table.num_rows == 0:
        skipped = f"; skipped {scan.skipped_summary()}" if kind != "manifest" and scan.skipped else ""
        raise InputError(f"infer input {source}: no audio files found (extensions "
                         f"{', '.join(AUDIO_EXTENSIONS)}, or audio content){skipped}")
    ids = table.column("track_id")
    if pc.count_distinct(ids).as_py() != table.num_rows:
        raise InputError(f"infer input {source}: duplicate track_id values")
    return table


def _read_table(source: str) -> pa.Table:
    try:
        if source.lower().endswith(".parquet"):
            return storage.read_table(source)
        with storage.open_input(source) as stream:
            return pacsv.read_csv(stream)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"infer input {source}: cannot read ({exc})") from None


def shard_files(source: str) -> list[str]:
    """The tar files of a shard folder, glob or single tar."""
    if source.lower().endswith(".tar") and not any(c in source for c in "*?["):
        files = [source]
    elif any(c in source for c in "*?["):
        files = sorted(globlib.glob(source, recursive=True))
    else:
        files = sorted(str(p) for p in Path(source).rglob("*.tar"))
    if not files:
        raise InputError(f"infer input {source}: no .tar shards")
    return files
