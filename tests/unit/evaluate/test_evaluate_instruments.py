"""Instrument metrics: frame level equal to scikit-learn, hand-computed segment matching."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import precision_recall_fscore_support

from autotag.evaluate import instruments
from autotag.evaluate.common import MetricWarning

VOCAB = ["piano", "guitar", "drums"]


def random_segments(rng: np.random.Generator, duration: float) -> list[tuple[float, float, str]]:
    out = []
    for name in VOCAB:
        for _ in range(rng.integers(1, 4)):
            start = rng.uniform(0, duration - 1)
            out.append((start, min(duration, start + rng.uniform(0.5, 5)), name))
    return out


def frames_by_hand(segments, times):
    return np.array([[any(s <= t < e and lab == name for s, e, lab in segments) for name in VOCAB]
                     for t in times])


def test_frame_level_equals_sklearn():
    rng = np.random.default_rng(11)
    refs = {f"t{i}": random_segments(rng, 12.0) for i in range(4)}
    ests = {f"t{i}": random_segments(rng, 12.0) for i in range(4)}
    durations = {track: 12.0 for track in refs}
    out = instruments.evaluate(refs, ests, VOCAB, frame_rate=20, durations=durations)["frame"]
    times = np.arange(240) / 20
    y_ref = np.concatenate([frames_by_hand(refs[t], times) for t in sorted(refs)])
    y_est = np.concatenate([frames_by_hand(ests[t], times) for t in sorted(refs)])
    p, r, f, support = precision_recall_fscore_support(y_ref, y_est, average=None, zero_division=0)
    for j, name in enumerate(VOCAB):
        assert out["per_label"]["precision"][name] == pytest.approx(p[j], abs=1e-12)
        assert out["per_label"]["recall"][name] == pytest.approx(r[j], abs=1e-12)
        assert out["per_label"]["f1"][name] == pytest.approx(f[j], abs=1e-12)
        assert out["per_label"]["support"][name] == support[j]
    for avg in ("macro", "micro"):
        p, r, f, _ = precision_recall_fscore_support(y_ref, y_est, average=avg, zero_division=0)
        assert (out[f"precision_{avg}"], out[f"recall_{avg}"], out[f"f1_{avg}"]) == pytest.approx((p, r, f))
    assert out["n_frames"] == 4 * 240


def test_perfect_prediction_scores_one():
    refs = {"a": [(0.0, 5.0, "piano"), (2.0, 9.0, "drums")], "b": [(1.0, 3.0, "guitar")]}
    out = instruments.evaluate(refs, refs, VOCAB, frame_rate=10)
    for level in ("frame", "segment"):
        for key in ("precision_macro", "recall_macro", "f1_macro", "precision_micro", "recall_micro", "f1_micro"):
            assert out[level][key] == 1.0, (level, key)


def test_segment_matching_hand_computed():
    ref = {"a": [(0.0, 5.0, "piano"), (5.0, 10.0, "piano"),  # touching: merged into 0-10
                 (0.0, 4.0, "guitar"), (6.0, 10.0, "guitar"), (2.0, 3.0, "drums")]}
    est = {"a": [(1.0, 10.0, "piano"),  # IoU 0.9 with 0-10: match
                 (0.0, 10.0, "guitar"),  # IoU 0.4 with each guitar segment: no match
                 (2.2, 3.0, "drums"), (5.0, 6.0, "drums")]}  # IoU 0.8: match; one false alarm
    out = instruments.evaluate(ref, est, VOCAB, frame_rate=10)["segment"]
    assert out["per_label"]["precision"] == pytest.approx({"piano": 1.0, "guitar": 0.0, "drums": 0.5})
    assert out["per_label"]["recall"] == pytest.approx({"piano": 1.0, "guitar": 0.0, "drums": 1.0})
    assert out["per_label"]["f1"]["drums"] == pytest.approx(2 / 3)
    assert out["precision_micro"] == pytest.approx(2 / 4)  # 2 matches, 4 estimated segments
    assert out["recall_micro"] == pytest.approx(2 / 4)  # 2 matches, 4 merged reference segments
    lenient = instruments.evaluate(ref, est, VOCAB, frame_rate=10, min_iou=0.4)["segment"]
    assert lenient["per_label"]["recall"]["guitar"] == pytest.approx(0.5)  # one-to-one: 1 of 2


def test_absent_instrument_excluded_with_warning():
    ref = {"a": [(0.0, 4.0, "piano")]}
    est = {"a": [(0.0, 4.0, "piano"), (1.0, 2.0, "drums")]}
    with pytest.warns(MetricWarning, match="never active in the reference"):
        out = instruments.evaluate(ref, est, VOCAB, frame_rate=10)
    for level in ("frame", "segment"):
        assert out[level]["excluded"] == {"guitar": "never active in the reference",
                                          "drums": "never active in the reference"}
        assert out[level]["recall_macro"] == 1.0 and set(out[level]["per_label"]["f1"]) == {"piano"}


def test_missing_estimate_counts_as_silence():
    with pytest.warns(MetricWarning) as record:
        out = instruments.evaluate({"a": [(0.0, 2.0, "piano")]}, {}, VOCAB, frame_rate=10)
    messages = [str(w.message) for w in record]
    assert any("no estimate" in m for m in messages) and any("never estimated" in m for m in messages)
    assert out["frame"]["recall_micro"] == 0.0 and out["segment"]["recall_micro"] == 0.0


@pytest.mark.parametrize(("segments", "match"), [
    ([(0.0, 1.0, "banjo")], r"track 'a' reference segment 0: instrument 'banjo' is not in the vocabulary"),
    ([(2.0, 1.0, "piano")], r"segment 0: \[2.0, 1.0\]: expected finite 0 <= start < end"),
    ([(0.0, "x", "piano")], "segment 0: times 0.0, 'x' are not numbers"),
    ([(0.0, 1.0)], r"segment 0: expected \(start_s, end_s, label\)"),
])
def test_malformed_segments_raise(segments, match):
    with pytest.raises(ValueError, match=match):
        instruments.evaluate({"a": segments}, {"a": []}, VOCAB, frame_rate=10)


def test_bad_parameters_raise():
    ref = {"a": [(0.0, 1.0, "piano")]}
    with pytest.raises(ValueError, match="min_iou = 0"):
        instruments.evaluate(ref, ref, VOCAB, frame_rate=10, min_iou=0)
    with pytest.raises(ValueError, match="frame_rate = -1"):
        instruments.evaluate(ref, ref, VOCAB, frame_rate=-1)


def test_dict_segments_and_table():
    import pandas as pd

    ref = {"a": [{"start_s": 0.0, "end_s": 2.0, "label": "piano"}]}
    table = pd.DataFrame({"run_id": "r", "track_id": ["a"], "start_s": [0.0], "end_s": [2.0],
                          "instrument": ["piano"], "confidence": [0.9]})
    est = instruments.segments_from_table(table)
    assert est == {"a": [(0.0, 2.0, "piano")]}
    assert instruments.evaluate(ref, est, ["piano"], frame_rate=10)["segment"]["f1_micro"] == 1.0


def test_errors_skip_records_invalid_track_and_goes_on():
    refs = {"a": [(0.0, 2.0, "piano")], "b": [(0.0, 2.0, "banjo")]}
    with pytest.warns(MetricWarning, match="invalid annotations skipped"):
        out = instruments.evaluate(refs, refs, ["piano"], frame_rate=10, errors="skip")
    assert list(out["invalid_tracks"]) == ["b"] and "'banjo'" in out["invalid_tracks"]["b"]
    assert out["n_tracks"] == 1 and out["frame"]["f1_micro"] == 1.0
