"""Training throughput: the full data path against the same model fed from memory.

    python -m benchmarks.train_throughput [--root outputs/bench] [--epochs 4] [key=value ...]

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
The ratio full / in memory says how much the data path costs; the goal is ≥ 0.8.
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
from benchmarks.common import DEFAULT_ROOT, machine, prepare, table
from pipelines import train
from pipelines.common import load_config

COLUMNS = {"workers": "workers", "cpus_per_worker": "CPU/worker", "patches": "patches/epoch",
           "in_memory": "in memory (patches/s)", "full_path": "full path, cached (patches/s)", "ratio": "ratio",
           "first_epoch_s": "cached: epoch 1 (s)", "streaming": "full path, streaming (patches/s)",
           "streaming_ratio": "ratio"}


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
    return {"audio": np.concatenate([b["audio"] for b in batches]).astype(np.float32),
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


def steady(history: list[float]) -> float:
    return float(statistics.median(history[1:] or history))


def run(root: str | Path = DEFAULT_ROOT, workers: tuple[int, ...] = (1, 2), epochs: int = 4,
        overrides: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """One row per worker count: full-path and in-memory patches/s and their ratio."""
    import ray

    base, base_overrides = prepare(root, overrides)
    patches = materialise_train_patches(base)
    patches_ref = ray.put(patches)
    rows = []
    for n in workers:
        settings = [*base_overrides, f"train.num_workers={n}", f"train.max_epochs={epochs}", "train.patience=1000",
                    f"run_id=bench-train-{n}w"]
        streaming, _ = full_path(load_config([*settings, "train.cache_patches=false"]))
        cfg = load_config([*settings, "train.cache_patches=true"])
        cached, first_epoch_s = full_path(cfg)
        memory = steady(in_memory(cfg, patches_ref))
        rows.append({"workers": n, "cpus_per_worker": train.worker_cpus(cfg), "patches": len(patches["target"]),
                     "in_memory": memory, "full_path": steady(cached), "ratio": steady(cached) / memory,
                     "first_epoch_s": first_epoch_s, "streaming": steady(streaming),
                     "streaming_ratio": steady(streaming) / memory})
        print(table(rows[-1:], COLUMNS, f"{cfg.frontend.name} + {cfg.backend.name}, {n} worker(s)"), flush=True)
    return rows


def report(rows: list[dict[str, Any]], model: str) -> str:
    return table(rows, COLUMNS, f"Training throughput, {model} (goal: ratio ≥ 0.8) — {machine()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=DEFAULT_ROOT)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("overrides", nargs="*", help="Hydra key=value overrides (frontend=tcn ...)")
    args = parser.parse_args(argv)
    rows = run(args.root, epochs=args.epochs, overrides=tuple(args.overrides))
    cfg = load_config([f"paths.root={args.root}", *args.overrides])
    print(report(rows, f"{cfg.frontend.name} + {cfg.backend.name}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
