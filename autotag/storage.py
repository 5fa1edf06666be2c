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
  :func:`replace_directory` publishes a whole folder the same way (on an object store, where
  folders cannot be renamed, file by file with ``meta.json``-style last files last).
- :func:`location` gives a path-like object for either kind: :class:`pathlib.Path` for local
  paths, :class:`UriPath` (the same small subset of its methods, over a pyarrow filesystem)
  for URIs, so code that joins, lists and reads run folders reads the same for both.

Object stores
-------------
S3 credentials, region and endpoint come from the standard AWS environment variables and
files (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, ``AWS_PROFILE``, ...);
``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` names an S3-compatible store (MinIO, Ceph,
moto). Transient failures (refused or reset connections, 5xx, throttling) are retried by
pyarrow's AWS standard retry strategy, ``AWS_MAX_ATTEMPTS`` attempts (default 3, as the AWS
SDKs), and a request that takes longer than ``AUTOTAG_S3_REQUEST_TIMEOUT_S`` seconds (default:
the SDK's) fails and is retried. The ``runtime.s3_*`` config keys set these variables for
the driver and every Ray worker (:func:`object_store_env`); unset, the environment decides.

Nothing here imports torch, Ray or any stage.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
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
_FILESYSTEMS: dict[tuple[str, ...], tuple[pafs.FileSystem, str]] = {}


def is_uri(location: Location) -> bool:
    """Whether ``location`` is a URI (``s3://bucket/key``, ``file:///x``) rather than a local path."""
    return bool(_URI.match(os.fspath(location)))


ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
"""Where an S3-compatible endpoint is named, most specific first (the AWS SDKs' order)."""
MAX_ATTEMPTS_VARIABLE = "AWS_MAX_ATTEMPTS"
REQUEST_TIMEOUT_VARIABLE = "AUTOTAG_S3_REQUEST_TIMEOUT_S"
DEFAULT_MAX_ATTEMPTS = 3
_SETTINGS = (*ENDPOINT_VARIABLES, MAX_ATTEMPTS_VARIABLE, REQUEST_TIMEOUT_VARIABLE, "AWS_REGION")


def object_store_env(endpoint: str | None = None, max_attempts: int | None = None,
                     request_timeout_s: float | None = None) -> dict[str, str]:
    """The environment variables that carry the object-store settings given (None: not set),
    for the driver's ``os.environ`` and the ``env_vars`` of Ray's runtime environment."""
    env = {"AWS_ENDPOINT_URL": endpoint, MAX_ATTEMPTS_VARIABLE: max_attempts,
           REQUEST_TIMEOUT_VARIABLE: request_timeout_s}
    return {k: str(v) for k, v in env.items() if v is not None}


def _env_number(name: str, kind: type, default: float | None) -> float | None:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"environment variable {name}={text!r}: expected a number") from None
    if value <= 0:
        raise ValueError(f"environment variable {name}={text!r}: expected a number above 0")
    return value


def s3_filesystem(bucket: str) -> pafs.S3FileSystem:
    """An S3 filesystem configured from the environment (see the module notes): endpoint,
    retries and request timeout; the region from ``AWS_REGION``/``AWS_DEFAULT_REGION``, else
    (on AWS itself) the bucket's own region."""
    endpoint = next((os.environ[v] for v in ENDPOINT_VARIABLES if os.environ.get(v)), None)
    options: dict = {"retry_strategy": pafs.AwsStandardS3RetryStrategy(
        max_attempts=int(_env_number(MAX_ATTEMPTS_VARIABLE, int, DEFAULT_MAX_ATTEMPTS)))}
    timeout = _env_number(REQUEST_TIMEOUT_VARIABLE, float, None)
    if timeout is not None:
        options["request_timeout"] = timeout
    if endpoint is not None:
        parsed = urlparse(endpoint)
        options["endpoint_override"] = parsed.netloc or parsed.path
        options["scheme"] = parsed.scheme or "https"
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        options["region"] = region
    elif endpoint is None and bucket:
        options["region"] = pafs.resolve_s3_region(bucket)
    return pafs.S3FileSystem(**options)


def _filesystem_for(uri: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem of ``uri`` and the prefix its paths take (``bucket`` for ``s3://bucket/...``)."""
    parsed = urlparse(uri)
    # The settings are part of the key: a process that changes them gets a new filesystem.
    key = (parsed.scheme, parsed.netloc, *(os.environ.get(v, "") for v in _SETTINGS))
    if key not in _FILESYSTEMS:
        if parsed.scheme == "s3":
            _FILESYSTEMS[key] = s3_filesystem(parsed.netloc), parsed.netloc
            return _FILESYSTEMS[key]
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


def atomic_write_bytes(location: Location, data: bytes) -> Path | UriPath:
    """Write ``data`` to ``location`` atomically (see :func:`atomic_write`); returns where."""

    def write(filesystem: pafs.FileSystem, tmp: str) -> None:
        with filesystem.open_output_stream(tmp) as stream:
            stream.write(data)

    return _as_location(atomic_write(location, write))


def atomic_write_table(table: pa.Table, location: Location) -> Path | UriPath:
    """Write ``table`` as one Parquet file at ``location`` atomically (see :func:`atomic_write`)."""
    return _as_location(atomic_write(location, lambda fs, tmp: pq.write_table(table, tmp, filesystem=fs)))


def _as_location(text: str) -> Path | UriPath:
    return UriPath(text) if is_uri(text) else Path(text)


def replace_directory(source: Location, target: Location, last: tuple[str, ...] = ()) -> Path | UriPath:
    """Copy the local folder ``source`` to ``target``, replacing any old ``target`` by renames.

    The copy is made under a hidden sibling name first, so ``target`` is always either the
    old folder or the complete new one (a crash between the two renames leaves the old one
    under ``.<name>.old``). An object store has no folder renames: there each file is written
    atomically, the names in ``last`` after the others, and files of the old folder that the
    new one lacks are deleted; a reader that checks a ``last`` file sees a complete folder.
    """
    if is_uri(target):
        return _replace_remote_directory(Path(source), os.fspath(target), last)
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


def _replace_remote_directory(source: Path, target: str, last: tuple[str, ...]) -> UriPath:
    names = sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file())
    old = set(relative_files(target)) if location(target).is_dir() else set()
    for name in sorted(names, key=lambda n: n in last):
        atomic_write_bytes(join(target, name), (source / name).read_bytes())
    for stale in old - set(names):
        location(join(target, stale)).unlink()
    return location(target)


def filesystem_of(places: list[str]) -> pafs.FileSystem | None:
    """The filesystem to hand Ray Data for ``places`` (all on one store): the configured one of
    a URI (so Ray's readers use the same endpoint and retries), None for local paths."""
    return filesystem_and_path(places[0])[0] if places and is_uri(places[0]) else None


def storage_root(place: Location) -> tuple[str, pafs.FileSystem | None]:
    """``(path, filesystem)`` for Ray Train's ``RunConfig(storage_path=, storage_filesystem=)``:
    a URI becomes its path on the configured filesystem; a local path stays as it is."""
    if not is_uri(place):
        return os.fspath(place), None
    filesystem, path = filesystem_and_path(place)
    return path, filesystem


_STORE_FAILURE = re.compile(r"AWS Error|curlCode|NO_SUCH_BUCKET|google::cloud", re.I)


def object_store_failure(exc: OSError) -> str | None:
    """One line for an error an object store gave (after pyarrow's retries), else None."""
    text = " ".join(str(exc).split())
    return f"object store: {text}" if _STORE_FAILURE.search(text) else None


def open_input(place: Location) -> pa.NativeFile:
    """A sequential read stream of one file (local path or URI)."""
    filesystem, path = filesystem_and_path(place)
    return filesystem.open_input_stream(path)


def same_place(a: Location, b: Location) -> bool:
    """Whether two locations name the same file or folder (local paths resolved)."""
    if is_uri(a) or is_uri(b):
        return os.fspath(a).rstrip("/") == os.fspath(b).rstrip("/")
    return Path(a).resolve() == Path(b).resolve()


def read_table(place: Location, columns: list[str] | None = None) -> pa.Table:
    """One Parquet file (local path or URI) as a table."""
    filesystem, path = filesystem_and_path(place)
    return pq.read_table(path, columns=columns, filesystem=filesystem)


def read_schema(place: Location) -> pa.Schema:
    """The schema (with its key-value metadata) of one Parquet file."""
    filesystem, path = filesystem_and_path(place)
    return pq.read_schema(path, filesystem=filesystem)


def list_files(root: Location) -> Iterator[pafs.FileInfo]:
    """Every file under ``root`` (recursive). On an object store this is one paginated listing
    (``ListObjectsV2``, 1,000 keys a page) of the prefix, not a request per folder."""
    filesystem, path = filesystem_and_path(root)
    selector = pafs.FileSelector(path.rstrip("/"), recursive=True, allow_not_found=False)
    return (info for info in filesystem.get_file_info(selector) if info.type == pafs.FileType.File)


def relative_files(root: Location) -> Iterator[str]:
    """The paths, relative to ``root`` and ``/``-separated, of every file under it."""
    prefix = filesystem_and_path(root)[1].rstrip("/") + "/"
    return (info.path[len(prefix):] for info in list_files(root))


def location(place: Location) -> Path | UriPath:
    """A path-like object for a local path (:class:`pathlib.Path`) or a URI (:class:`UriPath`)."""
    if isinstance(place, UriPath):
        return place
    text = os.fspath(place)
    return UriPath(text) if is_uri(text) else Path(text)


class UriPath:
    """The part of :class:`pathlib.Path` that run folders need, for a URI on a pyarrow filesystem.

    ``s3://bucket/run/tracks`` / ``"part-00000.parquet"``, ``.name``, ``.parent``, ``.exists()``,
    ``.is_dir()``, ``.iterdir()``, ``.glob(pattern)`` (one level), ``.read_bytes()``,
    ``.read_text()``, ``.mkdir()``, ``.unlink()``; :func:`remove_tree` deletes a folder.
    ``str()`` and ``os.fspath()`` give the URI, so it goes wherever a :data:`Location` does.
    """

    def __init__(self, uri: str):
        self.uri = uri.rstrip("/") if uri.rstrip("/").count("/") > 2 else uri

    def __truediv__(self, part: str) -> UriPath:
        return UriPath(join(self.uri, part))

    def __str__(self) -> str:
        return self.uri

    __fspath__ = __str__

    def __repr__(self) -> str:
        return f"UriPath({self.uri!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UriPath) and other.uri == self.uri

    def __hash__(self) -> int:
        return hash(self.uri)

    def __lt__(self, other: UriPath) -> bool:
        return self.uri < other.uri

    @property
    def name(self) -> str:
        return self.uri.rstrip("/").rpartition("/")[2]

    @property
    def stem(self) -> str:
        return self.name.rpartition(".")[0] or self.name

    @property
    def parent(self) -> UriPath:
        return UriPath(self.uri.rstrip("/").rpartition("/")[0])

    def _info(self) -> pafs.FileInfo:
        filesystem, path = filesystem_and_path(self.uri)
        return filesystem.get_file_info(path)

    def exists(self) -> bool:
        return self._info().type != pafs.FileType.NotFound

    def is_dir(self) -> bool:
        return self._info().type == pafs.FileType.Directory

    def is_file(self) -> bool:
        return self._info().type == pafs.FileType.File

    def iterdir(self) -> Iterator[UriPath]:
        filesystem, path = filesystem_and_path(self.uri)
        for info in filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True)):
            yield self / info.base_name

    def glob(self, pattern: str) -> Iterator[UriPath]:
        return (p for p in self.iterdir() if fnmatch.fnmatchcase(p.name, pattern))

    def read_bytes(self) -> bytes:
        with open_input(self.uri) as stream:
            return stream.read()

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        filesystem, path = filesystem_and_path(self.uri)
        filesystem.create_dir(path, recursive=parents)

    def unlink(self, missing_ok: bool = False) -> None:
        filesystem, path = filesystem_and_path(self.uri)
        try:
            filesystem.delete_file(path)
        except FileNotFoundError:
            if not missing_ok:
                raise


def remove_tree(place: Location) -> None:
    """Delete a folder and everything in it (local path or URI)."""
    if not is_uri(place):
        shutil.rmtree(place)
        return
    filesystem, path = filesystem_and_path(place)
    filesystem.delete_dir(path)
