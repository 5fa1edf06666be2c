"""Progress lines while an epoch runs: throttled, with batches done of total, patches/s and time left."""

from __future__ import annotations

import torch

from autotag.train.epoch_progress import with_progress


def _batches(n: int, size: int = 8):
    return [{"target": torch.zeros(size)} for _ in range(n)]


def test_a_line_at_most_every_interval_with_rate_and_time_left():
    ticks = iter(float(t) for t in range(100))  # one second per clock read
    lines: list[str] = []
    passed = list(with_progress(_batches(12), lines.append, epoch=3, total_batches=12, interval_s=5.0,
                                clock=lambda: next(ticks)))
    assert len(passed) == 12
    # start at t=0; batch k is counted at t=k: lines at t=5 and t=10
    assert lines == ["epoch   3  5/12 batches (42%), 1.0 batches/s, 7 s left, 8 patches/s",
                     "epoch   3  10/12 batches (83%), 1.0 batches/s, 2 s left, 8 patches/s"]


def test_without_a_known_total_the_line_has_no_percentage_or_time_left():
    ticks = iter(float(t) for t in range(100))
    lines: list[str] = []
    list(with_progress(_batches(4, size=3), lines.append, 0, None, interval_s=2.0, clock=lambda: next(ticks)))
    assert lines == ["epoch   0  2 batches, 1.0 batches/s, 3 patches/s",
                     "epoch   0  4 batches, 1.0 batches/s, 3 patches/s"]


def test_a_short_epoch_prints_nothing():
    lines: list[str] = []
    list(with_progress(_batches(50), lines.append, 0, 50, interval_s=10.0))
    assert lines == []
