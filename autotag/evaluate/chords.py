"""Chord recognition metrics over a dataset, on top of :mod:`mir_eval.chord`.

Conventions
-----------
A track's chords are ``(intervals, labels)``: ``intervals`` an ``(n, 2)`` array of start/end
seconds, sorted, non-overlapping, each of positive duration; ``labels`` ``n`` Harte strings
(``C:maj``, ``A:min7``, ``G:maj/3``; ``N`` = no chord, ``X`` = unknown, excluded from scoring).
The tutorial's ``N:-`` is accepted as an alias of ``N`` (as in :mod:`autotag.data.chords`) and
rewritten to ``N``; any other label mir_eval cannot parse is an error.

Scoring follows :func:`mir_eval.chord.evaluate` step by step, with two documented changes:

- gaps *between* segments are filled with ``N`` (mir_eval silently extends the previous chord
  over a gap); the estimate is padded/cropped to the reference span with ``N`` exactly as in
  mir_eval;
- zero-length pieces left by that crop are dropped (mir_eval raises on them).

On gap-free input every per-track number equals ``mir_eval.chord.evaluate``.

Metrics
-------
- Comparisons (in mir_eval's order): ``thirds, thirds_inv, triads, triads_inv, tetrads,
  tetrads_inv, root, mirex, majmin, majmin_inv, sevenths, sevenths_inv``.
- Segmentation: ``underseg``, ``overseg`` and ``seg = min(underseg, overseg)`` (directional
  Hamming distance on merged segments).
- ``wcsr``: the weighted chord symbol recall over the *whole dataset*: for each comparison, the
  correctly labelled duration summed over tracks divided by the comparable duration summed over
  tracks (reference chords outside a comparison's vocabulary, e.g. ``X``, are not comparable).
  Segmentation scores are averaged with each track weighted by its reference duration.
- ``track_mean``: the plain mean of the per-track scores. A track with no comparable reference
  duration for some comparison is left out of that mean with a warning (mir_eval would give it 0).
- ``frame``: the tutorial's evaluation, for comparison: both sides framed and reduced to the
  25-class vocabulary exactly as training targets are (:func:`autotag.data.chords.segments_to_frames`:
  frame ``i`` centred at ``i / frame_rate``, uncovered frames ``N``,
  :func:`~autotag.data.chords.reduce_to_majmin`), frames inside the reference span kept, then
  macro precision/recall/F1 of :func:`sklearn.metrics.precision_recall_fscore_support`
  (``zero_division=0``, averaged over the classes found on either side, as the tutorial's
  ``classification_report``). Reference frames outside the vocabulary (``X``, ``dim``, ``sus4``)
  are skipped, as MIREX majmin does; estimated ones count as the wrong class ``X``.

References
----------
Harte, C. et al., "Symbolic representation of musical chords", ISMIR 2005.
Pauwels, J. and Peeters, G., "Evaluating automatically estimated chord sequences", ICASSP 2013.
Raffel, C. et al., "mir_eval: a transparent implementation of common MIR metrics", ISMIR 2014.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import mir_eval
import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_fscore_support

from autotag.data.adapters.lab import lab_lines
from autotag.data.chords import (
    CHORD_LABELS,
    EXCLUDED_INDEX,
    NO_CHORD,
    NO_CHORD_ALIASES,
    chord_label,
    segments_to_frames,
)
from autotag.evaluate.common import check_frame_rate, pair_tracks, safe_ratio, warn

COMPARISONS: OrderedDict[str, Callable[[list[str], list[str]], np.ndarray]] = OrderedDict(
    (name, getattr(mir_eval.chord, name))
    for name in ("thirds", "thirds_inv", "triads", "triads_inv", "tetrads", "tetrads_inv", "root",
                 "mirex", "majmin", "majmin_inv", "sevenths", "sevenths_inv")
)
SEGMENTATION = ("underseg", "overseg", "seg")
_FRAME_TOLERANCE = 1e-6  # in frames, as segments_to_frames: a boundary k / frame_rate is frame k

Annotation = tuple[np.ndarray, list[str]]


def validate_label(label: object, where: str) -> str:
    """Return ``label`` if it is a Harte chord mir_eval can score (``N:-`` becomes ``N``).

    Raises
    ------
    ValueError
        ``where: chord label 'C:foo' is not valid Harte syntax (...)``.
    """
    if not isinstance(label, str):
        raise ValueError(f"{where}: chord label {label!r} is a {type(label).__name__}, expected a string")
    if label in NO_CHORD_ALIASES:
        return NO_CHORD
    try:
        mir_eval.chord.encode(label)
    except mir_eval.chord.InvalidChordException as exc:
        raise ValueError(f"{where}: chord label {label!r} is not valid Harte syntax ({exc}); "
                         "expected e.g. 'C:maj', 'A:min7', 'G:maj/3', 'N' or 'X'") from None
    return label


def validate_intervals(intervals: np.ndarray, where: str) -> np.ndarray:
    """Check an ``(n, 2)`` array of sorted, non-overlapping, positive-length segments.

    Raises
    ------
    ValueError
        Naming ``where``, the segment index and the offending times.
    """
    iv = np.asarray(intervals, dtype=np.float64)
    if iv.ndim != 2 or iv.shape[1] != 2:
        raise ValueError(f"{where}: intervals must have shape (n, 2), got {iv.shape}")
    bad = np.flatnonzero(~np.isfinite(iv).all(axis=1) | (iv[:, 0] < 0) | (iv[:, 1] <= iv[:, 0]))
    if bad.size:
        i = bad[0]
        raise ValueError(f"{where}: segment {i} = [{iv[i, 0]}, {iv[i, 1]}]: expected finite "
                         "0 <= start < end seconds")
    overlap = np.flatnonzero(iv[1:, 0] < iv[:-1, 1])
    if overlap.size:
        i = overlap[0] + 1
        raise ValueError(f"{where}: segment {i} starts at {iv[i, 0]} before segment {i - 1} ends at "
                         f"{iv[i - 1, 1]}; expected sorted, non-overlapping segments")
    return iv


def validate(intervals: np.ndarray, labels: Sequence[str], where: str = "chords") -> Annotation:
    """Validate one chord annotation and return it as ``(float array, list of str)``.

    Raises
    ------
    ValueError
        Malformed intervals, a count mismatch, or a label that is not Harte syntax.
    """
    iv = validate_intervals(intervals, where)
    labels = list(labels)
    if len(labels) != len(iv):
        raise ValueError(f"{where}: {len(iv)} intervals but {len(labels)} labels")
    return iv, [validate_label(label, f"{where} segment {i}") for i, label in enumerate(labels)]


def _parse_lab_line(line: str, fields: list[str], where: str) -> tuple[float, float, str]:
    if len(fields) != 3:
        raise ValueError(f"{where}: expected 'start end label' (3 whitespace-separated fields), "
                         f"got {len(fields)} in {line.strip()!r}")
    times = []
    for name, token in zip(("start", "end"), fields[:2]):
        try:
            times.append(float(token))
        except ValueError:
            raise ValueError(f"{where}: {name} time {token!r} is not a number") from None
    start, end = times
    if not (np.isfinite(start) and np.isfinite(end) and 0 <= start < end):
        raise ValueError(f"{where}: segment [{start}, {end}]: expected finite 0 <= start < end seconds")
    return start, end, validate_label(fields[2], where)


def load_lab(path: str | os.PathLike[str]) -> Annotation:
    """Read a chord ``.lab`` file (``start end label`` per line; ``#`` comments, blank lines ok).

    Returns the same arrays as :func:`mir_eval.io.load_labeled_intervals` on a valid file.

    Raises
    ------
    ValueError
        ``<path> line <n>: ...`` for a wrong field count, a non-numeric or non-positive-length
        time, a segment overlapping the previous one, or an invalid chord label; ``<path>: ...``
        for a file that is not UTF-8 text or holds no segment.
    """
    rows: list[tuple[float, float, str]] = []
    for number, line, fields in lab_lines(path):
        where = f"{os.fspath(path)} line {number}"
        row = _parse_lab_line(line, fields, where)
        if rows and row[0] < rows[-1][1]:
            raise ValueError(f"{where}: starts at {row[0]} before the previous segment ends at "
                             f"{rows[-1][1]}; expected sorted, non-overlapping segments")
        rows.append(row)
    if not rows:
        raise ValueError(f"{os.fspath(path)}: no chord segments found")
    return np.array([r[:2] for r in rows], dtype=np.float64), [r[2] for r in rows]


def fill_gaps(intervals: np.ndarray, labels: Sequence[str], fill: str = NO_CHORD) -> Annotation:
    """Insert ``fill`` segments into the gaps between consecutive segments."""
    out_iv: list[tuple[float, float]] = []
    out_lab: list[str] = []
    for (start, end), label in zip(intervals, labels):
        if out_iv and start > out_iv[-1][1]:
            out_iv.append((out_iv[-1][1], start))
            out_lab.append(fill)
        out_iv.append((start, end))
        out_lab.append(label)
    return np.array(out_iv, dtype=np.float64).reshape(-1, 2), out_lab


def align_estimate(ref: Annotation, est: Annotation) -> Annotation:
    """Pad/crop the estimate to the reference span with ``N`` (as mir_eval), gaps filled."""
    est_iv, est_lab = fill_gaps(*est)
    est_iv, est_lab = mir_eval.util.adjust_intervals(
        est_iv, list(est_lab), ref[0].min(), ref[0].max(), NO_CHORD, NO_CHORD)
    keep = est_iv[:, 1] > est_iv[:, 0]  # mir_eval's crop can leave zero-length pieces
    return est_iv[keep], [label for label, k in zip(est_lab, keep) if k]


def track_components(ref: Annotation, est: Annotation) -> dict[str, Any]:
    """Per-track sums from which every score is a ratio.

    Returns
    -------
    dict
        ``duration`` (reference span, s), ``correct`` and ``comparable`` (``{comparison: s}``),
        and ``underseg``, ``overseg``, ``seg`` (floats).
    """
    ref = fill_gaps(*ref)
    est = align_estimate(ref, est)
    merged_ref = mir_eval.chord.merge_chord_intervals(*ref)
    merged_est = mir_eval.chord.merge_chord_intervals(*est)
    intervals, ref_lab, est_lab = mir_eval.util.merge_labeled_intervals(*ref, *est)
    durations = mir_eval.util.intervals_to_durations(intervals)
    correct, comparable = {}, {}
    for name, compare in COMPARISONS.items():
        scores = np.asarray(compare(ref_lab, est_lab), dtype=np.float64)
        valid = scores >= 0
        correct[name] = float(np.sum(scores[valid] * durations[valid]))
        comparable[name] = float(np.sum(durations[valid]))
    under = float(mir_eval.chord.underseg(merged_ref, merged_est))
    over = float(mir_eval.chord.overseg(merged_ref, merged_est))
    return {"duration": float(ref[0].max() - ref[0].min()), "correct": correct,
            "comparable": comparable, "underseg": under, "overseg": over, "seg": min(under, over)}


def track_scores(components: Mapping[str, Any]) -> OrderedDict[str, float | None]:
    """Per-track scores in mir_eval's key order; ``None`` where nothing was comparable."""
    scores: OrderedDict[str, float | None] = OrderedDict()
    for name in COMPARISONS:
        total = components["comparable"][name]
        scores[name] = components["correct"][name] / total if total > 0 else None
    for name in SEGMENTATION:
        scores[name] = components[name]
    return scores


def evaluate_track(ref_intervals: np.ndarray, ref_labels: Sequence[str], est_intervals: np.ndarray,
                   est_labels: Sequence[str], track: str = "track") -> OrderedDict[str, float]:
    """All scores of one track; equals :func:`mir_eval.chord.evaluate` on gap-free input.

    A comparison with no comparable reference duration warns and scores 0.0, as in mir_eval.
    """
    ref = validate(ref_intervals, ref_labels, f"{track} reference")
    est = validate(est_intervals, est_labels, f"{track} estimate")
    scores = track_scores(track_components(ref, est))
    for name in [n for n, v in scores.items() if v is None]:
        warn(f"{track}: no reference chord comparable under {name!r}; score set to 0.0")
        scores[name] = 0.0
    return scores  # type: ignore[return-value]


def _pair_tracks(references: Mapping[str, Annotation], estimates: Mapping[str, Annotation],
                 invalid: dict[str, str] | None = None) -> list[tuple[str, Annotation, Annotation]]:
    """Validate and pair the annotations (:func:`autotag.evaluate.common.pair_tracks`); a missing
    estimate is scored as all ``N``; a track with an empty reference is skipped with a warning."""
    pairs = pair_tracks(references, estimates, lambda annotation, where: validate(*annotation, where),
                        (np.empty((0, 2)), []), "no-chord", invalid)
    for track in [t for t, ref, _ in pairs if len(ref[0]) == 0]:
        warn(f"track {track!r}: empty reference, skipped")
    return [(t, ref, est) for t, ref, est in pairs if len(ref[0])]


def _dataset_totals(per_track: Mapping[str, Mapping[str, Any]]) -> OrderedDict[str, float]:
    """Duration-weighted scores over the dataset (WCSR)."""
    totals: OrderedDict[str, float] = OrderedDict()
    for name in COMPARISONS:
        comparable = sum(c["comparable"][name] for c in per_track.values())
        if comparable == 0:
            warn(f"no reference chord in the dataset is comparable under {name!r}; WCSR set to 0.0")
        totals[name] = safe_ratio(sum(c["correct"][name] for c in per_track.values()), comparable)
    duration = sum(c["duration"] for c in per_track.values())
    for name in SEGMENTATION:
        totals[name] = safe_ratio(sum(c[name] * c["duration"] for c in per_track.values()), duration)
    return totals


def _track_means(per_track_scores: Mapping[str, Mapping[str, float | None]]) -> OrderedDict[str, float]:
    """Mean of per-track scores, skipping (with a warning) tracks where nothing was comparable."""
    means: OrderedDict[str, float] = OrderedDict()
    for name in (*COMPARISONS, *SEGMENTATION):
        values = [s[name] for s in per_track_scores.values() if s[name] is not None]
        skipped = [t for t, s in per_track_scores.items() if s[name] is None]
        if skipped:
            warn(f"{name!r}: {len(skipped)} track(s) with no comparable reference chord left out of "
                 f"the track mean: {skipped[:10]}")
        means[name] = float(np.mean(values)) if values else 0.0
    return means


def evaluate(
    references: Mapping[str, Annotation],
    estimates: Mapping[str, Annotation],
    frame_rate: float | None = None,
    per_track: bool = True,
    errors: str = "raise",
) -> OrderedDict[str, Any]:
    """Every chord metric over a dataset.

    Parameters
    ----------
    references, estimates
        ``{track_id: (intervals, labels)}``. Estimates for unknown tracks are ignored and missing
        estimates are scored as no-chord, both with a warning.
    frame_rate
        Frames per second for the tutorial's frame-level scores; ``None`` skips them.
    per_track
        Include ``per_track`` (``{metric: {track_id: score}}``).
    errors
        ``"raise"``: an invalid annotation raises ``ValueError``; ``"skip"``: the track is left
        out with a warning and listed under ``invalid_tracks`` (``{track_id: message}``).

    Returns
    -------
    OrderedDict
        ``n_tracks``, ``duration_s``, ``invalid_tracks``, ``wcsr`` and ``track_mean``
        (``{metric: score}``), optionally ``frame`` (see :func:`frame_metrics`) and ``per_track``.
    """
    if errors not in ("raise", "skip"):
        raise ValueError(f"errors = {errors!r}: expected 'raise' or 'skip'")
    if frame_rate is not None:
        check_frame_rate(frame_rate)
    invalid: dict[str, str] | None = {} if errors == "skip" else None
    pairs = _pair_tracks(references, estimates, invalid)
    components = {track: track_components(ref, est) for track, ref, est in pairs}
    scores = {track: track_scores(c) for track, c in components.items()}
    if not pairs:
        warn("no track with a non-empty reference; every chord score set to 0.0")
    result: OrderedDict[str, Any] = OrderedDict(
        n_tracks=len(pairs), duration_s=float(sum(c["duration"] for c in components.values())),
        invalid_tracks=invalid or {})
    result["wcsr"] = _dataset_totals(components)
    result["track_mean"] = _track_means(scores)
    if frame_rate is not None:
        result["frame"] = _frame_metrics(pairs, frame_rate)
    if per_track:
        result["per_track"] = {name: {t: s[name] for t, s in scores.items() if s[name] is not None}
                               for name in (*COMPARISONS, *SEGMENTATION)}
    return result


def frame_classes(ref: Annotation, est: Annotation, frame_rate: float) -> tuple[list[str], list[str]]:
    """25-class labels of the frames inside the reference span whose reference is in the vocabulary."""
    start, end = ref[0].min(), ref[0].max()
    n_frames = int(np.ceil(end * frame_rate - _FRAME_TOLERANCE))
    first = max(int(np.ceil(start * frame_rate - _FRAME_TOLERANCE)), 0)
    ref_idx = segments_to_frames(zip(ref[0][:, 0], ref[0][:, 1], ref[1]), n_frames, frame_rate)[first:]
    est_idx = segments_to_frames(zip(est[0][:, 0], est[0][:, 1], est[1]), n_frames, frame_rate)[first:]
    keep = ref_idx != EXCLUDED_INDEX
    return [CHORD_LABELS[i] for i in ref_idx[keep]], [chord_label(int(i)) for i in est_idx[keep]]


def _frame_metrics(pairs: Sequence[tuple[str, Annotation, Annotation]], frame_rate: float) -> dict[str, Any]:
    check_frame_rate(frame_rate)
    y_true: list[str] = []
    y_pred: list[str] = []
    for _, ref, est in pairs:
        ref_classes, est_classes = frame_classes(ref, est, frame_rate)
        y_true.extend(ref_classes)
        y_pred.extend(est_classes)
    return frame_scores(y_true, y_pred)


def frame_metrics(references: Mapping[str, Annotation], estimates: Mapping[str, Annotation],
                  frame_rate: float) -> dict[str, Any]:
    """The tutorial's frame-level 25-class scores (see the module docstring).

    Returns
    -------
    dict
        ``n_frames``, ``recall_macro``, ``precision_macro``, ``f1_macro``, ``accuracy`` and
        ``per_label`` ``{"recall": {class: value}}`` over the reference classes.
    """
    return _frame_metrics(_pair_tracks(references, estimates), frame_rate)


def frame_scores(y_true: Sequence[str], y_pred: Sequence[str]) -> dict[str, Any]:
    """Macro precision/recall/F1 and accuracy of frame classes (``classification_report``'s macro)."""
    if not y_true:
        warn("no reference frame in the 25-class vocabulary; frame scores set to 0.0")
        return {"n_frames": 0, "recall_macro": 0.0, "precision_macro": 0.0, "f1_macro": 0.0,
                "accuracy": 0.0, "per_label": {"recall": {}}}
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)
    classes = sorted(set(y_true))
    _, per_class, _, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, average=None, zero_division=0)
    accuracy = float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))
    return {"n_frames": len(y_true), "recall_macro": float(r), "precision_macro": float(p),
            "f1_macro": float(f), "accuracy": accuracy,
            "per_label": {"recall": {c: float(v) for c, v in zip(classes, per_class)}}}


def annotations_from_table(table: pd.DataFrame, label_column: str = "chord") -> dict[str, Annotation]:
    """Group a ``chords`` predictions table (``track_id, start_s, end_s, chord``) by track.

    Rows are sorted by start time; validation happens when the annotations are scored.
    """
    missing = {"track_id", "start_s", "end_s", label_column} - set(table.columns)
    if missing:
        raise ValueError(f"chords table: missing column(s) {sorted(missing)}")
    out: dict[str, Annotation] = {}
    for track, rows in table.sort_values(["track_id", "start_s"]).groupby("track_id", sort=True):
        out[str(track)] = (rows[["start_s", "end_s"]].to_numpy(np.float64), rows[label_column].tolist())
    return out


def annotation_from_segments(segments: Sequence[Mapping[str, Any]]) -> Annotation:
    """Convert manifest segments (``[{start_s, end_s, label}, ...]``) to ``(intervals, labels)``."""
    ordered = sorted(segments, key=lambda s: s["start_s"])
    intervals = np.array([[s["start_s"], s["end_s"]] for s in ordered], dtype=np.float64).reshape(-1, 2)
    return intervals, [s["label"] for s in ordered]
