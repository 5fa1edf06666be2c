"""``pipelines.evaluate`` on hand-made chord and instrument predictions: numbers equal direct
mir_eval / sklearn calls, the sections and figures appear exactly when their tables exist, and
one report shows all four task kinds. No Ray.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import mir_eval
import numpy as np
import pyarrow.parquet as pq
import pytest
from sklearn import metrics as skm

from autotag.data.chords import CHORD_LABELS
from autotag.data.tasks import Task
from autotag.evaluate.common import MetricWarning
from pipelines import evaluate
from tests.unit.evaluate.evaluate_fixtures import (
    CHORD_TRUTH,
    CQT,
    DURATION_S,
    GENRE_TRUTH,
    GENRES,
    LMS,
    TAGS,
    TEST_IDS,
    config,
    decoded_images,
    html_table,
    write_checkpoint,
    write_manifest,
    write_predictions,
    write_segments,
)

# Expected degenerate-input warnings (no checkpoint, excluded labels) are asserted where they matter.
pytestmark = pytest.mark.filterwarnings("ignore::autotag.evaluate.common.MetricWarning")

FRAME_RATE = 10.0
CHORD_TASK = Task("frame_multiclass", "chords", CHORD_LABELS)
PERFECT_CHORDS = [(0.0, 2.5, "C:maj"), (2.5, DURATION_S, "A:min")]
WRONG_HALF = [(0.0, 2.5, "C:maj"), (2.5, DURATION_S, "C:maj")]  # t5: second chord wrong
# Instruments: piano exact, drums only for the first half; t5 absent from the table.
INSTRUMENT_ROWS = [(t, 0.0, 2.0, "piano") for t in TEST_IDS[:5]] + [(t, 0.0, 2.5, "drums") for t in TEST_IDS[:5]]
INSTRUMENTS = ["bass", "drums", "piano"]  # bass: never in the reference, excluded


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("segments")
    write_manifest(root)
    chords = {t: PERFECT_CHORDS for t in TEST_IDS[:5]} | {"t5": WRONG_HALF}
    write_checkpoint(root, "rc", CHORD_TASK, CQT)
    write_predictions(root, "rc", CHORD_TASK, chords, CQT)
    write_segments(root, "instruments", "ri", INSTRUMENT_ROWS, INSTRUMENTS)  # no tracks table
    # One run with every table: genre (tags table), chords and instruments; and a tag run.
    write_predictions(root, "rall", Task("multiclass", "genre", GENRES),
                      {t: [0.8 if g == label else 0.1 for label in GENRES] for t, g in GENRE_TRUTH.items()}, LMS)
    write_segments(root, "chords", "rall", [(t, *seg) for t in TEST_IDS for seg in chords[t]], list(CHORD_LABELS))
    write_segments(root, "instruments", "rall", INSTRUMENT_ROWS, INSTRUMENTS)
    write_predictions(root, "rtags", Task("multilabel", "tags", TAGS), {t: [0.6, 0.4, 0.1] for t in TEST_IDS}, LMS)
    return root


@pytest.fixture(scope="module")
def chord_run(root) -> dict:
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "ray", None)
        out = evaluate.run(config(root, "rc", "evaluate.runs=[ri]", f"evaluate.frame_rate={FRAME_RATE}"))
    out["document"] = json.loads(Path(out["metrics_json"]).read_text())
    return out


def intervals(segments) -> tuple[np.ndarray, list[str]]:
    return np.array([s[:2] for s in segments], dtype=float), [s[2] for s in segments]


def test_chord_scores_equal_mir_eval(chord_run):
    chords = chord_run["document"]["runs"]["rc"]["chords"]
    reference = intervals([(s["start_s"], s["end_s"], s["label"]) for s in CHORD_TRUTH["t5"]])
    direct = mir_eval.chord.evaluate(*reference, *intervals(WRONG_HALF))
    for name in ("majmin", "mirex", "root", "thirds", "underseg", "overseg", "seg"):
        assert chords["per_track"][name]["t5"] == pytest.approx(direct[name]), name
    assert chords["wcsr"]["majmin"] == pytest.approx((5 * DURATION_S + 2.5) / (6 * DURATION_S))
    assert chords["track_mean"]["majmin"] == pytest.approx((5 + direct["majmin"]) / 6)
    assert chord_run["wcsr_majmin"] == chords["wcsr"]["majmin"] and "duration_s" not in chord_run
    assert chords["n_tracks"] == 6 and chord_run["document"]["runs"]["rc"]["coverage"]["chords"] == {
        "evaluated_tracks": 6, "missing_predictions": 1}  # "broken" failed to decode


def test_chord_frame_recall_equals_sklearn(chord_run):
    frame = chord_run["document"]["runs"]["rc"]["chords"]["frame"]
    times = np.arange(int(DURATION_S * FRAME_RATE)) / FRAME_RATE
    truth = np.where(times < 2.5, "C:maj", "A:min")
    y_true = np.concatenate([truth] * 6)
    y_pred = np.concatenate([truth] * 5 + [np.full(len(times), "C:maj")])
    assert frame["n_frames"] == len(y_true) == 300
    assert frame["recall_macro"] == pytest.approx(skm.recall_score(y_true, y_pred, average="macro"))
    assert chord_run["document"]["metadata"]["frame_rates"] == {"rc": FRAME_RATE, "ri": FRAME_RATE}


def test_instrument_scores_equal_sklearn(chord_run):
    result = chord_run["document"]["runs"]["ri"]["instruments"]
    times = np.arange(int(DURATION_S * FRAME_RATE)) / FRAME_RATE
    ref = np.stack([(times < 2.0), np.ones_like(times, bool)], axis=1)  # piano, drums
    est = np.stack([(times < 2.0), (times < 2.5)], axis=1)
    p, r, f, _ = skm.precision_recall_fscore_support(np.tile(ref, (5, 1)), np.tile(est, (5, 1)), zero_division=0)
    frame = result["frame"]
    assert frame["per_label"]["recall"] == pytest.approx({"piano": r[0], "drums": r[1]}) and r[1] == 0.5
    assert frame["f1_macro"] == pytest.approx(np.mean(f))
    assert frame["excluded"] == {"bass": "never active in the reference"}
    assert result["segment"]["f1_macro"] == 1.0  # drums IoU 2.5 / 5 = 0.5 >= min_iou
    coverage = chord_run["document"]["runs"]["ri"]["coverage"]
    assert coverage["evaluated_tracks"] == 5 and coverage["missing_predictions"] == 2  # t5, broken
    assert "chords" not in chord_run["document"]["runs"]["ri"]
    assert "instruments" not in chord_run["document"]["runs"]["rc"]


def test_chord_report_has_timeline_and_frame_tag_o_gram(chord_run):
    report = Path(chord_run["report"])
    assert list(decoded_images(report)) == ["fig-tag-o-gram", "fig-chord-timeline"]  # cqt: no filters
    text = report.read_text()
    assert "216 frames (43.1 per second)" in text and 'id="table-chords"' in text
    rows = html_table(report, "results")
    assert [row["run_id"] for row in rows] == ["rc", "ri"]
    assert rows[0]["chords.wcsr.majmin"] == f"{27.5 / 30:.4f}" and rows[0]["instruments.frame.f1_macro"] == ""
    assert rows[1]["model"] == ""  # a hand-made table with no model in its metadata


def test_one_report_shows_all_four_task_kinds(root):
    with pytest.warns(MetricWarning):
        out = evaluate.run(config(root, "rall", "evaluate.runs=[rtags]", f"evaluate.frame_rate={FRAME_RATE}"))
    report = Path(out["report"])
    assert list(decoded_images(report)) == ["fig-confusion-matrix", "fig-chord-timeline", "fig-instrument-timeline"]
    columns = html_table(report, "results")[0].keys()
    for metric in ("genre.accuracy", "tagging.roc_auc_macro", "chords.wcsr.majmin", "instruments.frame.f1_macro"):
        assert metric in columns
    text = report.read_text()
    for table in ("table-genre", "table-chords", "table-instruments-frame", "table-instruments-segment"):
        assert f'id="{table}"' in text
    runs = json.loads(Path(out["metrics_json"]).read_text())["runs"]
    assert set(runs["rall"]) == {"genre", "chords", "instruments", "coverage"}
    assert set(runs["rtags"]) == {"tagging", "coverage"}
    assert out["accuracy"] == 1.0


def test_without_frame_rate_or_checkpoint_the_default_is_used_with_a_warning(root):
    with pytest.warns(MetricWarning, match="use 100 frames/s"):
        out = evaluate.run(config(root, "ri"))
    frame = json.loads(Path(out["metrics_json"]).read_text())["runs"]["ri"]["instruments"]["frame"]
    assert frame["frame_rate"] == 100.0 and frame["n_frames"] == 5 * 500


def test_malformed_chord_table_is_a_clear_error(root, tmp_path):
    bad = tmp_path / "predictions"
    write_segments(tmp_path, "chords", "bad", [("t0", 0.0, 2.0, "C:maj")], list(CHORD_LABELS))
    path = next((bad / "chords" / "bad").glob("*.parquet"))
    pq.write_table(pq.read_table(path).drop_columns(["chord"]), path)
    with pytest.raises(ValueError, match=r"chords table: missing column\(s\) \['chord'\]"):
        evaluate.run(config(root, "bad", f"paths.predictions={bad}", f"evaluate.frame_rate={FRAME_RATE}"))
