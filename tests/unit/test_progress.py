"""Progress lines: done of total, rate, time left, and another quantity's rate (audio seconds)."""

from __future__ import annotations

from autotag.progress import Progress, duration


def test_status_and_a_second_rate_from_the_same_clock():
    ticks = iter([0.0, 20.0, 40.0])
    progress = Progress("tracks", total=400, clock=lambda: next(ticks))
    progress.advance(100)
    assert progress.status() == "100/400 tracks (25%), 5.0 tracks/s, 1 min 00 s left"
    assert progress.per_second(3_000.0) == 150.0  # e.g. 3,000 audio seconds in the same 20 s
    progress.advance(300)
    assert progress.status() == "400/400 tracks (100%), 10.0 tracks/s, 0 s left"


def test_without_a_total_there_is_no_percentage_or_eta():
    ticks = iter([0.0, 4.0])
    progress = Progress("tracks", clock=lambda: next(ticks))
    progress.advance(10)
    assert progress.status() == "10 tracks, 2.5 tracks/s"
    assert Progress("tracks", clock=lambda: 0.0).per_second(5.0) == 0.0
    assert duration(7_620) == "2 h 07 min"
