"""Where run artefacts live: local paths or URIs, their filesystems, and the one atomic writer.

Conventions
-----------
- A *location* is a local path or a URI (``s3://bucket/key``, ``gs://...``, ``file:///x``);
  :func:`is_uri` tells them apart and :func:`filesystem_and_path` maps either to a pyarrow
  filesystem and the path inside it (filesystems are cached per scheme and bucket, since
  creating an S3 filesystem costs a network round trip).
- :func:`join` appends parts to a location; URIs keep their scheme.
- Every file autotag writes for another stage or for a person goes through
  :func:`atomic_write`: the content is written to a hidden unique sibling name
  (``.<name>.tmp-<hex>``) and moved over the target, so a reader never sees a half-written
  file and a crash leaves the old file (or none) in place. :func:`atomic_write_bytes` and
  :func:`atomic_write_table` (Parquet) are the two shapes of content it takes;
  :func:`replace_directory` publishes a whole folder the same way.

Nothing here imports torch, Ray or any stage.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

Location = str | os.PathLike[str]
"""A local path or a URI."""

TMP_MARK = ".tmp-"
"""Part of every temporary name :func:`atomic_write` uses (``.<name>.tmp-<hex>``)."""

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_FILESYSTEMS: dict[tuple[str, str], tuple[pafs.FileSystem, str]] = {}


def is_uri(location: Location) -> bool:
    """Whether ``location`` is a URI (``s3://bucket/key``, ``file:///x``) rather than a local path."""
    return bool(_URI.match(os.fspath(location)))


def _filesystem_for(uri: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem of ``uri`` and the prefix its paths take (``bucket`` for ``s3://bucket/...``)."""
    parsed = urlparse(uri)
    key = (parsed.scheme, parsed.netloc)
    if key not in _FILESYSTEMS:
        filesystem, path = pafs.FileSystem.from_uri(uri)
        rest = unquote(parsed.path)
        if not path.endswith(rest):
            raise ValueError(f"cannot map URI {uri!r} to a filesystem path (got {path!r})")
        _FILESYSTEMS[key] = filesystem, path[: len(path) - len(rest)]
    return _FILESYSTEMS[key]


def filesystem_and_path(location: Location) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and the path inside it of a local path or a URI.

    ``file:///data/a.flac`` and ``/data/a.flac`` both give the local filesystem and
    ``/data/a.flac``; ``s3://bucket/a.flac`` gives an S3 filesystem and ``bucket/a.flac``.
    """
    text = os.fspath(location)
    if not is_uri(text):
        return pafs.LocalFileSystem(), os.path.abspath(text)
    filesystem, prefix = _filesystem_for(text)
    return filesystem, prefix + unquote(urlparse(text).path)


def join(root: Location, *parts: str) -> str:
    """``root/part/...`` for a local path or a URI (URIs keep their scheme)."""
    text = os.fspath(root)
    if is_uri(text):
        return "/".join([text.rstrip("/"), *parts])
    return str(Path(text, *parts))


def temporary_name(path: str) -> str:
    """A unique hidden sibling of ``path`` (``<folder>/.<name>.tmp-<hex>``)."""
    folder, _, base = path.rpartition("/")
    return f"{folder}/.{base}{TMP_MARK}{uuid.uuid4().hex[:12]}"


def atomic_write(location: Location, write: Callable[[pafs.FileSystem, str], None]) -> str:
    """Run ``write(filesystem, tmp_path)`` and move the result onto ``location``.

    Parameters
    ----------
    location
        The target file (local path or URI); its folder is created.
    write
        Writes the whole content to ``tmp_path`` on ``filesystem``.

    Returns
    -------
    str
        ``location`` as a string.
    """
    filesystem, path = filesystem_and_path(location)
    folder = path.rpartition("/")[0]
    if folder:
        filesystem.create_dir(folder, recursive=True)
    tmp = temporary_name(path)
    try:
        write(filesystem, tmp)
        filesystem.move(tmp, path)
    except BaseException:
        if filesystem.get_file_info(tmp).type != pafs.FileType.NotFound:
            filesystem.delete_file(tmp)
        raise
    return os.fspath(location)


def atomic_write_bytes(location: Location, data: bytes) -> Path:
    """Write ``data`` to ``location`` atomically (see :func:`atomic_write`)."""

    def write(filesystem: pafs.FileSystem, tmp: str) -> None:
        with filesystem.open_output_stream(tmp) as stream:
            stream.write(data)

    return Path(atomic_write(location, write))


def atomic_write_table(table: pa.Table, location: Location) -> Path:
    """Write ``table`` as one Parquet file at ``location`` atomically (see :func:`atomic_write`)."""
    return Path(atomic_write(location, lambda fs, tmp: pq.write_table(table, tmp, filesystem=fs)))


def replace_directory(source: Location, target: Location) -> Path:
    """Copy the local folder ``source`` to ``target``, replacing any old ``target`` by renames.

    The copy is made under a hidden sibling name first, so ``target`` is always either the
    old folder or the complete new one (a crash between the two renames leaves the old one
    under ``.<name>.old``).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}{TMP_MARK}{uuid.uuid4().hex[:12]}")
    shutil.copytree(source, tmp)
    old = target.with_name(f".{target.name}.old")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target
