"""Turn decoded shard samples into training rows: one row per patch with its target.

Plain numpy in, numpy out, so it runs inside Ray Data ``map_batches`` and in unit tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autotag.data.audio import decode_flac
from autotag.data.patches import cut_patches
from autotag.train.tasks import Task


def shard_batch_to_patches(batch: dict[str, np.ndarray], task: dict[str, Any], patch_samples: int,
                           hop_samples: int) -> dict[str, np.ndarray]:
    """A batch of WebDataset samples (``flac`` bytes, ``json`` dicts) → patch rows.

    Returns ``{"audio": (P, patch_samples) float32, "target": (P,) or (P, k), "track_id": (P,)}``.
    """
    bound = Task.from_dict(task)
    audio, targets, track_ids = [], [], []
    for flac, meta in zip(batch["flac"], batch["json"]):
        patches = cut_patches(decode_flac(flac), patch_samples, hop_samples)
        target = bound.encode(meta["labels"], meta["track_id"])
        audio.append(patches)
        targets.append(np.repeat(target[None], len(patches), axis=0))
        track_ids += [meta["track_id"]] * len(patches)
    if not audio:
        return {"audio": np.zeros((0, patch_samples), np.float32), "target": np.zeros((0,), np.int64),
                "track_id": np.zeros((0,), dtype=object)}
    return {"audio": np.concatenate(audio), "target": np.concatenate(targets),
            "track_id": np.asarray(track_ids, dtype=object)}
