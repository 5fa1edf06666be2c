"""Helpers shared by the evaluation modules: the warning class and JSON-safe values.

Conventions
-----------
- Degenerate but legal input (a tag with one class, an instrument never present) emits a
  :class:`MetricWarning` naming what was degenerate and gets a defined value; no metric is ever a
  silent NaN.
- Every number leaving this package is a Python ``float`` or ``int`` (``np.float64`` is cast), so
  it can go to JSON or Parquet unchanged.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


class MetricWarning(UserWarning):
    """Degenerate input to a metric: reported, excluded or given a defined value."""


def warn(message: str) -> None:
    """Emit a :class:`MetricWarning` attributed to the caller of the metric function."""
    warnings.warn(message, MetricWarning, stacklevel=3)


def safe_ratio(numerator: float, denominator: float) -> float:
    """Return ``numerator / denominator`` as a float, or 0.0 when the denominator is 0.

    Callers warn about the zero denominator themselves, where they know what was empty.
    """
    return float(numerator) / float(denominator) if denominator > 0 else 0.0


def f_measure(precision: float, recall: float) -> float:
    """Harmonic mean of precision and recall; 0.0 when both are 0."""
    return 2.0 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def check_names(names: Sequence[str], expected_len: int, what: str) -> list[str]:
    """Return ``names`` as a list of unique strings of length ``expected_len``.

    Raises
    ------
    ValueError
        Wrong count, non-string or duplicate names.
    """
    names = list(names)
    if len(names) != expected_len:
        raise ValueError(f"{what}: expected {expected_len} names (one per column), got {len(names)}")
    bad = [n for n in names if not isinstance(n, str) or not n]
    if bad:
        raise ValueError(f"{what}: names must be non-empty strings, got {bad[:5]!r}")
    seen: set[str] = set()
    duplicates = sorted({n for n in names if n in seen or seen.add(n)})
    if duplicates:
        raise ValueError(f"{what}: duplicate names {duplicates!r}")
    return names


def to_jsonable(value: Any, path: str = "metrics") -> Any:
    """Recursively convert numpy scalars/arrays to Python types for JSON.

    Non-finite floats become ``None`` with a :class:`MetricWarning` naming their path, because
    JSON has no NaN; our metric functions never produce one, so this only guards foreign input.
    """
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [to_jsonable(v, f"{path}[{i}]") for i, v in enumerate(value.tolist())]
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            warn(f"{path} is {float(value)}; written as null")
            return None
        return float(value)
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"{path}: cannot write a {type(value).__name__} to JSON; expected numbers, "
                    "strings, lists or dicts")
