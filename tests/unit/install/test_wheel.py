"""``pip install .`` gives a working ``autotag`` command, run from any directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from autotag import predictions
from autotag.data.tasks import Task
from autotag.models import build_model, checkpoint
from tests.conftest import write_tone

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, Path]:
    """The wheel built from this checkout, installed into a folder of its own (no dependencies: the
    test's environment has them), and a working directory outside the checkout."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy: setuptools leaves build/ in the tree it builds
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for name in ("autotag", "pipelines", "conf"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"), str(source)],
                   check=True, timeout=300, cwd=root)
    (wheel,) = (root / "dist").glob("autotag-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(root / "site"), str(wheel)], check=True,
                   timeout=300, cwd=root)
    (root / "elsewhere").mkdir()
    return {"site": root / "site", "cwd": root / "elsewhere", "bin": root / "site" / "bin" / "autotag"}


def _autotag(installed, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(installed["site"])}
    return subprocess.run([str(installed["bin"]), *args], cwd=installed["cwd"], env=env, text=True,
                          capture_output=True, timeout=timeout)


def test_the_installed_package_is_the_one_imported(installed):
    env = {**os.environ, "PYTHONPATH": str(installed["site"])}
    done = subprocess.run([sys.executable, "-c", "import pipelines.common as c; print(c.__file__, c.conf_dir())"],
                          cwd=installed["cwd"], env=env, text=True, capture_output=True, check=True)
    module, conf = done.stdout.split()
    assert Path(module).is_relative_to(installed["site"]) and Path(conf) == installed["site"] / "pipelines" / "conf"


def test_help_lists_the_stages_and_a_stage_its_keys(installed):
    done = _autotag(installed, "--help")
    assert done.returncode == 0
    for command in ("shard", "train", "sweep", "infer", "evaluate", "demo", "tag", "pretrained"):
        assert f"\n  {command} " in done.stdout
    done = _autotag(installed, "infer", "--help")
    assert done.returncode == 0
    for key in ("num_actors:", "checkpoint:", "aggregate: mean", "root: outputs"):
        assert key in done.stdout
    assert _autotag(installed, "nope").returncode == 2
    done = _autotag(installed, "pretrained", "--help")  # imports autotag.pretrained from the wheel
    assert done.returncode == 0 and "musicnn" in done.stdout, done.stderr


@pytest.fixture(scope="module")
def catalogue(installed) -> dict[str, Path]:
    folder = installed["cwd"] / "music"
    for i, freq in enumerate((220.0, 440.0, 880.0)):
        write_tone(folder / f"tone-{i}.wav", seconds=4.0, freq=freq)
    torch.manual_seed(0)
    model = build_model("lms_conv2d", "autopool", 3, task="multiclass")
    task = Task("multiclass", "genre", ("low", "mid", "high"))
    spec = {"frontend": "lms_conv2d", "backend": "autopool", "frontend_params": {}, "backend_params": {}}
    ckpt = checkpoint.save(installed["cwd"] / "ckpt", model, {"model": spec, "task": task.to_dict(), "config": {},
                                                              "epoch": 0})
    return {"music": folder, "checkpoint": ckpt}


def test_a_tiny_infer_from_another_directory(installed, catalogue):
    done = _autotag(installed, "infer", "paths.root=out", f"infer.checkpoint={catalogue['checkpoint']}",
                    f"infer.input={catalogue['music']}", "run_id=wheel", "runtime.num_cpus=2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "wheel: 3 ok, 0 errors (see " in done.stderr and "model: run wheel -> " in done.stdout
    tracks = predictions.read_table(installed["cwd"] / "out" / "predictions", "tracks", "wheel").frame
    assert sorted(tracks["status"]) == ["ok"] * 3


def test_tag_prints_the_top_tags_of_each_file(installed, catalogue):
    files = sorted(str(p) for p in catalogue["music"].glob("*.wav"))
    done = _autotag(installed, "tag", *files, "--checkpoint", str(catalogue["checkpoint"]), "--top-k", "2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == files
    assert all(len(line.split(": ", 1)[1].split(", ")) == 2 for line in lines)
