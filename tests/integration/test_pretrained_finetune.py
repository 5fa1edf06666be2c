"""Fine-tuning converted published models through ``pipelines.train``: crema on the synthetic chords
set, MTT_musicnn on the synthetic tags set.

``train.init_from`` copies every weight whose name and shape fit (all but the head: crema's 170
classes become the data set's 25, musicnn's 50 MTT tags the data set's 10) and
``train.freeze=[frontend]`` keeps the published front-end as it was.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from autotag.pretrained import crema, musicnn
from pipelines import shard, train
from pipelines.common import load_config
from tests.pretrained_fixtures import require_crema, require_musicnn

pytestmark = pytest.mark.slow


def _fine_tune(tmp_path: Path, converted: Path, overrides: list[str]) -> tuple[dict, dict, list[str]]:
    """Shard the data set, train from ``converted`` with the front-end frozen; the weights before and
    after, and the names of the front-end's trainable tensors."""
    overrides = [f"paths.root={tmp_path}", *overrides, "dataset.synthetic.tracks_per_class=2",
                 "dataset.synthetic.duration_s=6.0", "dataset.synthetic.corrupt_tracks=0",
                 "runtime.progress_bars=false", "train.max_epochs=1", "train.batch_size=4"]
    shard.run(load_config(overrides))
    tuned = train.run(load_config([*overrides, f"train.init_from={converted}", "train.freeze=[frontend]"]))
    before = load_file(str(converted / "model.safetensors"))
    after = load_file(str(Path(tuned["best_checkpoint"]) / "model.safetensors"))
    frontend = [k for k in before if k.startswith("frontend.") and "running" not in k and "batches" not in k]
    return before, after, frontend


def test_init_from_crema_trains_a_25_class_chord_model(ray_session, tmp_path):
    converted = crema.convert(tmp_path / "crema-chord", require_crema())
    before, after, frontend = _fine_tune(tmp_path, converted, [
        "dataset=synthetic_chords", "task=frame_multiclass", "frontend=crema_cqt", "backend=crema_chord",
        "frontend.params.patch_frames=64", "frontend.params.patch_hop_frames=64", "run_id=crema_finetune"])
    assert len(frontend) == 10 and all(torch.equal(before[k], after[k]) for k in frontend)
    assert after["head.weight"].shape == (25, 294) and before["head.weight"].shape == (170, 294)
    assert not torch.equal(before["backend.gru2.kernel"], after["backend.gru2.kernel"])


def test_init_from_mtt_musicnn_trains_a_10_tag_model(ray_session, tmp_path):
    converted = musicnn.convert("MTT_musicnn", tmp_path / "MTT_musicnn", require_musicnn())
    before, after, frontend = _fine_tune(tmp_path, converted, [
        "dataset=synthetic_tags", "task=multilabel", "frontend=musicnn", "backend=musicnn_pool",
        "run_id=musicnn_finetune"])
    assert len(frontend) == 22 and all(torch.equal(before[k], after[k]) for k in frontend)
    assert before["head.weight"].shape == (50, 200) and after["head.weight"].shape == (10, 200)
    assert not torch.equal(before["backend.dense.weight"], after["backend.dense.weight"])
