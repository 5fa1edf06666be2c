"""``pipelines.evaluate`` on hand-made genre and tag runs: numbers equal direct sklearn calls, the
report holds every expected figure and all runs, malformed input gives clear errors. No Ray.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from sklearn import metrics as skm

from autotag.data import manifest
from autotag.data.audio import decode_audio
from autotag.data.patches import cut_patches
from autotag.data.tasks import Task
from autotag.evaluate.common import MetricWarning
from autotag.evaluate.report import PNG_SIGNATURE
from autotag.evaluate.tables import read_metrics_table
from autotag.models import checkpoint
from pipelines import evaluate
from tests.unit.evaluate.evaluate_fixtures import (
    CONV1D,
    GENRE_TRUTH,
    GENRES,
    LMS,
    TAG_TRUTH,
    TAGS,
    TEST_IDS,
    config,
    decoded_images,
    html_table,
    write_checkpoint,
    write_history,
    write_manifest,
    write_predictions,
)
from tests.unit.evaluate.test_evaluate_report import CHROMIUM, console_messages, parse, run_chromium

# Expected degenerate-input warnings (no checkpoint, excluded labels) are asserted where they matter.
pytestmark = pytest.mark.filterwarnings("ignore::autotag.evaluate.common.MetricWarning")

GENRE_TASK = Task("multiclass", "genre", GENRES)
TAG_TASK = Task("multilabel", "tags", TAGS, threshold=0.5)
# r1 predicts a, b, b, b, c, a for the true a, a, b, b, c, c.
R1_SCORES = {"t0": [0.7, 0.2, 0.1], "t1": [0.3, 0.6, 0.1], "t2": [0.1, 0.8, 0.1],
             "t3": [0.2, 0.5, 0.3], "t4": [0.1, 0.1, 0.8], "t5": [0.5, 0.1, 0.4]}
R1_CONFUSION = [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
R3_SCORES = {"t0": [0.9, 0.2, 0.1], "t1": [0.6, 0.4, 0.3], "t2": [0.3, 0.8, 0.2],
             "t3": [0.55, 0.1, 0.6], "t4": [0.4, 0.7, 0.1], "t5": [0.2, 0.6, 0.9]}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("evaluate")
    write_manifest(root)
    write_checkpoint(root, "r1", GENRE_TASK, LMS)
    write_history(root, "r1", [1.0, 0.8, 0.9])
    write_predictions(root, "r1", GENRE_TASK, R1_SCORES, LMS)
    perfect = {t: [0.8 if g == label else 0.1 for label in GENRES] for t, g in GENRE_TRUTH.items()}
    write_checkpoint(root, "r2", GENRE_TASK, CONV1D)
    write_history(root, "r2", [1.2, 0.7])
    write_predictions(root, "r2", GENRE_TASK, perfect, CONV1D)
    write_predictions(root, "r3", TAG_TASK, R3_SCORES, LMS)  # no checkpoint, no history
    return root


@pytest.fixture(scope="module")
def result(root) -> dict:
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        patch.setitem(sys.modules, "ray", None)  # any `import ray` fails: evaluation must not need it
        out = evaluate.run(config(root, "r1", "evaluate.runs=[r2,r3]"))
    out["warnings"] = [str(w.message) for w in caught if issubclass(w.category, MetricWarning)]
    out["document"] = json.loads(Path(out["metrics_json"]).read_text())
    return out


def test_track_level_genre_equals_sklearn(result):
    genre = result["document"]["runs"]["r1"]["genre"]
    ref = [GENRE_TRUTH[t] for t in TEST_IDS]
    est = [GENRES[int(np.argmax(R1_SCORES[t]))] for t in TEST_IDS]
    assert genre["confusion_matrix"] == R1_CONFUSION
    assert genre["accuracy"] == pytest.approx(skm.accuracy_score(ref, est)) == pytest.approx(4 / 6)
    p, r, f, _ = skm.precision_recall_fscore_support(ref, est, labels=list(GENRES), average="macro", zero_division=0)
    assert (genre["precision_macro"], genre["recall_macro"], genre["f1_macro"]) == pytest.approx((p, r, f))
    assert genre["per_label"]["recall"] == pytest.approx({"a": 0.5, "b": 1.0, "c": 0.5})
    coverage = result["document"]["runs"]["r1"]["coverage"]
    assert coverage["evaluated_tracks"] == 6 and coverage["missing_predictions"] == 1  # "broken"
    assert result["document"]["metadata"]["missing_track_ids"]["r1"] == {"genre": ["broken"]}
    assert result["accuracy"] == genre["accuracy"] and result["evaluated_tracks"] == 6


def test_perfect_run_scores_one(result):
    genre = result["document"]["runs"]["r2"]["genre"]
    assert genre["accuracy"] == genre["recall_macro"] == genre["f1_macro"] == 1.0
    assert genre["confusion_matrix"] == [[2, 0, 0], [0, 2, 0], [0, 0, 2]]


def test_patch_level_equals_the_checkpoint_applied_directly(root, result):
    model, _, _ = checkpoint.load(root / "checkpoints" / "r1" / "best")
    frontend = model.frontend
    ref, est = [], []
    for track in TEST_IDS:
        samples = decode_audio(str(root / "audio" / f"{track}.wav")).samples
        patches = cut_patches(samples, frontend.patch_samples, frontend.patch_hop_samples)
        with torch.no_grad():
            labels = model(torch.from_numpy(patches)).argmax(-1).numpy()
        est += [GENRES[i] for i in labels]
        ref += [GENRE_TRUTH[track]] * len(patches)
    patch = result["document"]["runs"]["r1"]["genre_patch"]
    assert patch["support"] == len(ref) == 6 * 2 and patch["n_tracks"] == 6
    assert patch["accuracy"] == pytest.approx(skm.accuracy_score(ref, est))
    assert patch["recall_macro"] == pytest.approx(skm.recall_score(ref, est, labels=list(GENRES), average="macro",
                                                                   zero_division=0))
    assert patch["confusion_matrix"] == skm.confusion_matrix(ref, est, labels=list(GENRES)).tolist()
    assert "genre_patch" not in result["document"]["runs"]["r3"]  # multi-label: track level only


def test_tagging_equals_sklearn_and_excludes_single_class_tags(result):
    tagging = result["document"]["runs"]["r3"]["tagging"]
    y = np.array([[tag in TAG_TRUTH[t] for tag in TAGS] for t in TEST_IDS], dtype=int)[:, :2]
    s = np.array([R3_SCORES[t] for t in TEST_IDS])[:, :2]
    assert tagging["excluded_tags"] == {"z": "no positive example"}
    assert any("excluded" in w and "'z'" in w for w in result["warnings"])
    assert tagging["roc_auc_macro"] == pytest.approx(skm.roc_auc_score(y, s, average="macro"))
    assert tagging["roc_auc_micro"] == pytest.approx(skm.roc_auc_score(y, s, average="micro"))
    assert tagging["pr_auc_macro"] == pytest.approx(skm.average_precision_score(y, s, average="macro"))
    assert tagging["pr_auc_micro"] == pytest.approx(skm.average_precision_score(y, s, average="micro"))
    p, r, f, _ = skm.precision_recall_fscore_support(y, s >= 0.5, average="macro", zero_division=0)
    assert (tagging["precision_macro"], tagging["recall_macro"], tagging["f1_macro"]) == pytest.approx((p, r, f))
    assert tagging["per_label"]["threshold"] == {"x": 0.5, "y": 0.5}


def test_threshold_override_equals_sklearn(root):
    out = evaluate.run(config(root, "r3", "evaluate.threshold=0.7"))
    tagging = json.loads(Path(out["metrics_json"]).read_text())["runs"]["r3"]["tagging"]
    y = np.array([[tag in TAG_TRUTH[t] for tag in TAGS] for t in TEST_IDS], dtype=int)[:, :2]
    s = np.array([R3_SCORES[t] for t in TEST_IDS], dtype=np.float32).astype(np.float64)[:, :2]  # as stored
    p, r, f, _ = skm.precision_recall_fscore_support(y, s >= 0.7, average="micro", zero_division=0)
    assert (tagging["precision_micro"], tagging["recall_micro"], tagging["f1_micro"]) == pytest.approx((p, r, f))
    assert tagging["per_label"]["threshold"] == {"x": 0.7, "y": 0.7}


def test_metrics_parquet_has_one_row_per_run_metric_label(result):
    table, metadata = read_metrics_table(result["metrics_parquet"])
    assert set(table["run_id"]) == {"r1", "r2", "r3"} and metadata["runs"] == ["r1", "r2", "r3"]
    assert not table.duplicated(["run_id", "metric", "label"]).any()
    row = table[(table.run_id == "r1") & (table.metric == "genre.recall") & (table.label == "a")]
    assert row["value"].tolist() == [0.5]
    assert table[(table.run_id == "r3") & (table.metric == "tagging.roc_auc")]["label"].tolist() == ["x", "y"]


def test_report_has_every_figure_and_every_run(result):
    path = Path(result["report"])
    assert path == Path(result["report_dir"]) / "report.html"
    images = decoded_images(path)
    assert list(images) == ["fig-confusion-matrix", "fig-confusion-matrix-patch", "fig-tag-o-gram",
                            "fig-training-curves", "fig-training-curves-runs"]  # lms_conv2d: no filters
    assert all(image.shape[0] > 100 for image in images.values())
    parsed = parse(path)
    assert {"r1", "r2", "r3", "lms_conv2d+autopool", "waveform_conv1d+autopool", "genre.accuracy",
            "genre_patch.accuracy", "tagging.roc_auc_macro", "0.6667"} <= set(parsed.cells)
    results = html_table(path, "results")
    assert [row["run_id"] for row in results] == ["r1", "r2", "r3"]
    assert [row["genre.accuracy"] for row in results] == ["0.6667", "1.0000", ""]  # r3 has no genre
    assert results[2]["tagging.roc_auc_macro"] and not results[0]["tagging.roc_auc_macro"]
    text = path.read_text()
    assert 'id="table-genre"' in text and 'id="table-tagging"' not in text  # per-tag table: main run only
    assert "track t0" in text  # report_track null: the first evaluated track
    names = sorted(p.name for p in path.parent.glob("*.png"))
    assert names == ["confusion_matrix.png", "confusion_matrix_patch.png", "tag_o_gram.png",
                     "training_curves.png", "training_curves_runs.png"]


def test_conv1d_run_shows_its_filters_and_the_chosen_track(root):
    out = evaluate.run(config(root, "r2", "evaluate.patch_level=false", "evaluate.report_track=t3"))
    images = decoded_images(Path(out["report"]))
    assert list(images) == ["fig-confusion-matrix", "fig-tag-o-gram", "fig-filters-conv1d", "fig-training-curves"]
    text = Path(out["report"]).read_text()
    assert "track t3" in text and "8 filters of 63 taps" in text
    assert "genre_patch" not in json.loads(Path(out["metrics_json"]).read_text())["runs"]["r2"]


def test_runs_on_another_data_set_are_scored_on_their_own_manifest(root, tmp_path):
    other = tmp_path / "other" / "manifest.parquet"
    manifest.write(manifest.build_table([
        {"track_id": "u0", "audio_path": "/u0.wav", "split": "test", "genre": "a"},
        {"track_id": "u1", "audio_path": "/u1.wav", "split": "test", "genre": "c"}]), other)
    predictions = tmp_path / "predictions"
    write_predictions(tmp_path, "elsewhere", GENRE_TASK, {"u0": [0.9, 0.05, 0.05], "u1": [0.9, 0.05, 0.05]},
                      LMS, errors=(), manifest_path=other)
    for table in ("tags", "tracks"):  # beside the module's runs
        (root / "predictions" / table / "run_id=elsewhere").symlink_to(predictions / table / "run_id=elsewhere")
    try:
        out = evaluate.run(config(root, "r3", "evaluate.runs=[elsewhere]"))
    finally:
        for table in ("tags", "tracks"):
            (root / "predictions" / table / "run_id=elsewhere").unlink()
    document = json.loads(Path(out["metrics_json"]).read_text())
    assert document["runs"]["elsewhere"]["genre"]["accuracy"] == 0.5
    assert document["metadata"]["manifests"] == {"r3": str(root / "data" / "m" / "manifest.parquet"),
                                                 "elsewhere": str(other)}
    rows = html_table(Path(out["report"]), "results")
    assert [(row["run_id"], row["dataset"]) for row in rows] == [("r3", "custom"), ("elsewhere", "other")]


def test_multilabel_main_run_without_checkpoint(root):
    with pytest.warns(MetricWarning, match="no checkpoint at"):
        out = evaluate.run(config(root, "r3"))
    assert out["roc_auc_macro"] > 0 and list(decoded_images(Path(out["report"]))) == []
    assert 'id="table-tagging"' in Path(out["report"]).read_text()


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium not installed")
def test_report_opens_in_headless_chromium(result, tmp_path):
    shot = tmp_path / "shot.png"
    run = run_chromium(Path(result["report"]), tmp_path / "profile", f"--screenshot={shot}",
                       "--window-size=1200,2000")
    assert run.returncode == 0, run.stderr[-2000:]
    assert console_messages(run) == []
    assert shot.read_bytes().startswith(PNG_SIGNATURE)


def test_missing_run_is_a_clear_error(root):
    expected = r"run 'nope': no predictions .*\(runs with predictions: \['r1', 'r2', 'r3'\]"
    with pytest.raises(FileNotFoundError, match=expected):
        evaluate.run(config(root, "r1", "evaluate.runs=[nope]"))


def test_no_overlapping_track_is_a_clear_error(root, tmp_path):
    other = tmp_path / "other.parquet"
    manifest.write(manifest.build_table([{"track_id": "u1", "audio_path": "/x.wav", "split": "test", "genre": "a"}]),
                   other)
    with pytest.raises(ValueError, match=r"run 'r1' tags: none of its 6 predicted track\(s\) is among the 1 'test'"):
        evaluate.run(config(root, "r1", f"dataset.manifest={other}"))


def test_empty_split_and_unknown_report_track_are_clear_errors(root):
    with pytest.raises(ValueError, match=r"no track in split 'valid'; splits present: \['test', 'train'\]"):
        evaluate.run(config(root, "r3", "evaluate.split=valid"))
    with pytest.raises(ValueError, match=r"evaluate.report_track='tr0' is not an evaluated track of run 'r2'"):
        evaluate.run(config(root, "r2", "evaluate.patch_level=false", "evaluate.report_track=tr0"))


def test_tags_table_without_task_metadata_is_a_clear_error(root, tmp_path):
    source = next((root / "predictions" / "tags" / "run_id=r3").glob("part-*.parquet"))
    table = pq.read_table(source)
    target = tmp_path / "predictions" / "tags" / "bare" / source.name
    target.parent.mkdir(parents=True)
    pq.write_table(table.replace_schema_metadata({}), target)
    cfg = config(root, "bare", f"paths.predictions={tmp_path / 'predictions'}")
    with pytest.raises(ValueError, match=r"Parquet metadata 'autotag.task' missing"):
        evaluate.run(cfg)
