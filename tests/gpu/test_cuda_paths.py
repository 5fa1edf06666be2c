"""GPU code paths: mixed-precision training steps and GPU inference. Skipped without CUDA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autotag.data.tasks import Task
from autotag.infer.predictor import TrackPredictor
from autotag.models import build_model, checkpoint
from autotag.train.loop import run_epoch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_mixed_precision_training_reduces_the_loss_on_gpu():
    torch.manual_seed(0)
    device = torch.device("cuda")
    task = Task("multiclass", "genre", ("a", "b"))
    model = build_model("lms_conv2d", "autopool", 2).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    x = torch.randn(16, model.frontend.patch_samples)
    x[8:] *= 0.05  # two separable classes: loud and quiet noise
    batches = [{"audio": x, "target": torch.tensor([0] * 8 + [1] * 8)}]
    first = run_epoch(model, batches, task, device, optimizer, amp=True)["loss"]
    for _ in range(20):
        last = run_epoch(model, batches, task, device, optimizer, amp=True)["loss"]
    assert last < first


def test_gpu_predictor_matches_cpu(tmp_path):
    torch.manual_seed(0)
    task = Task("multiclass", "genre", ("a", "b", "c"))
    spec = {"frontend": "lms_conv2d", "frontend_params": {}, "backend": "autopool", "backend_params": {}}
    checkpoint.save(tmp_path, build_model("lms_conv2d", "autopool", 3), {"model": spec, "task": task.to_dict(),
                                                                          "config": {}})
    y = np.random.default_rng(0).standard_normal(22_050 * 10).astype(np.float32) * 0.1
    cpu = TrackPredictor(str(tmp_path), device="cpu").predict_track(y)
    gpu = TrackPredictor(str(tmp_path), device="cuda").predict_track(y)
    np.testing.assert_allclose(cpu, gpu, atol=1e-4)
