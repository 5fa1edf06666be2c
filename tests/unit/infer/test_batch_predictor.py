"""Several models on one decode per track: the same outputs as each model alone, errors kept apart."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from autotag.data.chords import CHORD_LABELS
from autotag.data.tasks import Task
from autotag.infer import batch as batch_module
from autotag.infer.batch import BatchPredictor, model_batch
from autotag.infer.predictor import TrackPredictor
from autotag.models import build_model, checkpoint
from tests.conftest import write_tone

MODELS = {  # name: frontend, backend, frontend params, task kind, vocabulary
    "genre": ("lms_conv2d", "autopool", {}, "multiclass", ("a", "b", "c")),
    "tags": ("waveform_conv1d", "autopool", {}, "multilabel", ("x", "y")),
    "chords": ("cqt_conv2d", "conv_bilstm", {"channels": 2, "patch_frames": 128, "patch_hop_frames": 32},
               "frame_multiclass", CHORD_LABELS),
}


def save_checkpoints(tmp_path_factory) -> dict[str, str]:
    """One untrained checkpoint per entry of :data:`MODELS` (seeded), by name; shared with test_split."""
    out = {}
    for seed, (name, (frontend, backend, params, kind, vocabulary)) in enumerate(MODELS.items()):
        torch.manual_seed(seed)
        model = build_model(frontend, backend, len(vocabulary), params, {}, task=kind)
        spec = {"frontend": frontend, "frontend_params": params, "backend": backend, "backend_params": {}}
        directory = tmp_path_factory.mktemp(name)
        checkpoint.save(directory, model, {"model": spec, "task": Task(kind, name, vocabulary).to_dict(),
                                           "config": {}, "epoch": 0})
        out[name] = str(directory)
    return out


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, str]:
    return save_checkpoints(tmp_path_factory)


@pytest.fixture()
def files(tmp_path):
    good = [write_tone(tmp_path / f"t{i}.wav", freq=220.0 * (i + 1), sr=[22_050, 44_100][i], seconds=4.0 + i)
            for i in range(2)]
    (tmp_path / "bad.flac").write_bytes(b"fLaC but not really")
    return [*good, tmp_path / "bad.flac"]


def test_one_decode_per_track_feeds_every_model_the_same_outputs(checkpoints, files, monkeypatch):
    decodes = []
    real = batch_module.load_audio
    monkeypatch.setattr(batch_module, "load_audio", lambda *a: decodes.append(a[0]) or real(*a))
    predictor = BatchPredictor(checkpoints, patch_batch_size=4, device="cpu")
    out = predictor({"track_id": np.array(["t0", "t1", "bad"], dtype=object),
                     "audio_path": np.array([str(f) for f in files], dtype=object)})
    assert decodes == [str(f) for f in files]  # each file once, whatever the number of models
    for name, path in checkpoints.items():
        rows = model_batch(out, name)
        assert rows["status"].tolist() == ["ok", "ok", "error"]
        assert "not a readable audio file" in rows["error"][2]
        alone = TrackPredictor(path, patch_batch_size=4, device="cpu")
        for i in range(2):
            expected = alone.predict(real(str(files[i]), None, "x", None).samples)
            np.testing.assert_allclose(rows["scores"][i], expected["scores"], rtol=1e-5, atol=1e-6)
            if name == "chords":
                assert rows["segments"][i] and rows["segments"][i] != "[]"
    assert out["genre.scores"].shape == (3, 3) and out["tags.scores"].shape == (3, 2)
    assert out["chords.scores"].shape == (3, 25)


def test_a_model_failing_on_a_track_fails_only_that_model(checkpoints, files, monkeypatch):
    predictor = BatchPredictor(checkpoints, device="cpu")

    def broken(samples):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(predictor.predictors["tags"], "predict", broken)
    out = predictor({"track_id": np.array(["t0"], dtype=object), "audio_path": np.array([str(files[0])], dtype=object)})
    assert out["genre.status"].tolist() == ["ok"] and out["chords.status"].tolist() == ["ok"]
    assert out["tags.status"].tolist() == ["error"] and "out of memory" in out["tags.error"][0]


def test_model_names_must_be_safe_folder_names(checkpoints):
    with pytest.raises(ValueError, match="letters, digits"):
        BatchPredictor({"../x": checkpoints["genre"]})
    with pytest.raises(ValueError, match="at least one"):
        BatchPredictor({})


def test_decoding_ahead_in_threads_gives_the_same_rows_in_order(checkpoints, files, monkeypatch):
    real, in_flight, most = batch_module.load_audio, [0], [0]
    lock = threading.Lock()

    def counted(*args):
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        try:
            time.sleep(0.05)  # long enough for the look-ahead to fill
            return real(*args)
        finally:
            with lock:
                in_flight[0] -= 1

    monkeypatch.setattr(batch_module, "load_audio", counted)
    order = [0, 2, 1, 0, 1, 0]  # good, bad, good, ... : rows must stay in input order
    batch = {"track_id": np.array([f"t{k}" for k in range(len(order))], dtype=object),
             "audio_path": np.array([str(files[i]) for i in order], dtype=object)}
    one = BatchPredictor(checkpoints, patch_batch_size=4, device="cpu")(batch)
    three = BatchPredictor(checkpoints, patch_batch_size=4, device="cpu", decode_threads=3)(batch)
    assert most[0] == 3  # three decodes at once, never more
    assert three["genre.status"].tolist() == ["ok", "error", "ok", "ok", "ok", "ok"]
    for key, value in one.items():
        if value.dtype == object:
            assert three[key].tolist() == value.tolist(), key
        else:
            np.testing.assert_allclose(three[key], value, rtol=1e-6, err_msg=key)
    with pytest.raises(ValueError, match="decode_threads"):
        BatchPredictor(checkpoints, decode_threads=0)
