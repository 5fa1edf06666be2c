"""The workers' own shuffle buffer: every row out once, in a shuffled order, in bounded memory."""

from __future__ import annotations

import pytest
import torch

from autotag.train.shuffle_buffer import ShuffleBuffer


def _stream(rows: int, batch: int):
    for start in range(0, rows, batch):
        ids = torch.arange(start, min(start + batch, rows))
        yield {"audio": ids[:, None].repeat(1, 3).to(torch.int16), "target": ids}


def test_every_row_comes_out_once_with_its_audio_in_a_shuffled_order():
    buffer = ShuffleBuffer(capacity=50, batch_size=16, seed=0)
    out = list(buffer.shuffle(_stream(203, 10)))
    order = torch.cat([b["target"] for b in out])
    assert sorted(order.tolist()) == list(range(203))
    for batch in out:  # rows stay whole: each audio row belongs to its target
        assert torch.equal(batch["audio"][:, 0].long(), batch["target"]) and batch["audio"].dtype == torch.int16
    assert [len(b["target"]) for b in out[:-1]] == [16] * (len(out) - 1) and 0 < len(out[-1]["target"]) <= 16
    # Shuffled: far from the input order, and rows travel further than one batch.
    assert order.tolist() != list(range(203))
    displacement = (order - torch.arange(203)).abs().float().mean()
    assert displacement > 10
    assert len(buffer) == 0


def test_the_seed_fixes_the_order_and_another_seed_changes_it():
    def run(seed):
        return torch.cat([b["target"] for b in ShuffleBuffer(40, 8, seed).shuffle(_stream(120, 8))]).tolist()
    assert run(1) == run(1) and run(1) != run(2)


def test_it_holds_at_most_capacity_plus_one_batch_of_rows():
    buffer = ShuffleBuffer(capacity=30, batch_size=8, seed=0)
    held = []
    for _ in buffer.shuffle(_stream(500, 8)):
        held.append(len(buffer))
    assert max(held) <= 30 + 8
    # A batch larger than the first one is taken too (the buffer grows once).
    sizes = [len(b["target"]) for b in ShuffleBuffer(30, 8, 0).shuffle(iter([*_stream(8, 8), *_stream(100, 100)]))]
    assert sum(sizes) == 108


def test_a_buffer_without_room_is_refused():
    with pytest.raises(ValueError, match="shuffle buffer of 0 rows"):
        ShuffleBuffer(0, 8, 0)
