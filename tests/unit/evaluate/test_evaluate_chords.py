"""Chord metrics: equal to mir_eval, hand-computed WCSR of shifted sequences, .lab errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import mir_eval
import numpy as np
import pytest
from sklearn.metrics import precision_recall_fscore_support

from autotag.evaluate import chords
from autotag.evaluate.common import MetricWarning

VOCAB = ["C:maj", "A:min", "G:7", "F:maj/3", "N", "X", "D:dim", "E:min7", "B:sus4", "Db:maj7", "G:min/b3"]


def random_track(rng: np.random.Generator, duration: float, n: int = 8) -> chords.Annotation:
    bounds = np.concatenate([[0.0], np.sort(rng.uniform(0, duration, n - 1)), [duration]])
    labels = [VOCAB[i] for i in rng.integers(0, len(VOCAB), n)]
    return np.stack([bounds[:-1], bounds[1:]], axis=1), labels


def shifted(annotation: chords.Annotation, seconds: float) -> chords.Annotation:
    return annotation[0] + seconds, list(annotation[1])


# Track A: C:maj 0-4 s, G:maj 4-8 s; track B: A:min 0-2 s, F:maj 2-4 s. Estimates: shifted by 1 s.
REF = {"A": (np.array([[0.0, 4.0], [4.0, 8.0]]), ["C:maj", "G:maj"]),
       "B": (np.array([[0.0, 2.0], [2.0, 4.0]]), ["A:min", "F:maj"])}
EST = {track: shifted(annotation, 1.0) for track, annotation in REF.items()}


def test_track_scores_equal_mir_eval():
    rng = np.random.default_rng(3)
    for _ in range(6):
        ref = random_track(rng, 30.0)
        est = shifted(random_track(rng, 27.0, n=10), rng.uniform(0, 5))
        expected = mir_eval.chord.evaluate(*ref, *est)
        ours = chords.evaluate_track(*ref, *est)
        assert list(ours) == list(expected)
        for key in expected:
            assert ours[key] == pytest.approx(float(expected[key]), abs=1e-12), key
            assert type(ours[key]) is float


def test_shifted_sequence_hand_computed_wcsr():
    # A: est N 0-1, C 1-5, G 5-8 -> correct 3 + 3 of 8 s; B: N 0-1, Am 1-3, F 3-4 -> 1 + 1 of 4 s.
    out = chords.evaluate(REF, EST)
    for name in ("root", "majmin", "majmin_inv", "mirex", "thirds", "triads", "sevenths", "tetrads"):
        assert out["wcsr"][name] == pytest.approx((3 + 3 + 1 + 1) / 12), name
        assert out["track_mean"][name] == pytest.approx((6 / 8 + 2 / 4) / 2), name
        assert out["per_track"][name] == pytest.approx({"A": 0.75, "B": 0.5})
    # Directional Hamming: A over 1 - 2/8, under 1 - 1/8; B over 1 - 2/4, under 1 - 1/4.
    assert out["per_track"]["overseg"] == pytest.approx({"A": 0.75, "B": 0.5})
    assert out["per_track"]["underseg"] == pytest.approx({"A": 0.875, "B": 0.75})
    assert out["wcsr"]["overseg"] == pytest.approx((0.75 * 8 + 0.5 * 4) / 12)
    assert out["wcsr"]["underseg"] == pytest.approx((0.875 * 8 + 0.75 * 4) / 12)
    assert out["wcsr"]["seg"] == pytest.approx((0.75 * 8 + 0.5 * 4) / 12)
    assert out["track_mean"]["underseg"] == pytest.approx((0.875 + 0.75) / 2)
    assert out["n_tracks"] == 2 and out["duration_s"] == 12.0
    for track in REF:  # and the per-track values are mir_eval's
        expected = mir_eval.chord.evaluate(*REF[track], *EST[track])
        assert out["per_track"]["majmin"][track] == pytest.approx(expected["majmin"])
        assert out["per_track"]["seg"][track] == pytest.approx(expected["seg"])


def test_perfect_estimate_scores_one():
    out = chords.evaluate(REF, REF, frame_rate=10)
    assert all(v == 1.0 for v in out["wcsr"].values())
    assert all(v == 1.0 for v in out["track_mean"].values())
    assert out["frame"]["recall_macro"] == 1.0 and out["frame"]["accuracy"] == 1.0


def test_frame_macro_recall_hand_computed_and_equal_to_sklearn():
    out = chords.evaluate(REF, EST, frame_rate=10)["frame"]
    # Recall C:maj 30/40, G:maj 30/40, A:min 10/20, F:maj 10/20, N 0 (only predicted); the macro
    # average runs over the 5 classes seen on either side, as the tutorial's classification_report.
    assert out["recall_macro"] == pytest.approx((0.75 + 0.75 + 0.5 + 0.5 + 0.0) / 5)
    assert out["per_label"]["recall"] == pytest.approx({"C:maj": 0.75, "G:maj": 0.75, "A:min": 0.5, "F:maj": 0.5})
    assert out["n_frames"] == 120
    y_true, y_pred = [], []
    for track, (iv, labels) in REF.items():
        est_iv, est_labels = EST[track]
        for t in np.arange(int(iv[-1, 1] * 10)) / 10:
            y_true.append(next(lab for (s, e), lab in zip(iv, labels) if s <= t < e))
            y_pred.append(next((lab for (s, e), lab in zip(est_iv, est_labels) if s <= t < e), "N"))
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)
    assert (out["precision_macro"], out["recall_macro"], out["f1_macro"]) == pytest.approx((p, r, f))


def test_seed_no_chord_alias_and_out_of_vocabulary_frames():
    # 'N:-' (the tutorial's no-chord) is read as N; C:dim frames are skipped by the frame metric.
    ref = {"t": (np.array([[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]]), ["N:-", "C:dim", "Bb:min7"])}
    est = {"t": (np.array([[0.0, 3.0]]), ["N"])}
    out = chords.evaluate(ref, est, frame_rate=10)
    assert out["per_track"]["root"]["t"] == pytest.approx(1 / 3)  # only N matches; C:dim vs N wrong
    assert out["frame"]["n_frames"] == 20
    assert out["frame"]["per_label"]["recall"] == {"A#:min": 0.0, "N": 1.0}


def test_gap_in_reference_is_no_chord():
    # mir_eval would extend C:maj over the 2-3 s gap (0.6); we score the gap as N (0.4).
    ref = {"t": (np.array([[0.0, 2.0], [3.0, 5.0]]), ["C:maj", "G:maj"])}
    est = {"t": (np.array([[0.0, 5.0]]), ["C:maj"])}
    assert chords.evaluate(ref, est)["wcsr"]["majmin"] == pytest.approx(2 / 5)


def test_missing_estimate_scored_as_no_chord_and_extra_ignored():
    est = {"A": EST["A"], "Z": EST["B"]}
    with pytest.warns(MetricWarning) as record:
        out = chords.evaluate(REF, est)
    messages = " ".join(str(w.message) for w in record)
    assert "no estimate" in messages and "['B']" in messages and "['Z']" in messages
    assert out["per_track"]["majmin"]["B"] == 0.0
    assert out["wcsr"]["majmin"] == pytest.approx(6 / 12)


def test_track_without_comparable_chords_left_out_of_mean():
    ref = {"A": REF["A"], "U": (np.array([[0.0, 3.0]]), ["X"])}
    with pytest.warns(MetricWarning, match="left out of the track mean"):
        out = chords.evaluate(ref, {"A": EST["A"], "U": (np.array([[0.0, 3.0]]), ["C:maj"])})
    assert out["track_mean"]["majmin"] == pytest.approx(0.75)
    assert "U" not in out["per_track"]["majmin"]
    assert out["wcsr"]["majmin"] == pytest.approx(6 / 8)


def test_empty_dataset_gives_zero_with_warning():
    with pytest.warns(MetricWarning):
        out = chords.evaluate({}, {}, frame_rate=10)
    assert out["n_tracks"] == 0 and out["wcsr"]["majmin"] == 0.0 and out["frame"]["recall_macro"] == 0.0


@pytest.mark.parametrize(("intervals", "labels", "match"), [
    ([[0, 1], [1, 2]], ["C:maj", "C:foo"], r"track 'A' reference segment 1: chord label 'C:foo' is not valid"),
    ([[0, 1]], ["Cb:mj"], r"'Cb:mj' is not valid Harte syntax"),
    ([[0, 1]], [42], "chord label 42 is a int"),
    ([[0, 2], [1, 3]], ["C:maj", "G:maj"], "segment 1 starts at 1.0 before segment 0 ends at 2.0"),
    ([[0, 1], [2, 2]], ["C:maj", "G:maj"], r"segment 1 = \[2.0, 2.0\]: expected finite 0 <= start < end"),
    ([[0, 1]], ["C:maj", "G:maj"], "1 intervals but 2 labels"),
    ([0, 1], ["C:maj"], r"intervals must have shape \(n, 2\)"),
])
def test_bad_reference_raises(intervals, labels, match):
    with pytest.raises(ValueError, match=match):
        chords.evaluate({"A": (np.array(intervals, dtype=float), labels)},
                        {"A": (np.array([[0.0, 1.0]]), ["N"])})


def test_bad_frame_rate_raises():
    with pytest.raises(ValueError, match="frame_rate = 0"):
        chords.evaluate(REF, EST, frame_rate=0)


def write(tmp_path: Path, text: str, name: str = "song.lab") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_load_lab_equals_mir_eval(tmp_path):
    path = write(tmp_path, """\
        # a comment
        0.000000\t1.500000\tN
        1.5 3.25 C:maj/3
        3.25 7.0  A:min7
        """)
    intervals, labels = chords.load_lab(path)
    ref_intervals, ref_labels = mir_eval.io.load_labeled_intervals(str(path))
    np.testing.assert_array_equal(intervals, ref_intervals)
    assert labels == list(ref_labels)
    path.write_text(path.read_text().replace("\n1.5", "\n\n1.5"))  # blank lines are also fine here
    assert chords.load_lab(path)[1] == labels


@pytest.mark.parametrize(("text", "match"), [
    ("0 1 C:maj\n1 2\n", r"bad.lab line 2: expected 'start end label' \(3 whitespace-separated fields\), got 2"),
    ("0 1 C:maj\n1 two G:maj\n", r"bad.lab line 2: end time 'two' is not a number"),
    ("0 1 C:maj\n2 1.5 G:maj\n", r"bad.lab line 2: segment \[2.0, 1.5\]"),
    ("0 2 C:maj\n1.5 3 G:maj\n", "bad.lab line 2: starts at 1.5 before the previous segment ends at 2.0"),
    ("# header\n0 1 C:maj\n1 2 C:foo\n", r"bad.lab line 3: chord label 'C:foo' is not valid Harte syntax"),
    ("0 1 C:maj extra\n", r"bad.lab line 1: expected 'start end label'.*got 4"),
    ("# only a comment\n\n", "bad.lab: no chord segments found"),
])
def test_malformed_lab_raises_naming_file_and_line(tmp_path, text, match):
    path = write(tmp_path, text, "bad.lab")
    with pytest.raises(ValueError, match=match):
        chords.load_lab(path)


def test_load_lab_not_utf8(tmp_path):
    path = tmp_path / "bin.lab"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="bin.lab: not UTF-8 text"):
        chords.load_lab(path)


def test_annotations_from_table_and_segments():
    import pandas as pd

    table = pd.DataFrame({"track_id": ["b", "a", "a"], "start_s": [0.0, 1.0, 0.0],
                          "end_s": [2.0, 2.0, 1.0], "chord": ["N", "G:maj", "C:maj"]})
    out = chords.annotations_from_table(table)
    assert list(out) == ["a", "b"]
    assert out["a"][0].tolist() == [[0.0, 1.0], [1.0, 2.0]] and out["a"][1] == ["C:maj", "G:maj"]
    iv, labels = chords.annotation_from_segments([{"start_s": 1.0, "end_s": 2.0, "label": "A:min"},
                                                  {"start_s": 0.0, "end_s": 1.0, "label": "N"}])
    assert iv.tolist() == [[0.0, 1.0], [1.0, 2.0]] and labels == ["N", "A:min"]


def test_errors_skip_records_invalid_track_and_goes_on():
    ref = {**REF, "bad": (np.array([[0.0, 1.0]]), ["C:foo"])}
    with pytest.warns(MetricWarning, match="invalid annotations skipped"):
        out = chords.evaluate(ref, {**EST, "bad": (np.array([[0.0, 1.0]]), ["N"])}, errors="skip")
    assert list(out["invalid_tracks"]) == ["bad"] and "'C:foo'" in out["invalid_tracks"]["bad"]
    assert out["n_tracks"] == 2 and out["wcsr"]["majmin"] == pytest.approx(8 / 12)
    with pytest.raises(ValueError, match="errors = 'ignore'"):
        chords.evaluate(REF, EST, errors="ignore")
