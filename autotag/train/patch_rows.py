"""Turn decoded shard samples into training rows: one row per patch with its target.

Plain numpy in, numpy out, so it runs inside Ray Data ``map_batches`` and in unit tests.
A row's audio is the shard's own 16-bit samples (int16): half the bytes of float32 through
Ray Data's object store, its shuffle buffer and a worker's patch cache, and lossless; the
training step makes it float32 (:func:`waveform`, on the worker's device).
Track-level tasks repeat the track's target for each patch (as the tutorial does);
frame-level tasks look the labels up at each output frame's time within the track.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from autotag import SAMPLE_RATE
from autotag.data.patches import cut_patches, patch_starts
from autotag.data.shards import CODECS, audio_member, decode_member
from autotag.data.tasks import Task
from autotag.memory import reuse_freed_memory

PCM16_SCALE = 1.0 / 32768
"""float32 sample = int16 sample × this (what decoding a shard to float32 gives)."""


def waveform(audio: torch.Tensor) -> torch.Tensor:
    """A batch of patch rows' audio as float32 in [-1, 1): int16 rows scaled, float rows as they are."""
    return audio.float().mul_(PCM16_SCALE) if audio.dtype == torch.int16 else audio


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

    Returns ``{"audio": (P, patch_samples) int16, "target": ..., "patch_id": (P,)}`` where
    ``patch_id`` is ``<track_id>:<patch index>``.
    """
    reuse_freed_memory()  # each batch's patch buffers reuse the last one's pages (autotag.memory)
    bound = Task.from_dict(task)
    audio, targets, patch_ids = [], [], []
    for i, meta in enumerate(batch["json"]):
        samples = decode_samples(batch, i, meta["track_id"])
        patches = cut_patches(samples, patch_samples, hop_samples, dtype=np.int16)
        starts = patch_starts(max(len(samples), patch_samples), patch_samples, hop_samples)
        audio.append(patches)
        targets.append(patch_targets(bound, meta["labels"], meta["track_id"], starts, frame_times))
        patch_ids += [f"{meta['track_id']}:{k}" for k in range(len(patches))]
    if not audio:
        return {"audio": np.zeros((0, patch_samples), np.int16), "target": np.zeros((0,), np.int64),
                "patch_id": np.zeros((0,), dtype=object)}
    return {"audio": np.concatenate(audio), "target": np.concatenate(targets),
            "patch_id": np.asarray(patch_ids, dtype=object)}


def decode_samples(batch: dict[str, np.ndarray], i: int, track_id: str) -> np.ndarray:
    """Sample ``i``'s 16-bit audio, from whichever codec column of ``batch`` holds it."""
    codec, data = audio_member(batch, i)
    if codec is None:
        raise ValueError(f"shard sample {track_id}: no audio member (expected one of {', '.join(CODECS)})")
    return decode_member(codec, data, f"shard sample {track_id}.{codec}", dtype="int16")
