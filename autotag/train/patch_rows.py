"""Turn decoded shard samples into training rows: one row per patch with its target.

Plain numpy in, numpy out, so it runs inside Ray Data ``map_batches`` and in unit tests.
Track-level tasks repeat the track's target for each patch (as the tutorial does);
frame-level tasks look the labels up at each output frame's time within the track.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from autotag import SAMPLE_RATE
from autotag.data.patches import cut_patches, patch_starts
from autotag.data.shards import CODECS, decode_member
from autotag.data.tasks import Task


def patch_targets(task: Task, labels: dict[str, Any], track_id: str, starts: np.ndarray,
                  frame_times: Sequence[float] | None, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Targets for patches starting at ``starts`` (samples): ``(P,)``, ``(P, k)``, ``(P, T)`` or ``(P, T, k)``."""
    if not task.frame_level:
        target = task.encode(labels, track_id)
        return np.repeat(target[None], len(starts), axis=0)
    if frame_times is None:
        raise ValueError(f"task {task.kind!r} needs the model's frame times")
    offsets = np.asarray(frame_times, dtype=np.float64)
    return np.stack([task.encode_frames(labels, start / sample_rate + offsets, track_id) for start in starts])


def shard_batch_to_patches(batch: dict[str, np.ndarray], task: dict[str, Any], patch_samples: int,
                           hop_samples: int, frame_times: Sequence[float] | None = None) -> dict[str, np.ndarray]:
    """A batch of WebDataset samples (audio bytes in a column per codec, ``flac`` or ``pcm16``,
    and ``json`` dicts) → patch rows. A batch may mix codecs: each sample decodes the column
    that holds its audio.

    Returns ``{"audio": (P, patch_samples) float32, "target": ..., "patch_id": (P,)}`` where
    ``patch_id`` is ``<track_id>:<patch index>``.
    """
    bound = Task.from_dict(task)
    audio, targets, patch_ids = [], [], []
    for i, meta in enumerate(batch["json"]):
        samples = decode_samples(batch, i, meta["track_id"])
        patches = cut_patches(samples, patch_samples, hop_samples)
        starts = patch_starts(max(len(samples), patch_samples), patch_samples, hop_samples)
        audio.append(patches)
        targets.append(patch_targets(bound, meta["labels"], meta["track_id"], starts, frame_times))
        patch_ids += [f"{meta['track_id']}:{k}" for k in range(len(patches))]
    if not audio:
        return {"audio": np.zeros((0, patch_samples), np.float32), "target": np.zeros((0,), np.int64),
                "patch_id": np.zeros((0,), dtype=object)}
    return {"audio": np.concatenate(audio), "target": np.concatenate(targets),
            "patch_id": np.asarray(patch_ids, dtype=object)}


def decode_samples(batch: dict[str, np.ndarray], i: int, track_id: str) -> np.ndarray:
    """Sample ``i``'s audio, from whichever codec column of ``batch`` holds it."""
    for codec in CODECS:
        column = batch.get(codec)
        if column is not None and column[i] is not None:
            return decode_member(codec, column[i], f"shard sample {track_id}.{codec}")
    raise ValueError(f"shard sample {track_id}: no audio member (expected one of {', '.join(CODECS)})")
