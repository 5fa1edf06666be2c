"""Sharding throughput against decode-only and a librosa loop, and a shard worker's peak RSS.

    python -m benchmarks.shard_throughput [--root outputs/bench/shard] [--tracks 512] [--seconds 30]
                                          [--tracks-per-shard 32] [--workers 2] [--repeats 3] [--no-hour]

A catalogue of music-like tracks (harmonic notes and noise bursts) is rendered once under
``--root``, in equal parts 44.1 kHz stereo WAV (16-bit), FLAC, OGG/Vorbis and MP3, as in
``reference/peers-measured.md``. Then, in one run and on the same files (all in the page cache):

- **shard**: ``pipelines.shard`` on embedded Ray with ``--workers`` CPUs (decode, down-mix, soxr HQ
  resample to 22,050 Hz, FLAC encode, tar write, index and errors tables), timed after Ray has
  started and its workers are warm, into a fresh output folder each repeat;
- **decode-only**: each file decoded to float32 at its own rate and channel count, in a pool of
  ``--workers`` processes (the same parallelism) and in one process: in 64 Ki-frame blocks as the
  shard writer reads (``soundfile.blocks``), and whole (``soundfile.read``, which also pays for
  allocating the whole array);
- **decode + resample**: :func:`autotag.data.audio.decode_audio` (what sharding does before the
  FLAC encode), ``--workers`` processes;
- **librosa loop**: ``librosa.load(path, sr=22050)`` file after file in one process.

A second table splits one process's work per source format: decode only, + down-mix and
resample, + FLAC encode (:func:`autotag.data.shards.encode_track`, the per-track work of a shard).

Throughput is audio seconds per wall second, the best of ``--repeats`` turns (the methods take
turns, so a change in the machine's load hits them all; Ray's workers run at the baselines'
``nice``). Beside it, audio seconds per CPU second: the CPU time of every process doing the work
(for sharding: the driver and the whole embedded Ray, GCS and raylet included; for a pool: its
workers), which a busy neighbour on a shared machine does not distort. With ``--hour`` a one-hour
44.1 kHz stereo FLAC is sharded next to short tracks, and
the peak RSS (``VmHWM``) of each shard worker process is sampled, against the same measure on the
30-s catalogue.

``make bench`` (``benchmarks/run.py``) runs it last, with the defaults, under ``outputs/bench/shard``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from autotag.data import manifest, shards
from autotag.data.audio import BLOCK_FRAMES, decode_audio
from autotag.memory import reuse_freed_memory
from benchmarks.common import PeakRss, Stopwatch, descendants, machine, process_title, table
from pipelines import shard
from pipelines.common import init_ray, load_config

DEFAULT_ROOT = "outputs/bench/shard"
_TICKS = os.sysconf("SC_CLK_TCK")
SOURCE_RATE = 44_100
FORMATS = (("wav", "WAV", "PCM_16"), ("flac", "FLAC", "PCM_16"), ("ogg", "OGG", "VORBIS"),
           ("mp3", "MP3", "MPEG_LAYER_III"))
COLUMNS = {"method": "method", "processes": "processes", "audio_s": "audio (s)", "seconds": "wall (s)",
           "audio_s_per_s": "audio s / wall s", "shard_ratio": "shard ÷ this", "cpu_s": "CPU (s)",
           "audio_s_per_cpu_s": "audio s / CPU s", "shard_cpu_ratio": "shard ÷ this, per CPU s"}


FORMAT_COLUMNS = {"format": "format", "decode_x": "decode-only (blocks)",
                  "resample_x": "+ down-mix + resample (decode_audio)", "encode_x": "+ FLAC encode (shard work)",
                  "ratio": "shard work ÷ decode-only"}


def music(seconds: float, seed: int, sr: int = SOURCE_RATE) -> np.ndarray:
    """Stereo "music": decaying harmonic notes every half second plus noise bursts (not a pure tone)."""
    rng = np.random.default_rng(seed)
    note, n = sr // 2, int(seconds * sr)
    t = np.arange(note) / sr
    y = np.zeros(n, np.float32)
    for start in range(0, n, note):
        f = 110.0 * 2 ** (rng.integers(0, 36) / 12)
        tone = sum(0.12 / h * np.sin(2 * np.pi * f * h * t) for h in range(1, 7)) * np.exp(-3 * t)
        burst = 0.05 * rng.standard_normal(note) * np.exp(-25 * t)
        y[start : start + note] = (tone + burst)[: n - start]
    return np.stack([y, 0.8 * np.roll(y, 11)], axis=1)


def write_blocks(path: Path, data: np.ndarray, fmt: str, subtype: str) -> None:
    """Blocks of 8192 frames: a single large OGG/MP3 write crashes libsndfile 1.2."""
    with sf.SoundFile(path, "w", SOURCE_RATE, data.shape[1], format=fmt, subtype=subtype) as handle:
        for start in range(0, len(data), 8192):
            handle.write(data[start : start + 8192])


def render_catalogue(root: Path, tracks: int, seconds: float) -> tuple[Path, list[str], float]:
    """The benchmark catalogue and its manifest (reused when already rendered)."""
    folder = root / f"catalogue-{tracks}x{seconds:g}s"
    path = folder / "manifest.parquet"
    rows = []
    for i in range(tracks):
        ext, fmt, subtype = FORMATS[i % len(FORMATS)]
        audio = folder / "audio" / f"track{i:04d}.{ext}"
        if not path.exists():
            audio.parent.mkdir(parents=True, exist_ok=True)
            write_blocks(audio, music(seconds, seed=i), fmt, subtype)
        rows.append({"track_id": f"track{i:04d}", "audio_path": str(audio), "split": "train", "genre": "g"})
    if not path.exists():
        manifest.write(manifest.build_table(rows), path)
    files = [r["audio_path"] for r in rows]
    return path, files, sum(sf.info(f).duration for f in files)


def render_hour(root: Path) -> Path:
    """A one-hour 44.1 kHz stereo FLAC (one minute of music repeated), next to three short tracks."""
    folder = root / "hour"
    path = folder / "manifest.parquet"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        minute = music(60.0, seed=999)
        with sf.SoundFile(folder / "hour.flac", "w", SOURCE_RATE, 2, format="FLAC", subtype="PCM_16") as handle:
            for _ in range(60):
                handle.write(minute)
        rows = [{"track_id": "hour", "audio_path": str(folder / "hour.flac"), "split": "train"}]
        for i in range(3):
            write_blocks(folder / f"short{i}.wav", music(30.0, seed=i), "WAV", "PCM_16")
            rows.append({"track_id": f"short{i}", "audio_path": str(folder / f"short{i}.wav"), "split": "train"})
        manifest.write(manifest.build_table(rows), path)
    return path


def _read(path: str) -> int:
    return len(sf.read(path, dtype="float32")[0])


def _read_blocks(path: str) -> int:
    frames = 0
    for block in sf.blocks(path, blocksize=BLOCK_FRAMES, dtype="float32", always_2d=True):
        frames += len(block)
    return frames


def _encode(path: str) -> int:
    spool, size, _ = shards.encode_track({"track_id": "x", "audio_path": path}, "train", None)
    spool.close()
    return size


def _decode(path: str) -> int:
    return len(decode_audio(path).samples)


def _librosa(path: str) -> int:
    import librosa

    return len(librosa.load(path, sr=22_050)[0])


def _process_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


class CpuMeter:
    """CPU seconds used by this process plus the processes ``pids()`` lists, over a ``with`` block.

    On a shared machine wall time measures the neighbours too; CPU time measures the work.
    """

    def __init__(self, pids: Callable[[], list[int]]):
        self.pids = pids

    def __enter__(self) -> CpuMeter:
        self._own, self._before = _own_cpu(), {pid: _process_cpu_seconds(pid) for pid in self.pids()}
        return self

    def __exit__(self, *exc: Any) -> None:
        after = {pid: _process_cpu_seconds(pid) for pid in self.pids()}
        self.seconds = _own_cpu() - self._own + sum(t - self._before.get(pid, 0.0) for pid, t in after.items())


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def ray_processes() -> list[int]:
    """This driver's embedded Ray: GCS, raylet, agents and workers (all of the pipeline's cost)."""
    return [pid for pid in descendants(os.getpid()) if "ray" in process_title(pid)]


def pool_seconds(fn: Callable[[str], int], files: list[str], pool: ProcessPoolExecutor | None) -> tuple[float, float]:
    """Wall and CPU time of ``fn`` over every file, in ``pool`` or (None) file after file in this process."""
    pids = (lambda: list(pool._processes)) if pool is not None else list  # noqa: SLF001 (the pool's worker pids)
    with Stopwatch() as clock, CpuMeter(pids) as cpu:
        list(pool.map(fn, files, chunksize=1)) if pool is not None else [fn(f) for f in files]
    return clock.seconds, cpu.seconds


def shard_config(manifest_path: Path, out: Path, tracks_per_shard: int, workers: int) -> Any:
    return load_config(["dataset=manifest", f"dataset.manifest={manifest_path}", f"paths.root={out}",
                        f"paths.shards={out / 'shards'}", f"shard.tracks_per_shard={tracks_per_shard}",
                        f"runtime.num_cpus={workers}", "runtime.progress_bars=false"])


def shard_seconds(manifest_path: Path, out: Path, workers: int, tracks_per_shard: int) -> tuple[float, float, float]:
    """Wall and CPU time (driver and all of Ray) of ``shard.run`` into a fresh folder; workers' peak RSS (MiB)."""
    shutil.rmtree(out, ignore_errors=True)
    cfg = shard_config(manifest_path, out, tracks_per_shard=tracks_per_shard, workers=workers)
    with PeakRss(lambda title: "write_span" in title, interval_s=0.2) as rss, Stopwatch() as clock, \
            CpuMeter(ray_processes) as cpu:
        summary = shard.run(cfg)
    shutil.rmtree(out, ignore_errors=True)
    if summary["errors"]:
        raise RuntimeError(f"benchmark catalogue had errors: {summary}")
    return clock.seconds, cpu.seconds, max(rss.peaks.values(), default=0.0)


def warm_up(manifest_path: Path, root: Path, workers: int) -> None:
    """Start Ray and let its workers import the shard code before anything is timed."""
    out = root / "warm-up"
    shutil.rmtree(out, ignore_errors=True)
    cfg = shard_config(manifest_path, out, tracks_per_shard=1, workers=workers)
    init_ray(cfg)
    small = out / "manifest.parquet"
    out.mkdir(parents=True)
    manifest.write(manifest.read(manifest_path).slice(0, workers * 2), small)
    shard.run(shard_config(small, out, tracks_per_shard=1, workers=workers))
    shutil.rmtree(out, ignore_errors=True)


def hour_peak_rss(root: Path, workers: int) -> dict[str, Any]:
    path = render_hour(root)
    out = root / "shards-hour"
    shutil.rmtree(out, ignore_errors=True)
    with PeakRss(lambda title: "write_span" in title, interval_s=0.2) as rss, Stopwatch() as clock:
        summary = shard.run(shard_config(path, out, tracks_per_shard=1, workers=workers))
    shutil.rmtree(out, ignore_errors=True)
    return {"seconds": clock.seconds, "audio_s": summary["audio_s"], "errors": summary["errors"],
            "peak_rss_mib": max(rss.peaks.values(), default=float("nan"))}


def run(root: str | Path = DEFAULT_ROOT, tracks: int = 512, seconds: float = 30.0, workers: int = 2,
        repeats: int = 3, hour: bool = True, tracks_per_shard: int = 32) -> dict[str, Any]:
    """Every measurement on one catalogue; rows for :func:`report` plus the memory figures.

    The methods take turns within each repeat (so a change in the machine's load hits them all)
    and each keeps its best time. Ray runs its workers at ``nice`` 15 by default; here they run at
    the baselines' priority, or on a busy machine the comparison would measure the scheduler.
    """
    os.environ.setdefault("RAY_worker_niceness", "0")
    root = Path(root).resolve()
    manifest_path, files, audio_s = render_catalogue(root, tracks, seconds)
    for f in files:  # page cache: every method reads warm files
        Path(f).read_bytes()
    warm_up(manifest_path, root, workers)
    reuse_freed_memory()  # the heap settings of the shard tasks, for every baseline alike
    methods = [("decode-only, 64 Ki-frame blocks (soundfile.blocks)", _read_blocks, workers),
               ("decode-only, whole file (soundfile.read)", _read, workers),
               ("decode-only, 64 Ki-frame blocks (soundfile.blocks)", _read_blocks, 1),
               ("decode + down-mix + resample (decode_audio)", _decode, workers),
               ("librosa.load(sr=22050) loop", _librosa, 1)]
    times: dict[int, list[tuple[float, float]]] = {k: [] for k in range(len(methods) + 1)}
    shard_peak = 0.0
    with ProcessPoolExecutor(workers, initializer=reuse_freed_memory) as pool:
        for fn in (_read, _read_blocks, _decode, _librosa):  # start the processes; no first call is timed
            list(pool.map(fn, files[:workers]))
            fn(files[0])
        for _ in range(repeats):
            wall, cpu, peak = shard_seconds(manifest_path, root / "shards-bench", workers, tracks_per_shard)
            times[0].append((wall, cpu))
            shard_peak = max(shard_peak, peak)
            for k, (_, fn, processes) in enumerate(methods, start=1):
                times[k].append(pool_seconds(fn, files, pool if processes > 1 else None))
    rows = [{"method": "shard (pipelines.shard, Ray Data)", "processes": workers}]
    rows += [{"method": label, "processes": processes} for label, _, processes in methods]
    for k, row in enumerate(rows):
        wall, cpu = min(w for w, _ in times[k]), min(c for _, c in times[k])
        row.update(audio_s=audio_s, seconds=wall, audio_s_per_s=audio_s / wall, cpu_s=cpu,
                   audio_s_per_cpu_s=audio_s / cpu)
    for row in rows:
        row["shard_ratio"] = rows[0]["audio_s_per_s"] / row["audio_s_per_s"]
        row["shard_cpu_ratio"] = rows[0]["audio_s_per_cpu_s"] / row["audio_s_per_cpu_s"]
    result = {"rows": rows, "tracks": tracks, "track_seconds": seconds, "tracks_per_shard": tracks_per_shard,
              "shard_peak_rss_mib": shard_peak,
              "machine": machine()}
    result["formats"] = format_rows(files, repeats)
    if hour:
        result["hour"] = hour_peak_rss(root, workers)
    return result


def format_rows(files: list[str], repeats: int, per_format: int = 8) -> list[dict[str, Any]]:
    """Where the time goes, per source format, in this process: decode, + resample, + FLAC encode."""
    stages = {"decode_x": _read_blocks, "resample_x": _decode, "encode_x": _encode}
    rows = []
    for ext, fmt, _ in FORMATS:
        chosen = [f for f in files if f.endswith(f".{ext}")][:per_format]
        audio_s = sum(sf.info(f).duration for f in chosen)
        best = {key: min(pool_seconds(fn, chosen, None)[1] for _ in range(repeats)) for key, fn in stages.items()}
        row = {"format": fmt, **{key: audio_s / seconds for key, seconds in best.items()}}
        row["ratio"] = row["encode_x"] / row["decode_x"]
        rows.append(row)
    return rows


def report(result: dict[str, Any]) -> str:
    title = (f"Sharding throughput: {result['tracks']} tracks × {result['track_seconds']:g} s, 44.1 kHz stereo "
             f"WAV/FLAC/OGG/MP3 → 22,050 Hz mono FLAC shards of {result['tracks_per_shard']} tracks — "
             f"{result['machine']}")
    text = table(result["rows"], COLUMNS, title)
    text += f"\nShard worker peak RSS (VmHWM) on these {result['track_seconds']:g}-s tracks: " \
            f"{result['shard_peak_rss_mib']:.0f} MiB.\n"
    text += "\n" + table(result["formats"], FORMAT_COLUMNS, "Per source format, one process (audio s / CPU s)")
    if "hour" in result:
        hour = result["hour"]
        text += (f"With a one-hour 44.1 kHz stereo FLAC (+3 short tracks, {hour['audio_s']:.0f} s of audio, "
                 f"{hour['seconds']:.1f} s): shard worker peak RSS {hour['peak_rss_mib']:.0f} MiB "
                 f"(the hour decoded whole would be 1,211 MiB of stereo float32, 303 MiB at 22,050 Hz mono).\n")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=DEFAULT_ROOT)
    parser.add_argument("--tracks", type=int, default=512)
    parser.add_argument("--tracks-per-shard", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hour", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = run(args.root, args.tracks, args.seconds, args.workers, args.repeats, args.hour, args.tracks_per_shard)
    print("\n" + report(result))
    print(f"(benchmark wall time {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
