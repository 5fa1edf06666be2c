"""``pipelines.infer`` with a musicnn checkpoint over a folder: one ``tags`` row per track and tag.

The plumbing runs with a randomly initialised musicnn (always); the converted MTT_musicnn
weights (when the optional musicnn package is installed) must tag the string-orchestra
excerpt "classical".
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from autotag import predictions
from autotag.models import checkpoint
from autotag.pretrained import musicnn
from pipelines import infer
from pipelines.common import load_config
from tests.conftest import write_tone
from tests.pretrained_fixtures import FIXTURES, require_musicnn

pytestmark = pytest.mark.slow


def _folder(root: Path) -> Path:
    music = root / "music"
    music.mkdir(parents=True)
    shutil.copy(FIXTURES / "brahms.flac", music / "brahms.flac")
    write_tone(music / "short tone.wav", sr=44_100, seconds=1.0)  # shorter than one 3-s patch: padded
    return music


def _run(root: Path, ckpt: Path, run_id: str):
    cfg = load_config([f"paths.root={root}", f"run_id={run_id}", f"infer.checkpoint={ckpt}",
                       f"infer.input={root / 'music'}", "runtime.progress_bars=false"])
    result = infer.run(cfg)
    return result, predictions.read_table(root / "predictions", "tags", run_id).frame


def test_random_musicnn_writes_a_row_per_track_and_tag(ray_session, tmp_path):
    _folder(tmp_path)
    torch.manual_seed(0)
    vocabulary = [f"tag{i:02d}" for i in range(50)]
    meta = musicnn.model_meta("MTT_musicnn", vocabulary)
    ckpt = checkpoint.save(tmp_path / "ckpt", checkpoint.model_from_meta(meta), meta)
    result, tags = _run(tmp_path, ckpt, "random")
    assert result["tracks_ok"] == 2
    assert len(tags) == 100 and set(tags["tag"]) == set(vocabulary)
    assert sorted(tags.groupby("track_id")["rank"].apply(sorted).iloc[0]) == list(range(1, 51))


def test_converted_mtt_musicnn_tags_the_orchestra_classical(ray_session, tmp_path):
    folder = require_musicnn()
    _folder(tmp_path)
    ckpt = musicnn.convert("MTT_musicnn", tmp_path / "MTT_musicnn", folder)
    labels = musicnn.read_labels(folder / "configuration.py", "MTT_LABELS")
    _, tags = _run(tmp_path, ckpt, "mtt")
    assert set(tags["tag"]) == set(labels) and len(tags) == 100
    brahms = tags[tags["track_id"] == "brahms"].sort_values("rank")
    assert brahms["tag"].iloc[0] == "classical"
