"""The four task kinds, stated once: how labels become targets and scores become decisions.

=================  ===================  ==========================================  =====================
kind               labels               loss (:mod:`autotag.train.losses`)          ``predicted``
=================  ===================  ==========================================  =====================
multiclass         one string           softmax + cross-entropy                     the argmax class
multilabel         list of strings      sigmoid + binary cross-entropy              score >= threshold
frame_multiclass   segments (chords)    per-frame cross-entropy (ignores index -100) per-frame argmax
frame_multilabel   segments (instr.)    per-frame binary cross-entropy              score >= threshold
=================  ===================  ==========================================  =====================

A kind is *frame-level* when it starts with ``frame_`` (outputs have a time axis) and
*multi-label* when it ends with ``multilabel`` (independent sigmoid outputs rather than one
softmax): :func:`is_frame_level` and :func:`is_multilabel` are the only statements of those
rules; the model heads (:mod:`autotag.models.heads`), the losses and the prediction tables
all ask them.

Frame targets are looked up at the frame times the model's front-end reports, so targets
and outputs share one time base. Chord labels are reduced to the 25-class maj/min/N
vocabulary of :mod:`autotag.data.chords`; frames no segment covers are ``N``; chords with
no maj/min reading (``dim``, ``sus``, ``X``, …) are ignored by the loss, as MIREX ignores
them in evaluation. This module needs numpy only (no torch), so evaluation and the
prediction tables can use it.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autotag.data import chords
from autotag.errors import InputError

TaskKind = typing.Literal["multiclass", "multilabel", "frame_multiclass", "frame_multilabel"]
"""The four tasks: global or per frame, mutually exclusive classes or independent labels (the
one statement of them; ``task.kind`` in the config is typed with it)."""
TASK_KINDS = typing.get_args(TaskKind)
KINDS = TASK_KINDS
IGNORE_INDEX = chords.EXCLUDED_INDEX


def check_task_kind(kind: str) -> str:
    """Return ``kind`` if it is one of :data:`TASK_KINDS`.

    Raises
    ------
    ValueError
        ``kind`` is unknown; the message lists the known kinds.
    """
    if kind not in TASK_KINDS:
        raise ValueError(f"unknown task kind {kind!r}; known: {list(TASK_KINDS)}")
    return kind


def is_frame_level(kind: str) -> bool:
    """Whether outputs of ``kind`` have a time axis (chords, instruments)."""
    return kind.startswith("frame_")


def is_multilabel(kind: str) -> bool:
    """Whether outputs of ``kind`` are independent (sigmoid) rather than exclusive (softmax)."""
    return kind.endswith("multilabel")


class KindRules:
    """:func:`is_frame_level` and :func:`is_multilabel` as properties of anything with a ``kind``
    (mixed into :class:`Task` and the model head, :class:`autotag.models.heads.Head`)."""

    kind: str

    @property
    def frame_level(self) -> bool:
        """Whether outputs have a time axis (:func:`is_frame_level`)."""
        return is_frame_level(self.kind)

    @property
    def multilabel(self) -> bool:
        """Whether outputs are independent sigmoids (:func:`is_multilabel`)."""
        return is_multilabel(self.kind)


class LabelError(InputError):
    """A label that is not in the task's vocabulary or has the wrong shape."""


def vocabulary_for(kind: str, label_key: str, manifest_labels: Sequence[str]) -> tuple[str, ...]:
    """The class order of a task: the fixed chord vocabulary, or the sorted manifest labels."""
    if kind == "frame_multiclass" and label_key == "chords":
        return chords.CHORD_LABELS
    return tuple(sorted(set(manifest_labels)))


@dataclass(frozen=True)
class Task(KindRules):
    """A task kind bound to a label column and its vocabulary (class order)."""

    kind: str
    label_key: str
    vocabulary: tuple[str, ...]
    threshold: float = 0.5
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_task_kind(self.kind)
        if not self.vocabulary:
            raise ValueError("a task needs a non-empty vocabulary")
        object.__setattr__(self, "_index", {name: i for i, name in enumerate(self.vocabulary)})

    @property
    def num_outputs(self) -> int:
        return len(self.vocabulary)


    def _value(self, labels: Mapping[str, Any], track_id: str) -> Any:
        value = labels.get(self.label_key)
        if value is None:
            raise LabelError(f"track {track_id}: no {self.label_key!r} label")
        return value

    def encode(self, labels: Mapping[str, Any], track_id: str = "?") -> np.ndarray:
        """The track-level target from a label dict (as stored in shard JSON)."""
        value = self._value(labels, track_id)
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

    def encode_frames(self, labels: Mapping[str, Any], times: np.ndarray, track_id: str = "?") -> np.ndarray:
        """Frame targets at ``times`` (seconds): ``(T,)`` class indices or ``(T, k)`` multi-hot."""
        segments = self._value(labels, track_id)
        if self.kind == "frame_multiclass":
            target = np.full(len(times), self._index.get(chords.NO_CHORD, IGNORE_INDEX), dtype=np.int64)
        else:
            target = np.zeros((len(times), self.num_outputs), dtype=np.float32)
        for segment in segments:
            start, end, label = float(segment["start_s"]), float(segment["end_s"]), segment["label"]
            inside = (times >= start) & (times < end)
            if self.kind == "frame_multiclass":
                reduced = chords.reduce_to_majmin(label) if self.label_key == "chords" else label
                target[inside] = self._index.get(reduced, IGNORE_INDEX)
            elif label in self._index:
                target[inside, self._index[label]] = 1.0
            else:
                raise LabelError(f"track {track_id}: {self.label_key} label {label!r} not in vocabulary")
        return target

    def predicted(self, scores: np.ndarray) -> np.ndarray:
        """Boolean decisions for scores ``(..., k)``."""
        if self.multilabel:
            return scores >= self.threshold
        return np.eye(self.num_outputs, dtype=bool)[scores.argmax(-1)]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "label_key": self.label_key, "vocabulary": list(self.vocabulary),
                "threshold": self.threshold}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Task:
        return cls(data["kind"], data["label_key"], tuple(data["vocabulary"]), float(data.get("threshold", 0.5)))
