"""Inference throughput: audio seconds tagged per second, and peak RSS per predictor actor.

    python -m benchmarks.infer_throughput [--root outputs/bench] [--checkpoint DIR] [key=value ...]

Runs the infer stage (``pipelines.infer``: Ray Data actor pool of ``BatchPredictor``s, each
decoding, resampling, patching and scoring whole tracks) over every track of the synthetic set,
with 1 and 2 actors. Each actor gets at most 1 CPU, and the actors together leave one CPU to Ray
Data's other tasks: 2 actors × 1 CPU on a 2-core machine hang, as the pool holds every CPU
before the repartition upstream of it has run (ecosystem §9). Throughput is end to end: the
audio duration of the tracks tagged over the stage's wall time (actor start-up and Parquet
writes included). Peak RSS is each actor process's ``VmHWM``, sampled from ``/proc`` while the
stage runs. Without ``--checkpoint`` a one-epoch model is trained first (weights do not change
the cost).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.common import DEFAULT_ROOT, PeakRss, Stopwatch, machine, prepare, table
from pipelines import infer, train
from pipelines.common import load_config

COLUMNS = {"actors": "actors", "cpus_per_actor": "CPU/actor", "tracks": "tracks", "audio_s": "audio (s)",
           "seconds": "wall (s)", "audio_s_per_s": "audio s / s", "peak_rss_mib": "peak RSS per actor (MiB)"}


def ensure_checkpoint(base_overrides: list[str]) -> str:
    cfg = load_config([*base_overrides, "train.max_epochs=1", "run_id=bench-infer-model"])
    best = Path(cfg.paths.checkpoints) / cfg.run_id / "best"
    if not best.exists():
        train.run(cfg)
    return str(best)


def actor_cpus(actors: int) -> float:
    """At most 1 CPU per actor, one CPU of the cluster left to the tasks that feed them."""
    import ray

    return min(1.0, max(0.25, (ray.cluster_resources().get("CPU", 1.0) - 1.0) / actors))


def tagged_audio_seconds(tracks_dir: str) -> tuple[int, float]:
    tracks = pq.read_table(tracks_dir, columns=["status", "duration_s"])
    ok = tracks.filter(pc.equal(tracks.column("status"), "ok"))
    return ok.num_rows, float(pc.sum(ok.column("duration_s")).as_py() or 0.0)


def run(root: str | Path = DEFAULT_ROOT, actors: tuple[int, ...] = (1, 2), checkpoint: str | None = None,
        overrides: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """One row per actor count."""
    _, base_overrides = prepare(root, overrides)
    checkpoint = checkpoint or ensure_checkpoint(base_overrides)
    rows = []
    for n in actors:
        cpus = actor_cpus(n)
        cfg = load_config([*base_overrides, f"run_id=bench-infer-{n}a", f"infer.num_actors={n}",
                           f"infer.cpus_per_actor={cpus}", f"infer.checkpoint={checkpoint}",
                           "infer.overwrite=true"])  # tag everything again
        with PeakRss(lambda title: "BatchPredictor" in title or "PieceModels" in title) as rss, Stopwatch() as clock:
            summary = infer.run(cfg)
        tracks, audio_s = tagged_audio_seconds(summary["tracks_dir"])
        rows.append({"actors": n, "cpus_per_actor": cpus, "tracks": tracks, "audio_s": audio_s,
                     "seconds": clock.seconds, "audio_s_per_s": audio_s / clock.seconds,
                     "peak_rss_mib": max(rss.peaks.values()) if rss.peaks else None})
        print(table(rows[-1:], COLUMNS, f"inference, {n} actor(s)"), flush=True)
    return rows


def report(rows: list[dict[str, Any]]) -> str:
    return table(rows, COLUMNS, f"Inference throughput, synthetic genre set — {machine()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=DEFAULT_ROOT)
    parser.add_argument("--checkpoint", default=None, help="a published checkpoint (…/best); default: train one")
    parser.add_argument("overrides", nargs="*", help="Hydra key=value overrides")
    args = parser.parse_args(argv)
    print(report(run(args.root, checkpoint=args.checkpoint, overrides=tuple(args.overrides))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
