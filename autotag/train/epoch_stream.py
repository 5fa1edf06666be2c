"""Epochs cut from one continuous stream of batches.

Ray Data starts a streaming executor each time a dataset is iterated: on a short epoch that
start (launching read tasks, reading the first shard before the first batch) costs as much as
the epoch itself. When the train dataset lists the shards once per epoch back to back
(``pipelines.train.patch_dataset(..., epochs=N)``), a worker iterates it once for the whole
run and :class:`EpochStream` hands out each epoch's share: ``patches_per_epoch`` patches,
split across ``world_size`` workers as Ray Train's equal ``streaming_split`` splits the rows.
Every patch is trained on once per epoch over the run; an epoch's boundary is counted in
patches, so a few patches of the next pass may reach the end of one epoch (as with any
shuffle buffer that spans the boundary).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch


def worker_share(patches_per_epoch: int, world_size: int, epoch: int) -> int:
    """Patches each of ``world_size`` workers trains on in ``epoch``: an equal split gives every
    worker the same count, and the shares of epochs ``0..epoch`` add up to an even split of their rows."""
    if world_size < 1:
        raise ValueError(f"world size must be at least 1, got {world_size}")
    return patches_per_epoch * (epoch + 1) // world_size - patches_per_epoch * epoch // world_size


class EpochStream:
    """Hands out the batches of one long iterator epoch by epoch, splitting a batch at a boundary."""

    def __init__(self, batches: Iterable[dict[str, torch.Tensor]], patches_per_epoch: int, world_size: int = 1):
        self._batches = iter(batches)
        self.patches_per_epoch, self.world_size = patches_per_epoch, world_size
        self._left: dict[str, torch.Tensor] | None = None  # the part of a batch past the last boundary

    def epoch(self, epoch: int) -> Iterator[dict[str, torch.Tensor]]:
        """The batches of ``epoch`` (call for consecutive epochs); ends early if the stream does."""
        wanted = worker_share(self.patches_per_epoch, self.world_size, epoch)
        while wanted > 0:
            batch = self._left if self._left is not None else next(self._batches, None)
            self._left = None
            if batch is None:
                return
            size = len(batch["target"])
            if size > wanted:
                self._left = {key: value[wanted:] for key, value in batch.items()}
                batch = {key: value[:wanted] for key, value in batch.items()}
                size = wanted
            wanted -= size
            yield batch
