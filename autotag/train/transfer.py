"""Transfer learning: start from another checkpoint's weights and freeze chosen parts.

Weights are matched by name and shape, so a tagging model (50 outputs) can seed a genre
model (10 outputs): every layer but the head is copied, and the head starts fresh.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from torch import nn

from autotag.models import checkpoint

log = logging.getLogger("autotag.train")


def initialise_from(model: nn.Module, checkpoint_dir: str | Path) -> tuple[list[str], list[str]]:
    """Copy every weight of ``checkpoint_dir`` whose name and shape match; returns (copied, skipped).

    Raises
    ------
    CheckpointError
        If the directory is not a checkpoint.
    ValueError
        If no weight matches (the checkpoint is of an unrelated model).
    """
    checkpoint.read_meta(checkpoint_dir)
    source = checkpoint.weights(checkpoint_dir)
    own = model.state_dict()
    copied = [k for k, v in source.items() if k in own and own[k].shape == v.shape]
    skipped = sorted(set(own) - set(copied))
    if not copied:
        raise ValueError(f"checkpoint {checkpoint_dir}: no weight matches this model by name and shape")
    model.load_state_dict({k: source[k] for k in copied}, strict=False)
    log.info("initialised %d tensors from %s; %d left as initialised: %s", len(copied), checkpoint_dir,
             len(skipped), skipped[:8])
    return copied, skipped


def freeze(model: nn.Module, prefixes: Sequence[str]) -> list[str]:
    """Stop gradients for parameters under the given module prefixes (e.g. ``frontend``).

    Raises
    ------
    ValueError
        A prefix that names no parameter (a typo would otherwise silently train everything).
    """
    frozen = []
    names = [name for name, _ in model.named_parameters()]
    for prefix in prefixes:
        matched = [n for n in names if n == prefix or n.startswith(prefix + ".")]
        if not matched:
            tops = sorted({n.split(".")[0] for n in names})
            raise ValueError(f"train.freeze: {prefix!r} names no parameter; top-level modules: {tops}")
        frozen += matched
    for name, parameter in model.named_parameters():
        if name in frozen:
            parameter.requires_grad_(False)
    return frozen
