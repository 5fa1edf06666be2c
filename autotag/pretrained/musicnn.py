"""Convert musicnn's published TensorFlow weights into autotag checkpoints.

musicnn 0.1.0 (``pip install --no-deps musicnn==0.1.0``: its declared dependencies,
TensorFlow and numpy < 1.17, are not needed) ships TF1 checkpoints in ``musicnn/<MODEL>/`` (files ``.index`` and
``.data-00000-of-00001``, empty prefix) and the tag vocabularies in ``configuration.py``.
:func:`convert` reads both without TensorFlow (:mod:`autotag.pretrained.tf_checkpoint`, and
the label lists parsed as Python literals, not imported), maps every variable onto
:mod:`autotag.models.musicnn` and writes a checkpoint that ``pipelines.infer`` and ``autotag
tag`` load like a trained one.

The weights are © Music Technology Group, Universitat Pompeu Fabra 2019, ISC licence;
:data:`MUSICNN_LICENSE` travels in every converted checkpoint's ``meta.json``.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autotag.models import checkpoint
from autotag.pretrained import packages
from autotag.pretrained.packages import PretrainedError
from autotag.pretrained.tf_checkpoint import TFCheckpoint

MUSICNN_VERSION = "0.1.0"
MUSICNN_MODELS = {"MTT_musicnn": "MTT_LABELS", "MSD_musicnn": "MSD_LABELS", "MTT_vgg": "MTT_LABELS",
                  "MSD_vgg": "MSD_LABELS"}
"""Converted models → the vocabulary constant of ``musicnn/configuration.py``."""

MUSICNN_LICENSE = (
    "ISC licence. Copyright (c) Music Technology Group, Universitat Pompeu Fabra 2019. Code developed by "
    "Jordi Pons (www.jordipons.me). Permission to use, copy, modify, and/or distribute this software for any "
    "purpose with or without fee is hereby granted, provided that the above copyright notice and this "
    "permission notice appear in all copies. THE SOFTWARE IS PROVIDED \"AS IS\" AND THE AUTHOR DISCLAIMS ALL "
    "WARRANTIES WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS. IN "
    "NO EVENT SHALL THE AUTHOR BE LIABLE FOR ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY "
    "DAMAGES WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN ACTION OF CONTRACT, "
    "NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS "
    "SOFTWARE."
)

FRONTEND_PARAMS: dict[str, Any] = {"n_fft": 512, "hop_length": 256, "n_mels": 96, "patch_frames": 187,
                                   "patch_hop_frames": 187, "extractor_float16": False}
ARCHITECTURES: dict[str, tuple[str, str, dict[str, Any], dict[str, Any]]] = {
    "musicnn": ("musicnn", "musicnn_pool", {"timbral_filters": 204, "temporal_filters": 51},
                {"midend_filters": 64, "units": 200}),
    "vgg": ("musicnn_vgg", "musicnn_flatten", {"filters": 128}, {}),
}
"""Model family (the part of the name after ``MTT_`` / ``MSD_``) → front-end, back-end and their parameters."""

# TensorFlow layer name → (our module, kind). The TF names follow creation order in models.py.
MUSICNN_LAYERS: dict[str, tuple[str, str]] = {
    "batch_normalization": ("frontend.input_norm", "bn"),
    "conv2d": ("frontend.timbral.0.conv", "conv2d"), "batch_normalization_1": ("frontend.timbral.0.norm", "bn"),
    "conv2d_1": ("frontend.timbral.1.conv", "conv2d"), "batch_normalization_2": ("frontend.timbral.1.norm", "bn"),
    **{f"conv2d_{2 + i}": (f"frontend.temporal.{i}.conv", "conv2d") for i in range(3)},
    **{f"batch_normalization_{3 + i}": (f"frontend.temporal.{i}.norm", "bn") for i in range(3)},
    **{f"conv2d_{5 + i}": (f"backend.midend.{i}.conv", "conv1d") for i in range(3)},
    **{f"batch_normalization_{6 + i}": (f"backend.midend.{i}.norm", "bn") for i in range(3)},
    "batch_normalization_9": ("backend.pool_norm", "bn"),
    "dense": ("backend.dense", "dense"), "batch_normalization_10": ("backend.dense_norm", "bn"),
    "dense_1": ("head", "dense"),
}
VGG_LAYERS: dict[str, tuple[str, str]] = {
    "batch_normalization": ("frontend.input_norm", "bn"),
    **{f"{1 + i}CNN": (f"frontend.blocks.{i}.conv", "conv2d") for i in range(5)},
    **{f"batch_normalization_{1 + i}": (f"frontend.blocks.{i}.norm", "bn") for i in range(5)},
    "dense": ("head", "dense"),
}
LAYERS = {"musicnn": MUSICNN_LAYERS, "vgg": VGG_LAYERS}

BN_NAMES = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


def package_dir() -> Path:
    """Folder of the installed ``musicnn`` package (found without importing it).

    Raises
    ------
    PretrainedError
        If musicnn is not installed.
    """
    return packages.package_dir("musicnn", MUSICNN_VERSION, "tensorflow and numpy<1.17")


def read_labels(configuration: Path, constant: str) -> list[str]:
    """The list literal ``constant`` of musicnn's ``configuration.py``, parsed, not executed."""
    tree = ast.parse(configuration.read_text(encoding="utf-8"), str(configuration))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == constant for t in node.targets):
            labels = ast.literal_eval(node.value)
            if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
                raise PretrainedError(f"{configuration}: {constant} is not a list of strings")
            return labels
    raise PretrainedError(f"{configuration}: no {constant} = [...] assignment")


def family(name: str) -> str:
    """``"musicnn"`` or ``"vgg"`` for a name of :data:`MUSICNN_MODELS`."""
    return name.split("_", 1)[1]


def convert_variables(variables: Mapping[str, np.ndarray], layers: Mapping[str, tuple[str, str]] = MUSICNN_LAYERS,
                      ) -> dict[str, torch.Tensor]:
    """musicnn's TF variables → the ``state_dict`` of our model (``layers``: :data:`MUSICNN_LAYERS` or
    :data:`VGG_LAYERS`).

    TF ``conv2d`` kernels ``(kh, kw, in, out)`` become ``(out, in, kh, kw)``; the mid-end's
    kernels ``(7, C, 1, 64)`` (a 2-D convolution spanning all ``C`` channels) become
    ``Conv1d`` weights ``(64, C, 7)``; dense kernels ``(in, out)`` are transposed. Optimizer
    slots (``*/Adam*``, ``beta*_power``) are dropped.

    Raises
    ------
    PretrainedError
        If a layer of ``layers`` is missing.
    """
    state: dict[str, torch.Tensor] = {}
    for layer, (module, kind) in layers.items():
        try:
            if kind == "bn":
                for tf_name, ours in BN_NAMES.items():
                    state[f"{module}.{ours}"] = torch.from_numpy(variables[f"{layer}/{tf_name}"].astype(np.float32))
                continue
            kernel, bias = variables[f"{layer}/kernel"], variables[f"{layer}/bias"]
        except KeyError as missing:
            raise PretrainedError(f"musicnn checkpoint has no variable {missing}") from None
        if kind == "conv2d":
            kernel = kernel.transpose(3, 2, 0, 1)
        elif kind == "conv1d":
            kernel = kernel[:, :, 0, :].transpose(2, 1, 0)
        else:
            kernel = kernel.T
        state[f"{module}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel, dtype=np.float32))
        state[f"{module}.bias"] = torch.from_numpy(bias.astype(np.float32))
    return state


def model_meta(name: str, labels: list[str], source: str | None = None) -> dict[str, Any]:
    """``meta.json`` contents for a converted musicnn model."""
    frontend, backend, frontend_params, backend_params = ARCHITECTURES[family(name)]
    return {
        "model": {"frontend": frontend, "backend": backend, "frontend_params": {**FRONTEND_PARAMS, **frontend_params},
                  "backend_params": dict(backend_params)},
        "task": {"kind": "multilabel", "label_key": "tags", "vocabulary": list(labels), "threshold": 0.5},
        "config": {"features": {"sample_rate": 16_000, "n_fft": 512, "hop_length": 256, "n_mels": 96,
                                "log": "log10(1 + 10000 * mel power) in float32",
                                "patch_frames": 187, "input_sample_rate": 22_050,
                                "resampling": "torchaudio.functional.resample 22050 -> 16000 Hz"}},
        "pretrained": {"source": f"musicnn {MUSICNN_VERSION} (PyPI), musicnn/{name}/", "package": "musicnn",
                       "version": MUSICNN_VERSION, "model": name, "checkpoint_files": source,
                       "authors": "Jordi Pons, Xavier Serra", "url": "https://github.com/jordipons/musicnn",
                       "licence": "ISC", "licence_text": MUSICNN_LICENSE},
    }


def convert(name: str, out: str | Path, musicnn_dir: str | Path | None = None) -> Path:
    """Write musicnn model ``name`` as an autotag checkpoint in ``out``.

    Parameters
    ----------
    name
        One of :data:`MUSICNN_MODELS`.
    out
        The checkpoint folder to write (``model.safetensors`` + ``meta.json``).
    musicnn_dir
        The musicnn package folder; default: the installed package.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    PretrainedError
        Unknown model name, musicnn not installed, or files missing or not as expected.
    """
    if name not in MUSICNN_MODELS:
        raise PretrainedError(f"unknown musicnn model {name!r}; known: {sorted(MUSICNN_MODELS)}")
    root = Path(musicnn_dir) if musicnn_dir is not None else package_dir()
    prefix = f"{root / name}/"  # the files are named ".index", ".data-…": an empty prefix
    if not Path(f"{prefix}.index").exists():
        raise PretrainedError(f"{root / name}: no .index file (is this musicnn {MUSICNN_VERSION}'s package folder?)")
    labels = read_labels(root / "configuration.py", MUSICNN_MODELS[name])
    ckpt = TFCheckpoint(prefix)
    variables = {n: ckpt.read(n) for n in ckpt.names() if "Adam" not in n and "_power" not in n}
    state = convert_variables(variables, LAYERS[family(name)])
    meta = model_meta(name, labels, str(root / name))
    model = checkpoint.model_from_meta(meta)
    ours = model.state_dict()
    shapes = {k: tuple(v.shape) for k, v in state.items() if k in ours and tuple(ours[k].shape) != tuple(v.shape)}
    if shapes:
        raise PretrainedError(f"{root / name}: variables whose shapes do not fit musicnn's architecture: {shapes}")
    missing = sorted(k for k in ours if k not in state and not k.endswith("num_batches_tracked"))
    if missing:
        raise PretrainedError(f"{root / name}: no TensorFlow variable for {missing}")
    model.load_state_dict(state, strict=False)
    return checkpoint.save(out, model, meta)
