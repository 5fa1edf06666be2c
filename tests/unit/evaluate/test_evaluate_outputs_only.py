"""``pipelines.evaluate`` judges outputs only: with the audio and the checkpoint gone, and any model
load or audio decode failing, a run still gets every score, its tag-o-gram, and the lists of
failed and misclassified tracks."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest

from autotag.data import audio
from autotag.evaluate.common import MetricWarning
from autotag.models import checkpoint
from pipelines import evaluate
from tests.unit.evaluate.evaluate_fixtures import (
    LMS,
    config,
    decoded_images,
    html_table,
    write_checkpoint,
    write_history,
    write_manifest,
    write_predictions,
)
from tests.unit.evaluate.test_evaluate_pipeline_tags import GENRE_TASK, R1_SCORES


def _forbidden(*_args, **_kwargs):
    raise AssertionError("evaluation loaded a model or decoded audio")


@pytest.fixture()
def bare_run(tmp_path) -> Path:
    """Run r1 (genre, with activations) after its audio files and checkpoint were deleted."""
    write_manifest(tmp_path)
    write_checkpoint(tmp_path, "r1", GENRE_TASK, LMS)
    write_history(tmp_path, "r1", [1.0, 0.8, 0.9])
    write_predictions(tmp_path, "r1", GENRE_TASK, R1_SCORES, LMS)
    shutil.rmtree(tmp_path / "audio")
    shutil.rmtree(tmp_path / "checkpoints" / "r1" / "best")
    return tmp_path


def test_evaluate_needs_neither_audio_nor_checkpoint(bare_run, monkeypatch):
    for module, name in ((checkpoint, "load"), (checkpoint, "model_from_meta"), (audio, "decode_audio"),
                         (audio, "open_audio")):
        monkeypatch.setattr(module, name, _forbidden)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        out = evaluate.run(config(bare_run, "r1"))
    document = json.loads(Path(out["metrics_json"]).read_text())
    runs = document["runs"]["r1"]
    assert runs["genre"]["accuracy"] == pytest.approx(4 / 6)
    assert runs["genre_patch"]["n_tracks"] == 6 and runs["genre_patch"]["support"] == 12
    assert list(decoded_images(Path(out["report"])))[:3] == ["fig-confusion-matrix", "fig-confusion-matrix-patch",
                                                             "fig-tag-o-gram"]
    metadata = document["metadata"]
    assert metadata["failed_tracks"]["r1"] == [{"track_id": "broken", "audio_path": "/audio/broken.wav",
                                                "error": "file does not exist"}]
    wrong = metadata["misclassified_tracks"]["r1"]["genre"]
    assert [(w["track_id"], w["reference"], w["estimate"]) for w in wrong] == [
        ("t1", "a", "b"), ("t5", "c", "a")]
    assert [row["track_id"] for row in html_table(Path(out["report"]), "table-misclassified-tracks")] == ["t1", "t5"]
    assert [row["error"] for row in html_table(Path(out["report"]), "table-failed-tracks")] == ["file does not exist"]


def test_without_activations_patch_level_is_skipped_with_a_warning(bare_run):
    shutil.rmtree(bare_run / "predictions" / "activations")
    with pytest.warns(MetricWarning, match="no activations table; patch-level scores skipped"):
        out = evaluate.run(config(bare_run, "r1"))
    runs = json.loads(Path(out["metrics_json"]).read_text())["runs"]["r1"]
    assert "genre_patch" not in runs and runs["genre"]["accuracy"] == pytest.approx(4 / 6)
