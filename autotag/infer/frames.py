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


def window_count(num_samples: int, window: int, hop: int) -> int:
    """Windows of ``window`` samples every ``hop`` that cover a track (at least one)."""
    return max(1, int(np.ceil(max(num_samples - window, 0) / hop)) + 1)


def padded_track(samples: np.ndarray, window: int, hop: int) -> np.ndarray:
    """The track zero-padded to the end of its last window."""
    padded = np.zeros((window_count(len(samples), window, hop) - 1) * hop + window, dtype=np.float32)
    padded[: len(samples)] = samples
    return padded


class FrameStitcher:
    """The track's frame outputs ``(T, K)`` filled from window outputs, batch by batch, in any order.

    Each window owns the frames whose centres fall in its central ``hop`` samples (module
    docstring); :meth:`add` keeps the owned frames of a run of consecutive windows.
    """

    def __init__(self, num_samples: int, window: int, output_hop: int, output_offset: float, hop: int):
        if hop % output_hop:
            raise ValueError(f"window hop {hop} must be a multiple of the output hop {output_hop}")
        self.window, self.output_hop, self.output_offset, self.hop = window, output_hop, output_offset, hop
        self.times = track_frame_times(num_samples, output_hop, output_offset, 1)  # in samples
        self.num_windows = window_count(num_samples, window, hop)
        margin = (window - hop) / 2
        self.owner = np.clip(np.floor((self.times - margin) / hop).astype(np.int64), 0, self.num_windows - 1)
        self.out: np.ndarray | None = None

    def add(self, first: int, outputs: np.ndarray) -> None:
        """Window outputs ``(B, T_w, K)`` of windows ``first … first + B - 1``."""
        if self.out is None:
            self.out = np.zeros((len(self.times), outputs.shape[-1]), dtype=np.float32)
        for k in range(first, first + len(outputs)):
            mine = np.flatnonzero(self.owner == k)
            local = ((self.times[mine] - self.output_offset - k * self.hop) / self.output_hop).round().astype(np.int64)
            self.out[mine] = outputs[k - first][local]

    def frames(self) -> np.ndarray:
        if self.out is None:
            raise ValueError("no window outputs were added")
        return self.out


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
    stitcher = FrameStitcher(len(samples), window, output_hop, output_offset, hop)
    padded = padded_track(samples, window, hop)
    starts = np.arange(stitcher.num_windows) * hop
    for first in range(0, stitcher.num_windows, batch_size):
        batch_starts = starts[first : first + batch_size]
        stitcher.add(first, run_windows(np.stack([padded[s : s + window] for s in batch_starts])))
    return stitcher.frames()
