"""Frame activations → segments: Viterbi smoothing for chords, thresholds for instruments.

Times follow the frames' own time base: frame ``j`` is centred at ``times[j]``; a segment
boundary between frames ``j - 1`` and ``j`` lies half-way between their centres, the
first segment starts at 0 and the last ends at the track duration.
"""

from __future__ import annotations

from collections.abc import Sequence

import mir_eval
import numpy as np

SCALE_DEGREES = ("1", "b2", "2", "b3", "3", "4", "b5", "5", "b6", "6", "b7", "7")
"""Harte bass degrees by semitones above the root (crema's ``SEMITONE_TO_SCALE_DEGREE``)."""


def viterbi(log_probs: np.ndarray, switch_penalty: float) -> np.ndarray:
    """Most likely class path under a uniform HMM that pays ``switch_penalty`` per change.

    Maximises ``Σ_t log p_t(c_t) − switch_penalty · #{t : c_t ≠ c_{t−1}}``; a penalty of 0 is
    the frame-wise argmax. O(T·K): with uniform off-diagonal transitions the best
    predecessor is either the same class or the overall best.

    Parameters
    ----------
    log_probs
        ``(T, K)`` frame log-probabilities.
    switch_penalty
        Non-negative cost (in log-probability) of a class change.
    """
    if switch_penalty < 0:
        raise ValueError(f"switch_penalty must be >= 0, got {switch_penalty}")
    num_frames, num_classes = log_probs.shape
    if num_frames == 0:
        return np.zeros(0, dtype=np.int64)
    log_probs = np.ascontiguousarray(log_probs, dtype=np.float64)
    score = log_probs[0].copy()
    # Back-pointers in two parts: whether class c stayed at step t, else the step's overall best.
    stay = np.empty((num_frames, num_classes), dtype=bool)
    best = np.zeros(num_frames, dtype=np.int64)
    for t in range(1, num_frames):
        best[t] = score.argmax()
        switch = score[best[t]] - switch_penalty
        np.greater_equal(score, switch, out=stay[t])
        np.maximum(score, switch, out=score)  # stay, or switch from the best
        score += log_probs[t]
    path = np.empty(num_frames, dtype=np.int64)
    current = int(score.argmax())
    path[-1] = current
    for t in range(num_frames - 1, 0, -1):
        if not stay[t, current]:
            current = int(best[t])
        path[t - 1] = current
    return path


def _boundaries(times: np.ndarray, duration_s: float) -> np.ndarray:
    """Edges of each frame's cell: half-way between centres, 0 and the duration at the ends."""
    middle = (times[1:] + times[:-1]) / 2 if len(times) > 1 else np.zeros(0)
    return np.concatenate([[0.0], middle, [max(duration_s, float(times[-1]) if len(times) else 0.0)]])


def runs_to_segments(values: np.ndarray, times: np.ndarray, duration_s: float,
                     confidence: np.ndarray | None = None) -> list[tuple[float, float, int, float]]:
    """Runs of equal ``values`` → ``(start_s, end_s, value, mean confidence)``."""
    if len(values) == 0:
        return []
    edges = _boundaries(times, duration_s)
    changes = np.flatnonzero(np.diff(values)) + 1
    starts, stops = np.concatenate([[0], changes]), np.concatenate([changes, [len(values)]])
    conf = np.ones(len(values)) if confidence is None else confidence
    return [(float(edges[a]), float(edges[b]), int(values[a]), float(conf[a:b].mean())) for a, b in zip(starts, stops)]


def chord_segments(probs: np.ndarray, times: np.ndarray, duration_s: float, labels: Sequence[str],
                   switch_penalty: float) -> list[dict]:
    """Chord segments from frame probabilities ``(T, 25)`` (Viterbi-smoothed; penalty 0 = argmax)."""
    path = viterbi(np.log(np.clip(probs, 1e-9, 1.0)), switch_penalty)
    chosen = probs[np.arange(len(path)), path]
    return [{"start_s": a, "end_s": b, "label": labels[c], "confidence": conf}
            for a, b, c, conf in runs_to_segments(path, times, duration_s, chosen)]


def median_filter(active: np.ndarray, width: int) -> np.ndarray:
    """Majority vote over ``width`` frames (odd) along time, per column; width 1 is identity."""
    if width <= 1:
        return active
    if width % 2 == 0:
        raise ValueError(f"median filter width must be odd, got {width}")
    half = width // 2
    padded = np.pad(active.astype(np.int32), ((half, half), (0, 0)), mode="edge")
    sums = np.cumsum(np.pad(padded, ((1, 0), (0, 0))), axis=0)
    return (sums[width:] - sums[:-width]) > half


def activity_segments(probs: np.ndarray, times: np.ndarray, duration_s: float, labels: Sequence[str],
                      threshold: float, smooth_frames: int = 1) -> list[dict]:
    """Segments where each label's probability is ``>= threshold`` (optionally median-smoothed)."""
    active = median_filter(probs >= threshold, smooth_frames)
    segments = []
    for k, label in enumerate(labels):
        for a, b, on, conf in runs_to_segments(active[:, k].astype(np.int64), times, duration_s, probs[:, k]):
            if on:
                segments.append({"start_s": a, "end_s": b, "label": label, "confidence": conf})
    return sorted(segments, key=lambda s: (s["start_s"], s["label"]))


def add_inversions(segments: list[dict], bass: np.ndarray, times: np.ndarray) -> list[dict]:
    """crema's inversions: a chord whose most likely bass note is one of its own notes other than the
    root gets it as its bass degree (``G:7`` with bass B → ``G:7/3``).

    As ``crema.models.chord.ChordModel.predict``: the bass pitch class is the argmax of the
    geometric mean of the bass posteriors (``(T, 13)``: C … B, no bass) over the segment's frames
    and the one after it; ``N`` and ``X`` are left alone.
    """
    out = []
    for segment in segments:
        label = segment["label"]
        if label not in ("N", "X"):
            first, after = np.searchsorted(times, [segment["start_s"], segment["end_s"]])
            frames = np.clip(bass[first : after + 1], np.finfo(np.float32).tiny, None)
            bass_pc = int(np.exp(np.log(frames).mean(axis=0)).argmax())
            root, pitches, _ = mir_eval.chord.encode(label)
            degree = (bass_pc - root) % 12 if bass_pc < 12 else 0
            if degree and pitches[degree]:
                label = f"{label}/{SCALE_DEGREES[degree]}"
        out.append({**segment, "label": label})
    return out
