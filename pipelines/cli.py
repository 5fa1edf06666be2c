"""The ``autotag`` command: one subcommand per stage, plus ``tag`` for a few files without Ray.

    autotag demo paths.root=/tmp/x           # shard -> train -> infer -> evaluate on local Ray
    autotag infer --help                     # what the stage does and every key it reads
    autotag train train.num_workers=4 --print-config
    autotag tag song.flac --checkpoint outputs/checkpoints/demo/best

Each stage subcommand takes the same Hydra ``key=value`` overrides as
``python -m pipelines.<stage>`` (what ``ray job submit`` runs) and finds ``conf/`` inside the
installed package.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

COMMANDS = {
    "shard": "audio -> WebDataset shards (Ray Data)",
    "train": "shards -> checkpoint (Ray Train, DDP)",
    "sweep": "front-end x back-end x hyper-parameter trials (Ray Tune)",
    "infer": "catalogue -> prediction tables (Ray Data actor pool)",
    "evaluate": "prediction tables -> metrics and report",
    "demo": "every stage on the synthetic set, on local Ray",
    "tag": "a few files, in this process, no Ray",
    "pretrained": "musicnn's published weights -> autotag checkpoints (no TensorFlow)",
}


def usage() -> str:
    commands = "\n".join(f"  {name:<10} {what}" for name, what in COMMANDS.items())
    return (f"usage: autotag <command> [--help] [options] [key=value ...]\n\ncommands:\n{commands}\n\n"
            "`autotag <command> --help` lists a stage's options and config keys.")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0
    command, rest = args[0], args[1:]
    if command in ("-V", "--version"):
        from autotag import __version__

        print(f"autotag {__version__}")
        return 0
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}; choose one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"pipelines.{command}")
    return module.main(rest, prog=f"autotag {command}")


if __name__ == "__main__":
    raise SystemExit(main())
