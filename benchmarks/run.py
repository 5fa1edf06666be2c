"""Every benchmark in turn, then their tables: ``make bench`` (``python -m benchmarks.run``).

    python -m benchmarks.run [--root outputs/bench] [--epochs 4] [key=value ...]

In order: training throughput (full data path vs in-memory tensors), inference throughput
(actor pool), inference per CPU core and on a 1-hour file (``infer_rtf``), and sharding
throughput against decode-only and a librosa loop (``shard_throughput``), and, on a machine
with a CUDA GPU, GPU against CPU inference actors (``infer_gpu``). The data set is
rendered and sharded once under ``--root`` and reused by later runs; the inference benchmark
tags it with the model the training benchmark published. Numbers depend
on the machine and on whatever else it runs: each table names the cores and the load average.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks import infer_gpu, infer_rtf, infer_throughput, shard_throughput, train_throughput
from benchmarks.common import DEFAULT_ROOT, table
from pipelines.common import load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=DEFAULT_ROOT)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("overrides", nargs="*", help="Hydra key=value overrides for both (frontend=tcn ...)")
    args = parser.parse_args(argv)
    overrides = tuple(args.overrides)
    workers = (1, 2)
    train_rows, codec_rows = train_throughput.run(args.root, workers, args.epochs, overrides)
    cfg = load_config([f"paths.root={Path(args.root).resolve()}", *overrides])
    model = Path(cfg.paths.checkpoints) / f"bench-train-{workers[-1]}w" / "best"
    infer_rows = infer_throughput.run(args.root, checkpoint=str(model), overrides=overrides)
    codecs = tuple(row["codec"] for row in codec_rows)
    print("\n" + train_throughput.report(train_rows, f"{cfg.frontend.name} + {cfg.backend.name}", codecs))
    print(table(codec_rows, train_throughput.CODEC_COLUMNS, "Shard codecs"))
    print(infer_throughput.report(infer_rows))
    infer_rtf.main(["--root", str(Path(args.root) / "rtf")])
    shard_throughput.main(["--root", str(Path(args.root) / "shard")])
    if infer_gpu.gpu_available():
        infer_gpu.main(["--root", str(Path(args.root) / "gpu")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
