"""WebDataset shard I/O: plan, write and read tar shards of 22,050 Hz mono FLAC + JSON.

Each shard ``<split>/<split>-NNNNNN.tar`` holds, per track, ``<track_id>.flac`` (16-bit
mono FLAC at 22,050 Hz) and ``<track_id>.json`` (track_id, split, labels, source path,
original sample rate and channels, duration). Beside every tar, ``<name>.json`` (the
"sidecar") lists the tracks it holds and the inputs that failed, so counts and errors
are known without opening the tar, and so a re-run can skip a finished shard.

Assignment is deterministic: tracks are sorted by ``track_id`` within their split and
cut into runs of ``tracks_per_shard``; a re-run always rebuilds the same shards.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from autotag import SAMPLE_RATE
from autotag.data.audio import AudioDecodeError, decode_audio, decode_flac, encode_flac
from autotag.data.manifest import LABEL_COLUMNS

INDEX_SCHEMA = pa.schema([("shard", pa.string()), ("split", pa.string()), ("path", pa.string()),
                          ("track_id", pa.string()), ("duration_s", pa.float64())])
ERRORS_SCHEMA = pa.schema([("track_id", pa.string()), ("audio_path", pa.string()), ("stage", pa.string()),
                           ("reason", pa.string())])


@dataclass
class ShardPlan:
    """Which manifest rows go into one shard."""

    name: str
    split: str
    rows: list[dict[str, Any]]


@dataclass
class ShardResult:
    name: str
    split: str
    path: str
    tracks: list[dict[str, Any]] = field(default_factory=list)  # track_id, duration_s
    errors: list[dict[str, Any]] = field(default_factory=list)  # track_id, audio_path, stage, reason
    skipped: bool = False


def plan_shards(manifest: pa.Table, tracks_per_shard: int) -> list[ShardPlan]:
    """Cut a manifest into shard plans, deterministically (sorted by track id per split)."""
    if tracks_per_shard < 1:
        raise ValueError(f"tracks_per_shard must be >= 1, got {tracks_per_shard}")
    rows = sorted(manifest.to_pylist(), key=lambda r: (r["split"], r["track_id"]))
    plans: list[ShardPlan] = []
    by_split: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_split.setdefault(row["split"], []).append(row)
    for split, split_rows in sorted(by_split.items()):
        for k in range(0, len(split_rows), tracks_per_shard):
            plans.append(ShardPlan(f"{split}-{k // tracks_per_shard:06d}", split, split_rows[k : k + tracks_per_shard]))
    return plans


def shard_path(out_dir: str | Path, plan: ShardPlan) -> Path:
    return Path(out_dir) / plan.split / f"{plan.name}.tar"


def _labels(row: dict[str, Any]) -> dict[str, Any]:
    return {key: row.get(key) for key in LABEL_COLUMNS if row.get(key) is not None}


def _add_member(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mode = 0o444
    tar.addfile(info, io.BytesIO(payload))


def _atomic_write(path: Path, payload: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(payload)
    tmp.replace(path)


def write_shard(plan: ShardPlan, out_dir: str | Path, max_duration_s: float | None = None) -> ShardResult:
    """Decode every track of ``plan`` and write its tar and sidecar atomically.

    A shard whose tar and sidecar both exist is not rebuilt: its sidecar is returned with
    ``skipped=True``. Tracks that cannot be decoded become errors; the others are written.
    """
    path = shard_path(out_dir, plan)
    sidecar = path.with_suffix(".json")
    if path.exists() and sidecar.exists():
        return ShardResult(**{**json.loads(sidecar.read_text()), "skipped": True})
    path.parent.mkdir(parents=True, exist_ok=True)
    result = ShardResult(plan.name, plan.split, str(path))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for row in plan.rows:
            try:
                audio = decode_audio(row["audio_path"], max_duration_s=max_duration_s)
            except AudioDecodeError as exc:
                result.errors.append({"track_id": row["track_id"], "audio_path": row["audio_path"],
                                      "stage": "shard", "reason": exc.reason})
                continue
            meta = {"track_id": row["track_id"], "split": plan.split, "labels": _labels(row),
                    "source": row["audio_path"], "source_sample_rate": audio.source_sample_rate,
                    "source_channels": audio.source_channels, "sample_rate": SAMPLE_RATE,
                    "duration_s": audio.duration_s}
            _add_member(tar, f"{row['track_id']}.flac", encode_flac(audio.samples))
            _add_member(tar, f"{row['track_id']}.json", json.dumps(meta, sort_keys=True).encode())
            result.tracks.append({"track_id": row["track_id"], "duration_s": audio.duration_s})
    _atomic_write(path, buffer.getvalue())
    summary = {k: v for k, v in asdict(result).items() if k != "skipped"}
    _atomic_write(sidecar, json.dumps(summary, indent=1).encode())
    return result


def iter_shard(path: str | Path) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """Yield ``(track_id, samples, meta)`` from a shard written by :func:`write_shard`.

    Member names are never used as file-system paths; they only key the samples.
    """
    pending: dict[str, dict[str, bytes]] = {}
    with tarfile.open(path, mode="r") as tar:
        for member in tar:
            if not member.isfile():
                continue
            key, _, ext = Path(member.name).name.partition(".")
            pending.setdefault(key, {})[ext] = tar.extractfile(member).read()
            if {"flac", "json"} <= pending[key].keys():
                parts = pending.pop(key)
                yield key, decode_flac(parts["flac"]), json.loads(parts["json"])


def index_table(results: list[ShardResult]) -> pa.Table:
    rows = [{"shard": r.name, "split": r.split, "path": r.path, **t} for r in results for t in r.tracks]
    return pa.Table.from_pylist(rows, schema=INDEX_SCHEMA)


def errors_table(results: list[ShardResult]) -> pa.Table:
    return pa.Table.from_pylist([e for r in results for e in r.errors], schema=ERRORS_SCHEMA)
