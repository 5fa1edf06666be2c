"""Tag a few files in this process, with no Ray: ``autotag tag FILE... --checkpoint DIR``.

    autotag tag song.flac other.mp3 --checkpoint outputs/checkpoints/demo/best [--top-k 5]
    autotag tag song.flac --checkpoint ... --out tags.parquet      # the rows of the tags (or chords) table
    autotag tag song.flac --checkpoint ... --json                  # every row as JSON on stdout

The same predictor and the same table rows as ``pipelines.infer`` (one decode per file, the
checkpoint loaded once), without starting a cluster: the single-file mode of the musicnn
tagger or madmom's programs. A file that cannot be decoded prints its reason and gets an
``error`` row in ``--out``'s ``tracks`` companion; the exit code is 0 once every file has a
row, 2 for a usage mistake (no file, no checkpoint).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from autotag.data.tasks import Task
from autotag.errors import InputError, UserError
from autotag.infer.batch import BatchPredictor, model_batch
from autotag.infer.rows import output_tables
from autotag.models import checkpoint as checkpoints

RUN_ID = "tag"


def parser(prog: str = "autotag tag") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", help="audio files (any format autotag decodes)")
    p.add_argument("--checkpoint", required=True, help="a checkpoint folder (meta.json + model.safetensors)")
    p.add_argument("--top-k", type=int, default=5, help="labels shown per file (tags); default 5")
    p.add_argument("--out", help="write the tags/chords/instruments rows to this .parquet or .csv file")
    p.add_argument("--json", action="store_true", help="print every row as JSON instead of the summary")
    return p


def tag_files(files: list[str], checkpoint: str, top_k: int | None = None) -> dict[str, pa.Table]:
    """The ``tracks`` table and the task's table (``tags``, ``chords`` or ``instruments``) of ``files``.

    Raises
    ------
    InputError
        A file that does not exist, or a checkpoint that cannot be read.
    """
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        raise InputError(f"{missing[0]}: no such file")
    meta = checkpoints.read_meta(checkpoint)
    task = Task.from_dict(meta["task"])
    predictor = BatchPredictor({"model": checkpoint}, max_duration_s=None)
    batch = predictor({"track_id": list(files), "audio_path": list(files)})
    model = f"{meta['model']['frontend']}+{meta['model']['backend']}"
    return output_tables(model_batch(batch, "model"), RUN_ID, task, model, checkpoint, top_k=top_k)


def _lines(tables: dict[str, pa.Table], top_k: int) -> list[str]:
    lines = []
    rows = {name: table.to_pylist() for name, table in tables.items()}
    for track in rows["tracks"]:
        name = track["track_id"]
        if track["status"] != "ok":
            lines.append(f"{name}: error: {track['error']}")
            continue
        if "tags" in rows:
            best = sorted((r for r in rows["tags"] if r["track_id"] == name), key=lambda r: r["rank"])[:top_k]
            lines.append(f"{name}: " + ", ".join(f"{r['tag']} {r['score']:.3f}" for r in best))
        else:
            table = next(t for t in rows if t != "tracks")
            label = "chord" if table == "chords" else "instrument"
            segments = [r for r in rows[table] if r["track_id"] == name]
            lines.append(f"{name}: {len(segments)} {table} segments")
            lines += [f"  {r['start_s']:8.2f} {r['end_s']:8.2f}  {r[label]}" for r in segments]
    return lines


def write(table: pa.Table, path: str) -> None:
    """``.parquet`` or ``.csv`` by the file's suffix."""
    if path.endswith(".csv"):
        pacsv.write_csv(table, path)
    elif path.endswith(".parquet"):
        pq.write_table(table, path)
    else:
        raise InputError(f"--out {path}: expected a .parquet or .csv file name")


def main(argv: list[str] | None = None, prog: str = "autotag tag") -> int:
    args = parser(prog).parse_args(argv)
    try:
        tables = tag_files(args.files, args.checkpoint, top_k=args.top_k)
        main_name = next(name for name in tables if name != "tracks")
        if args.out:
            write(tables[main_name], args.out)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({name: table.to_pylist() for name, table in tables.items()}, indent=2, default=str))
    else:
        print("\n".join(_lines(tables, args.top_k)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
