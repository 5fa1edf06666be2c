"""Convert published pretrained weights into autotag checkpoints: ``autotag pretrained [MODEL...]``.

    autotag pretrained                                    # MTT_musicnn, MSD_musicnn, MTT_vgg, MSD_vgg, crema-chord
    autotag pretrained MTT_musicnn paths.root=/data/autotag   # -> /data/autotag/checkpoints/pretrained/MTT_musicnn
    autotag pretrained MSD_musicnn --out /models/msd      # one model into a folder of your choice

Reads musicnn's TensorFlow checkpoints from the installed ``musicnn`` package (``pip install
--no-deps musicnn==0.1.0``) without TensorFlow, and crema's Keras chord model (``crema-chord``)
from the installed ``crema`` package (``pip install --no-deps crema==0.2.0``; read with h5py, the
``pretrained`` extra), and writes each
model as a checkpoint (``model.safetensors`` + ``meta.json`` with the label vocabulary, the
feature settings, the source and its licence notice) that ``pipelines.infer
infer.checkpoint=...`` and ``autotag tag --checkpoint ...`` use directly. No Ray is started.
Exit code 2 when a package is not installed or a model name is unknown.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autotag.errors import UserError
from autotag.pretrained import crema
from autotag.pretrained.musicnn import MUSICNN_MODELS
from autotag.pretrained.musicnn import convert as convert_musicnn

DEFAULT_ROOT = "outputs"
"""``paths.root``'s default in ``conf/config.yaml``."""
MODELS = [*MUSICNN_MODELS, crema.NAME]


def convert(name: str, folder: Path, musicnn_dir: str | None = None, crema_dir: str | None = None) -> Path:
    """Convert one model of :data:`MODELS` into ``folder``.

    Raises
    ------
    UserError
        For a name not in :data:`MODELS`, or a package or weight file missing (``PretrainedError``).
    """
    if name not in MODELS:
        raise UserError(f"unknown pretrained model {name!r}; known: {MODELS}")
    if name == crema.NAME:
        return crema.convert(folder, crema_dir)
    return convert_musicnn(name, folder, musicnn_dir)


def parser(prog: str = "autotag pretrained") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*", default=list(MODELS),
                   help=f"models to convert (default: all of {', '.join(MODELS)})")
    p.add_argument("--out", help="the checkpoint folder (one model only); default "
                                 "<paths.root>/checkpoints/pretrained/<model>")
    p.add_argument("--musicnn-dir", help="musicnn's package folder (default: the installed package)")
    p.add_argument("--crema-dir", help="crema's package folder (default: the installed package)")
    return p


def targets(models: list[str], out: str | None, overrides: list[str]) -> dict[str, Path]:
    """Model name → checkpoint folder; ``overrides``: ``paths.root=...`` is the one accepted.

    Raises
    ------
    UserError
        For ``--out`` with several models, or an override other than ``paths.root``.
    """
    root = DEFAULT_ROOT
    for item in overrides:
        key, _, value = item.partition("=")
        if key != "paths.root" or not value:
            raise UserError(f"{item}: the only key=value this command reads is paths.root=<folder>")
        root = value
    if out is not None:
        if len(models) != 1:
            raise UserError(f"--out names one checkpoint folder; {len(models)} models were asked for")
        return {models[0]: Path(out)}
    return {name: Path(root).absolute() / "checkpoints" / "pretrained" / name for name in models}


def main(argv: list[str] | None = None, prog: str = "autotag pretrained") -> int:
    args, overrides = parser(prog).parse_known_args(argv)
    models = [m for m in args.models if "=" not in m]
    overrides += [m for m in args.models if "=" in m]
    try:
        for name, folder in targets(models or list(MODELS), args.out, overrides).items():
            print(f"{name} -> {convert(name, folder, args.musicnn_dir, args.crema_dir)}")
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
