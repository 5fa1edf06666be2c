"""Epochs cut from one continuous stream: exact shares, batches split at the boundaries."""

from __future__ import annotations

import pytest
import torch

from autotag.train.epoch_stream import EpochStream, worker_share


def _batches(n: int, batch: int = 4):
    ids = torch.arange(n)
    for start in range(0, n, batch):
        yield {"audio": ids[start:start + batch, None].float().repeat(1, 3), "target": ids[start:start + batch]}


def test_each_epoch_takes_its_share_and_the_boundary_splits_a_batch():
    stream = EpochStream(_batches(30), patches_per_epoch=10)
    epochs = [[b["target"].tolist() for b in stream.epoch(e)] for e in range(3)]
    assert epochs[0] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert epochs[1] == [[10, 11], [12, 13, 14, 15], [16, 17, 18, 19]]
    assert sum(epochs[2], []) == list(range(20, 30))
    assert list(stream.epoch(3)) == []  # the stream is spent: the epoch ends early, empty


def test_audio_and_target_stay_paired_across_a_split():
    stream = EpochStream(_batches(12, batch=5), patches_per_epoch=7)
    for epoch in range(2):
        for batch in stream.epoch(epoch):
            assert torch.equal(batch["audio"][:, 0], batch["target"].float())


def test_shares_of_an_uneven_split_add_up_to_the_equal_split_of_every_epoch_so_far():
    shares = [worker_share(11, 2, e) for e in range(4)]
    assert shares == [5, 6, 5, 6]
    for epochs in range(1, 5):
        assert sum(shares[:epochs]) == 11 * epochs // 2  # what streaming_split(equal=True) gives each worker
    assert [worker_share(1200, 1, e) for e in range(3)] == [1200] * 3
    with pytest.raises(ValueError, match="world size"):
        worker_share(10, 0, 0)
