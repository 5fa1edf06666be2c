"""What to tag: a manifest, a folder, a glob, a CSV/Parquet list, or WebDataset shards.

Every source becomes rows of ``track_id`` and ``audio_path`` (local path or pyarrow
filesystem URI such as ``s3://bucket/a.flac``); WebDataset shards are read by Ray Data
directly and carry the FLAC bytes instead (see ``pipelines/infer.py``). Tagging a
catalogue never requires copying or sharding it first.
"""

from __future__ import annotations

import glob as globlib
import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from autotag.data.adapters.common import track_id_from_path
from autotag.data.audio import AUDIO_EXTENSIONS
from autotag.storage import is_uri

ROWS_SCHEMA = pa.schema([("track_id", pa.string()), ("audio_path", pa.string())])


class InputError(ValueError):
    """An inference input that does not exist or holds nothing to tag."""


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


def _listing(source: str) -> tuple[list[str], list[str]]:
    """(full paths, paths relative to the source) of the audio files under a folder or URI."""
    if is_uri(source):
        filesystem, root = pafs.FileSystem.from_uri(source)
        infos = filesystem.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=False))
        scheme = source.split("://", 1)[0]
        files = sorted(i.path for i in infos
                       if i.type == pafs.FileType.File and i.path.lower().endswith(AUDIO_EXTENSIONS))
        return [f"{scheme}://{f}" for f in files], [f[len(root):].lstrip("/") for f in files]
    root = Path(source)
    if not root.is_dir():
        raise InputError(f"infer input {source}: no such folder, glob, manifest or shard")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
    return [str(p.resolve()) for p in files], [str(p.relative_to(root)) for p in files]


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
        if kind == "glob":
            files = sorted(p for p in globlib.glob(source, recursive=True) if p.lower().endswith(AUDIO_EXTENSIONS))
            base = Path(source.split("*")[0]).parent if "*" in source else Path(source).parent
            paths = [str(Path(p).resolve()) for p in files]
            relative = [str(Path(p).resolve().relative_to(base.resolve())) for p in files]
        else:
            paths, relative = _listing(source)
        table = pa.table({"track_id": unique_ids(relative), "audio_path": paths}, schema=ROWS_SCHEMA)
    if table.num_rows == 0:
        raise InputError(f"infer input {source}: no audio files found (extensions {', '.join(AUDIO_EXTENSIONS)})")
    ids = table.column("track_id")
    if pc.count_distinct(ids).as_py() != table.num_rows:
        raise InputError(f"infer input {source}: duplicate track_id values")
    return table


def _read_table(source: str) -> pa.Table:
    try:
        return pq.read_table(source) if source.lower().endswith(".parquet") else pacsv.read_csv(source)
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
