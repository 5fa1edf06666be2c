"""CPU seconds per audio second of the fused and the split inference, robust to a loaded machine.

    python -m benchmarks.infer_split_cpu [--root outputs/bench/split_cpu] [--tracks 12] [--rounds 3]

Wall-clock benchmarks swing with other processes' load; the CPU time of one process does much
less. In one process with one torch thread, on ``--tracks`` 30-s 44.1 kHz stereo FLACs and the
models of ``benchmarks.infer_rtf`` (tagging, tutorial-size chords, both in one pass): the fused
:class:`~autotag.infer.batch.BatchPredictor`, and the split pipeline's three parts one after the
other (:func:`~autotag.infer.split.decode_pieces`, :class:`~autotag.infer.split.PieceModels`,
:class:`~autotag.infer.split.TrackAssembler`), each part timed on its own, as audio seconds per CPU
second (best of ``--rounds``). Run from an older checkout it times what that checkout has.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from autotag.infer.batch import BatchPredictor
from autotag.memory import reuse_freed_memory
from benchmarks.infer_rtf import MODELS, save_checkpoint, write_music


def cpu_seconds(fn, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def split_parts(checkpoints: dict[str, str], batch: dict[str, np.ndarray], rounds: int) -> dict[str, float]:
    """CPU seconds of decode + cut, the models and the driver's finish, each the best of ``rounds``."""
    from autotag.infer.split import PieceModels, TrackAssembler, decode_pieces

    models = PieceModels(checkpoints, device="cpu", num_threads=1)
    cutters = {name: p.cutter for name, p in models.predictors.items()}
    best = {"decode and cut": float("inf"), "models": float("inf"), "driver finish": float("inf")}
    for _ in range(rounds):
        t0 = time.process_time()
        pieces = list(decode_pieces(batch, cutters, 3600.0))
        t1 = time.process_time()
        outputs = [models(p) for p in pieces]
        t2 = time.process_time()
        assembler = TrackAssembler(models.predictors)
        for out in outputs:
            assembler.add(out)
        t3 = time.process_time()
        for key, seconds in zip(best, (t1 - t0, t2 - t1, t3 - t2)):
            best[key] = min(best[key], seconds)
    return best


def run(root: Path, tracks: int, rounds: int) -> dict[str, float]:
    torch.set_num_threads(1)
    reuse_freed_memory()
    files = [root / "audio" / f"t{i:02d}.flac" for i in range(tracks)]
    for i, path in enumerate(files):
        if not path.exists():
            write_music(path, 30.0, i)
    labels = list(MODELS)
    checkpoints = {"tags": str(save_checkpoint(root / "checkpoints" / "tags", labels[0])),
                   "chords": str(save_checkpoint(root / "checkpoints" / "chords", labels[1]))}
    batch = {"track_id": np.array([f.stem for f in files], dtype=object),
             "audio_path": np.array([str(f) for f in files], dtype=object)}
    audio_s = 30.0 * tracks
    out = {}
    for name, models in (("tagging", {"tags": checkpoints["tags"]}), ("chords", {"chords": checkpoints["chords"]}),
                         ("tagging + chords", checkpoints)):
        predictor = BatchPredictor(models, device="cpu", num_threads=1)
        out[f"fused, {name}"] = audio_s / cpu_seconds(lambda p=predictor: p(batch), rounds)
        try:
            parts = split_parts(models, batch, rounds)
        except ImportError:  # a checkout from before the split pipeline
            continue
        out[f"split, {name}"] = audio_s / sum(parts.values())
        out.update({f"split, {name}: {part}": audio_s / seconds for part, seconds in parts.items()})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="outputs/bench/split_cpu")
    parser.add_argument("--tracks", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    result = run(Path(args.root).resolve(), args.tracks, args.rounds)
    for key, value in result.items():
        print(f"{key}: {value:,.0f} audio s per CPU s")
    print(json.dumps({key: round(value, 1) for key, value in result.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
