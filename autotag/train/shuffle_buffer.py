"""A worker's local shuffle of streamed patches, held in its own memory.

Ray Data's ``local_shuffle_buffer_size`` keeps the buffered blocks in the object store: the
rows stay zero-copy views of the blocks, so each worker pins its whole buffer there (2,000
16-bit LMS patches: about 260 MB, over 400 MB with the prefetched blocks). Two workers on the
local 1 GiB store left the streaming executor no room: Ray spilled blocks to disk and read them
back all through training. :class:`ShuffleBuffer` copies each incoming batch into tensors of
its own, so a block is released as soon as it has been read, and draws each outgoing batch at
random from what it holds, as Ray's buffer does: rows leave in random order, each exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch


class ShuffleBuffer:
    """Shuffles a stream of ``{"audio", "target", ...}`` tensor batches through ``capacity`` rows.

    Batches of ``batch_size`` rows are drawn at random from the buffer once it holds
    ``capacity`` rows (and from what is left at the end of the stream), so at most
    ``capacity`` + one incoming batch rows are held at a time.
    """

    def __init__(self, capacity: int, batch_size: int, seed: int):
        if capacity < 1 or batch_size < 1:
            raise ValueError(f"shuffle buffer of {capacity} rows, batches of {batch_size}: both must be positive")
        self.capacity, self.batch_size = capacity, batch_size
        self._generator = torch.Generator().manual_seed(seed)
        self._rows: dict[str, torch.Tensor] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def shuffle(self, batches: Iterable[dict[str, torch.Tensor]]) -> Iterator[dict[str, torch.Tensor]]:
        """``batches`` re-cut into shuffled batches of ``batch_size`` rows (the last may be smaller)."""
        for batch in batches:
            self._add(batch)
            while self._count >= self.capacity + self.batch_size:
                yield self._draw(self.batch_size)
            if self._count >= self.capacity and self._count >= self.batch_size:
                yield self._draw(self.batch_size)
        while self._count:
            yield self._draw(min(self.batch_size, self._count))

    def _add(self, batch: dict[str, torch.Tensor]) -> None:
        size = len(next(iter(batch.values())))
        if not self._rows:
            room = self.capacity + self.batch_size + size
            self._rows = {key: torch.empty((room, *value.shape[1:]), dtype=value.dtype) for key, value in batch.items()}
        needed = self._count + size
        if needed > len(next(iter(self._rows.values()))):  # a batch larger than the first: grow once
            self._rows = {key: torch.cat([rows[:self._count], torch.empty((needed - self._count, *rows.shape[1:]),
                                                                        dtype=rows.dtype)])
                          for key, rows in self._rows.items()}
        for key, rows in self._rows.items():
            rows[self._count:needed].copy_(batch[key])  # a copy: the block behind the batch can go
        self._count = needed

    def _draw(self, size: int) -> dict[str, torch.Tensor]:
        """``size`` random rows out; the last rows move into the slots they leave."""
        chosen = torch.randperm(self._count, generator=self._generator)[:size]
        out = {key: rows[chosen] for key, rows in self._rows.items()}
        left = self._count - size
        kept = torch.ones(self._count, dtype=torch.bool)
        kept[chosen] = False
        holes, movers = chosen[chosen < left], torch.nonzero(kept[left:]).squeeze(1) + left
        for rows in self._rows.values():
            rows[holes] = rows[movers]
        self._count = left
        return out
