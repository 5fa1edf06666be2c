"""Progress lines while a training epoch runs: batches done of total, patches/s, time left.

The epoch lines (one per epoch, after validation) say how an epoch went; on a catalogue an
epoch takes hours, so rank 0 also says, at most every ``interval_s``, how far the running
epoch is. Epochs shorter than the interval print nothing more.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from autotag.progress import Progress


def with_progress(batches: Iterable[dict[str, Any]], say: Callable[[str], None], epoch: int,
                  total_batches: int | None, interval_s: float,
                  clock: Callable[[], float] = time.perf_counter) -> Iterator[dict[str, Any]]:
    """Pass ``batches`` through, calling ``say`` with a progress line every ``interval_s`` seconds.

    ``total_batches``: the epoch's batches when known (then the line has a percentage and the
    time left), else None. The line comes after a batch has been trained on (the generator
    resumes when the next one is asked for).
    """
    now = began = last = clock()
    progress = Progress("batches", total=total_batches, clock=lambda: now)  # one clock read per batch
    patches = 0
    for batch in batches:
        yield batch
        now = clock()
        patches += len(batch["target"])
        progress.advance()
        if now - last >= interval_s:
            last = now
            say(f"epoch {epoch:3d}  {progress.status()}, {patches / max(now - began, 1e-9):.0f} patches/s")
