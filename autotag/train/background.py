"""Batches prepared in a thread beside the training step.

A streaming worker's batches need work before the model sees them: Ray Data's iterator fetches
and slices blocks, the shuffle buffer copies rows in and draws them out, and 16-bit audio becomes
float32. Done in the training thread, that work adds to every step (about a tenth of the LMS
model's step on one CPU core). :func:`in_background` runs it in a thread that keeps ``depth``
batches ready, so it overlaps with the step: the step's tensor operations release the GIL, and
so do the copies.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


def in_background(items: Iterable[T], depth: int = 2, prepare: Callable[[T], T] | None = None) -> Iterator[T]:
    """``items`` (each passed through ``prepare``), produced by a daemon thread at most ``depth``
    ahead of the consumer; an exception there is raised here, in order. Closing the generator
    early stops the thread at its next item."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(prepare(item) if prepare is not None else item):
                    return
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, raised there
            put(_Failed(error))
            return
        put(_END)

    thread = threading.Thread(target=produce, name="batches", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
