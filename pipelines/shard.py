"""Stage 1 — shard: manifest → WebDataset tars (22,050 Hz mono FLAC + JSON), index, errors.

    python -m pipelines.shard [key=value ...]

The driver sorts the manifest (metadata only, never audio) and cuts it into shard spans;
the sorted manifest goes once into Ray's object store, and Ray Data runs one task per
shard that decodes, resamples and writes its tracks one at a time, in bounded memory.
A line is logged as each shard finishes, with the rate and time left. Finished
shards are skipped on a re-run, so an interrupted run resumes where it stopped and ends
with the same shards. The manifest, the audio and the output may be local paths or
pyarrow filesystem URIs (``file:///...``, ``s3://...``, ``gs://...``).

Exit codes: 0 when every track of the manifest is in a shard or in the errors table (files
that cannot be decoded are errors, not failures); 2 with one line for a bad setting, a
missing or malformed manifest, or an adapter that rejects its source.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from autotag import storage
from autotag.config import AutotagConfig, ShardConfig
from autotag.data import manifest, shards, synthetic
from autotag.data.adapters import ADAPTERS
from autotag.errors import ConfigError, InputError
from autotag.memory import reuse_freed_memory
from autotag.progress import Progress
from autotag.storage import filesystem_and_path, is_uri
from pipelines.common import cli, init_ray, whole_cluster_per_operator

log = logging.getLogger("autotag.shard")


def ensure_manifest(cfg: AutotagConfig) -> str:
    """The dataset's manifest: rendered (synthetic), built by an adapter (prepare), or given (path or URI)."""
    if is_uri(cfg.dataset.manifest):
        if cfg.dataset.synthetic is not None or cfg.dataset.prepare is not None:
            raise ConfigError(f"dataset.manifest {cfg.dataset.manifest}: synthetic and prepared datasets are "
                             "written locally; give a local path")
        return cfg.dataset.manifest
    path = Path(cfg.dataset.manifest)
    if cfg.dataset.synthetic is not None:
        spec = cfg.dataset.synthetic
        log.info("rendering synthetic %s dataset into %s", spec.kind, path.parent)
        return str(synthetic.generate(path.parent, spec))
    prepare = cfg.dataset.prepare
    if prepare is not None and not path.exists():
        if prepare.adapter not in ADAPTERS:
            raise ConfigError(f"dataset.prepare.adapter {prepare.adapter!r} unknown; known: {sorted(ADAPTERS)}")
        log.info("building the manifest of %s with the %s adapter", prepare.source, prepare.adapter)
        manifest.write(ADAPTERS[prepare.adapter](prepare.source, **prepare.options), path)
    return str(path)


def writer_options(settings: ShardConfig) -> dict[str, Any]:
    """Keyword arguments of :func:`autotag.data.shards.write_shard` from the config."""
    return {"max_duration_s": settings.max_duration_s,
            "max_shard_bytes": None if settings.max_shard_mb is None else int(settings.max_shard_mb * 1024**2),
            "spool_bytes": int(settings.spool_mb * 1024**2), "codec": settings.codec}


def write_span(item: dict[str, Any], out_dir: str, ordered: Any, options: dict[str, Any]) -> dict[str, Any]:
    """Ray Data task body: write the shard of one span of the sorted manifest (an object ref)."""
    import ray

    reuse_freed_memory()  # each track's buffers reuse the last one's pages (autotag.memory)
    table = ray.get(ordered) if isinstance(ordered, ray.ObjectRef) else ordered
    plan = shards.plan_from_span(table, shards.ShardSpan(**item))
    result = shards.write_shard(plan, out_dir, **options)
    return {"result": json.dumps(dataclasses.asdict(result))}


def _log_shard(result: shards.ShardResult, progress: Progress) -> None:
    state = "finished earlier, skipped" if result.skipped else f"{result.seconds:.1f} s"
    progress.advance(len(result.tracks) + len(result.errors))
    log.info("shard %s: %d tracks, %d errors, %d tar(s), %s | %s", result.name, len(result.tracks),
             len(result.errors), len(result.parts), state, progress.status())


def write_all(spans: list[shards.ShardSpan], ordered: pa.Table, out_dir: str,
              settings: ShardConfig) -> list[shards.ShardResult]:
    """Write every shard with Ray Data (one task per span), logging each as it finishes."""
    import ray

    if not spans:
        return []
    items = [dataclasses.asdict(span) for span in spans]
    kwargs = {"out_dir": out_dir, "ordered": ray.put(ordered), "options": writer_options(settings)}
    with whole_cluster_per_operator():  # one operator does all the work
        dataset = ray.data.from_items(items, override_num_blocks=len(items))
    results = []
    progress = Progress("tracks", total=ordered.num_rows)
    for row in dataset.map(write_span, fn_kwargs=kwargs, num_cpus=settings.cpus_per_task).iter_rows():
        results.append(shards.ShardResult.from_dict(json.loads(row["result"])))
        _log_shard(results[-1], progress)
    return sorted(results, key=lambda r: r.name)


def run(cfg: AutotagConfig) -> dict[str, Any]:
    """Shard the dataset; returns counts and the locations of the index and errors tables."""
    start = time.perf_counter()
    try:
        table = manifest.read(ensure_manifest(cfg))
    except ValueError as exc:  # a missing or malformed manifest, an adapter naming a bad file: one line, exit 2
        raise ConfigError(f"dataset: {exc}") from None
    ordered = shards.sort_manifest(table)
    spans = shards.plan_spans(ordered, cfg.shard.tracks_per_shard)
    out_dir = cfg.paths.shards
    filesystem, root = filesystem_and_path(out_dir)
    filesystem.create_dir(root, recursive=True)
    removed, foreign = shards.tidy(out_dir, spans)
    if removed:
        log.info("removed %d temporary file(s) left by an interrupted run", len(removed))
    if foreign:
        log.warning("%d tar(s) in %s belong to no shard of this plan (an earlier run with other settings?) and "
                    "are not in the index; training globs would read them: %s", len(foreign), out_dir, foreign[:5])
    log.info("sharding %d tracks into %d shards under %s", ordered.num_rows, len(spans), out_dir)
    init_ray(cfg)
    results = write_all(spans, ordered, out_dir, cfg.shard)
    index, errors = shards.index_table(results), shards.errors_table(results)
    index_path, errors_path = storage.join(out_dir, "index.parquet"), storage.join(out_dir, "errors.parquet")
    storage.atomic_write_table(index, index_path)
    storage.atomic_write_table(errors, errors_path)
    for error in errors.to_pylist()[:SHOWN_ERRORS]:
        log.warning("could not shard %s (%s) at %s: %s", error["track_id"], error["audio_path"], error["stage"],
                    error["reason"])
    if errors.num_rows > SHOWN_ERRORS:
        log.warning("... and %d more tracks that could not be sharded: see %s", errors.num_rows - SHOWN_ERRORS,
                    errors_path)
    summary = {"shards": len(results), "skipped_shards": sum(r.skipped for r in results),
               "tars": sum(len(r.parts) for r in results), "tracks": index.num_rows, "errors": errors.num_rows,
               "audio_s": round(sum(index.column("duration_s").to_pylist()), 1), "out_dir": out_dir,
               "index": index_path, "errors_table": errors_path, "seconds": round(time.perf_counter() - start, 1)}
    return summary


SHOWN_ERRORS = 10
"""Tracks that could not be sharded named on the console; the errors table has them all."""


def preflight(cfg: AutotagConfig) -> None:
    """Before Ray starts: the manifest exists, or the dataset says how to make it."""
    if cfg.dataset.synthetic is None and cfg.dataset.prepare is None and not is_uri(cfg.dataset.manifest) \
            and not Path(cfg.dataset.manifest).is_file():
        raise InputError(f"dataset.manifest {cfg.dataset.manifest}: no such file (and the dataset has no "
                         "`prepare` adapter or `synthetic` spec to make it)")
    prepare = cfg.dataset.prepare
    if prepare is not None and not Path(cfg.dataset.manifest).is_file() and not Path(prepare.source).exists() \
            and not is_uri(prepare.source):
        raise InputError(f"dataset.prepare.source {prepare.source}: no such file or folder")


def summary(result: dict[str, Any]) -> str:
    errors = f"{result['errors']} could not be read (see {result['errors_table']})" if result["errors"] else "no errors"
    return (f"sharded {result['tracks']} tracks ({result['audio_s'] / 3600:.2f} h of audio) into {result['tars']} "
            f"tar(s) under {result['out_dir']} in {result['seconds']:.0f} s ({result['skipped_shards']} of "
            f"{result['shards']} shards done earlier); {errors}")


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    return cli(run, argv=argv, prog=prog, doc=__doc__, sections=("run_id", "dataset", "shard", "paths", "runtime"),
               preflight=preflight, summary=summary)


if __name__ == "__main__":
    raise SystemExit(main())
