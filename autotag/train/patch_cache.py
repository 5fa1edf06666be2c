"""A training worker's share of the patches, kept in its memory after the first epoch.

With ``train.cache_patches`` on, the first epoch streams the worker's split of the Ray
Dataset (reading and decoding the shards) and records every batch; later epochs draw
shuffled batches of the same patches from memory, with no decoding and no Ray Data work.
Each worker keeps the patches its first epoch's split gave it, as a per-node WebDataset
split would; a restarted worker streams one epoch again to rebuild its cache.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch


class PatchCache:
    """Records the ``audio``/``target`` batches of one pass, then serves them from memory."""

    def __init__(self) -> None:
        self.audio: torch.Tensor | None = None
        self.target: torch.Tensor | None = None

    @property
    def ready(self) -> bool:
        return self.audio is not None

    def __len__(self) -> int:
        return 0 if self.target is None else len(self.target)

    def recording(self, batches: Iterable[dict[str, torch.Tensor]]) -> Iterator[dict[str, torch.Tensor]]:
        """Pass ``batches`` through, keeping a copy; the cache is ready once they are exhausted."""
        audio, target = [], []
        for batch in batches:
            audio.append(batch["audio"].detach().cpu())
            target.append(batch["target"].detach().cpu())
            yield batch
        if target:
            self.audio, self.target = torch.cat(audio), torch.cat(target)

    def batches(self, batch_size: int, seed: int | None = None) -> Iterator[dict[str, torch.Tensor]]:
        """The cached patches in batches: in a seeded random order, or in recorded order without ``seed``."""
        if not self.ready:
            raise RuntimeError("the patch cache is empty: record a pass first")
        n = len(self)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)) if seed is not None \
            else torch.arange(n)
        for index in order.split(batch_size):
            yield {"audio": self.audio[index], "target": self.target[index]}
