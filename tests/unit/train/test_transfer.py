from __future__ import annotations

import pytest
import torch

from autotag.data.tasks import Task
from autotag.models import build_model, checkpoint
from autotag.train.transfer import freeze, initialise_from


def _saved(tmp_path, outputs, task):
    torch.manual_seed(1)
    model = build_model("lms_conv2d", "autopool", outputs, task=task)
    spec = {"frontend": "lms_conv2d", "frontend_params": {}, "backend": "autopool", "backend_params": {}}
    vocabulary = tuple(f"t{i}" for i in range(outputs))
    checkpoint.save(tmp_path, model, {"model": spec, "task": Task(task, "tags", vocabulary).to_dict(), "config": {}})
    return model


def test_a_tagging_checkpoint_seeds_a_genre_model_except_its_head(tmp_path):
    source = _saved(tmp_path, 50, "multilabel")
    torch.manual_seed(2)
    target = build_model("lms_conv2d", "autopool", 10)
    copied, skipped = initialise_from(target, tmp_path)
    assert set(skipped) == {"head.weight", "head.bias"} and "frontend.conv.weight" in copied
    torch.testing.assert_close(target.frontend.conv.weight, source.frontend.conv.weight)
    assert target.head.weight.shape == (10, 64)


def test_freeze_stops_gradients_under_a_prefix_and_rejects_typos():
    model = build_model("lms_conv2d", "autopool", 10)
    frozen = freeze(model, ["frontend"])
    assert frozen and all(n.startswith("frontend.") for n in frozen)
    assert all(not p.requires_grad for n, p in model.named_parameters() if n.startswith("frontend."))
    assert all(p.requires_grad for n, p in model.named_parameters() if n.startswith("head."))
    with pytest.raises(ValueError, match="frontnd"):
        freeze(model, ["frontnd"])


def test_an_unrelated_checkpoint_is_refused(tmp_path):
    checkpoint.save(tmp_path, torch.nn.Linear(3, 3), {"model": {}, "task": {}, "config": {}})
    with pytest.raises(ValueError, match="no weight matches"):
        initialise_from(build_model("lms_conv2d", "autopool", 10), tmp_path)
