"""Inference speed per CPU core, against decoding alone, and memory on a 1-hour file.

    python -m benchmarks.infer_rtf [--tracks 24] [--seconds 30] [--root outputs/bench/rtf]

On the same files (44.1 kHz stereo FLAC), one process with one torch thread:

- decode only: ``decode_audio`` (libsndfile + soxr HQ to 22,050 Hz mono);
- tagging: the infer actor's :class:`BatchPredictor` end to end (decode, patches, LMS +
  AutoPool, aggregation);
- chords: the same with the chord model (CQT + Conv2d + BiLSTM, frame stitching, Viterbi), both
  the tutorial's size and the synthetic preset's;
- tagging + tutorial chords in one pass (one decode per track), against the two run apart;

each as a realtime factor (audio seconds / wall seconds) per core, the ratio to decode-only,
and, in a fresh process each, the peak RSS (``VmHWM``) of tagging a 1-hour file. Weights are
untrained: they do not change the cost. Goals (issue #7): tagging ≥ 0.7× decode-only and ≥ 500×
per core, chords ≥ 450× (madmom's DeepChroma chord recogniser: 436× on this kind of machine).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from autotag.data.audio import decode_audio
from autotag.data.chords import CHORD_LABELS
from autotag.data.tasks import Task
from autotag.infer.batch import BatchPredictor
from autotag.memory import reuse_freed_memory
from autotag.models import build_model, checkpoint
from benchmarks.common import machine, table

MODELS = {
    "tagging (lms_conv2d + autopool)": ("lms_conv2d", "autopool", {}, "multiclass", 10),
    "chords, tutorial size (cqt_conv2d + conv_bilstm)": ("cqt_conv2d", "conv_bilstm", {}, "frame_multiclass", 25),
    "chords, synthetic preset (8 channels, 256 frames)": (
        "cqt_conv2d", "conv_bilstm", {"channels": 8, "patch_frames": 256, "patch_hop_frames": 64},
        "frame_multiclass", 25),
}


def write_music(path: Path, seconds: float, seed: int, sr: int = 44_100) -> None:
    """A stereo FLAC of decaying harmonic notes and noise, written in blocks."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(path, "w", sr, 2, format="FLAC", subtype="PCM_16") as out:
        block = sr * 10
        for start in range(0, int(seconds * sr), block):
            n = min(block, int(seconds * sr) - start)
            t = np.arange(n) / sr
            tone = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate(rng.uniform(80, 800, 4), start=1))
            mono = 0.2 * tone * np.exp(-(t % 0.5) * 4) + 0.02 * rng.standard_normal(n)
            out.write(np.stack([mono, 0.9 * mono], axis=1))


def save_checkpoint(directory: Path, name: str) -> Path:
    frontend, backend, params, kind, outputs = MODELS[name]
    vocabulary = CHORD_LABELS if kind == "frame_multiclass" else tuple(f"c{i}" for i in range(outputs))
    torch.manual_seed(0)
    model = build_model(frontend, backend, outputs, params, {}, task=kind)
    spec = {"frontend": frontend, "frontend_params": params, "backend": backend, "backend_params": {}}
    checkpoint.save(directory, model, {"model": spec, "task": Task(kind, "x", tuple(vocabulary)).to_dict(),
                                       "config": {}})
    return directory


def timed(fn, files: list[Path]) -> float:
    start = time.perf_counter()
    for path in files:
        fn(path)
    return time.perf_counter() - start


def peak_rss_on(checkpoint_dir: Path, path: Path) -> float:
    """Peak RSS (MiB) of a fresh process that tags ``path`` with ``checkpoint_dir``."""
    code = ("import resource, sys, torch; torch.set_num_threads(1);"
            "from autotag.infer.batch import BatchPredictor;"
            "p = BatchPredictor({'m': sys.argv[1]}, patch_batch_size=32, device='cpu');"
            "out = p({'track_id': ['hour'], 'audio_path': [sys.argv[2]]});"
            "assert out['m.status'][0] == 'ok', out['m.error'][0];"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    result = subprocess.run([sys.executable, "-c", code, str(checkpoint_dir), str(path)], capture_output=True,
                            text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def run(root: Path, tracks: int, seconds: float, hour: bool = True) -> list[dict]:
    torch.set_num_threads(1)
    reuse_freed_memory()  # the heap settings of the infer actors, for every row alike
    files = [root / "audio" / f"track{i:03d}.flac" for i in range(tracks)]
    for i, path in enumerate(files):
        if not path.exists():
            write_music(path, seconds, i)
    audio_s = tracks * seconds
    decode_s = timed(lambda p: decode_audio(p), files)
    rows = [{"what": "decode only (libsndfile + soxr HQ)", "rtf": audio_s / decode_s, "vs_decode": 1.0}]
    hour_file = root / "audio" / "hour.flac"
    if hour and not hour_file.exists():
        write_music(hour_file, 3600.0, 99)
    walls, directories = {}, {}
    for name in MODELS:
        directories[name] = save_checkpoint(root / "checkpoints" / f"model{len(rows)}", name)
        walls[name] = wall = timed_predictor({"m": str(directories[name])}, files)
        rows.append({"what": name, "rtf": audio_s / wall, "vs_decode": decode_s / wall,
                     "hour_rss_mib": peak_rss_on(directories[name], hour_file) if hour else None})
    # Several models in one pass (one decode per track) against the same models run one by one.
    together = [name for name in MODELS if "synthetic preset" not in name]
    wall = timed_predictor({f"m{i}": str(directories[name]) for i, name in enumerate(together)}, files)
    apart = sum(walls[name] for name in together)
    rows.append({"what": f"{' + '.join(n.split(' (')[0] for n in together)}, one decode",
                 "rtf": audio_s / wall, "vs_decode": decode_s / wall, "vs_apart": apart / wall})
    return rows


def timed_predictor(checkpoints: dict[str, str], files: list[Path]) -> float:
    """Seconds for a :class:`BatchPredictor` of these models to tag every file, one per call."""
    predictor = BatchPredictor(checkpoints, patch_batch_size=32, device="cpu")
    predictor({"track_id": ["warm"], "audio_path": [str(files[0])]})
    return timed(lambda p: predictor({"track_id": ["t"], "audio_path": [str(p)]}), files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="outputs/bench/rtf")
    parser.add_argument("--tracks", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--no-hour", action="store_true", help="skip the 1-hour memory measurement")
    args = parser.parse_args(argv)
    rows = run(Path(args.root).resolve(), args.tracks, args.seconds, hour=not args.no_hour)
    print(table(rows, {"what": "pipeline (1 core)", "rtf": "realtime factor", "vs_decode": "× decode-only",
                       "hour_rss_mib": "peak RSS, 1-hour file (MiB)", "vs_apart": "× the models one by one"},
                f"Inference per CPU core: {args.tracks} × {args.seconds:.0f} s FLAC 44.1 kHz stereo — {machine()}"))
    print(json.dumps(rows, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
