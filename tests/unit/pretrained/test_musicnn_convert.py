"""musicnn → autotag checkpoint conversion and the ``autotag pretrained`` command."""

from __future__ import annotations

import json

import pytest
import torch

from autotag.models import checkpoint
from autotag.pretrained.musicnn import (
    MUSICNN_MODELS,
    PretrainedError,
    convert,
    read_labels,
)
from pipelines import pretrained
from tests.pretrained_fixtures import require_musicnn


@pytest.mark.parametrize("name", sorted(MUSICNN_MODELS))
def test_converted_checkpoint_is_self_describing(tmp_path, name):
    folder = require_musicnn()
    out = convert(name, tmp_path / name, folder)
    model, task, meta = checkpoint.load(out)
    assert task.kind == "multilabel" and task.label_key == "tags"
    assert list(task.vocabulary) == read_labels(folder / "configuration.py", MUSICNN_MODELS[name])
    assert len(task.vocabulary) == 50 and (name != "MTT_musicnn" or task.vocabulary[:3] == ("guitar", "classical",
                                                                                             "slow"))
    assert meta["pretrained"]["licence"] == "ISC"
    assert "Universitat Pompeu Fabra 2019" in meta["pretrained"]["licence_text"]
    assert meta["pretrained"]["version"] == "0.1.0" and meta["config"]["features"]["sample_rate"] == 16_000
    values = sum(v.numel() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked"))
    assert values == (792_079 if name.endswith("musicnn") else 607_030)  # the TF checkpoints' model values
    assert not (out / "optimizer.pt").exists() and json.loads((out / "meta.json").read_text())["format"] == 1


def test_command_writes_under_paths_root_or_out(tmp_path, capsys):
    folder = require_musicnn()
    assert pretrained.main(["MTT_musicnn", f"paths.root={tmp_path}", "--musicnn-dir", str(folder)]) == 0
    assert (tmp_path / "checkpoints" / "pretrained" / "MTT_musicnn" / "model.safetensors").exists()
    assert pretrained.main(["MSD_musicnn", "--out", str(tmp_path / "msd"), "--musicnn-dir", str(folder)]) == 0
    assert checkpoint.read_meta(tmp_path / "msd")["pretrained"]["model"] == "MSD_musicnn"
    assert "MSD_musicnn -> " in capsys.readouterr().out


def test_mistakes_are_one_line_and_exit_2(tmp_path, capsys):
    assert pretrained.main(["MTT_musicnn", "--musicnn-dir", str(tmp_path)]) == 2
    assert "no .index file" in capsys.readouterr().err
    assert pretrained.main(["MTT_vggish", "--musicnn-dir", str(tmp_path)]) == 2
    assert "unknown pretrained model 'MTT_vggish'" in capsys.readouterr().err
    assert pretrained.main(["MTT_musicnn", "MSD_musicnn", "--out", str(tmp_path)]) == 2
    assert pretrained.main(["MTT_musicnn", "train.lr=1"]) == 2
    assert "only key=value this command reads is paths.root" in capsys.readouterr().err


def test_labels_are_parsed_not_executed(tmp_path):
    config = tmp_path / "configuration.py"
    config.write_text("import os\nos.remove('/nonexistent')\nMTT_LABELS = ['a', 'b']\n")
    assert read_labels(config, "MTT_LABELS") == ["a", "b"]
    with pytest.raises(PretrainedError, match="no MSD_LABELS"):
        read_labels(config, "MSD_LABELS")


def test_every_model_tensor_comes_from_a_tensorflow_variable(tmp_path):
    """The mapping covers our whole state_dict with the right shapes (checked inside convert)."""
    folder = require_musicnn()
    model, _, _ = checkpoint.load(convert("MTT_musicnn", tmp_path / "m", folder))
    fresh = torch.nn.BatchNorm1d(1).running_var
    assert not torch.equal(model.frontend.input_norm.running_var, fresh)  # loaded, not initial


def test_autotag_command_lists_and_dispatches_pretrained(capsys):
    from pipelines import cli

    assert "pretrained" in cli.usage()
    with pytest.raises(SystemExit) as done:
        cli.main(["pretrained", "--help"])
    assert done.value.code == 0 and "paths.root" in capsys.readouterr().out
