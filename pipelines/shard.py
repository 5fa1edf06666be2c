"""Stage 1 — shard: manifest → WebDataset tars (22,050 Hz mono FLAC + JSON), index, errors.

    python -m pipelines.shard [key=value ...]

Ray Data runs one task per shard; each decodes and resamples its tracks once. Finished
shards are skipped on a re-run, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from autotag.config import AutotagConfig
from autotag.data import manifest, shards, synthetic
from autotag.data.adapters import ADAPTERS
from pipelines.common import cli, init_ray

log = logging.getLogger("autotag.shard")


def ensure_manifest(cfg: AutotagConfig) -> Path:
    """The dataset's manifest: rendered (synthetic), built by an adapter (prepare), or given."""
    path = Path(cfg.dataset.manifest)
    if cfg.dataset.synthetic is not None:
        spec = synthetic.SyntheticSpec(**dataclasses.asdict(cfg.dataset.synthetic))
        log.info("rendering synthetic %s dataset into %s", spec.kind, path.parent)
        return synthetic.generate(path.parent, spec)
    prepare = cfg.dataset.prepare
    if prepare is not None and not path.exists():
        if prepare.adapter not in ADAPTERS:
            raise ValueError(f"dataset.prepare.adapter {prepare.adapter!r} unknown; known: {sorted(ADAPTERS)}")
        log.info("building the manifest of %s with the %s adapter", prepare.source, prepare.adapter)
        manifest.write(ADAPTERS[prepare.adapter](prepare.source, **prepare.options), path)
    return path


def _write_one(item: dict[str, Any], out_dir: str, max_duration_s: float) -> dict[str, Any]:
    plan = shards.ShardPlan(**json.loads(item["plan"]))
    result = shards.write_shard(plan, out_dir, max_duration_s)
    return {"result": json.dumps(dataclasses.asdict(result))}


def _write_table(table, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def run(cfg: AutotagConfig) -> dict[str, Any]:
    """Shard the dataset; returns counts and the paths of the index and errors tables."""
    import ray

    start = time.perf_counter()
    table = manifest.read(ensure_manifest(cfg))
    plans = shards.plan_shards(table, cfg.shard.tracks_per_shard)
    out_dir = Path(cfg.paths.shards)
    out_dir.mkdir(parents=True, exist_ok=True)
    init_ray(cfg)
    items = [{"plan": json.dumps(dataclasses.asdict(p))} for p in plans]
    dataset = ray.data.from_items(items, override_num_blocks=max(1, len(items)))
    rows = dataset.map(_write_one, fn_kwargs={"out_dir": str(out_dir), "max_duration_s": cfg.shard.max_duration_s},
                       num_cpus=cfg.shard.cpus_per_task).take_all()
    results = sorted((shards.ShardResult(**json.loads(r["result"])) for r in rows), key=lambda r: r.name)
    index, errors = shards.index_table(results), shards.errors_table(results)
    _write_table(index, out_dir / "index.parquet")
    _write_table(errors, out_dir / "errors.parquet")
    for error in errors.to_pylist():
        log.warning("could not shard %s (%s): %s", error["track_id"], error["audio_path"], error["reason"])
    summary = {"shards": len(results), "skipped_shards": sum(r.skipped for r in results),
               "tracks": index.num_rows, "errors": errors.num_rows, "out_dir": str(out_dir),
               "index": str(out_dir / "index.parquet"), "errors_table": str(out_dir / "errors.parquet"),
               "seconds": round(time.perf_counter() - start, 1)}
    log.info("sharded %d tracks into %d shards (%d errors) in %.1f s", summary["tracks"], summary["shards"],
             summary["errors"], summary["seconds"])
    return summary


if __name__ == "__main__":
    raise SystemExit(cli(run))
