"""Catalogue inference on a GPU machine: GPU actors against CPU actors, on the same files.

    python -m benchmarks.infer_gpu [--tracks 400] [--seconds 30] [--gpu-actors 2 4 15] [--split-actors 1 2]
                                   [--pieces-per-batch 4] [--root outputs/bench/gpu] [--smoke]

One pass of the infer stage (``pipelines.infer``) with two models, tagging (LMS + AutoPool)
and chords at the tutorial's size (CQT + Conv2d + BiLSTM, Viterbi), over ``--tracks`` synthetic
44.1 kHz stereo FLACs, written first. Rows:

- decode only, in as many processes as the CPU pool has actors (the bound for the CPU rows);
- CPU actors: the fused pipeline (``infer.pipeline=fused``: each actor decodes, runs both models
  and aggregates), one CPU each, one CPU of the machine left to Ray Data's other tasks;
- GPU actors: for each count in ``--gpu-actors``, that many fused actors sharing the one GPU
  (``infer.gpus_per_actor = 1 / count``), the machine's CPUs shared among them, each actor
  decoding one track per whole CPU ahead of its models (``infer.decode_threads``);
- split: for each count in ``--split-actors``, the split pipeline (``infer.pipeline=split``):
  decode tasks of one CPU on every CPU the model actors leave but one (the driver's, which
  aggregates and writes), that many model actors of one CPU
  sharing the GPU, ``--pieces-per-batch`` pieces of 64 patches per pass, the aggregation on the
  driver. Its ratio to decode-only and its GPU utilisation are the goal of issue 16 (≥ 0.8×,
  ≥ 60 %), printed after the table.

Without a GPU the GPU rows are skipped and the split rows run on CPU actors (no GPU), so the
script runs on any machine; ``--smoke`` shrinks everything (4 × 5-s tracks) to check that it works.

Throughput is end to end: audio seconds of the tracks that both models tagged over the stage's
wall time (Ray Data start, actor start-up with CUDA initialisation, and the Parquet writes
included). GPU utilisation and memory are sampled from ``nvidia-smi`` every 0.2 s while a GPU
row runs. Weights are untrained (they do not change the cost).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import threading
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from autotag.data.audio import decode_audio
from benchmarks.common import Stopwatch, machine, table
from benchmarks.infer_rtf import save_checkpoint, write_music
from benchmarks.infer_throughput import tagged_audio_seconds

MODELS = {"tags": "tagging (lms_conv2d + autopool)", "chords": "chords, tutorial size (cqt_conv2d + conv_bilstm)"}
COLUMNS = {"what": "pass (tagging + chords, one decode)", "actors": "actors", "cpus_per_actor": "CPU/actor",
           "gpu_per_actor": "GPU/actor", "decode_threads": "decode threads/actor", "tracks": "tracks",
           "audio_s_per_s": "audio s / s",
           "vs_cpu": "× CPU actors", "vs_decode": "× decode only", "gpu_util_mean": "GPU util mean (%)",
           "gpu_util_max": "GPU util max (%)",
           "gpu_mem_max_mib": "GPU memory max (MiB)", "seconds": "wall (s)"}


class GpuSampler:
    """Samples utilisation (%) and memory used (MiB) of GPU 0 with ``nvidia-smi`` in a thread."""

    def __init__(self, interval_ms: int = 200):
        self.interval_ms = interval_ms
        self.util: list[float] = []
        self.memory: list[float] = []

    def __enter__(self) -> GpuSampler:
        self._process = subprocess.Popen(
            ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits",
             f"-lms={self.interval_ms}", "-i", "0"], stdout=subprocess.PIPE, text=True)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        for line in self._process.stdout:
            try:
                util, memory = (float(x) for x in line.split(","))
            except ValueError:
                continue
            self.util.append(util)
            self.memory.append(memory)

    def __exit__(self, *exc: Any) -> None:
        self._process.terminate()
        self._process.wait()
        self._thread.join(timeout=5)

    def summary(self) -> dict[str, float | None]:
        busy = self.util or [float("nan")]
        return {"gpu_util_mean": float(np.mean(busy)), "gpu_util_max": float(np.max(busy)),
                "gpu_mem_max_mib": max(self.memory) if self.memory else None}


def gpu_available() -> bool:
    import torch

    return torch.cuda.is_available() and shutil.which("nvidia-smi") is not None


def _write_one(args: tuple[str, float, int]) -> None:
    path, seconds, seed = args
    if not Path(path).exists():
        write_music(Path(path), seconds, seed)


def _decode_seconds(path: str) -> float:
    return decode_audio(path).duration_s


def write_catalogue(root: Path, tracks: int, seconds: float, processes: int) -> Path:
    folder = root / "audio"
    jobs = [(str(folder / f"track{i:04d}.flac"), seconds, i) for i in range(tracks)]
    with ProcessPoolExecutor(processes) as pool:
        list(pool.map(_write_one, jobs, chunksize=4))
    return folder


def decode_only(folder: Path, processes: int) -> dict[str, Any]:
    files = sorted(str(p) for p in folder.glob("*.flac"))
    with ProcessPoolExecutor(processes) as pool, Stopwatch() as clock:
        audio_s = sum(pool.map(_decode_seconds, files, chunksize=2))
    return {"what": f"decode only, {processes} processes", "actors": processes, "tracks": len(files),
            "audio_s_per_s": audio_s / clock.seconds, "seconds": clock.seconds}


def infer_pass(root: Path, folder: Path, checkpoints: dict[str, str], actors: int, cpus: float, gpu: float,
               patch_batch_size: int, pipeline: str = "fused", pieces_per_batch: int = 1) -> dict[str, Any]:
    from pipelines import infer
    from pipelines.common import load_config

    run_id = f"{pipeline}-{'gpu' if gpu else 'cpu'}{actors}"
    models = "{" + ", ".join(f"{name}: {path}" for name, path in checkpoints.items()) + "}"
    cfg = load_config([f"paths.root={root}", f"run_id={run_id}", f"infer.input={folder}", f"infer.models={models}",
                       f"infer.num_actors={actors}", f"infer.cpus_per_actor={cpus}", f"infer.gpus_per_actor={gpu}",
                       f"infer.patch_batch_size={patch_batch_size}", f"infer.pipeline={pipeline}",
                       f"infer.pieces_per_batch={pieces_per_batch}", "runtime.progress_bars=false",
                       "infer.overwrite=true",  # tag everything again
                       *([f"infer.decode_tasks={max(1, (os.cpu_count() or 2) - actors - 1)}"]
                         if pipeline == "split" else [])])
    sampler = GpuSampler() if gpu else None
    with Stopwatch() as clock, sampler or nullcontext():
        summary = infer.run(cfg)
    tracks, audio_s = min(tagged_audio_seconds(run["tracks_dir"]) for run in summary["runs"].values())
    device = "GPU" if gpu else "CPU"
    what = f"split, {device} model actors, {pieces_per_batch} pieces/pass" if pipeline == "split" \
        else f"{device} actors"
    row = {"what": what, "actors": actors, "cpus_per_actor": cpus, "gpu_per_actor": gpu or None,
           "decode_threads": infer.decode_threads(cfg) if pipeline == "fused" else None, "tracks": tracks,
           "audio_s_per_s": audio_s / clock.seconds, "seconds": clock.seconds}
    if sampler:
        row.update(sampler.summary())
    return row


def run(root: Path, tracks: int, seconds: float, gpu_actors: tuple[int, ...], cpu_actors: int | None = None,
        gpu_patch_batch: int = 256, split_actors: tuple[int, ...] = (1, 2), pieces_per_batch: int = 4
        ) -> list[dict[str, Any]]:
    import ray

    from pipelines.common import init_ray, load_config

    cores = os.cpu_count() or 2
    cpu_actors = cpu_actors or max(1, cores - 1)
    folder = write_catalogue(root, tracks, seconds, cores)
    checkpoints = {name: str(save_checkpoint(root / "checkpoints" / name, label)) for name, label in MODELS.items()}
    rows = [decode_only(folder, cpu_actors)]
    print(table(rows[-1:], COLUMNS, "decode only"), flush=True)
    init_ray(load_config([f"paths.root={root}", "runtime.progress_bars=false"]))
    rows.append(infer_pass(root, folder, checkpoints, cpu_actors, 1.0, 0.0, 64))
    print(table(rows[-1:], COLUMNS, "CPU actors"), flush=True)
    gpu = gpu_available()
    if gpu:
        for n in gpu_actors:
            cpus = round(max(0.25, (cores - 1) / n), 2)
            rows.append(infer_pass(root, folder, checkpoints, n, cpus, round(1.0 / n, 4), gpu_patch_batch))
            print(table(rows[-1:], COLUMNS, f"GPU actors: {n}"), flush=True)
    else:
        print("no CUDA GPU (or no nvidia-smi): GPU rows skipped, split rows on CPU actors", flush=True)
    for n in split_actors:
        share = round(1.0 / n, 4) if gpu else 0.0
        rows.append(infer_pass(root, folder, checkpoints, n, 1.0, share, 64,
                               "split", pieces_per_batch))
        print(table(rows[-1:], COLUMNS, f"split: {n} model actor(s)"), flush=True)
    ray.shutdown()
    cpu_rate = rows[1]["audio_s_per_s"]
    for row in rows:
        row["vs_cpu"] = row["audio_s_per_s"] / cpu_rate
        row["vs_decode"] = row["audio_s_per_s"] / rows[0]["audio_s_per_s"]
    return rows


def goal(rows: list[dict[str, Any]]) -> str:
    """Issue 16's goal on the best split row: ≥ 0.8× decode-only with the GPU ≥ 60 % busy."""
    split = [row for row in rows if row["what"].startswith("split")]
    if not split:
        return "goal: no split row"
    best = max(split, key=lambda row: row["audio_s_per_s"])
    util = best.get("gpu_util_mean")
    met = best["vs_decode"] >= 0.8 and util is not None and util >= 60
    busy = "no GPU" if util is None else f"GPU util mean {util:.0f} %"
    return (f"goal (split >= 0.8x decode-only, GPU util >= 60 %): {best['vs_decode']:.2f}x decode-only "
            f"({best['audio_s_per_s']:.0f} / {rows[0]['audio_s_per_s']:.0f} audio-s/s), {busy}, "
            f"{best['actors']} model actor(s): {'met' if met else 'not met'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="outputs/bench/gpu")
    parser.add_argument("--tracks", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--gpu-actors", type=int, nargs="+", default=[2, 4, 15])
    parser.add_argument("--split-actors", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--pieces-per-batch", type=int, default=4, help="split: pieces of 64 patches per pass")
    parser.add_argument("--cpu-actors", type=int, default=None, help="default: cores - 1")
    parser.add_argument("--smoke", action="store_true", help="4 x 5-s tracks, 1 CPU actor, 1 split actor")
    args = parser.parse_args(argv)
    if args.smoke:
        args.tracks, args.seconds, args.cpu_actors, args.gpu_actors, args.split_actors = 4, 5.0, 1, [1], [1]
    rows = run(Path(args.root).resolve(), args.tracks, args.seconds, tuple(args.gpu_actors), args.cpu_actors,
               split_actors=tuple(args.split_actors), pieces_per_batch=args.pieces_per_batch)
    gpu = ""
    if gpu_available():
        gpu = ", " + subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "-i", "0"],
                                    capture_output=True, text=True).stdout.strip()
    print(table(rows, COLUMNS, f"Inference, {args.tracks} × {args.seconds:.0f} s FLAC 44.1 kHz stereo — "
                               f"{machine()}{gpu}"))
    print(goal(rows))
    print(json.dumps(rows, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
