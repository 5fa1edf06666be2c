"""Instrument activity metrics: frame-level and segment-level precision/recall/F1 per instrument.

Conventions
-----------
A track's instrument annotation is a list of segments ``(start_s, end_s, label)`` (tuples, or
dicts with those keys as in the manifest), one per stretch where an instrument is active.
Several instruments may be active at once; segments of one instrument may touch or overlap and
are merged before segment matching. Labels must belong to the given instrument vocabulary.

Metrics
-------
- ``frame``: the annotation is sampled at ``t = i / frame_rate`` for ``0 <= t < duration``
  (an instrument is active at ``t`` when ``start <= t < end``), giving multi-hot frame matrices
  pooled over all tracks; precision/recall/F1 per instrument and micro-averaged are those of
  :func:`sklearn.metrics.precision_recall_fscore_support` on the pooled matrices.
- ``segment``: overlap-based matching. Per track and instrument, a reference segment and an
  estimated segment match when their intersection over union (IoU) is at least ``min_iou``
  (default 0.5); each segment matches at most one other, pairs taken greedily by decreasing IoU
  (for ``min_iou > 0.5`` at most one candidate exists, so greedy is optimal). Precision =
  matches / estimated segments, recall = matches / reference segments, counts summed over tracks.

Both levels report ``*_macro`` (mean over instruments) and ``*_micro`` (pooled counts). An
instrument never active in the reference has no recall; it is listed under ``excluded`` with a
warning and left out of both averages and the per-instrument values. An instrument never
estimated gets precision 0.0 with a warning. Nothing is ever NaN.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from autotag.evaluate.common import check_frame_rate, check_names, f_measure, pair_tracks, safe_ratio, warn

Segment = tuple[float, float, str]


def validate_segments(segments: Sequence[Any], instruments: Sequence[str], where: str) -> list[Segment]:
    """Return the segments as ``(start, end, label)`` tuples sorted by start.

    Raises
    ------
    ValueError
        ``where segment i``: not a (start, end, label) triple, times not ``0 <= start < end``,
        or a label outside ``instruments``.
    """
    known = set(instruments)
    out: list[Segment] = []
    for i, seg in enumerate(segments):
        if isinstance(seg, Mapping):
            seg = (seg.get("start_s"), seg.get("end_s"), seg.get("label"))
        if len(seg) != 3:
            raise ValueError(f"{where} segment {i}: expected (start_s, end_s, label), got {seg!r}")
        start, end, label = seg
        try:
            start, end = float(start), float(end)
        except (TypeError, ValueError):
            raise ValueError(f"{where} segment {i}: times {seg[0]!r}, {seg[1]!r} are not numbers") from None
        if not (np.isfinite(start) and np.isfinite(end) and 0 <= start < end):
            raise ValueError(f"{where} segment {i}: [{start}, {end}]: expected finite 0 <= start < end")
        if label not in known:
            raise ValueError(f"{where} segment {i}: instrument {label!r} is not in the vocabulary "
                             f"{sorted(known)}")
        out.append((start, end, label))
    return sorted(out)


def merge_segments(segments: Sequence[Segment], label: str) -> np.ndarray:
    """The ``(n, 2)`` intervals of one instrument, touching or overlapping segments merged."""
    merged: list[list[float]] = []
    for start, end, _ in (s for s in segments if s[2] == label):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return np.array(merged, dtype=np.float64).reshape(-1, 2)


def frame_matrix(segments: Sequence[Segment], instruments: Sequence[str], times: np.ndarray) -> np.ndarray:
    """Multi-hot activity ``(len(times), len(instruments))``: active when ``start <= t < end``."""
    column = {name: j for j, name in enumerate(instruments)}
    active = np.zeros((len(times), len(instruments)), dtype=bool)
    for start, end, label in segments:
        active[(times >= start) & (times < end), column[label]] = True
    return active


def match_count(reference: np.ndarray, estimate: np.ndarray, min_iou: float) -> int:
    """Number of one-to-one reference/estimate interval pairs with IoU >= ``min_iou``."""
    if len(reference) == 0 or len(estimate) == 0:
        return 0
    inter = np.clip(np.minimum(reference[:, None, 1], estimate[None, :, 1])
                    - np.maximum(reference[:, None, 0], estimate[None, :, 0]), 0, None)
    union = (reference[:, 1] - reference[:, 0])[:, None] + (estimate[:, 1] - estimate[:, 0])[None, :] - inter
    iou = inter / union
    used_ref: set[int] = set()
    used_est: set[int] = set()
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        i, j = np.unravel_index(flat, iou.shape)
        if iou[i, j] < min_iou:
            break
        if i not in used_ref and j not in used_est:
            used_ref.add(int(i))
            used_est.add(int(j))
    return len(used_ref)


def _pair_tracks(references: Mapping[str, Sequence[Any]], estimates: Mapping[str, Sequence[Any]],
                 instruments: Sequence[str], invalid: dict[str, str] | None = None,
                 ) -> list[tuple[str, list[Segment], list[Segment]]]:
    """Validate and pair (:func:`autotag.evaluate.common.pair_tracks`); a missing estimate is silent."""
    return pair_tracks(references, estimates, lambda segments, where: validate_segments(segments, instruments, where),
                       [], "silent", invalid)


def _prf(matched: np.ndarray, n_ref: np.ndarray, n_est: np.ndarray, instruments: Sequence[str],
         level: str) -> dict[str, Any]:
    """Macro/micro/per-instrument P/R/F1 from counts, excluding instruments absent from the reference."""
    keep = n_ref > 0
    excluded = {name: "never active in the reference" for name, k in zip(instruments, keep) if not k}
    if excluded:
        warn(f"{level}: {len(excluded)} instrument(s) never active in the reference are excluded: "
             f"{sorted(excluded)}")
    never = [name for name, k, e in zip(instruments, keep, n_est) if k and e == 0]
    if never:
        warn(f"{level}: instrument(s) never estimated, precision set to 0.0: {never}")
    kept = [name for name, k in zip(instruments, keep) if k]
    p = [safe_ratio(m, e) for m, e, k in zip(matched, n_est, keep) if k]
    r = [safe_ratio(m, n) for m, n, k in zip(matched, n_ref, keep) if k]
    f = [f_measure(a, b) for a, b in zip(p, r)]
    pm = safe_ratio(matched[keep].sum(), n_est[keep].sum())
    rm = safe_ratio(matched[keep].sum(), n_ref[keep].sum())
    if not kept:
        warn(f"{level}: no instrument is active in the reference; scores set to 0.0")
    return {
        "precision_macro": float(np.mean(p)) if kept else 0.0,
        "recall_macro": float(np.mean(r)) if kept else 0.0,
        "f1_macro": float(np.mean(f)) if kept else 0.0,
        "precision_micro": pm, "recall_micro": rm, "f1_micro": f_measure(pm, rm),
        "excluded": excluded,
        "per_label": {"precision": dict(zip(kept, p)), "recall": dict(zip(kept, r)),
                      "f1": dict(zip(kept, f)),
                      "support": {n: int(c) for n, c, k in zip(instruments, n_ref, keep) if k}},
    }


def _check_min_iou(min_iou: float) -> None:
    if not 0 < min_iou <= 1:
        raise ValueError(f"min_iou = {min_iou!r}: expected a number in (0, 1]")


def frame_activity(pairs: Sequence[tuple[str, list[Segment], list[Segment]]], instruments: Sequence[str],
                   frame_rate: float, durations: Mapping[str, float] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Pooled reference and estimated frame matrices ``(n_frames, n_instruments)``."""
    check_frame_rate(frame_rate)
    ref_frames, est_frames = [], []
    for track, ref, est in pairs:
        if durations is not None and track in durations:
            duration = float(durations[track])
        else:
            duration = max([s[1] for s in (*ref, *est)], default=0.0)
        times = np.arange(int(np.ceil(duration * frame_rate))) / frame_rate
        times = times[times < duration]
        ref_frames.append(frame_matrix(ref, instruments, times))
        est_frames.append(frame_matrix(est, instruments, times))
    empty = np.zeros((0, len(instruments)), dtype=bool)
    return np.concatenate([empty, *ref_frames]), np.concatenate([empty, *est_frames])


def frame_scores(y_ref: np.ndarray, y_est: np.ndarray, instruments: Sequence[str]) -> dict[str, Any]:
    """Frame-level P/R/F1 from pooled multi-hot matrices (see the module docstring)."""
    n_ref, n_est = y_ref.sum(axis=0), y_est.sum(axis=0)
    matched = (y_ref & y_est).sum(axis=0)
    scores = _prf(matched, n_ref, n_est, instruments, "frame")
    return {"n_frames": int(y_ref.shape[0]), **scores}


def segment_scores(pairs: Sequence[tuple[str, list[Segment], list[Segment]]], instruments: Sequence[str],
                   min_iou: float = 0.5) -> dict[str, Any]:
    """Segment-level P/R/F1 by IoU matching (see the module docstring)."""
    _check_min_iou(min_iou)
    k = len(instruments)
    matched, n_ref, n_est = np.zeros(k, int), np.zeros(k, int), np.zeros(k, int)
    for _, ref, est in pairs:
        for j, name in enumerate(instruments):
            r, e = merge_segments(ref, name), merge_segments(est, name)
            matched[j] += match_count(r, e, min_iou)
            n_ref[j] += len(r)
            n_est[j] += len(e)
    return {"min_iou": float(min_iou), **_prf(matched, n_ref, n_est, instruments, "segment")}


def evaluate(
    references: Mapping[str, Sequence[Any]],
    estimates: Mapping[str, Sequence[Any]],
    instruments: Sequence[str],
    frame_rate: float,
    durations: Mapping[str, float] | None = None,
    min_iou: float = 0.5,
    errors: str = "raise",
) -> OrderedDict[str, Any]:
    """Every instrument metric over a dataset.

    Parameters
    ----------
    references, estimates
        ``{track_id: [(start_s, end_s, label), ...]}``; estimates for unknown tracks are ignored
        and missing estimates count as silence, both with a warning.
    instruments
        The vocabulary (order of the per-instrument values).
    frame_rate
        Frames per second for the frame level.
    durations
        ``{track_id: seconds}``; default: the last segment end of the track (either side).
    min_iou
        IoU needed for a segment match.
    errors
        ``"raise"``: an invalid segment raises ``ValueError``; ``"skip"``: the track is left out
        with a warning and listed under ``invalid_tracks`` (``{track_id: message}``).

    Returns
    -------
    OrderedDict
        ``n_tracks``, ``invalid_tracks``, ``frame`` and ``segment`` dicts with
        ``precision_macro``, ``recall_macro``,
        ``f1_macro``, the ``_micro`` values, ``excluded`` and ``per_label``.
    """
    instruments = check_names(instruments, len(instruments), "instruments")
    check_frame_rate(frame_rate)
    _check_min_iou(min_iou)
    if errors not in ("raise", "skip"):
        raise ValueError(f"errors = {errors!r}: expected 'raise' or 'skip'")
    invalid: dict[str, str] | None = {} if errors == "skip" else None
    pairs = _pair_tracks(references, estimates, instruments, invalid)
    y_ref, y_est = frame_activity(pairs, instruments, frame_rate, durations)
    result: OrderedDict[str, Any] = OrderedDict(n_tracks=len(pairs), invalid_tracks=invalid or {})
    result["frame"] = {"frame_rate": float(frame_rate), **frame_scores(y_ref, y_est, instruments)}
    result["segment"] = segment_scores(pairs, instruments, min_iou)
    return result


def segments_from_table(table: pd.DataFrame, label_column: str = "instrument") -> dict[str, list[Segment]]:
    """Group an ``instruments`` predictions table (``track_id, start_s, end_s, instrument``) by track."""
    missing = {"track_id", "start_s", "end_s", label_column} - set(table.columns)
    if missing:
        raise ValueError(f"instruments table: missing column(s) {sorted(missing)}")
    out: dict[str, list[Segment]] = {}
    for track, rows in table.groupby("track_id", sort=True):
        out[str(track)] = list(zip(rows["start_s"].astype(float), rows["end_s"].astype(float),
                                   rows[label_column].astype(str)))
    return out
