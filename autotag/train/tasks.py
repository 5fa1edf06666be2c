"""The task kinds: how labels become targets, which loss, how scores become decisions.

=================  =============================  ===============================
kind               loss                           ``predicted``
=================  =============================  ===============================
multiclass         softmax + cross-entropy        the argmax class
multilabel         sigmoid + binary cross-entropy score >= threshold
=================  =============================  ===============================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

KINDS = ("multiclass", "multilabel")


class LabelError(ValueError):
    """A label that is not in the task's vocabulary or has the wrong shape."""


@dataclass(frozen=True)
class Task:
    """A task kind bound to a label column and its vocabulary (sorted class names)."""

    kind: str
    label_key: str
    vocabulary: tuple[str, ...]
    threshold: float = 0.5
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown task kind {self.kind!r}; known: {KINDS}")
        if not self.vocabulary:
            raise ValueError("a task needs a non-empty vocabulary")
        object.__setattr__(self, "_index", {name: i for i, name in enumerate(self.vocabulary)})

    @property
    def num_outputs(self) -> int:
        return len(self.vocabulary)

    def encode(self, labels: Mapping[str, Any], track_id: str = "?") -> np.ndarray:
        """The training target of one track from its label dict (as stored in shard JSON)."""
        value = labels.get(self.label_key)
        if value is None:
            raise LabelError(f"track {track_id}: no {self.label_key!r} label")
        if self.kind == "multiclass":
            if value not in self._index:
                raise LabelError(f"track {track_id}: {self.label_key} {value!r} not in vocabulary {self.vocabulary}")
            return np.asarray(self._index[value], dtype=np.int64)
        target = np.zeros(self.num_outputs, dtype=np.float32)
        for tag in value:
            if tag not in self._index:
                raise LabelError(f"track {track_id}: tag {tag!r} not in vocabulary")
            target[self._index[tag]] = 1.0
        return target

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.kind == "multiclass":
            return F.cross_entropy(logits.float(), target.long())
        return F.binary_cross_entropy_with_logits(logits.float(), target.float())

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits.float(), -1) if self.kind == "multiclass" else torch.sigmoid(logits.float())

    def correct(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Number of correct decisions in a batch (per example for multiclass, per tag otherwise)."""
        if self.kind == "multiclass":
            return (logits.argmax(-1) == target).sum()
        return ((torch.sigmoid(logits.float()) >= self.threshold) == (target >= 0.5)).sum()

    def predicted(self, scores: np.ndarray) -> np.ndarray:
        """Boolean decisions for track scores ``(n, k)``."""
        if self.kind == "multiclass":
            return np.eye(self.num_outputs, dtype=bool)[scores.argmax(-1)]
        return scores >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "label_key": self.label_key, "vocabulary": list(self.vocabulary),
                "threshold": self.threshold}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Task:
        return cls(data["kind"], data["label_key"], tuple(data["vocabulary"]), float(data.get("threshold", 0.5)))


def vocabulary_from(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(sorted(set(values)))
