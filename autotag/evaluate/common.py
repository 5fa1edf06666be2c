"""Helpers shared by the evaluation modules: the warning class, JSON-safe values, and the pairing
and frame-rate checks of the two segment evaluators (chords, instruments).

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
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


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


def check_frame_rate(frame_rate: float) -> None:
    """Raise ``ValueError`` unless ``frame_rate`` is a positive, finite number of frames per second."""
    if not (np.isfinite(frame_rate) and frame_rate > 0):
        raise ValueError(f"frame_rate = {frame_rate!r}: expected a positive number of frames per second")


def pair_tracks(references: Mapping[str, Any], estimates: Mapping[str, Any], check: Callable[[Any, str], T],
                empty: Any, missing_as: str, invalid: dict[str, str] | None = None) -> list[tuple[str, T, T]]:
    """Validate and pair reference and estimated annotations track by track, in track order.

    Parameters
    ----------
    references, estimates
        ``{track_id: annotation}``; estimates of tracks without a reference are ignored (one
        warning), a reference without an estimate is paired with ``empty`` (one warning saying
        it is scored as ``missing_as``).
    check
        ``check(annotation, where)`` returns the validated annotation or raises ``ValueError``.
    invalid
        When given, a track whose annotation fails ``check`` is recorded there as
        ``{track_id: message}`` and skipped (one warning); without it the error propagates.
    """
    extra = sorted(set(estimates) - set(references))
    if extra:
        warn(f"{len(extra)} estimated track(s) have no reference and are ignored: {extra[:10]}")
    missing = sorted(set(references) - set(estimates))
    if missing:
        warn(f"{len(missing)} reference track(s) have no estimate and are scored as {missing_as}: {missing[:10]}")
    pairs = []
    for track in sorted(references):
        try:
            pairs.append((track, check(references[track], f"track {track!r} reference"),
                          check(estimates.get(track, empty), f"track {track!r} estimate")))
        except ValueError as exc:
            if invalid is None:
                raise
            invalid[track] = str(exc)
    if invalid:
        warn(f"{len(invalid)} track(s) with invalid annotations skipped: {invalid}")
    return pairs
