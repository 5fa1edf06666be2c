"""Stage 3 — infer: tag every track of a manifest with a checkpoint, into Parquet.

    python -m pipelines.infer [infer.checkpoint=/path/best] [infer.split=test] [infer.num_actors=4]

Ray Data streams manifest rows through a pool of actors (``ActorPoolStrategy``), each
loading the checkpoint once; the driver writes the ``tracks`` and ``tags`` tables under
``paths.predictions`` part by part. Re-running the same ``run_id`` skips tracks already
written, so an interrupted run resumes and every track appears exactly once.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from autotag.config import AutotagConfig
from autotag.data import manifest
from autotag.infer.predictor import TrackPredictor
from autotag.infer.tables import SEGMENT_TABLES, PredictionWriter, output_tables
from autotag.train import checkpoint
from autotag.train.tasks import Task
from pipelines.common import cli, init_ray

log = logging.getLogger("autotag.infer")


def pending_tracks(cfg: AutotagConfig, done: set[str]):
    """Manifest rows to tag: the configured split, minus tracks already written."""
    table = manifest.read(cfg.dataset.manifest).select(["track_id", "audio_path"] + ["split"])
    if cfg.infer.split is not None:
        table = table.filter(pc.equal(table.column("split"), cfg.infer.split))
    if done:
        table = table.filter(pc.invert(pc.is_in(table.column("track_id"), value_set=pa.array(sorted(done)))))
    return table.select(["track_id", "audio_path"])


def run(cfg: AutotagConfig) -> dict[str, Any]:
    """Tag the catalogue; returns row counts and where the tables are."""
    import ray.data

    start = time.perf_counter()
    meta = checkpoint.read_meta(cfg.infer.checkpoint)
    task = Task.from_dict(meta["task"])
    model_name = f"{meta['model']['frontend']}+{meta['model']['backend']}"
    table = SEGMENT_TABLES[task.kind][0] if task.frame_level else "tags"
    writer = PredictionWriter(cfg.paths.predictions, cfg.run_id, {
        "labels": list(task.vocabulary), "task": task.to_dict(), "model": meta["model"],
        "checkpoint": cfg.infer.checkpoint, "config": cfg.to_dict()}, tables=(table,))
    done = writer.done_track_ids()
    todo = pending_tracks(cfg, done)
    log.info("%d tracks to tag (%d already done) with %s", todo.num_rows, len(done), cfg.infer.checkpoint)
    counts = {"ok": 0, "error": 0}
    if todo.num_rows:
        init_ray(cfg)
        blocks = max(1, math.ceil(todo.num_rows / max(cfg.infer.tracks_per_batch * 4, 1)))
        predictions = ray.data.from_arrow(todo).repartition(blocks).map_batches(
            TrackPredictor, batch_size=cfg.infer.tracks_per_batch, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=cfg.infer.num_actors),
            num_cpus=cfg.infer.cpus_per_actor, num_gpus=cfg.infer.gpus_per_actor,
            fn_constructor_kwargs={"checkpoint_dir": cfg.infer.checkpoint,
                                   "patch_batch_size": cfg.infer.patch_batch_size,
                                   "aggregate": cfg.infer.aggregate, "max_duration_s": cfg.infer.max_duration_s,
                                   "device": "cuda" if cfg.infer.gpus_per_actor > 0 else "cpu",
                                   "num_threads": max(1, int(cfg.infer.cpus_per_actor)),
                                   "chord_switch_penalty": cfg.infer.chord_switch_penalty,
                                   "smooth_frames": cfg.infer.smooth_frames})
        for batch in predictions.iter_batches(batch_size=cfg.infer.rows_per_file, batch_format="numpy"):
            writer.write(output_tables(batch, cfg.run_id, task, model_name, cfg.infer.checkpoint))
            for status in batch["status"]:
                counts[status] += 1
            for track_id, status, error in zip(batch["track_id"], batch["status"], batch["error"]):
                if status == "error":
                    log.warning("could not tag %s: %s", track_id, error)
    summary = {"run_id": cfg.run_id, "tracks_ok": counts["ok"], "tracks_error": counts["error"],
               "tracks_skipped": len(done), "tracks_dir": str(writer.dirs["tracks"]),
               f"{table}_dir": str(writer.dirs[table]), "seconds": round(time.perf_counter() - start, 1)}
    if todo.num_rows and counts["ok"] == 0:
        raise RuntimeError(f"no track could be tagged ({counts['error']} errors); see {writer.dirs['tracks']}")
    return summary


if __name__ == "__main__":
    raise SystemExit(cli(run))
