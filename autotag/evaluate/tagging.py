"""Multi-label (tag) metrics: ROC-AUC, PR-AUC and thresholded precision/recall/F1.

Conventions
-----------
Inputs are a ground-truth matrix ``y_true`` of shape ``(n_tracks, n_tags)`` holding 0/1 (or
bool), a score matrix ``y_score`` of the same shape (probabilities, any finite values), the tag
names (one per column) and decision thresholds (one scalar or one per tag; a track is predicted
positive when ``score >= threshold``).

A tag whose ground-truth column holds a single class (no positive, or no negative example) has no
defined ROC-AUC and no meaningful average precision. Such tags are *reported* under
``excluded_tags`` with the reason, a :class:`~autotag.evaluate.common.MetricWarning` is emitted,
and they are left out of every per-tag value and every average (macro *and* micro), so an average
is always over the same tags. This generalises the tutorial's ``mask = y.sum(0) > 0``.
If no tag is left, every average is 0.0 (with a warning), never NaN.

Metrics
-------
- ``roc_auc_macro`` / ``roc_auc_micro``: :func:`sklearn.metrics.roc_auc_score`.
- ``pr_auc_macro`` / ``pr_auc_micro``: average precision,
  :func:`sklearn.metrics.average_precision_score` (the tutorial's "AP", the preferred number:
  ROC-AUC is inflated by the class imbalance of tags).
- ``precision_*``, ``recall_*``, ``f1_*`` (macro and micro) at the thresholds, equal to
  :func:`sklearn.metrics.precision_recall_fscore_support` with ``zero_division=0``; a tag never
  predicted positive gets precision 0 and a warning.
- ``per_label``: the same values per tag, plus ``support`` (positives) and ``threshold``.

References
----------
Peeters, G. et al., "Deep Learning 101 for Audio-based MIR", ISMIR 2024 tutorial, chapter
"Auto-Tagging (front-ends)": macro ROC-AUC and macro average precision on MagnaTagATune.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from autotag.evaluate.common import check_names, f_measure, safe_ratio, warn

Thresholds = float | Sequence[float] | np.ndarray | Mapping[str, float]


def validate(
    y_true: np.ndarray, y_score: np.ndarray, tags: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Check and normalise the ground truth, the scores and the tag names.

    Returns
    -------
    y_true : np.ndarray of bool, shape (n, k)
    y_score : np.ndarray of float64, shape (n, k)
    tags : list of str, length k

    Raises
    ------
    ValueError
        Not 2-D, shapes differ, no track, values other than 0/1 in ``y_true``, non-finite scores,
        wrong number of or duplicate tag names.
    """
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_true.ndim != 2:
        raise ValueError(f"y_true: expected a 2-D (n_tracks, n_tags) array, got shape {y_true.shape}")
    if y_score.shape != y_true.shape:
        raise ValueError(f"y_score shape {y_score.shape} differs from y_true shape {y_true.shape}")
    if y_true.shape[0] == 0:
        raise ValueError("y_true: expected at least one track, got 0 rows")
    bad = ~np.isin(y_true, (0, 1))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(f"y_true[{row}, {col}] = {y_true[row, col]!r}: expected 0 or 1")
    if not np.isfinite(y_score).all():
        row, col = np.argwhere(~np.isfinite(y_score))[0]
        raise ValueError(f"y_score[{row}, {col}] = {y_score[row, col]!r}: expected a finite number")
    tags = check_names(tags, y_true.shape[1], "tags")
    return y_true.astype(bool), y_score, tags


def threshold_vector(thresholds: Thresholds, tags: Sequence[str]) -> np.ndarray:
    """Expand ``thresholds`` (scalar, sequence or ``{tag: threshold}``) to one float per tag.

    Raises
    ------
    ValueError
        Wrong length, a tag missing from the mapping, or a non-finite threshold.
    """
    if isinstance(thresholds, Mapping):
        missing = [t for t in tags if t not in thresholds]
        if missing:
            raise ValueError(f"thresholds: no value for tag(s) {missing[:5]!r}")
        values = np.array([thresholds[t] for t in tags], dtype=np.float64)
    elif np.ndim(thresholds) == 0:
        values = np.full(len(tags), float(thresholds))  # type: ignore[arg-type]
    else:
        values = np.asarray(thresholds, dtype=np.float64)
    if values.shape != (len(tags),):
        raise ValueError(f"thresholds: expected a scalar or {len(tags)} values, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"thresholds: expected finite numbers, got {values[~np.isfinite(values)][:3]}")
    return values


def decisions(
    y_score: np.ndarray, tags: Sequence[str], thresholds: Thresholds = 0.5,
    y_pred: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Binary decisions: ``y_pred`` when given (checked), else ``y_score >= thresholds``.

    Returns
    -------
    decided : np.ndarray of bool, shape (n, k)
    thresholds : np.ndarray of float, shape (k,), or None when ``y_pred`` was given
    """
    if y_pred is None:
        thr = threshold_vector(thresholds, tags)
        return y_score >= thr, thr
    y_pred = np.asarray(y_pred)
    if y_pred.shape != y_score.shape:
        raise ValueError(f"y_pred shape {y_pred.shape} differs from y_score shape {y_score.shape}")
    bad = ~np.isin(y_pred, (0, 1))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(f"y_pred[{row}, {col}] = {y_pred[row, col]!r}: expected 0 or 1")
    return y_pred.astype(bool), None


def evaluable_tags(y_true: np.ndarray, tags: Sequence[str]) -> tuple[np.ndarray, dict[str, str]]:
    """Find the tags whose ground truth has both classes; report the others with a warning.

    Returns
    -------
    keep : np.ndarray of bool, shape (k,)
        True for tags with at least one positive and one negative track.
    excluded : dict
        ``{tag: reason}`` for the others, reason ``"no positive example"`` or
        ``"no negative example"``.
    """
    positives = np.asarray(y_true).sum(axis=0)
    excluded: dict[str, str] = {}
    for j, tag in enumerate(tags):
        if positives[j] == 0:
            excluded[tag] = "no positive example"
        elif positives[j] == y_true.shape[0]:
            excluded[tag] = "no negative example"
    if excluded:
        warn(f"{len(excluded)} of {len(tags)} tag(s) have a single class in the ground truth and are "
             f"excluded from all tag metrics: {excluded}")
    keep = np.array([t not in excluded for t in tags], dtype=bool)
    return keep, excluded


def _ranking(t: np.ndarray, s: np.ndarray, kept: list[str]) -> dict[str, Any]:
    """ROC-AUC and average precision on columns already restricted to evaluable tags."""
    if not kept:
        warn("no tag has both classes in the ground truth; ROC-AUC and PR-AUC set to 0.0")
        return {"roc_auc_macro": 0.0, "roc_auc_micro": 0.0, "pr_auc_macro": 0.0,
                "pr_auc_micro": 0.0, "per_label": {"roc_auc": {}, "pr_auc": {}}}
    # atleast_1d: with a single column sklearn treats the input as binary and returns a scalar
    roc = np.atleast_1d(roc_auc_score(t, s, average=None))
    ap = np.atleast_1d(average_precision_score(t, s, average=None))
    return {
        "roc_auc_macro": float(np.mean(roc)),
        "roc_auc_micro": float(roc_auc_score(t, s, average="micro")),
        "pr_auc_macro": float(np.mean(ap)),
        "pr_auc_micro": float(average_precision_score(t, s, average="micro")),
        "per_label": {"roc_auc": {tag: float(v) for tag, v in zip(kept, roc)},
                      "pr_auc": {tag: float(v) for tag, v in zip(kept, ap)}},
    }


def _thresholded(t: np.ndarray, d: np.ndarray, kept: list[str], thr: np.ndarray | None) -> dict[str, Any]:
    """Precision/recall/F1 on columns already restricted to evaluable tags."""
    names = ("precision", "recall", "f1")
    if not kept:
        warn("no tag has both classes in the ground truth; precision/recall/F1 set to 0.0")
        out: dict[str, Any] = {f"{n}_{avg}": 0.0 for avg in ("macro", "micro") for n in names}
        out["per_label"] = {n: {} for n in (*names, "support")}
        return out
    never = [tag for tag, col in zip(kept, d.T) if not col.any()]
    if never:
        warn(f"tag(s) never predicted positive, precision set to 0.0: {never}")
    # From counts, not precision_recall_fscore_support: with a single column sklearn infers a
    # binary problem and reports both classes. The values equal sklearn's (zero_division=0).
    tp, n_pred, support = (t & d).sum(axis=0), d.sum(axis=0), t.sum(axis=0)
    p = [safe_ratio(a, b) for a, b in zip(tp, n_pred)]
    r = [safe_ratio(a, b) for a, b in zip(tp, support)]
    f = [f_measure(a, b) for a, b in zip(p, r)]
    pm, rm = safe_ratio(tp.sum(), n_pred.sum()), safe_ratio(tp.sum(), support.sum())
    out = {"precision_macro": float(np.mean(p)), "recall_macro": float(np.mean(r)),
           "f1_macro": float(np.mean(f)), "precision_micro": pm,
           "recall_micro": rm, "f1_micro": f_measure(pm, rm)}
    per_label: dict[str, dict[str, Any]] = {
        name: {tag: float(v) for tag, v in zip(kept, values)} for name, values in zip(names, (p, r, f))}
    per_label["support"] = {tag: int(v) for tag, v in zip(kept, support)}
    if thr is not None:
        per_label["threshold"] = {tag: float(v) for tag, v in zip(kept, thr)}
    out["per_label"] = per_label
    return out


def ranking_metrics(y_true: np.ndarray, y_score: np.ndarray, tags: Sequence[str]) -> dict[str, Any]:
    """ROC-AUC and average precision, macro, micro and per tag, over the evaluable tags.

    Returns
    -------
    dict
        ``roc_auc_macro``, ``roc_auc_micro``, ``pr_auc_macro``, ``pr_auc_micro`` (floats) and
        ``per_label`` with ``roc_auc`` and ``pr_auc`` dicts ``{tag: value}``.
    """
    y_true, y_score, tags = validate(y_true, y_score, tags)
    keep, _ = evaluable_tags(y_true, tags)
    return _ranking(y_true[:, keep], y_score[:, keep], [t for t, k in zip(tags, keep) if k])


def threshold_metrics(
    y_true: np.ndarray,
    y_score: np.ndarray,
    tags: Sequence[str],
    thresholds: Thresholds = 0.5,
    y_pred: np.ndarray | None = None,
) -> dict[str, Any]:
    """Precision, recall and F1 at decision thresholds, macro, micro and per evaluable tag.

    Parameters
    ----------
    y_true, y_score, tags
        As in :func:`validate`.
    thresholds
        Scalar, one value per tag, or ``{tag: value}``; predicted positive when ``score >= t``.
    y_pred
        Optional 0/1 decisions of shape (n, k) (e.g. the ``predicted`` column of the ``tags``
        predictions table); when given, ``thresholds`` is ignored and not reported.

    Returns
    -------
    dict
        ``precision_macro``, ``recall_macro``, ``f1_macro``, the same ``_micro``, and
        ``per_label`` with ``precision``, ``recall``, ``f1``, ``support`` (and ``threshold``).
    """
    y_true, y_score, tags = validate(y_true, y_score, tags)
    decided, thr = decisions(y_score, tags, thresholds, y_pred)
    keep, _ = evaluable_tags(y_true, tags)
    kept = [t for t, k in zip(tags, keep) if k]
    return _thresholded(y_true[:, keep], decided[:, keep], kept, None if thr is None else thr[keep])


def evaluate(
    y_true: np.ndarray,
    y_score: np.ndarray,
    tags: Sequence[str],
    thresholds: Thresholds = 0.5,
    y_pred: np.ndarray | None = None,
) -> OrderedDict[str, Any]:
    """Every tag metric in one ordered dict (see the module docstring for the keys).

    Parameters are those of :func:`threshold_metrics`.

    Examples
    --------
    >>> y = np.array([[1, 0], [0, 1], [1, 1]])
    >>> evaluate(y, y * 0.9, ["rock", "piano"])["roc_auc_macro"]
    1.0
    """
    y_true, y_score, tags = validate(y_true, y_score, tags)
    decided, thr = decisions(y_score, tags, thresholds, y_pred)
    keep, excluded = evaluable_tags(y_true, tags)
    kept = [t for t, k in zip(tags, keep) if k]
    ranking = _ranking(y_true[:, keep], y_score[:, keep], kept)
    thresholded = _thresholded(y_true[:, keep], decided[:, keep], kept,
                               None if thr is None else thr[keep])
    scores: OrderedDict[str, Any] = OrderedDict(
        n_tracks=int(y_true.shape[0]), n_tags=len(tags), n_tags_evaluated=len(kept))
    scores.update((k, v) for k, v in ranking.items() if k != "per_label")
    scores.update((k, v) for k, v in thresholded.items() if k != "per_label")
    scores["excluded_tags"] = excluded
    scores["per_label"] = {**ranking["per_label"], **thresholded["per_label"]}
    return scores


def matrices_from_table(
    predictions: pd.DataFrame, truth: Mapping[str, Sequence[str]], tags: Sequence[str] | None = None
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Pivot the ``tags`` predictions table (long) into the matrices :func:`evaluate` takes.

    Parameters
    ----------
    predictions
        Rows of one run with columns ``track_id``, ``tag``, ``score`` and ``predicted``.
    truth
        ``{track_id: [tag, ...]}`` ground truth (the manifest's ``tags`` column). Only tracks
        present in both are evaluated, in sorted order.
    tags
        The tag vocabulary (column order); default: the sorted tags of ``predictions``.

    Returns
    -------
    track_ids, y_true, y_score, y_pred

    Raises
    ------
    ValueError
        Missing columns, duplicate (track, tag) rows, a track missing some tags, a ground-truth
        tag outside the vocabulary, or no track in common.
    """
    missing = {"track_id", "tag", "score", "predicted"} - set(predictions.columns)
    if missing:
        raise ValueError(f"tags predictions: missing column(s) {sorted(missing)}")
    if predictions.duplicated(["track_id", "tag"]).any():
        row = predictions[predictions.duplicated(["track_id", "tag"])].iloc[0]
        raise ValueError(f"tags predictions: duplicate row for track {row.track_id!r}, tag {row.tag!r}")
    tags = sorted(predictions["tag"].unique()) if tags is None else list(tags)
    track_ids = sorted(set(predictions["track_id"]) & set(truth))
    if not track_ids:
        raise ValueError("tags predictions and ground truth have no track_id in common")
    score = predictions.pivot(index="track_id", columns="tag", values="score").reindex(
        index=track_ids, columns=tags)
    if score.isna().any().any():
        track = score.index[score.isna().any(axis=1)][0]
        raise ValueError(f"tags predictions: track {track!r} lacks a score for some of the {len(tags)} tags")
    pred = predictions.pivot(index="track_id", columns="tag", values="predicted").reindex(
        index=track_ids, columns=tags)
    column = {t: j for j, t in enumerate(tags)}
    y_true = np.zeros((len(track_ids), len(tags)), dtype=bool)
    for i, track in enumerate(track_ids):
        unknown = [t for t in truth[track] if t not in column]
        if unknown:
            raise ValueError(f"ground truth of track {track!r}: tag(s) {unknown} not in the vocabulary")
        y_true[i, [column[t] for t in truth[track]]] = True
    return track_ids, y_true, score.to_numpy(np.float64), pred.to_numpy(bool)
