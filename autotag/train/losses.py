"""Losses and batch accuracy of the four task kinds (rules in :mod:`autotag.data.tasks`).

Multi-label kinds take binary cross-entropy on logits; multi-class kinds cross-entropy on
logits with :data:`autotag.data.tasks.IGNORE_INDEX` targets left out (chord frames with no
maj/min reading).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from autotag.data.tasks import IGNORE_INDEX, Task


def loss(task: Task, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The task's loss of ``logits`` ``(B, K)`` or ``(B, T, K)`` against ``target``."""
    logits = logits.float()
    if task.multilabel:
        return F.binary_cross_entropy_with_logits(logits, target.float())
    return F.cross_entropy(logits.reshape(-1, task.num_outputs), target.long().reshape(-1),
                           ignore_index=IGNORE_INDEX)


def correct(task: Task, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(correct decisions, decisions)`` in a batch: per example, frame, or (frame ×) tag."""
    if task.multilabel:
        hits = (torch.sigmoid(logits.float()) >= task.threshold) == (target >= 0.5)
        return hits.sum(), torch.tensor(hits.numel())
    valid = target != IGNORE_INDEX
    return ((logits.argmax(-1) == target) & valid).sum(), valid.sum()
