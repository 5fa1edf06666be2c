"""A user's mistakes end in one line naming the problem and exit code 2, before Ray starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from autotag.config import ConfigError
from autotag.data.tasks import Task
from autotag.models import build_model, checkpoint
from pipelines import infer, shard, train
from pipelines.common import load_config

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def no_ray(monkeypatch):
    """Every mistake here must be caught before Ray starts: starting it fails the test."""

    def refuse(cfg):
        raise AssertionError("Ray was started")

    for stage in (infer, shard, train):
        monkeypatch.setattr(stage, "init_ray", refuse)


@pytest.mark.parametrize("override,message", [
    ("train.num_workerz=2", "train.num_workerz: no such key; did you mean 'train.num_workers'?"),
    ("infer.aggregate=median", "infer.aggregate: 'median' is not one of ['mean', 'max']"),
    ("infer.exports=[xml]", "infer.exports[0]: 'xml' is not one of ['lab', 'jams', 'csv']"),
    ("task.kind=foo", "task.kind: 'foo' is not one of"),
    ("train.num_workers=-1", "train.num_workers: must be at least 1, got -1"),
    ("train.lr=0", "train.lr: must be greater than 0"),
    ("paths.root=null", "paths.root: expected a folder or URI, got None"),
    ("paths.root=", "paths.root: expected a folder or URI, got ''"),
    ("frontend=lms_conv2", "frontend=lms_conv2: no such option; did you mean 'lms_conv2d'?"),
])
def test_bad_values_fail_at_composition(override, message):
    with pytest.raises(ConfigError) as caught:
        load_config([override])
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def _run_cli(stage, capsys, *argv) -> tuple[int, list[str]]:
    code = stage.main(list(argv))
    return code, capsys.readouterr().err.strip().splitlines()


def test_a_bad_override_is_one_line_and_exit_2(capsys):
    code, lines = _run_cli(infer, capsys, "infer.aggregate=median")
    assert code == 2 and lines == ["error: infer.aggregate: 'median' is not one of ['mean', 'max']; did you mean "
                                   "'mean'?"]


def test_a_missing_checkpoint(capsys, tmp_path):
    code, lines = _run_cli(infer, capsys, f"paths.root={tmp_path}", f"infer.checkpoint={tmp_path}/nope")
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith(f"error: checkpoint {tmp_path}/nope: no such folder")


@pytest.fixture()
def genre_checkpoint(tmp_path) -> Path:
    torch.manual_seed(0)
    model = build_model("lms_conv2d", "autopool", 3, task="multiclass")
    task = Task("multiclass", "genre", ("a", "b", "c"))
    spec = {"frontend": "lms_conv2d", "backend": "autopool", "frontend_params": {}, "backend_params": {}}
    return checkpoint.save(tmp_path / "ckpt", model, {"model": spec, "task": task.to_dict(), "config": {},
                                                      "epoch": 0})


def test_a_missing_input_folder(capsys, tmp_path, genre_checkpoint):
    code, lines = _run_cli(infer, capsys, f"paths.root={tmp_path}", f"infer.checkpoint={genre_checkpoint}",
                           f"infer.input={tmp_path}/no-such-folder")
    assert code == 2 and len(lines) == 1 and "no-such-folder: no such folder" in lines[0]


def test_an_empty_input_folder(capsys, tmp_path, genre_checkpoint):
    (tmp_path / "music").mkdir()
    code, lines = _run_cli(infer, capsys, f"paths.root={tmp_path}", f"infer.checkpoint={genre_checkpoint}",
                           f"infer.input={tmp_path}/music")
    assert code == 2 and len(lines) == 1 and "no audio files found" in lines[0]


def test_training_without_shards(capsys, tmp_path):
    code, lines = _run_cli(train, capsys, f"paths.root={tmp_path}")
    assert code == 2 and len(lines) == 1 and "no train shards" in lines[0] and "run pipelines.shard first" in lines[0]


def test_sharding_a_missing_manifest(capsys, tmp_path):
    code, lines = _run_cli(shard, capsys, "dataset=manifest", f"dataset.manifest={tmp_path}/m.parquet")
    assert code == 2 and len(lines) == 1 and f"{tmp_path}/m.parquet: no such file" in lines[0]


def test_an_unknown_option(capsys):
    code, lines = _run_cli(infer, capsys, "--bogus")
    assert code == 2 and lines == ["error: unknown option --bogus (see python -m pipelines.infer --help)"]


def test_the_command_line_prints_one_line_and_no_traceback(tmp_path):
    """The real process: nothing but the message on stderr, exit code 2."""
    done = subprocess.run([sys.executable, "-m", "pipelines.infer", "paths.root=null"], cwd=REPO, text=True,
                          capture_output=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["error: paths.root: expected a folder or URI, got None"]
    assert done.stdout == ""
