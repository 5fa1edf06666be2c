"""The worker-side patch cache: a transparent first pass, then seeded shuffles of the same patches."""

from __future__ import annotations

import pytest
import torch

from autotag.train.patch_cache import PatchCache


def _stream(n: int = 10, batch: int = 4):
    audio = torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 3)
    target = torch.arange(n)
    for start in range(0, n, batch):
        yield {"audio": audio[start : start + batch], "target": target[start : start + batch]}


def test_records_a_pass_then_serves_shuffled_batches_of_the_same_patches():
    cache = PatchCache()
    passed = [b["target"].tolist() for b in cache.recording(_stream())]
    assert passed == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]] and cache.ready and len(cache) == 10
    epoch = list(cache.batches(4, seed=7))
    assert [len(b["target"]) for b in epoch] == [4, 4, 2]
    order = torch.cat([b["target"] for b in epoch])
    assert sorted(order.tolist()) == list(range(10)) and order.tolist() != list(range(10))
    assert all((b["audio"][:, 0] == b["target"].float()).all() for b in epoch)  # rows stay paired
    assert torch.equal(order, torch.cat([b["target"] for b in cache.batches(4, seed=7)]))
    assert not torch.equal(order, torch.cat([b["target"] for b in cache.batches(4, seed=8)]))
    assert torch.cat([b["target"] for b in cache.batches(3)]).tolist() == list(range(10))


def test_an_unfinished_or_empty_pass_leaves_the_cache_empty():
    cache = PatchCache()
    stream = cache.recording(_stream())
    next(stream)  # an epoch that stopped part-way
    assert not cache.ready
    list(cache.recording(iter([])))
    assert not cache.ready
    with pytest.raises(RuntimeError, match="empty"):
        next(cache.batches(4))
