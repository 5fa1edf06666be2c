"""Tagging speed per CPU core: our musicnn against the original ``musicnn.extractor``, on the same files.

    # ours, in the project's venv (a converted checkpoint: autotag pretrained MTT_musicnn --out DIR)
    taskset -c 0 python -m benchmarks.pretrained_speed --checkpoint DIR FILE...
    # the original, in the throwaway TensorFlow venv of benchmarks/pretrained_reference.py
    TF_USE_LEGACY_KERAS=1 taskset -c 0 /tmp/tfenv/bin/python benchmarks/pretrained_speed.py --original FILE...

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


def ours(checkpoint: str, files: list[str], repeats: int) -> dict[str, object]:
    import torch

    from autotag.infer.batch import BatchPredictor

    torch.set_num_threads(1)
    predictor = BatchPredictor({"model": checkpoint}, max_duration_s=None)

    def tag(path: str) -> None:
        out = predictor({"track_id": [path], "audio_path": [path]})
        if out["model.status"][0] != "ok":
            raise RuntimeError(f"{path}: {out['model.error'][0]}")

    return {"implementation": "autotag musicnn (torch, 1 thread)", **time_files(files, tag, repeats)}


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
    group.add_argument("--checkpoint", help="a converted musicnn checkpoint (ours)")
    group.add_argument("--original", action="store_true", help="time musicnn.extractor (TensorFlow venv)")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    result = original(args.files, args.repeats) if args.original else ours(args.checkpoint, args.files, args.repeats)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
