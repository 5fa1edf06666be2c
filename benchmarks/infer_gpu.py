"""Catalogue inference on a GPU machine: GPU actors against CPU actors, on the same files.

    python -m benchmarks.infer_gpu [--tracks 400] [--seconds 30] [--gpu-actors 2 4 15] [--root outputs/bench/gpu]

One pass of the infer stage (``pipelines.infer``: Ray Data, an actor pool of ``BatchPredictor``s
that decode each track once and run every model on it) with two models, tagging (LMS + AutoPool)
and chords at the tutorial's size (CQT + Conv2d + BiLSTM, Viterbi), over ``--tracks`` synthetic
44.1 kHz stereo FLACs, written first. Rows:

- decode only, in as many processes as the CPU pool has actors (the bound for the CPU rows);
- CPU actors: one CPU each, one CPU of the machine left to Ray Data's other tasks;
- GPU actors: for each count in ``--gpu-actors``, that many actors sharing the one GPU
  (``infer.gpus_per_actor = 1 / count``), the machine's CPUs shared among them, each actor
  decoding one track per whole CPU ahead of its models (``infer.decode_threads``).

Throughput is end to end: audio seconds of the tracks that both models tagged over the stage's
wall time (Ray Data start, actor start-up with CUDA initialisation, and the Parquet writes
included). GPU utilisation and memory are sampled from ``nvidia-smi`` every 0.2 s while a GPU
row runs. Weights are untrained (they do not change the cost). Without a GPU the GPU rows are
skipped, so the script can be checked on any machine.
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
           "vs_cpu": "× CPU actors", "gpu_util_mean": "GPU util mean (%)", "gpu_util_max": "GPU util max (%)",
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
               patch_batch_size: int) -> dict[str, Any]:
    from pipelines import infer
    from pipelines.common import load_config

    run_id = f"gpu{actors}" if gpu else f"cpu{actors}"
    models = "{" + ", ".join(f"{name}: {path}" for name, path in checkpoints.items()) + "}"
    cfg = load_config([f"paths.root={root}", f"run_id={run_id}", f"infer.input={folder}", f"infer.models={models}",
                       f"infer.num_actors={actors}", f"infer.cpus_per_actor={cpus}", f"infer.gpus_per_actor={gpu}",
                       f"infer.patch_batch_size={patch_batch_size}", "runtime.progress_bars=false"])
    for table_dir in Path(cfg.paths.predictions).glob(f"*/{run_id}-*"):
        shutil.rmtree(table_dir)  # tag everything again
    sampler = GpuSampler() if gpu else None
    with Stopwatch() as clock, sampler or nullcontext():
        summary = infer.run(cfg)
    tracks, audio_s = min(tagged_audio_seconds(run["tracks_dir"]) for run in summary["runs"].values())
    row = {"what": f"{'GPU' if gpu else 'CPU'} actors", "actors": actors, "cpus_per_actor": cpus,
           "gpu_per_actor": gpu or None, "decode_threads": infer.decode_threads(cfg), "tracks": tracks,
           "audio_s_per_s": audio_s / clock.seconds,
           "seconds": clock.seconds}
    if sampler:
        row.update(sampler.summary())
    return row


def run(root: Path, tracks: int, seconds: float, gpu_actors: tuple[int, ...], cpu_actors: int | None = None,
        gpu_patch_batch: int = 256) -> list[dict[str, Any]]:
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
    if gpu_available():
        for n in gpu_actors:
            cpus = round(max(0.25, (cores - 1) / n), 2)
            rows.append(infer_pass(root, folder, checkpoints, n, cpus, round(1.0 / n, 4), gpu_patch_batch))
            print(table(rows[-1:], COLUMNS, f"GPU actors: {n}"), flush=True)
    else:
        print("no CUDA GPU (or no nvidia-smi): GPU rows skipped", flush=True)
    ray.shutdown()
    cpu_rate = rows[1]["audio_s_per_s"]
    for row in rows:
        row["vs_cpu"] = row["audio_s_per_s"] / cpu_rate
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="outputs/bench/gpu")
    parser.add_argument("--tracks", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--gpu-actors", type=int, nargs="+", default=[2, 4, 15])
    parser.add_argument("--cpu-actors", type=int, default=None, help="default: cores - 1")
    args = parser.parse_args(argv)
    rows = run(Path(args.root).resolve(), args.tracks, args.seconds, tuple(args.gpu_actors), args.cpu_actors)
    gpu = ""
    if gpu_available():
        gpu = ", " + subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "-i", "0"],
                                    capture_output=True, text=True).stdout.strip()
    print(table(rows, COLUMNS, f"Inference, {args.tracks} × {args.seconds:.0f} s FLAC 44.1 kHz stereo — "
                               f"{machine()}{gpu}"))
    print(json.dumps(rows, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
