"""WebDataset shard I/O: plan, write and read tar shards of 22,050 Hz mono 16-bit audio + JSON.

Layout under the output root (a local path or a pyarrow filesystem URI)::

    <split>/<split>-NNNNNN.tar       samples <track_id>.<codec> (16-bit mono, 22,050 Hz) + <track_id>.json
    <split>/<split>-NNNNNN-K.tar     K = 1, 2, ...: further parts, only when the byte cap splits a shard
    <split>/<split>-NNNNNN.json      the sidecar: parts, tracks, errors and a fingerprint of the plan

The audio member's extension names its codec (:data:`CODECS`): ``flac`` (lossless, about half
the bytes of raw PCM on music, costs CPU to decode every epoch) or ``pcm16`` (raw 16-bit
little-endian samples, no header: decoding is a copy). Readers pick the decoder by extension,
so shards of either codec (and older FLAC-only shards) read the same; the sidecar and each
sample's JSON record the codec.

The sidecar lets counts and errors be read without opening the tars, and marks the shard
finished: it is written last, after every part has been moved into place. A shard whose
sidecar exists, names every part, and carries the fingerprint of the current plan
(its manifest rows and the settings that change the bytes) is skipped on a re-run.

Assignment is deterministic: tracks are sorted by ``track_id`` within their split and cut
into runs of ``tracks_per_shard`` (the unit of work: one Ray task per shard). The byte cap
(``max_shard_bytes``) is applied while writing: when the next sample would take a part
past the cap, the part is closed and ``-1``, ``-2``, ... follow. Decoding is deterministic,
so the split points, and every byte of every tar, are the same on every run; the cap is
on real bytes, no estimate from the manifest or the headers is needed. A single track
larger than the cap gets a part of its own.

Memory: one track at a time, read in blocks (:func:`autotag.data.audio.open_audio`) and
encoded to FLAC as it is read into a spool that moves to a local temporary file past
``spool_bytes``; tars are streamed to a temporary file (or object) beside their final name
and moved into place when complete. A worker's memory does not grow with track length or
shard size.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import logging
import re
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import soundfile as sf

from autotag import SAMPLE_RATE
from autotag.data.audio import (
    FLAC_COMPRESSION,
    AudioDecodeError,
    DecodedAudio,
    decode_audio,
    decode_flac,
    open_audio,
)
from autotag.data.manifest import LABEL_COLUMNS
from autotag.errors import InputError
from autotag.storage import atomic_write_bytes, filesystem_and_path, join, temporary_name

log = logging.getLogger(__name__)

INDEX_SCHEMA = pa.schema([("shard", pa.string()), ("split", pa.string()), ("path", pa.string()),
                          ("track_id", pa.string()), ("duration_s", pa.float64())])
ERRORS_SCHEMA = pa.schema([("track_id", pa.string()), ("audio_path", pa.string()), ("stage", pa.string()),
                           ("reason", pa.string())])
CODECS = ("flac", "pcm16")
"""Audio codecs of the shards' audio members (the member's extension); see :func:`decode_member`."""
FORMAT_VERSION = 3  # part of every fingerprint: bump when the same input would give other bytes
SPOOL_BYTES = 32 * 1024**2
_BLOCK = tarfile.BLOCKSIZE
_TAR_END = 2 * _BLOCK + tarfile.RECORDSIZE  # end-of-archive blocks plus the worst-case record padding
_TEMPORARY = re.compile(r"^\..*\.tmp-[0-9a-f]+$")
_PART = re.compile(r"^(?P<name>.+-\d{6})(-\d+)?\.tar$")


@dataclass
class ShardPlan:
    """Which manifest rows go into one shard."""

    name: str
    split: str
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class ShardSpan:
    """A shard plan as rows ``[start, stop)`` of the manifest sorted by :func:`sort_manifest`."""

    name: str
    split: str
    start: int
    stop: int


@dataclass
class ShardResult:
    """What writing (or skipping) one shard produced; the sidecar holds all but the last two fields."""

    name: str
    split: str
    path: str  # the first part
    parts: list[str] = field(default_factory=list)
    tracks: list[dict[str, Any]] = field(default_factory=list)  # track_id, duration_s, part (index into parts)
    errors: list[dict[str, Any]] = field(default_factory=list)  # track_id, audio_path, stage, reason
    fingerprint: str = ""
    codec: str = "flac"  # sidecars written before the codec option hold FLAC
    skipped: bool = False
    seconds: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShardResult:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def sidecar(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("skipped", "seconds")}


# --------------------------------------------------------------------------------------- plans


def sort_manifest(manifest: pa.Table) -> pa.Table:
    """The manifest in shard order: by split, then by track id (byte order, as ``sorted``)."""
    return manifest.sort_by([("split", "ascending"), ("track_id", "ascending")])


def plan_spans(ordered: pa.Table, tracks_per_shard: int) -> list[ShardSpan]:
    """Cut a manifest sorted by :func:`sort_manifest` into spans of ``tracks_per_shard`` rows per split."""
    if tracks_per_shard < 1:
        raise ValueError(f"tracks_per_shard must be >= 1, got {tracks_per_shard}")
    splits = ordered.column("split").to_pylist()
    spans, start = [], 0
    while start < len(splits):
        split = splits[start]
        stop = start
        while stop < len(splits) and splits[stop] == split:
            stop += 1
        for k, first in enumerate(range(start, stop, tracks_per_shard)):
            spans.append(ShardSpan(f"{split}-{k:06d}", split, first, min(first + tracks_per_shard, stop)))
        start = stop
    return spans


def plan_from_span(ordered: pa.Table, span: ShardSpan) -> ShardPlan:
    return ShardPlan(span.name, span.split, ordered.slice(span.start, span.stop - span.start).to_pylist())


def plan_shards(manifest: pa.Table, tracks_per_shard: int) -> list[ShardPlan]:
    """Cut a manifest into shard plans, deterministically (sorted by track id per split)."""
    ordered = sort_manifest(manifest)
    return [plan_from_span(ordered, span) for span in plan_spans(ordered, tracks_per_shard)]


def plan_fingerprint(plan: ShardPlan, max_duration_s: float | None, max_shard_bytes: int | None,
                     codec: str = "flac") -> str:
    """A digest of everything that decides a shard's bytes (its rows and the writer's settings).

    FLAC leaves the digest as it was before the codec option, so finished FLAC shards stay finished.
    """
    settings = {"version": FORMAT_VERSION, "name": plan.name, "split": plan.split, "rows": plan.rows,
                "max_duration_s": max_duration_s, "max_shard_bytes": max_shard_bytes}
    payload = json.dumps(settings if codec == "flac" else {**settings, "codec": codec}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------ locations


def shard_path(out_dir: str | Path, plan: ShardPlan | ShardSpan, part: int = 0) -> str:
    """Where part ``part`` of a shard goes (a local path or a URI, like ``out_dir``)."""
    return join(out_dir, plan.split, f"{part_name(plan.name, part)}.tar")


def sidecar_path(out_dir: str | Path, plan: ShardPlan | ShardSpan) -> str:
    return join(out_dir, plan.split, f"{plan.name}.json")


def split_shards(shards_dir: str | Path, split: str) -> list[str]:
    """The tars of one split under ``shards_dir`` (``<split>/<split>-*.tar``, as :func:`shard_path`
    names them): a local path or a pyarrow-filesystem URI (``s3://bucket/shards``), listed as
    paths or URIs like ``shards_dir``.

    Raises
    ------
    InputError
        The split has no shard.
    """
    folder = join(shards_dir, split)
    filesystem, path = filesystem_and_path(folder)
    listed = filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    names = sorted(info.base_name for info in listed
                   if info.type == pafs.FileType.File and fnmatch.fnmatch(info.base_name, f"{split}-*.tar"))
    if not names:
        raise InputError(f"no {split} shards in {folder}; run pipelines.shard first")
    return [join(folder, name) for name in names]


def part_name(name: str, part: int) -> str:
    return name if part == 0 else f"{name}-{part}"


def _exists(location: str) -> bool:
    filesystem, path = filesystem_and_path(location)
    return filesystem.get_file_info(path).type == pafs.FileType.File


def read_sidecar(out_dir: str | Path, plan: ShardPlan | ShardSpan) -> ShardResult | None:
    """The shard's sidecar, or None when there is none (or it is unreadable)."""
    filesystem, path = filesystem_and_path(sidecar_path(out_dir, plan))
    try:
        with filesystem.open_input_stream(path) as stream:
            return ShardResult.from_dict(json.loads(stream.read()))
    except (OSError, json.JSONDecodeError, TypeError):
        return None


def is_finished(sidecar: ShardResult | None, fingerprint: str) -> bool:
    """Whether ``sidecar`` records a finished shard of the plan with this fingerprint."""
    return (sidecar is not None and sidecar.fingerprint == fingerprint and bool(sidecar.parts)
            and all(_exists(p) for p in sidecar.parts))


# --------------------------------------------------------------------------------------- writing


class _TarParts:
    """Writes samples into ``<name>.tar``, ``<name>-1.tar``, ... each at most ``max_bytes``.

    A part is streamed to a temporary name beside its final one and moved into place when
    it is complete, so a reader never sees half a tar.
    """

    def __init__(self, out_dir: str | Path, split: str, name: str, max_bytes: int | None):
        self.out_dir, self.split, self.name, self.max_bytes = out_dir, split, name, max_bytes
        self.paths: list[str] = []
        self._stream: Any = None
        self._tar: tarfile.TarFile | None = None
        self._bytes = self._samples = 0
        self._tmp = ""

    @staticmethod
    def member_bytes(size: int) -> int:
        return _BLOCK + -(-size // _BLOCK) * _BLOCK

    def add(self, members: list[tuple[str, IO[bytes], int]]) -> int:
        """Add one sample's members ``(name, file, size)``; returns the index of the part it went to."""
        needed = sum(self.member_bytes(size) for _, _, size in members)
        if (self._tar is not None and self.max_bytes is not None and self._samples
                and self._bytes + needed + _TAR_END > self.max_bytes):
            self._close_part()
        if self._tar is None:
            self._open_part()
        for member, fileobj, size in members:
            info = tarfile.TarInfo(member)
            info.size, info.mode = size, 0o444
            self._tar.addfile(info, fileobj)
        self._bytes += needed
        self._samples += 1
        return len(self.paths) - 1

    def _open_part(self) -> None:
        location = join(self.out_dir, self.split, f"{part_name(self.name, len(self.paths))}.tar")
        filesystem, path = filesystem_and_path(location)
        self._tmp = temporary_name(path)
        self._stream = filesystem.open_output_stream(self._tmp)
        # PAX writes the same bytes as USTAR unless a name is too long for USTAR (then adds a header).
        self._tar = tarfile.open(fileobj=self._stream, mode="w|", format=tarfile.PAX_FORMAT)
        self.paths.append(location)
        self._bytes = self._samples = 0

    def _close_part(self) -> None:
        self._tar.close()
        self._stream.close()
        filesystem, path = filesystem_and_path(self.paths[-1])
        filesystem.move(self._tmp, path)
        self._tar = self._stream = None

    def close(self) -> list[str]:
        """Finish the last part (an empty tar when no sample was added); the parts' locations."""
        if self._tar is None and not self.paths:
            self._open_part()
        if self._tar is not None:
            self._close_part()
        return self.paths

    def abort(self) -> None:
        if self._stream is not None:
            self._stream.close()
            filesystem, _ = filesystem_and_path(self.paths[-1])
            filesystem.delete_file(self._tmp)
            self._tar = self._stream = None


def _labels(row: dict[str, Any]) -> dict[str, Any]:
    return {key: row.get(key) for key in LABEL_COLUMNS if row.get(key) is not None}


def to_pcm16(block: np.ndarray) -> np.ndarray:
    """Float samples as 16-bit integers, exactly as libsndfile converts them (``encode_flac``).

    libsndfile scales by 32,768, rounds to nearest (ties to even) and clips; doing it here
    spares its slower conversion loop. ``block`` is overwritten.
    """
    np.rint(np.multiply(block, 32768.0, out=block), out=block)
    return np.clip(block, -32768.0, 32767.0, out=block).astype(np.int16)


def _check_codec(codec: str) -> None:
    if codec not in CODECS:
        raise ValueError(f"shard codec {codec!r} unknown; known: {', '.join(CODECS)}")


class _Pcm16Writer:
    """Raw 16-bit little-endian samples into ``spool``, the ``pcm16`` codec's member bytes."""

    def __init__(self, spool: IO[bytes]):
        self.spool = spool

    def write(self, samples: np.ndarray) -> None:
        self.spool.write(samples.astype("<i2", copy=False).tobytes())

    def __enter__(self) -> _Pcm16Writer:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


def _audio_writer(spool: IO[bytes], codec: str):
    if codec == "pcm16":
        return _Pcm16Writer(spool)
    return sf.SoundFile(spool, "w", SAMPLE_RATE, 1, format="FLAC", subtype="PCM_16",
                        compression_level=FLAC_COMPRESSION)


def encode_track(row: dict[str, Any], split: str, max_duration_s: float | None,
                 spool_bytes: int = SPOOL_BYTES, codec: str = "flac") -> tuple[IO[bytes], int, dict[str, Any]]:
    """Decode one manifest row block by block into a 16-bit spool in ``codec`` (one of :data:`CODECS`).

    Returns the spool (positioned at 0), its size and the sample's JSON metadata.
    Raises :class:`AudioDecodeError` for a file that cannot be used.
    """
    _check_codec(codec)
    spool = tempfile.SpooledTemporaryFile(max_size=spool_bytes)
    try:
        with open_audio(row["audio_path"], max_duration_s=max_duration_s) as stream:
            with _audio_writer(spool, codec) as audio:
                for block in stream.blocks():
                    audio.write(to_pcm16(block))
            meta = {"track_id": row["track_id"], "split": split, "labels": _labels(row), "source": row["audio_path"],
                    "source_sample_rate": stream.source_sample_rate, "source_channels": stream.source_channels,
                    "source_format": stream.source_format, "sample_rate": SAMPLE_RATE,
                    "duration_s": stream.samples_out / SAMPLE_RATE}
            if codec != "flac":  # FLAC samples keep the JSON they had before the codec option
                meta["codec"] = codec
    except BaseException:
        spool.close()
        raise
    size = spool.seek(0, io.SEEK_END)  # not tell(): libsndfile seeks back to finish the header on close
    spool.seek(0)
    return spool, size, meta


def _pcm16_length_problem(data: bytes) -> str | None:
    """Why ``data`` cannot be 16-bit samples (an odd number of bytes), or None."""
    return f"pcm16 audio of {len(data)} bytes; expected an even number (16-bit samples)" if len(data) % 2 else None


def decode_member(codec: str, data: bytes, where: str = "shard member", dtype: str = "float32") -> np.ndarray:
    """A shard's audio member (``<key>.<codec>``) → mono samples at :data:`autotag.SAMPLE_RATE`:
    float32, or with ``dtype="int16"`` the 16-bit samples both codecs store (lossless; float32
    is exactly ``int16 / 32768``, and a pcm16 member then costs no decoding at all).

    ``pcm16`` samples are the 16-bit integers divided by 32,768, exactly what decoding the
    FLAC of the same track gives.

    Raises
    ------
    ValueError
        An unknown codec, or a ``pcm16`` member with an odd number of bytes (``where`` names it).
    """
    if codec == "flac":
        return decode_flac(data, dtype)
    if codec == "pcm16":
        if (problem := _pcm16_length_problem(data)) is not None:
            raise ValueError(f"{where}: {problem}")
        samples = np.frombuffer(data, dtype="<i2")
        if dtype == "int16":
            return samples.astype(np.int16, copy=False)
        return samples.astype(np.float32) * np.float32(1 / 32768)
    raise ValueError(f"{where}: audio codec {codec!r} unknown; known: {', '.join(CODECS)}")


def audio_member(batch: dict[str, Any], i: int) -> tuple[str | None, bytes | None]:
    """The codec and bytes of sample ``i``'s audio member in a batch of WebDataset rows (a
    column per member extension), or ``(None, None)`` when it has none. Ray Data fills a
    column that only some samples of a block have with None or NaN: only bytes count."""
    for codec in CODECS:
        column = batch.get(codec)
        value = None if column is None else column[i]
        if isinstance(value, (bytes, bytearray, memoryview)):
            return codec, bytes(value)
    return None, None


def decode_shard_audio(codec: str | None, data: bytes | None, name: str,
                       max_duration_s: float | None = None) -> DecodedAudio:
    """A shard sample's audio member, for inference over shards: a FLAC member is decoded as
    any audio file (with every check of :func:`autotag.data.audio.decode_audio`), a ``pcm16``
    member taken as it is. ``codec`` None: the sample has no audio member.

    Raises
    ------
    AudioDecodeError
        No audio member, an empty or odd-length pcm16 member, or one longer than ``max_duration_s``
        (``name`` names the track).
    """
    if codec is None or data is None:
        raise AudioDecodeError(name, f"shard sample has no audio member (expected one of {', '.join(CODECS)})", "open")
    if codec == "flac":
        return decode_audio(bytes(data), max_duration_s=max_duration_s, name=name)
    if codec != "pcm16":
        raise AudioDecodeError(name, f"shard audio codec {codec!r} unknown; known: {', '.join(CODECS)}", "open")
    if (problem := _pcm16_length_problem(data)) is not None:
        raise AudioDecodeError(name, problem, "open")
    if not data:
        raise AudioDecodeError(name, "no samples (empty pcm16 member)", "decode")
    seconds = len(data) / 2 / SAMPLE_RATE
    if max_duration_s is not None and seconds > max_duration_s:
        raise AudioDecodeError(name, f"duration {seconds:.1f} s exceeds the limit of {max_duration_s:.1f} s", "header")
    return DecodedAudio(decode_member("pcm16", data, name), SAMPLE_RATE, SAMPLE_RATE, 1)


def _error_row(row: dict[str, Any], stage: str, reason: str) -> dict[str, Any]:
    return {"track_id": row["track_id"], "audio_path": row["audio_path"], "stage": stage, "reason": reason}


def write_shard(plan: ShardPlan, out_dir: str | Path, max_duration_s: float | None = None, *,
                max_shard_bytes: int | None = None, spool_bytes: int = SPOOL_BYTES, codec: str = "flac") -> ShardResult:
    """Decode every track of ``plan`` and write its tar part(s), then its sidecar.

    A shard finished by an earlier run of the same plan is not rebuilt: its sidecar is
    returned with ``skipped=True``. Tracks that cannot be decoded become errors
    (track_id, audio_path, stage, reason); the others are written.

    Parameters
    ----------
    plan
        The shard's name, split and manifest rows (in order).
    out_dir
        The shards root: a local path or a pyarrow filesystem URI.
    max_duration_s
        Longer files are errors (from the header, before decoding).
    max_shard_bytes
        Byte cap of one tar; None: one tar per shard whatever its size.
    spool_bytes
        Encoded bytes of one track kept in memory before spilling to a local temporary file.
    codec
        The audio members' codec, one of :data:`CODECS`.
    """
    _check_codec(codec)
    start = time.perf_counter()
    fingerprint = plan_fingerprint(plan, max_duration_s, max_shard_bytes, codec)
    earlier = read_sidecar(out_dir, plan)
    if is_finished(earlier, fingerprint):
        earlier.skipped, earlier.seconds = True, time.perf_counter() - start
        return earlier
    filesystem, folder = filesystem_and_path(join(out_dir, plan.split))
    filesystem.create_dir(folder, recursive=True)
    result = ShardResult(plan.name, plan.split, shard_path(out_dir, plan), fingerprint=fingerprint, codec=codec)
    tars = _TarParts(out_dir, plan.split, plan.name, max_shard_bytes)
    try:
        for row in plan.rows:
            _add_track(tars, result, row, plan.split, max_duration_s, spool_bytes, codec)
        result.parts = tars.close()
    except BaseException:
        tars.abort()
        raise
    atomic_write_bytes(sidecar_path(out_dir, plan), json.dumps(result.sidecar(), indent=1).encode())
    for stale in sorted(set(earlier.parts if earlier else ()) - set(result.parts)):  # an earlier plan had more parts
        stale_fs, stale_path = filesystem_and_path(stale)
        if stale_fs.get_file_info(stale_path).type == pafs.FileType.File:
            stale_fs.delete_file(stale_path)
    result.seconds = time.perf_counter() - start
    return result


def _add_track(tars: _TarParts, result: ShardResult, row: dict[str, Any], split: str,
               max_duration_s: float | None, spool_bytes: int, codec: str) -> None:
    try:
        spool, size, meta = encode_track(row, split, max_duration_s, spool_bytes, codec)
    except AudioDecodeError as exc:
        result.errors.append(_error_row(row, exc.stage, exc.reason))
        return
    except (ValueError, RuntimeError, sf.LibsndfileError) as exc:  # a decoder bug must not stop the catalogue
        log.warning("unexpected error decoding %s", row["audio_path"], exc_info=True)
        result.errors.append(_error_row(row, "decode", f"unexpected {type(exc).__name__}: {exc}"))
        return
    with spool:
        payload = json.dumps(meta, sort_keys=True).encode()
        part = tars.add([(f"{row['track_id']}.{codec}", spool, size),
                         (f"{row['track_id']}.json", io.BytesIO(payload), len(payload))])
    result.tracks.append({"track_id": row["track_id"], "duration_s": meta["duration_s"], "part": part})


# ----------------------------------------------------------------------------- output hygiene


def tidy(out_dir: str | Path, spans: list[ShardSpan]) -> tuple[list[str], list[str]]:
    """Remove temporaries left by killed writers; list tars that belong to no planned shard.

    Run it before a run starts (only one run may write to ``out_dir`` at a time).
    Returns ``(removed temporaries, foreign tars)``; foreign tars (from an earlier plan with
    other settings) are left in place, but training would read them: the caller warns.
    """
    planned = {s.name for s in spans}
    removed, foreign = [], []
    for split in sorted({s.split for s in spans}):
        filesystem, folder = filesystem_and_path(join(out_dir, split))
        infos = filesystem.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
        for info in infos:
            if info.type != pafs.FileType.File:
                continue
            if _TEMPORARY.match(info.base_name):
                filesystem.delete_file(info.path)
                removed.append(info.path)
            elif info.base_name.endswith(".tar"):
                match = _PART.match(info.base_name)
                if match is None or match["name"] not in planned:
                    foreign.append(join(out_dir, split, info.base_name))
    return removed, foreign


# --------------------------------------------------------------------------------------- reading


def iter_shard(path: str | Path) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """Yield ``(track_id, samples, meta)`` from a shard written by :func:`write_shard`.

    ``path`` is a local path or a URI. Member names are never used as file-system paths;
    they only key the samples, and the audio member's extension picks its decoder
    (:func:`decode_member`).
    """
    pending: dict[str, dict[str, bytes]] = {}
    filesystem, inner = filesystem_and_path(path)
    with filesystem.open_input_stream(inner) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            if not member.isfile():
                continue
            key, _, ext = Path(member.name).name.partition(".")
            pending.setdefault(key, {})[ext] = tar.extractfile(member).read()
            codec = next((c for c in CODECS if c in pending[key]), None)
            if codec is not None and "json" in pending[key]:
                parts = pending.pop(key)
                yield key, decode_member(codec, parts[codec], f"{path} member {key}.{codec}"), json.loads(parts["json"])


def index_table(results: list[ShardResult]) -> pa.Table:
    """One row per sharded track: the tar (``shard`` name and ``path``) that holds it."""
    rows = []
    for r in results:
        for t in r.tracks:
            path = r.parts[t.get("part", 0)] if r.parts else r.path
            rows.append({"shard": Path(path.rsplit("/", 1)[-1]).stem, "split": r.split, "path": path,
                         "track_id": t["track_id"], "duration_s": t["duration_s"]})
    return pa.Table.from_pylist(rows, schema=INDEX_SCHEMA)


def errors_table(results: list[ShardResult]) -> pa.Table:
    return pa.Table.from_pylist([e for r in results for e in r.errors], schema=ERRORS_SCHEMA)
