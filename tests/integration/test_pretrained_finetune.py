"""Fine-tuning the converted crema chord model on the synthetic chords set through ``pipelines.train``.

``train.init_from`` copies every crema weight whose name and shape fit (all but the 170-class head,
which becomes the 25-class one of the data set) and ``train.freeze=[frontend]`` keeps crema's CQT
convolutions as they were.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from autotag.pretrained import crema
from pipelines import shard, train
from pipelines.common import load_config
from tests.pretrained_fixtures import require_crema

pytestmark = pytest.mark.slow


def test_init_from_crema_trains_a_25_class_chord_model(ray_session, tmp_path):
    converted = crema.convert(tmp_path / "crema-chord", require_crema())
    overrides = [f"paths.root={tmp_path}", "dataset=synthetic_chords", "task=frame_multiclass", "frontend=crema_cqt",
                 "backend=crema_chord", "frontend.params.patch_frames=64", "frontend.params.patch_hop_frames=64",
                 "dataset.synthetic.tracks_per_class=2", "dataset.synthetic.duration_s=6.0",
                 "dataset.synthetic.corrupt_tracks=0", "runtime.progress_bars=false", "train.max_epochs=1",
                 "train.batch_size=4", "run_id=crema_finetune"]
    shard.run(load_config(overrides))
    tuned = train.run(load_config([*overrides, f"train.init_from={converted}", "train.freeze=[frontend]"]))
    before = load_file(str(converted / "model.safetensors"))
    after = load_file(str(Path(tuned["best_checkpoint"]) / "model.safetensors"))
    frontend = [k for k in before if k.startswith("frontend.") and "running" not in k and "batches" not in k]
    assert len(frontend) == 10 and all(torch.equal(before[k], after[k]) for k in frontend)
    assert after["head.weight"].shape == (25, 294) and before["head.weight"].shape == (170, 294)
    assert not torch.equal(before["backend.gru2.kernel"], after["backend.gru2.kernel"])
