"""Frame-level inference over tracks of any length: overlapping windows, deterministic stitching.

A track is cut into windows of the model's patch length ``W`` with hop ``H`` (a multiple
of the model's output hop). Each window owns the output frames whose centres fall in its
central ``H`` samples (the first window also owns the start, the last one the end), so
every track frame comes from exactly one window, the one where it has the most context
on both sides. For a model whose receptive field is at most ``(W - H) / 2`` samples on each
side, the stitched output equals a single pass over the whole track, while memory stays
bounded by the batch of windows.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from autotag import SAMPLE_RATE


def window_hop(window_samples: int, output_hop: int) -> int:
    """Three quarters of a window, rounded down to whole output frames (at least one frame).

    Each window then keeps its central 75 % and has 12.5 % of context on either side: every
    frame is computed 1.33 times instead of twice with half-window hops.
    """
    return max(output_hop, (window_samples * 3 // 4) // output_hop * output_hop)


def track_frame_times(num_samples: int, output_hop: int, output_offset: float,
                      sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Centres (s) of the track's output frames: ``offset + j·hop`` for every centre inside the track."""
    count = max(int(np.floor((num_samples - 1 - output_offset) / output_hop)) + 1, 1)
    return (output_offset + np.arange(count) * output_hop) / sample_rate


def stitched_frames(samples: np.ndarray, run_windows: Callable[[np.ndarray], np.ndarray], window: int,
                    output_hop: int, output_offset: float, hop: int | None = None,
                    batch_size: int = 16) -> np.ndarray:
    """Frame outputs ``(T, K)`` for a whole track from window outputs.

    Parameters
    ----------
    samples
        The track, ``(n,)``.
    run_windows
        ``(B, window) float32 → (B, T_w, K)`` for whole windows (e.g. model + softmax).
    window, output_hop, output_offset
        The model's patch length and output time base, in samples.
    hop
        Window hop in samples (a multiple of ``output_hop``; default :func:`window_hop`).
    batch_size
        Windows per call of ``run_windows``.
    """
    hop = hop or window_hop(window, output_hop)
    if hop % output_hop:
        raise ValueError(f"window hop {hop} must be a multiple of the output hop {output_hop}")
    times = track_frame_times(len(samples), output_hop, output_offset, 1)  # in samples
    num_windows = max(1, int(np.ceil(max(len(samples) - window, 0) / hop)) + 1)
    padded = np.zeros((num_windows - 1) * hop + window, dtype=np.float32)
    padded[: len(samples)] = samples
    starts = np.arange(num_windows) * hop
    margin = (window - hop) / 2
    owner = np.clip(np.floor((times - margin) / hop).astype(np.int64), 0, num_windows - 1)
    out: np.ndarray | None = None
    for first in range(0, num_windows, batch_size):
        batch_starts = starts[first : first + batch_size]
        windows = np.stack([padded[s : s + window] for s in batch_starts])
        outputs = run_windows(windows)
        if out is None:
            out = np.zeros((len(times), outputs.shape[-1]), dtype=np.float32)
        for k, start in enumerate(batch_starts, start=first):
            mine = np.flatnonzero(owner == k)
            local = ((times[mine] - output_offset - start) / output_hop).round().astype(np.int64)
            out[mine] = outputs[k - first][local]
    return out
