"""Checkpoints: weights (safetensors), optimizer state and a JSON description.

A checkpoint directory is self-sufficient for inference: ``meta.json`` carries the model
components and their parameters, the task and label vocabulary, the resolved config and
the metrics history, and ``model.safetensors`` the weights (no pickle involved).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_weights
from safetensors.torch import save_file

from autotag.data.tasks import Task
from autotag.errors import InputError
from autotag.layout import META, OPTIMIZER, WEIGHTS
from autotag.models.model import AutotagModel, build_model
from autotag.storage import UriPath, atomic_write_bytes, location, replace_directory

FORMAT_VERSION = 1


class CheckpointError(InputError):
    """A checkpoint directory that is missing files or has the wrong format."""


def save(directory: str | Path, model: torch.nn.Module, meta: dict[str, Any],
         optimizer: torch.optim.Optimizer | None = None) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS))
    if optimizer is not None:
        torch.save(optimizer.state_dict(), directory / OPTIMIZER)
    atomic_write_bytes(directory / META, json.dumps({"format": FORMAT_VERSION, **meta}, indent=1, default=str).encode())
    return directory


def read_meta(directory: str | Path) -> dict[str, Any]:
    """The checkpoint's ``meta.json`` (a local folder or a URI), its files and format checked."""
    directory = location(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint {directory}: no such folder (train one with pipelines.train, "
                              "or point infer.checkpoint / infer.models at one)")
    for name in (META, WEIGHTS):
        if not (directory / name).exists():
            raise CheckpointError(f"checkpoint {directory}: missing {name}")
    meta = json.loads((directory / META).read_text())
    if meta.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {directory}: format {meta.get('format')!r}, expected {FORMAT_VERSION}")
    return meta


def model_from_meta(meta: dict[str, Any]) -> AutotagModel:
    spec = meta["model"]
    return build_model(spec["frontend"], spec["backend"], len(meta["task"]["vocabulary"]),
                       spec.get("frontend_params"), spec.get("backend_params"), task=meta["task"]["kind"])


def timebase(model: AutotagModel) -> dict[str, float]:
    """The time base of a model's outputs, as the prediction tables record it for evaluation.

    ``sample_rate`` (Hz), ``patch_s`` and ``hop_s`` (the patch or window length and hop, in
    seconds) and ``frame_rate`` (output frames per second of frame-level models).
    """
    frontend = model.frontend
    rate = float(frontend.sample_rate)
    return {"sample_rate": rate, "patch_s": frontend.patch_samples / rate,
            "hop_s": frontend.patch_hop_samples / rate, "frame_rate": float(frontend.frame_rate)}


def load(directory: str | Path, device: str | torch.device = "cpu") -> tuple[AutotagModel, Task, dict[str, Any]]:
    """Rebuild the model in eval mode, its task and the checkpoint's metadata."""
    meta = read_meta(directory)
    model = model_from_meta(meta)
    model.load_state_dict(weights(directory))
    return model.to(device).eval(), Task.from_dict(meta["task"]), meta


def weights(directory: str | Path) -> dict[str, torch.Tensor]:
    """The checkpoint's weights on the CPU: safetensors (plain tensors, no pickle), read whole
    (they go to memory anyway), so a checkpoint on an object store loads like a local one."""
    return load_weights((location(directory) / WEIGHTS).read_bytes())


def load_optimizer_state(directory: str | Path) -> dict[str, Any] | None:
    path = Path(directory) / OPTIMIZER
    return torch.load(path, map_location="cpu", weights_only=True) if path.exists() else None


def publish(source: str | Path, target: str | Path) -> Path | UriPath:
    """Copy a local checkpoint directory to ``target`` (a local folder or a URI), replacing it
    atomically; on an object store ``meta.json`` lands last, so a reader that finds it (see
    :func:`read_meta`) finds the weights beside it."""
    return replace_directory(source, target, last=(META,))
