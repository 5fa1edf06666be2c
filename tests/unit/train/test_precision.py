"""train.precision: bf16 autocast around forward and loss, on CPU as on GPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autotag.data.tasks import Task
from autotag.errors import ConfigError
from autotag.models import build_model
from autotag.train.loop import run_epoch, uses_bf16
from pipelines.common import load_config


def _tones(n: int, seed: int, samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class 0: a 220 Hz tone, class 1: 1,760 Hz, each at a random phase and level in noise."""
    rng = np.random.default_rng(seed)
    target = np.arange(n) % 2
    t = np.arange(samples) / 22_050
    freq = np.where(target == 1, 1760.0, 220.0)[:, None]
    audio = rng.uniform(0.1, 0.5, (n, 1)) * np.sin(2 * np.pi * freq * t + rng.uniform(0, 6.3, (n, 1)))
    audio += 0.05 * rng.standard_normal((n, samples))
    return torch.from_numpy(audio.astype(np.float32)), torch.from_numpy(target)


def test_bf16_training_on_cpu_learns_the_two_tones_far_above_chance():
    torch.manual_seed(0)
    task = Task("multiclass", "genre", ("low", "high"))
    model = build_model("lms_conv2d", "autopool", 2)
    dtypes = []
    model.backend.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
    audio, target = _tones(64, 0, model.frontend.patch_samples)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.005)
    batches = [{"audio": audio[i:i + 16], "target": target[i:i + 16]} for i in range(0, 64, 16)]
    for _ in range(6):
        trained = run_epoch(model, batches, task, torch.device("cpu"), optimizer, amp=True)
    assert dtypes[0] == torch.bfloat16  # the forward really ran under bf16 autocast
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights and Adam stay float32
    held_out, labels = _tones(32, 1, model.frontend.patch_samples)
    scores = run_epoch(model, [{"audio": held_out, "target": labels}], task, torch.device("cpu"), amp=True)
    assert trained["loss"] < 0.5 and scores["accuracy"] >= 0.9  # chance: 0.5


def test_precision_setting_maps_to_autocast_per_device():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert [uses_bf16(p, cpu) for p in ("auto", "fp32", "bf16")] == [False, False, True]
    assert [uses_bf16(p, cuda) for p in ("auto", "fp32", "bf16")] == [True, False, True]
    with pytest.raises(ConfigError, match="train.precision"):
        load_config(["train.precision=fp16"])
    assert load_config(["train.precision=bf16"]).train.precision == "bf16"
