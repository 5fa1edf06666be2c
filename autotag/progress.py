"""How far a long stage is: done of total, rate and time left, for one console line."""

from __future__ import annotations

import time
from collections.abc import Callable


def duration(seconds: float) -> str:
    """``"42 s"``, ``"3 min 05 s"``, ``"2 h 07 min"``: a duration a person reads at a glance."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Progress:
    """Counts units done against a total (when known) and tells the rate and what is left.

    Parameters
    ----------
    unit
        What is counted, plural (``"tracks"``).
    total
        How many there are; ``None`` when not known up front (no percentage, no ETA).
    clock
        Seconds since some fixed point; :func:`time.perf_counter` unless a test passes its own.

    Examples
    --------
    >>> ticks = iter([0.0, 10.0])
    >>> p = Progress("tracks", total=100, clock=lambda: next(ticks))
    >>> p.advance(25)
    >>> p.status()
    '25/100 tracks (25%), 2.5 tracks/s, 30 s left'
    """

    def __init__(self, unit: str, total: int | None = None, clock: Callable[[], float] = time.perf_counter):
        self.unit, self.total, self.done = unit, total, 0
        self._clock = clock
        self._start = clock()
        self._now = self._start

    def advance(self, count: int = 1) -> None:
        self.done += count
        self._now = self._clock()

    @property
    def rate(self) -> float:
        """Units per second since the start (0 before any time has passed)."""
        elapsed = self._now - self._start
        return self.done / elapsed if elapsed > 0 else 0.0

    def per_second(self, amount: float) -> float:
        """``amount`` (of something else done meanwhile, e.g. audio seconds) per second since the start."""
        elapsed = self._now - self._start
        return amount / elapsed if elapsed > 0 else 0.0

    def status(self) -> str:
        """``done/total unit (pct), rate unit/s, ETA`` (without the parts that are not known)."""
        if self.total is None:
            head = f"{self.done} {self.unit}"
        else:
            head = f"{self.done}/{self.total} {self.unit} ({100 * self.done / max(self.total, 1):.0f}%)"
        parts = [head, f"{self.rate:.1f} {self.unit}/s"]
        if self.total is not None and self.rate > 0:
            parts.append(f"{duration((self.total - self.done) / self.rate)} left")
        return ", ".join(parts)
