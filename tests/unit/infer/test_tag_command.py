"""``autotag tag``: a few files tagged in this process, with the rows of the infer stage's tables."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from autotag.data.tasks import Task
from autotag.models import build_model, checkpoint
from pipelines import tag
from tests.conftest import write_tone


@pytest.fixture()
def setup(tmp_path) -> dict[str, Path]:
    torch.manual_seed(0)
    model = build_model("lms_conv2d", "autopool", 4, task="multilabel")
    task = Task("multilabel", "tags", ("bass", "drums", "guitar", "voice"))
    spec = {"frontend": "lms_conv2d", "backend": "autopool", "frontend_params": {}, "backend_params": {}}
    ckpt = checkpoint.save(tmp_path / "ckpt", model, {"model": spec, "task": task.to_dict(), "config": {}, "epoch": 0})
    good = write_tone(tmp_path / "good.wav", seconds=3.5)
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    return {"ckpt": ckpt, "good": good, "bad": bad, "dir": tmp_path}


def test_each_file_gets_its_top_k_and_a_bad_file_its_reason(setup, capsys):
    code = tag.main([str(setup["good"]), str(setup["bad"]), "--checkpoint", str(setup["ckpt"]), "--top-k", "3"])
    good, bad = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    scores = [float(part.rsplit(" ", 1)[1]) for part in good.split(": ", 1)[1].split(", ")]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    assert bad.startswith(f"{setup['bad']}: error: ") and "not a readable audio file" in bad


def test_out_writes_the_tags_table_rows(setup, capsys):
    out = setup["dir"] / "tags.parquet"
    assert tag.main([str(setup["good"]), "--checkpoint", str(setup["ckpt"]), "--out", str(out)]) == 0
    rows = pq.read_table(out).to_pylist()
    assert sorted(r["tag"] for r in rows) == ["bass", "drums", "guitar", "voice"]
    assert sorted(r["rank"] for r in rows) == [1, 2, 3, 4]
    assert {r["track_id"] for r in rows} == {str(setup["good"])}


def test_a_missing_file_or_checkpoint_is_one_line_and_exit_2(setup, capsys):
    assert tag.main([str(setup["dir"] / "nope.wav"), "--checkpoint", str(setup["ckpt"])]) == 2
    assert capsys.readouterr().err.strip() == f"error: {setup['dir'] / 'nope.wav'}: no such file"
    assert tag.main([str(setup["good"]), "--checkpoint", str(setup["dir"] / "none")]) == 2
    assert "no such folder" in capsys.readouterr().err
