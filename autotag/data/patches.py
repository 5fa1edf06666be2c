"""Cutting waveforms into fixed-length patches (training examples and inference windows)."""

from __future__ import annotations

import numpy as np


def patch_starts(num_samples: int, patch_samples: int, hop_samples: int) -> np.ndarray:
    """Start offsets of every full patch, as the tutorial cuts them (tail dropped).

    A signal shorter than one patch still gets one patch at 0 (see :func:`cut_patches`).
    """
    if patch_samples < 1 or hop_samples < 1:
        raise ValueError(f"patch ({patch_samples}) and hop ({hop_samples}) must be positive")
    if num_samples <= patch_samples:
        return np.zeros(1, dtype=np.int64)
    return np.arange(0, num_samples - patch_samples + 1, hop_samples, dtype=np.int64)


def patch_counts(num_samples: np.ndarray, patch_samples: int, hop_samples: int) -> np.ndarray:
    """``len(patch_starts(n, ...))`` for every ``n`` of ``num_samples`` at once (at least one each)."""
    if patch_samples < 1 or hop_samples < 1:
        raise ValueError(f"patch ({patch_samples}) and hop ({hop_samples}) must be positive")
    return np.maximum(np.asarray(num_samples, dtype=np.int64) - patch_samples, 0) // hop_samples + 1


def cut_patches(samples: np.ndarray, patch_samples: int, hop_samples: int, dtype=np.float32) -> np.ndarray:
    """``(n,)`` waveform → ``(num_patches, patch_samples)`` of ``dtype``, zero-padding a short signal."""
    if len(samples) < patch_samples:
        samples = np.pad(samples, (0, patch_samples - len(samples)))
    starts = patch_starts(len(samples), patch_samples, hop_samples)
    # A strided view of every window, then one copy of the chosen ones (no index array per sample).
    return np.lib.stride_tricks.sliding_window_view(samples, patch_samples)[starts].astype(dtype, copy=True)
