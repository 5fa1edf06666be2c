from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from autotag.data.audio import encode_flac
from autotag.data.tasks import LabelError, Task
from autotag.train import losses
from autotag.train.early_stopping import EarlyStopping
from autotag.train.patch_rows import shard_batch_to_patches


def test_multiclass_targets_loss_and_decisions():
    task = Task("multiclass", "genre", ("jazz", "rock"))
    assert task.encode({"genre": "rock"}) == 1
    logits = torch.tensor([[0.0, 0.0]])
    assert float(losses.loss(task, logits, torch.tensor([1]))) == pytest.approx(math.log(2))
    assert task.predicted(np.array([[0.2, 0.8], [0.6, 0.4]])).tolist() == [[False, True], [True, False]]
    with pytest.raises(LabelError, match="pop"):
        task.encode({"genre": "pop"}, "t1")
    with pytest.raises(LabelError, match="t2"):
        task.encode({}, "t2")


def test_multilabel_targets_and_threshold():
    task = Task("multilabel", "tags", ("a", "b", "c"), threshold=0.4)
    np.testing.assert_array_equal(task.encode({"tags": ["c", "a"]}), [1, 0, 1])
    assert task.predicted(np.array([[0.5, 0.3, 0.4]])).tolist() == [[True, False, True]]
    assert Task.from_dict(task.to_dict()) == task


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown task kind"):
        Task("regression", "genre", ("a",))


def test_early_stopping_counts_epochs_without_improvement_and_resumes():
    stopper = EarlyStopping(patience=2)
    assert stopper.update(1.0, 0) and not stopper.update(1.1, 1) and not stopper.should_stop
    restored = EarlyStopping.from_state(stopper.state_dict())
    assert not restored.update(float("nan"), 2) and restored.should_stop and restored.best_epoch == 0


def test_shard_samples_become_patch_rows_with_targets():
    task = Task("multiclass", "genre", ("jazz", "rock"))
    batch = {"flac": np.array([encode_flac(np.zeros(1000, np.float32)), encode_flac(np.zeros(250, np.float32))],
                              dtype=object),
             "json": np.array([{"track_id": "a", "labels": {"genre": "rock"}},
                               {"track_id": "b", "labels": {"genre": "jazz"}}], dtype=object)}
    rows = shard_batch_to_patches(batch, task.to_dict(), patch_samples=400, hop_samples=200)
    assert rows["audio"].shape == (4 + 1, 400)
    assert rows["target"].tolist() == [1, 1, 1, 1, 0]
    assert rows["patch_id"].tolist() == ["a:0", "a:1", "a:2", "a:3", "b:0"]
