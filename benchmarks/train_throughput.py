"""Training throughput: the full data path against the same model fed from memory.

    python -m benchmarks.train_throughput [--root outputs/bench] [--epochs 4] [--codecs flac pcm16]
        [--workers 1 2] [--modes memory cached streaming] [key=value ...]

*Full path*: the train stage itself (``pipelines.train.build_trainer``): WebDataset shards →
Ray Data decode and patching → ``streaming_split`` → Ray Train workers (DDP), twice: *cached*
(the default when the decoded patches fit in memory: the first epoch streams and decodes, and
each worker keeps its patches for the later epochs — ``autotag.train.patch_cache``) and
*streaming* (``train.cache_patches=false``, what a catalogue too large to cache gets: every epoch
reads and decodes the shards again). *In memory*: the
same patches decoded once beforehand, held as tensors in the object store, each worker taking
every N-th patch and running the same ``run_epoch`` (model, optimizer, batch size, threads,
CPUs per worker). Both count training patches per second of the training pass (validation
excluded), summed over workers; the median over epochs after the first (warm-up) is reported.
The ratio full / in memory says how much the data path costs; the goal is ≥ 0.9 for streaming.

The data set is sharded once per codec (``shard.codec``, under ``<root>/shards-<codec>``); the
first table gives each codec's shard bytes and its writer's speed in this process (audio seconds
per CPU second), and streaming runs once per codec. The peak RSS of the streaming workers says
whether streaming stays in bounded memory: with ``train.continuous_stream`` a worker streams
``epochs`` passes over the shards (``epochs`` × the patches' bytes) without caching any. With
``--modes streaming`` only the streaming runs are made, so a catalogue far larger than memory
(``--modes streaming -- dataset.synthetic.tracks_per_class=400``: 10× the default) can be measured: its peak RSS
per worker against the default's says whether streaming memory is bounded by the catalogue.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from autotag.data import shards
from autotag.models import build_model, checkpoint
from autotag.train.patch_rows import PCM16_SCALE
from benchmarks.common import DEFAULT_ROOT, PeakRss, machine, prepare, spilled_mib, table
from pipelines import train
from pipelines.common import load_config

COLUMNS = {"workers": "workers", "cpus_per_worker": "CPU/worker", "patches": "patches/epoch",
           "in_memory": "in memory (patches/s)", "rss_in_memory": "in memory: peak RSS/worker (MiB)",
           "full_path": "full path, cached (patches/s)", "ratio": "ratio",
           "first_epoch_s": "cached: epoch 1 (s)"}
CODEC_COLUMNS = {"codec": "shard.codec", "shard_mb": "shard bytes (MiB, all splits)", "train_mb": "train split (MiB)",
                 "write_rate": "shard writer (audio-s per CPU-s)"}


def in_memory_loop(config: dict[str, Any]) -> None:
    """Ray Train worker: ``run_epoch`` over this worker's share of in-memory patches."""
    import ray
    import ray.train
    import torch
    from ray.train.torch import get_device, prepare_model

    from autotag.data.tasks import Task
    from autotag.memory import reuse_freed_memory
    from autotag.train.loop import run_epoch

    hp, context = config["train"], ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    torch.manual_seed(hp["seed"])
    torch.set_num_threads(max(1, int(round(hp["cpus_per_worker"]))))
    reuse_freed_memory()  # the heap settings of the train workers
    data = ray.get(config["patches"][0])
    # Copies: object-store arrays are read-only, and every N-th row is not contiguous.
    audio = torch.from_numpy(np.ascontiguousarray(data["audio"][rank::world]).copy())
    target = torch.from_numpy(np.ascontiguousarray(data["target"][rank::world]).copy())
    task, device = Task.from_dict(config["task"]), get_device()
    model = prepare_model(checkpoint.model_from_meta(config))
    optimizer = torch.optim.Adam(model.parameters(), lr=hp["lr"])
    history = []
    for epoch in range(hp["max_epochs"]):
        order = torch.randperm(len(audio), generator=torch.Generator().manual_seed(hp["seed"] + epoch))
        batches = ({"audio": audio[i], "target": target[i]} for i in order.split(hp["batch_size"]))
        began = time.perf_counter()
        stats = run_epoch(model, batches, task, device, optimizer)
        history.append(stats["examples"] / max(time.perf_counter() - began, 1e-9))
    # Train V2 keeps the metrics of reports that carry a checkpoint, so the last one carries a token.
    with tempfile.TemporaryDirectory() as directory:
        token = None
        if rank == 0:
            (Path(directory) / "history.json").write_text(json.dumps(history))
            token = ray.train.Checkpoint.from_directory(directory)
        ray.train.report({"history": history}, checkpoint=token)


def materialise_train_patches(cfg) -> dict[str, np.ndarray]:
    """The train split's patch rows, exactly as the full path makes them, as two arrays."""
    task = train.task_for(cfg)
    model = build_model(cfg.frontend.name, cfg.backend.name, task.num_outputs, cfg.frontend.params,
                        cfg.backend.params, task=task.kind)
    ds = train.patch_dataset(shards.split_shards(cfg.paths.shards, "train"), task, model, shuffle=False)
    batches = list(ds.iter_batches(batch_size=1024, batch_format="numpy"))
    # The rows hold 16-bit samples; the baseline gets the float32 the model takes, so its
    # workers do not even pay the conversion the full path does in each training step.
    return {"audio": np.concatenate([b["audio"] for b in batches]).astype(np.float32) * np.float32(PCM16_SCALE),
            "target": np.concatenate([b["target"] for b in batches])}


def full_path(cfg) -> tuple[list[float], float]:
    """Patches/s of each epoch, and the first epoch's seconds (the one that decodes, when cached)."""
    shutil.rmtree(Path(cfg.paths.checkpoints) / cfg.run_id, ignore_errors=True)  # no resuming
    result = train.build_trainer(cfg).fit()
    train.publish_best(cfg, result, 0.0)  # the inference benchmark can reuse it
    history = checkpoint.read_meta(result.checkpoint.path)["history"]
    return [h["samples_per_s"] for h in history], history[0]["epoch_seconds"]


def in_memory(cfg, patches_ref) -> list[float]:
    import ray.train
    from ray.train.torch import TorchTrainer

    task, cpus = train.task_for(cfg), train.worker_cpus(cfg)
    config = {**train.loop_config(cfg, task, cpus), "patches": [patches_ref]}  # a list keeps the ref a ref
    with tempfile.TemporaryDirectory() as storage:
        result = TorchTrainer(
            in_memory_loop, train_loop_config=config,
            scaling_config=ray.train.ScalingConfig(num_workers=cfg.train.num_workers,
                                                   resources_per_worker={"CPU": cpus}),
            run_config=ray.train.RunConfig(name=f"{cfg.run_id}-memory", storage_path=storage)).fit()
    return result.metrics["history"]


def _patch_geometry(cfg) -> tuple[int, int]:
    """The configured front-end's patch and hop, in samples."""
    frontend = build_model(cfg.frontend.name, cfg.backend.name, 2, cfg.frontend.params, cfg.backend.params).frontend
    return frontend.patch_samples, frontend.patch_hop_samples


def steady(history: list[float]) -> float:
    return float(statistics.median(history[1:] or history))


def codec_row(cfg, codec: str) -> dict[str, Any]:
    """Shard bytes of ``cfg``'s shards, and the shard writer's speed on the train split in this process."""
    import pyarrow.parquet as pq

    root = Path(cfg.paths.shards)
    plans = shards.plan_shards(pq.read_table(cfg.dataset.manifest), cfg.shard.tracks_per_shard)
    plans = [p for p in plans if p.split == "train"]
    with tempfile.TemporaryDirectory() as out:
        began = time.process_time()
        written = [shards.write_shard(p, out, cfg.shard.max_duration_s, codec=codec) for p in plans]
        cpu = time.process_time() - began
    audio_s = sum(t["duration_s"] for r in written for t in r.tracks)
    return {"codec": codec, "shard_mb": sum(f.stat().st_size for f in root.rglob("*.tar")) / 2**20,
            "train_mb": sum(f.stat().st_size for f in (root / "train").glob("*.tar")) / 2**20,
            "write_rate": audio_s / max(cpu, 1e-9)}


def streaming(settings: list[str], codec_overrides: list[str]) -> tuple[list[float], float]:
    """Streaming patches/s per epoch, and the peak RSS (MiB) of the busiest train worker."""
    with PeakRss(lambda title: "RayTrainWorker" in title) as rss:
        history, _ = full_path(load_config([*settings, *codec_overrides, "train.cache_patches=false"]))
    return history, max(rss.peaks.values(), default=float("nan"))


MODES = ("memory", "cached", "streaming")


def run(root: str | Path = DEFAULT_ROOT, workers: tuple[int, ...] = (1, 2), epochs: int = 4,
        overrides: tuple[str, ...] = (), codecs: tuple[str, ...] = ("flac", "pcm16"),
        modes: tuple[str, ...] = MODES) -> tuple[list, list]:
    """One row per worker count (in memory, cached, streaming per codec: those of ``modes``) and
    one row per codec. Streaming alone (``modes=("streaming",)``) never holds the decoded set in
    memory: what a catalogue larger than the cluster's memory can run."""
    import ray

    folder = Path(root).resolve()
    per_codec = {codec: [f"shard.codec={codec}", f"paths.shards={folder}/shards-{codec}/${{dataset.name}}"]
                 for codec in codecs}
    codec_rows = []
    for codec in codecs:
        cfg, base_overrides = prepare(root, [*overrides, *per_codec[codec]])
        codec_rows.append(codec_row(cfg, codec))
    print(table(codec_rows, CODEC_COLUMNS, "Shard codecs"), flush=True)
    base = load_config(base_overrides)  # the last codec's shards feed the cached and in-memory runs
    rows = []
    columns = columns_for(codecs)
    for n in workers:
        settings = [*base_overrides, f"train.num_workers={n}", f"train.max_epochs={epochs}", "train.patience=1000",
                    f"run_id=bench-train-{n}w"]
        cfg = load_config([*settings, "train.cache_patches=true"])
        row = {"workers": n, "cpus_per_worker": train.worker_cpus(cfg),
               "patches": train.patch_total(cfg.paths.shards, ("train",), *_patch_geometry(cfg))}
        spilled = spilled_mib()
        for codec in codecs if "streaming" in modes else ():
            history, peak = streaming(settings, per_codec[codec])
            row.update({f"streaming_{codec}": steady(history), f"rss_{codec}": peak})
        if "cached" in modes:
            cached, first_epoch_s = full_path(cfg)
            row.update({"full_path": steady(cached), "first_epoch_s": first_epoch_s})
        row["spilled_mib"] = spilled_mib() - spilled
        if "memory" in modes:  # last, and let go after: its patches take object-store room the others need
            patches_ref = ray.put(materialise_train_patches(base))
            with PeakRss(lambda title: "RayTrainWorker" in title) as rss:
                memory = steady(in_memory(cfg, patches_ref))
            del patches_ref
            row.update({"in_memory": memory, "rss_in_memory": max(rss.peaks.values(), default=float("nan"))})
            row["ratio"] = row["full_path"] / memory if "full_path" in row else None
        for codec in codecs if "streaming" in modes else ():
            memory = row.get("in_memory")
            row[f"streaming_{codec}_ratio"] = None if memory is None else row[f"streaming_{codec}"] / memory
        rows.append(row)
        print(table(rows[-1:], columns, f"{cfg.frontend.name} + {cfg.backend.name}, {n} worker(s)"), flush=True)
    return rows, codec_rows


def columns_for(codecs: tuple[str, ...]) -> dict[str, str]:
    """The result table's columns: the baselines, then per codec its streaming rate, ratio and peak RSS."""
    columns = dict(COLUMNS)
    for codec in codecs:
        columns.update({f"streaming_{codec}": f"streaming, {codec} (patches/s)",
                        f"streaming_{codec}_ratio": "ratio", f"rss_{codec}": "peak RSS/worker (MiB)"})
    columns["spilled_mib"] = "object store spilled, cached + streaming (MiB)"
    return columns


def report(rows: list[dict[str, Any]], model: str, codecs: tuple[str, ...]) -> str:
    return table(rows, columns_for(codecs), f"Training throughput, {model} (goal: streaming ratio ≥ 0.9) — {machine()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=DEFAULT_ROOT)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--codecs", nargs="+", default=["flac", "pcm16"], choices=shards.CODECS)
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES,
                        help="what to run (streaming alone: for a catalogue too big to hold in memory)")
    parser.add_argument("overrides", nargs="*", help="Hydra key=value overrides (frontend=tcn ...)")
    args = parser.parse_args(argv)
    rows, codec_rows = run(args.root, tuple(args.workers), args.epochs, tuple(args.overrides), tuple(args.codecs),
                           tuple(args.modes))
    print(table(codec_rows, CODEC_COLUMNS, "Shard codecs"))
    cfg = load_config([f"paths.root={args.root}", *args.overrides])
    print(report(rows, f"{cfg.frontend.name} + {cfg.backend.name}", tuple(args.codecs)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
