"""Speed per CPU core: our musicnn and crema against the originals (``musicnn.extractor``,
``crema.analyze``), on the same files.

    # ours, in the project's venv (a converted checkpoint: autotag pretrained MTT_musicnn --out DIR)
    taskset -c 0 python -m benchmarks.pretrained_speed --checkpoint DIR FILE...
    # the original, in the throwaway TensorFlow venv of benchmarks/pretrained_reference.py
    TF_USE_LEGACY_KERAS=1 taskset -c 0 /tmp/tfenv/bin/python benchmarks/pretrained_speed.py --original FILE...
    # crema: both from one run (ours here, the original in a subprocess of the TensorFlow venv), one table
    taskset -c 0 python -m benchmarks.pretrained_speed --system crema --checkpoint DIR \
        --side-by-side /tmp/tfenv/bin/python FILE...

crema: ours from the path to the ``chords`` segments (inversions included) through the same
:class:`~autotag.infer.batch.BatchPredictor` (decode at 22,050 Hz, harmonic CQT, network, Viterbi,
inversions);
the original ``crema.analyze.analyze(filename)`` (librosa load at 44.1 kHz, pumpp's CQT, Keras
model, Viterbi, inversions), its model loaded once in the warm-up as the package caches it.

Both measure a file from its path to its tag probabilities: ours through the infer actor's
:class:`~autotag.infer.batch.BatchPredictor` (decode to 22,050 Hz, resample to 16 kHz and
log-mel on the device, 3-s patches, mean over patches) with one torch thread; the original
``musicnn.extractor.extractor(file, "MTT_musicnn")`` (librosa load at 16 kHz, log-mel, and a
TensorFlow graph rebuilt and restored per file, as the package does). ``taskset -c 0`` pins
either to one core. One warm-up file first (not timed), then every file ``--repeats`` times;
the median wall time per file gives the realtime factor (audio seconds / wall seconds). Prints
one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import time
from pathlib import Path


def audio_seconds(path: str) -> float:
    import soundfile as sf

    info = sf.info(path)
    return info.frames / info.samplerate


def time_files(files: list[str], tag, repeats: int) -> dict[str, object]:
    tag(files[0])  # warm-up: imports, graph or kernel set-up
    rows = []
    for path in files:
        walls = []
        for _ in range(repeats):
            began = time.perf_counter()
            tag(path)
            walls.append(time.perf_counter() - began)
        seconds = audio_seconds(path)
        rows.append({"file": path, "audio_s": round(seconds, 2), "wall_s": round(statistics.median(walls), 3),
                     "rtf": round(seconds / statistics.median(walls), 1)})
    total_audio, total_wall = sum(r["audio_s"] for r in rows), sum(r["wall_s"] for r in rows)
    return {"files": rows, "audio_s": round(total_audio, 1), "wall_s": round(total_wall, 2),
            "rtf": round(total_audio / total_wall, 1)}


def ours(checkpoint: str, files: list[str], repeats: int, system: str = "musicnn") -> dict[str, object]:
    import torch

    from autotag.infer.batch import BatchPredictor

    torch.set_num_threads(1)
    predictor = BatchPredictor({"model": checkpoint}, max_duration_s=None)

    def tag(path: str) -> None:
        out = predictor({"track_id": [path], "audio_path": [path]})
        if out["model.status"][0] != "ok":
            raise RuntimeError(f"{path}: {out['model.error'][0]}")

    return {"implementation": f"autotag {system} (torch, 1 thread)", **time_files(files, tag, repeats)}


def original_crema(files: list[str], repeats: int) -> dict[str, object]:
    import warnings

    from benchmarks.crema_reference import import_crema

    warnings.filterwarnings("ignore")
    analyze = import_crema().analyze.analyze

    def tag(path: str) -> None:
        with contextlib.redirect_stdout(io.StringIO()):  # Keras prints a progress bar per predict
            analyze(filename=path)

    return {"implementation": "crema 0.2.0 analyze (Keras/TensorFlow)", **time_files(files, tag, repeats)}


def side_by_side(python: str, checkpoint: str, files: list[str], repeats: int, system: str) -> dict[str, object]:
    """Ours in this process, then the original in ``python`` (the TensorFlow venv) on the same files;
    one table with both realtime factors and their ratio."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    command = [python, "-m", "benchmarks.pretrained_speed", "--original", "--system", system,
               "--repeats", str(repeats), *files]
    theirs_run = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if theirs_run.returncode:
        sys.exit(f"the original failed ({' '.join(command)}):\n{theirs_run.stderr[-2000:]}")
    theirs = json.loads(theirs_run.stdout[theirs_run.stdout.index("{"):])
    mine = ours(checkpoint, files, repeats, system)
    rows = [{"file": a["file"], "audio_s": a["audio_s"], "ours_rtf": a["rtf"], "original_rtf": b["rtf"],
             "ratio": round(a["rtf"] / b["rtf"], 1)} for a, b in zip(mine["files"], theirs["files"])]
    return {"system": system, "ours": mine["implementation"], "original": theirs["implementation"], "files": rows,
            "ours_rtf": mine["rtf"], "original_rtf": theirs["rtf"], "ratio": round(mine["rtf"] / theirs["rtf"], 1)}


def print_table(result: dict[str, object]) -> None:
    print(f"{'file':<60} {'audio s':>8} {'ours x':>8} {'orig x':>8} {'ratio':>6}")
    for row in result["files"]:
        print(f"{Path(row['file']).name[:60]:<60} {row['audio_s']:>8} {row['ours_rtf']:>8} "
              f"{row['original_rtf']:>8} {row['ratio']:>6}")
    print(f"{'all':<60} {sum(r['audio_s'] for r in result['files']):>8.1f} {result['ours_rtf']:>8} "
          f"{result['original_rtf']:>8} {result['ratio']:>6}   (realtime factor per core)")


def original(files: list[str], repeats: int) -> dict[str, object]:
    from musicnn import extractor

    def tag(path: str) -> None:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints progress on stdout
            extractor.extractor(path, model="MTT_musicnn", input_length=3, extract_features=False)

    return {"implementation": "musicnn 0.1.0 extractor (TensorFlow)", **time_files(files, tag, repeats)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--checkpoint", help="a converted checkpoint of --system (ours)")
    group.add_argument("--original", action="store_true", help="time the original (TensorFlow venv)")
    p.add_argument("--system", choices=("musicnn", "crema"), default="musicnn")
    p.add_argument("--side-by-side", metavar="TF_PYTHON", help="with --checkpoint: also run the original with "
                                                               "this interpreter and print one table")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    if args.side_by_side:
        result = side_by_side(args.side_by_side, args.checkpoint, args.files, args.repeats, args.system)
        print_table(result)
    elif args.original:
        result = (original_crema if args.system == "crema" else original)(args.files, args.repeats)
    else:
        result = ours(args.checkpoint, args.files, args.repeats, args.system)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
