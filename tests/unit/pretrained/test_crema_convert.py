"""Converting crema's Keras HDF5 chord model: weights, settings, vocabulary and the command."""

from __future__ import annotations

import copy

import pytest
import torch

from autotag.data.chords import CHORD_LABELS, majmin_projection
from autotag.models import checkpoint
from autotag.models.crema import KerasGRU, hard_sigmoid
from autotag.pretrained import crema
from autotag.pretrained.packages import PretrainedError
from pipelines import pretrained
from tests.pretrained_fixtures import require_crema


def test_vocabulary_is_pumpps_sorted_170_classes():
    assert len(crema.CHORD_CLASSES) == 170 == len(set(crema.CHORD_CLASSES))
    assert list(crema.CHORD_CLASSES) == sorted(crema.CHORD_CLASSES)  # sklearn LabelEncoder order
    assert crema.CHORD_CLASSES[:2] == ("A#:7", "A#:aug") and crema.CHORD_CLASSES[-2:] == ("N", "X")
    projection = majmin_projection(crema.CHORD_CLASSES)
    assert projection.shape == (170, 25) and projection.sum() == 12 * 8 + 1  # maj, 7, maj6, maj7 | min ×4 | N
    assert projection[crema.CHORD_CLASSES.index("D:7"), CHORD_LABELS.index("D:maj")] == 1
    assert projection[crema.CHORD_CLASSES.index("G:min7"), CHORD_LABELS.index("G:min")] == 1
    assert projection[crema.CHORD_CLASSES.index("C:dim")].sum() == 0


def test_weights_read_with_h5py_and_fill_every_tensor():
    folder = require_crema()
    path = folder / "models" / "chord" / "model.h5"
    weights = crema.read_weights(path)
    assert weights["bidirectional_1/forward_gru_1/kernel"].shape == (72, 384)
    assert weights["conv2d_2/kernel"].shape == (1, 216, 1, 72)
    state = crema.convert_weights(weights)
    model = checkpoint.model_from_meta(crema.model_meta())
    ours = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert set(state) == set(ours) and all(state[k].shape == ours[k].shape for k in ours)
    assert sum(v.numel() for v in state.values()) == 528_139  # 526,889 parameters + 1,250 BatchNorm statistics


def test_settings_the_model_does_not_compute_are_refused():
    folder = require_crema()
    path = folder / "models" / "chord" / "model.h5"
    config = crema.model_config(path)
    crema.check_config(config, path)
    for layer, key, value in [("bidirectional_1", "reset_after", True),
                              ("bidirectional_2", "recurrent_activation", "sigmoid")]:
        changed = copy.deepcopy(config)
        for item in changed["config"]["layers"]:
            if item["name"] == layer:
                item["config"]["layer"]["config"][key] = value
        with pytest.raises(PretrainedError, match=f"{layer} has"):
            crema.check_config(changed, path)


def test_missing_or_broken_files_fail_with_their_path(tmp_path):
    with pytest.raises(PretrainedError, match="model.h5: no such file"):
        crema.convert(tmp_path / "out", tmp_path)
    (tmp_path / "models" / "chord").mkdir(parents=True)
    (tmp_path / "models" / "chord" / "model.h5").write_bytes(b"not hdf5")
    pytest.importorskip("h5py")
    with pytest.raises(PretrainedError, match="model.h5: not an HDF5 file"):
        crema.convert(tmp_path / "out", tmp_path)
    assert pretrained.main(["crema-chord", "--out", str(tmp_path / "o"), "--crema-dir", str(tmp_path)]) == 2


def test_command_writes_the_checkpoint_with_licence_and_vocabulary(tmp_path, capsys):
    folder = require_crema()
    assert pretrained.main(["crema-chord", f"paths.root={tmp_path}", "--crema-dir", str(folder)]) == 0
    out = tmp_path / "checkpoints" / "pretrained" / "crema-chord"
    assert "crema-chord -> " in capsys.readouterr().out
    meta = checkpoint.read_meta(out)
    assert meta["task"] == {"kind": "frame_multiclass", "label_key": "chords", "vocabulary": list(crema.CHORD_CLASSES)}
    assert meta["pretrained"]["package"] == "crema" and meta["pretrained"]["version"] == "0.2.0"
    assert "Copyright (c) 2017, Brian McFee" in meta["pretrained"]["licence_text"]
    assert meta["decoding"]["chord_switch_penalty"] == pytest.approx(8.2363, abs=1e-4)
    assert meta["config"]["features"]["crema_pump"]["hop_length"] == 4096


def test_keras_gru_step_by_hand():
    """One step of one direction against the Keras formulas written out (reset before the kernel)."""
    torch.manual_seed(0)
    gru = KerasGRU(3, 2)
    x = torch.randn(1, 2, 3)
    out = gru(x)
    kernel, recurrent, bias = gru.kernel[0], gru.recurrent_kernel[0], gru.bias[0]
    h = torch.zeros(2)
    for t in range(2):
        xp = x[0, t] @ kernel + bias
        z = hard_sigmoid(xp[:2] + h @ recurrent[:, :2])
        r = hard_sigmoid(xp[2:4] + h @ recurrent[:, 2:4])
        candidate = torch.tanh(xp[4:] + (r * h) @ recurrent[:, 4:])
        h = z * h + (1 - z) * candidate
        torch.testing.assert_close(out[0, t, :2], h)
    assert hard_sigmoid(torch.tensor([-3.0, 0.0, 1.0, 3.0])).tolist() == pytest.approx([0.0, 0.5, 0.7, 1.0])


def test_keras_gru_padded_batch_equals_items_alone():
    torch.manual_seed(0)
    gru = KerasGRU(4, 3)
    x = torch.randn(2, 7, 4)
    lengths = torch.tensor([7, 4])
    padded = x.clone()
    padded[1, 4:] = 5.0
    with torch.no_grad():
        batch = gru(padded, lengths)
        alone = gru(x[1:, :4])
    torch.testing.assert_close(batch[1, :4], alone[0])
    assert batch[1, 4:].abs().max() == 0
