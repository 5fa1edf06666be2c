"""Output heads for the four task kinds.

==================  ==========================  ===============  ================================
kind                logits                      probabilities    ``predict``
==================  ==========================  ===============  ================================
multiclass          ``(B, K)``                  softmax over K   one-hot of the argmax
multilabel          ``(B, K)``                  sigmoid          ``probability >= threshold``
frame_multiclass    ``(B, T, K)``               softmax over K   one-hot of the argmax per frame
frame_multilabel    ``(B, T, K)``               sigmoid          ``probability >= threshold``
==================  ==========================  ===============  ================================

The kinds and their rules are stated in :mod:`autotag.data.tasks`.
The head is one ``Linear(embedding_dim → K)`` applied to the last axis, so the same layer
serves track-level ``(B, D)`` and frame-level ``(B, T, D)`` embeddings; the kind fixes how
its logits are read (losses: cross-entropy on logits for the multi-class kinds, binary
cross-entropy with logits for the multi-label kinds).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from autotag.data.tasks import TASK_KINDS, KindRules, check_task_kind

__all__ = ["TASK_KINDS", "Head", "check_task_kind"]


class Head(nn.Linear, KindRules):
    """``Linear(in_features → num_outputs)`` on the last axis, read according to ``kind``.

    Parameters
    ----------
    in_features
        Embedding size.
    num_outputs
        Classes or tags.
    kind
        One of :data:`TASK_KINDS`.
    leaky_logits
        Apply LeakyReLU to the logits (the chord model's ``seed_compat`` quirk).

    Raises
    ------
    ValueError
        If ``kind`` is unknown or ``num_outputs`` is not positive.
    """

    def __init__(self, in_features: int, num_outputs: int, kind: str = "multiclass", leaky_logits: bool = False):
        if num_outputs <= 0:
            raise ValueError(f"Head: num_outputs={num_outputs}, expected a positive number of classes or tags")
        super().__init__(in_features, num_outputs)
        self.kind = check_task_kind(kind)
        self.leaky_logits = leaky_logits

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        logits = super().forward(embedding)
        return F.leaky_relu(logits) if self.leaky_logits else logits

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Sigmoid (multi-label) or softmax over the last axis (multi-class)."""
        return torch.sigmoid(logits) if self.multilabel else torch.softmax(logits, dim=-1)

    def predict(self, logits: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
        """Boolean decisions shaped like ``logits``: thresholded probabilities or the argmax."""
        if self.multilabel:
            return torch.sigmoid(logits) >= threshold
        return F.one_hot(logits.argmax(dim=-1), logits.shape[-1]).bool()
