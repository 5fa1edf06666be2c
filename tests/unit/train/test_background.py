"""Batches made in a background thread: in order, bounded ahead, failures raised in the consumer."""

from __future__ import annotations

import threading
import time

import pytest

from autotag.train.background import in_background


def test_items_arrive_in_order_prepared_and_at_most_depth_ahead():
    made = []

    def items():
        for i in range(20):
            made.append(i)
            yield i

    out = []
    for item in in_background(items(), depth=2, prepare=lambda i: i * 10):
        time.sleep(0.002)
        out.append(item)
        assert len(made) - len(out) <= 2 + 1  # depth ready, one being made
    assert out == [i * 10 for i in range(20)]


def test_a_failure_in_the_thread_is_raised_after_the_items_before_it():
    def items():
        yield 1
        raise OSError("shard 3 unreadable")

    got = []
    with pytest.raises(OSError, match="shard 3 unreadable"):
        for item in in_background(items()):
            got.append(item)
    assert got == [1]


def test_closing_early_stops_the_thread():
    def endless():
        while True:
            yield 0

    batches = in_background(endless(), depth=1)
    next(batches)
    batches.close()
    deadline = time.time() + 2
    while any(t.name == "batches" and t.is_alive() for t in threading.enumerate()) and time.time() < deadline:
        time.sleep(0.01)
    assert not any(t.name == "batches" and t.is_alive() for t in threading.enumerate())
    with pytest.raises(ValueError, match="depth must be at least 1"):
        next(in_background([], depth=0))
