"""Where streaming training's time goes: CPU-seconds per patch of each step of the data path
against the model's own training step, and the wall time Ray Data adds per epoch.

    python -m benchmarks.train_data_profile [--root outputs/bench] [--epochs 3] [key=value ...]

Each step is timed in this process on one thread over the benchmark's train shards (the
synthetic genre set of :mod:`benchmarks.common`): reading the tar members, decoding the audio
(FLAC, or 16-bit PCM when the shards hold it) to the 16-bit samples the rows carry, cutting
patches with their targets, and one training step of the configured model (batch
``train.batch_size``, forward + loss + backward + Adam). Then the same shards are streamed
through Ray Data (``pipelines.train.patch_dataset``) with no model for ``--epochs`` epochs: the
time to the first batch of each epoch (the executor's start) and the epoch's wall time.
"""

from __future__ import annotations

import argparse
import json
import tarfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from autotag.data import shards
from benchmarks.common import DEFAULT_ROOT, descendants, machine, prepare, table
from pipelines import train

COLUMNS = {"step": "step", "ms_per_patch": "CPU ms / patch", "share": "× model step"}


def _members(path: str) -> list[tuple[str, bytes, dict[str, Any]]]:
    """(audio extension, audio bytes, meta) of every sample of one local tar."""
    samples: dict[str, dict[str, bytes]] = {}
    with tarfile.open(path) as tar:
        for member in tar:
            key, _, ext = Path(member.name).name.partition(".")
            samples.setdefault(key, {})[ext] = tar.extractfile(member).read()
    out = []
    for parts in samples.values():
        ext = next(e for e in parts if e != "json")
        out.append((ext, parts[ext], json.loads(parts["json"])))
    return out


def _cpu(fn, repeats: int = 1) -> float:
    """CPU seconds of ``fn()`` (process time: one thread here, so no other process's work counts)."""
    began = time.process_time()
    for _ in range(repeats):
        fn()
    return (time.process_time() - began) / repeats


def step_costs(cfg, files: list[str]) -> list[dict[str, Any]]:
    """CPU ms per patch of reading, decoding, patching and of the model's training step."""
    import torch

    from autotag.data.shards import decode_member
    from autotag.data.tasks import Task
    from autotag.models import build_model
    from autotag.train.loop import run_epoch
    from autotag.train.patch_rows import shard_batch_to_patches

    torch.set_num_threads(1)
    task = train.task_for(cfg)
    model = build_model(cfg.frontend.name, cfg.backend.name, task.num_outputs, cfg.frontend.params,
                        cfg.backend.params, task=task.kind)
    frontend = model.frontend
    read = _cpu(lambda: [_members(f) for f in files])
    samples = [s for f in files for s in _members(f)]
    decode = _cpu(lambda: [decode_member(ext, data, dtype="int16") for ext, data, _ in samples])  # as the rows do
    columns: dict[str, Any] = {"json": np.asarray([m for _, _, m in samples], dtype=object)}
    for ext in {ext for ext, _, _ in samples}:
        columns[ext] = np.asarray([data for e, data, _ in samples if e == ext], dtype=object)
    kwargs = {"task": task.to_dict(), "patch_samples": frontend.patch_samples,
              "hop_samples": frontend.patch_hop_samples, "frame_times": None}
    rows = shard_batch_to_patches(columns, **kwargs)
    patches = len(rows["target"])
    tracks = len(samples)
    chunks = [{k: v[i:i + 8] for k, v in columns.items()} for i in range(0, tracks, 8)]  # the stage's batches
    patch_and_decode = _cpu(lambda: [shard_batch_to_patches(c, **kwargs) for c in chunks])
    batch = cfg.train.batch_size
    audio = torch.from_numpy(rows["audio"][:batch].copy())
    target = torch.from_numpy(rows["target"][:batch].copy())
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    run_epoch(model, [{"audio": audio, "target": target}], Task.from_dict(task.to_dict()), torch.device("cpu"),
              optimizer)  # warm-up
    model_step = _cpu(lambda: run_epoch(model, [{"audio": audio, "target": target}], task, torch.device("cpu"),
                                        optimizer), repeats=5) / len(audio)
    per_patch = {"read tar members": read / patches, f"decode ({'/'.join(sorted(columns.keys() - {'json'}))})":
                 decode / patches, "cut patches + targets": (patch_and_decode - decode) / patches,
                 "model training step": model_step}
    return [{"step": name, "ms_per_patch": 1000 * seconds, "share": seconds / model_step}
            for name, seconds in per_patch.items()]


def tree_cpu_seconds() -> float:
    """CPU seconds used so far by this process and its live descendants (the embedded Ray's
    raylet, workers and data tasks), from ``/proc/<pid>/stat``."""
    import os

    total = 0.0
    for pid in [os.getpid(), *descendants(os.getpid())]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return total


def ray_data_epochs(cfg, files: list[str], epochs: int) -> list[dict[str, Any]]:
    """Wall time and CPU time (all of this run's processes) of streaming the patches through
    Ray Data with no model, per epoch."""
    task = train.task_for(cfg)
    from autotag.models import build_model

    model = build_model(cfg.frontend.name, cfg.backend.name, task.num_outputs, cfg.frontend.params,
                        cfg.backend.params, task=task.kind)
    ds = train.patch_dataset(files, task, model, shuffle=True)
    rows = []
    for epoch in range(epochs):
        began, cpu = time.perf_counter(), tree_cpu_seconds()
        first, patches = None, 0
        for batch in ds.iter_batches(batch_size=cfg.train.batch_size, batch_format="numpy",
                                     local_shuffle_buffer_size=cfg.train.shuffle_buffer, local_shuffle_seed=epoch):
            first = first if first is not None else time.perf_counter() - began
            patches += len(batch["target"])
        seconds = time.perf_counter() - began
        rows.append({"epoch": epoch, "first_batch_s": first, "epoch_s": seconds, "patches_per_s": patches / seconds,
                     "cpu_ms_per_patch": 1000 * (tree_cpu_seconds() - cpu) / patches})
    # The same passes from one stream (train.continuous_stream): no executor start between them.
    ds = train.patch_dataset(files, task, model, shuffle=True, epochs=epochs)
    began, cpu, patches = time.perf_counter(), tree_cpu_seconds(), 0
    for batch in ds.iter_batches(batch_size=cfg.train.batch_size, batch_format="numpy",
                                 local_shuffle_buffer_size=cfg.train.shuffle_buffer, local_shuffle_seed=0):
        patches += len(batch["target"])
    seconds = time.perf_counter() - began
    rows.append({"epoch": f"{epochs} in one stream", "epoch_s": seconds / epochs, "patches_per_s": patches / seconds,
                 "cpu_ms_per_patch": 1000 * (tree_cpu_seconds() - cpu) / patches})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=DEFAULT_ROOT)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("overrides", nargs="*", help="Hydra key=value overrides (shard.codec=pcm16 ...)")
    args = parser.parse_args(argv)
    cfg, _ = prepare(args.root, args.overrides)
    files = shards.split_shards(cfg.paths.shards, "train")
    print(table(step_costs(cfg, files), COLUMNS, f"Data path CPU cost per patch, one thread — {machine()}"))
    print(table(ray_data_epochs(cfg, files, args.epochs),
                {"epoch": "epoch", "first_batch_s": "first batch (s)", "epoch_s": "epoch (s)",
                 "patches_per_s": "patches/s", "cpu_ms_per_patch": "CPU ms / patch (all processes)"},
                "Ray Data alone (no model, the train stage's shuffle buffer), streamed per epoch"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
