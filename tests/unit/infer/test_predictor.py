"""The predictors on hand-built batches, without Ray: scores, aggregation, error rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autotag.data.tasks import Task
from autotag.infer.batch import BatchPredictor, model_batch
from autotag.infer.predictor import TrackPredictor
from autotag.models import build_model, checkpoint
from tests.conftest import write_tone


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory):
    torch.manual_seed(0)
    task = Task("multiclass", "genre", ("a", "b", "c"))
    spec = {"frontend": "lms_conv2d", "frontend_params": {}, "backend": "autopool", "backend_params": {}}
    model = build_model(spec["frontend"], spec["backend"], 3)
    directory = tmp_path_factory.mktemp("ckpt")
    checkpoint.save(directory, model, {"model": spec, "task": task.to_dict(), "config": {}, "epoch": 0})
    return directory


def test_checkpoint_round_trip_gives_identical_outputs(checkpoint_dir):
    model, task, meta = checkpoint.load(checkpoint_dir)
    again, _, _ = checkpoint.load(checkpoint_dir)
    x = torch.randn(2, model.frontend.patch_samples)
    torch.testing.assert_close(model(x), again(x))
    assert task.vocabulary == ("a", "b", "c") and not model.training


def test_batch_with_good_and_bad_files(tmp_path, checkpoint_dir):
    good = write_tone(tmp_path / "good.wav", sr=44_100, seconds=5.0)
    (tmp_path / "bad.wav").write_text("nope")
    predictor = BatchPredictor({"genre": str(checkpoint_dir)}, patch_batch_size=2)
    batch = predictor({"track_id": np.array(["g", "b", "m"], dtype=object),
                       "audio_path": np.array([str(good), str(tmp_path / "bad.wav"), str(tmp_path / "none.wav")],
                                              dtype=object)})
    out = model_batch(batch, "genre")
    assert out["status"].tolist() == ["ok", "error", "error"]
    assert "not a readable audio file" in out["error"][1] and "does not exist" in out["error"][2]
    assert out["scores"][0].sum() == pytest.approx(1.0, abs=1e-5) and not out["scores"][1:].any()
    assert out["duration_s"][0] == pytest.approx(5.0, abs=1e-3)
    assert model_batch(batch, "genre", skip={"b"})["track_id"].tolist() == ["g", "m"]


def test_track_score_is_the_mean_of_patch_probabilities(tmp_path, checkpoint_dir):
    predictor = TrackPredictor(str(checkpoint_dir), patch_batch_size=3)
    y = np.random.default_rng(0).standard_normal(22_050 * 8).astype(np.float32) * 0.1
    patches = predictor.patch_probabilities(y)
    assert patches.shape[0] == 1 + (len(y) - predictor.patch_samples) // predictor.hop_samples
    np.testing.assert_allclose(predictor.predict_track(y), patches.mean(0), rtol=1e-6)
    assert TrackPredictor(str(checkpoint_dir), aggregate="max").predict_track(y) == pytest.approx(patches.max(0))


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match="missing meta.json"):
        TrackPredictor(str(tmp_path))


def test_patch_probabilities_equal_the_model_on_each_cut_patch(checkpoint_dir):
    # The predictor shares log-mel frames between overlapping patches; the numbers must not move.
    from autotag.data.patches import cut_patches

    predictor = TrackPredictor(str(checkpoint_dir), patch_batch_size=4)
    y = np.random.default_rng(1).standard_normal(22_050 * 20).astype(np.float32) * 0.1
    patches = cut_patches(y, predictor.patch_samples, predictor.hop_samples)
    assert predictor.hop_samples < predictor.patch_samples and len(patches) > 4  # overlapping, several batches
    with torch.no_grad():
        expected = predictor.model.probabilities(predictor.model(torch.from_numpy(patches))).numpy()
    np.testing.assert_allclose(predictor.patch_probabilities(y), expected, rtol=1e-4, atol=1e-6)
