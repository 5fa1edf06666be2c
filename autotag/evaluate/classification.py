"""Multi-class (genre) metrics with scikit-learn: accuracy, macro P/R/F1, per class, confusion.

Conventions
-----------
Labels are class names (strings); ``labels`` fixes the class order of the per-class values
and of the confusion matrix (rows = reference, columns = estimate). Classes with no
reference example get a :class:`~autotag.evaluate.common.MetricWarning` and recall 0 by
scikit-learn's ``zero_division=0``; they are still part of the macro means, as in the
tutorial's ``classification_report``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm

from autotag.evaluate.common import warn


def validate(reference: Sequence[str], estimate: Sequence[str], labels: Sequence[str]) -> None:
    """Raise ``ValueError`` for mismatched lengths, empty input, or labels outside ``labels``."""
    if len(reference) != len(estimate):
        raise ValueError(f"reference has {len(reference)} items but estimate has {len(estimate)}")
    if len(reference) == 0:
        raise ValueError("no items to evaluate (empty reference)")
    known = set(labels)
    for name, values in (("reference", reference), ("estimate", estimate)):
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{name} label(s) {unknown[:5]} not in the label set {list(labels)[:10]}...")


def evaluate(reference: Sequence[str], estimate: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Every multi-class metric, as plain floats.

    Returns
    -------
    dict
        ``accuracy``, ``recall_macro``, ``precision_macro``, ``f1_macro``, ``support``,
        ``per_label`` (``recall``/``precision``/``f1``/``support`` by class), ``labels`` and
        ``confusion_matrix`` (list of lists, rows = reference).
    """
    validate(reference, estimate, labels)
    labels = list(labels)
    absent = sorted(set(labels) - set(reference))
    if absent:
        warn(f"class(es) {absent} have no reference example; their recall is 0")
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        reference, estimate, labels=labels, zero_division=0)
    return {
        "accuracy": float(skm.accuracy_score(reference, estimate)),
        "recall_macro": float(np.mean(recall)),
        "precision_macro": float(np.mean(precision)),
        "f1_macro": float(np.mean(f1)),
        "support": int(len(reference)),
        "per_label": {
            "recall": dict(zip(labels, map(float, recall))),
            "precision": dict(zip(labels, map(float, precision))),
            "f1": dict(zip(labels, map(float, f1))),
            "support": dict(zip(labels, map(int, support))),
        },
        "labels": labels,
        "confusion_matrix": skm.confusion_matrix(reference, estimate, labels=labels).tolist(),
    }
