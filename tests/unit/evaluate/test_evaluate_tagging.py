"""Tag metrics: equal to direct scikit-learn calls, hand-computed cases, degenerate columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score

from autotag.evaluate import tagging
from autotag.evaluate.common import MetricWarning

TAGS = ["rock", "piano", "female", "slow", "techno"]


@pytest.fixture()
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    y = (rng.random((60, len(TAGS))) < 0.3).astype(int)
    y[0], y[1] = 1, 0  # every column has both classes
    score = np.clip(0.5 * y + rng.random(y.shape) * 0.7, 0, 1)
    return y, score


def test_equals_sklearn(data):
    y, s = data
    thr = np.array([0.3, 0.4, 0.5, 0.6, 0.7])
    out = tagging.evaluate(y, s, TAGS, thresholds=thr)
    assert out["roc_auc_macro"] == pytest.approx(roc_auc_score(y, s, average="macro"), abs=1e-12)
    assert out["roc_auc_micro"] == pytest.approx(roc_auc_score(y, s, average="micro"), abs=1e-12)
    assert out["pr_auc_macro"] == pytest.approx(average_precision_score(y, s, average="macro"), abs=1e-12)
    assert out["pr_auc_micro"] == pytest.approx(average_precision_score(y, s, average="micro"), abs=1e-12)
    per_roc = roc_auc_score(y, s, average=None)
    assert [out["per_label"]["roc_auc"][t] for t in TAGS] == pytest.approx(per_roc, abs=1e-12)
    pred = s >= thr
    p, r, f, sup = precision_recall_fscore_support(y, pred, average=None, zero_division=0)
    assert [out["per_label"]["precision"][t] for t in TAGS] == pytest.approx(p, abs=1e-12)
    assert [out["per_label"]["recall"][t] for t in TAGS] == pytest.approx(r, abs=1e-12)
    assert [out["per_label"]["f1"][t] for t in TAGS] == pytest.approx(f, abs=1e-12)
    assert [out["per_label"]["support"][t] for t in TAGS] == list(sup)
    for avg in ("macro", "micro"):
        p, r, f, _ = precision_recall_fscore_support(y, pred, average=avg, zero_division=0)
        assert (out[f"precision_{avg}"], out[f"recall_{avg}"], out[f"f1_{avg}"]) == pytest.approx((p, r, f))
    assert out["excluded_tags"] == {} and out["n_tags_evaluated"] == len(TAGS)
    assert all(type(v) is float for k, v in out.items() if k.endswith(("_macro", "_micro")))


def test_y_pred_matches_thresholds(data):
    y, s = data
    by_thr = tagging.evaluate(y, s, TAGS, thresholds={t: 0.5 for t in TAGS})
    by_pred = tagging.evaluate(y, s, TAGS, y_pred=s >= 0.5)
    assert by_pred["f1_macro"] == by_thr["f1_macro"]
    assert "threshold" not in by_pred["per_label"] and by_thr["per_label"]["threshold"]["rock"] == 0.5


def test_perfect_prediction_scores_one(data):
    y, _ = data
    out = tagging.evaluate(y, y.astype(float), TAGS)
    for key in ("roc_auc_macro", "roc_auc_micro", "pr_auc_macro", "pr_auc_micro", "precision_macro",
                "recall_macro", "f1_macro", "precision_micro", "recall_micro", "f1_micro"):
        assert out[key] == 1.0, key


def test_hand_computed_auc_and_ap():
    # positives scored 0.9 and 0.7, negatives 0.8 and 0.1: 3 of 4 pairs ordered -> AUC 0.75;
    # ranks P N P N: precision 1/1 then 2/3 at the positives -> AP (1 + 2/3) / 2.
    y = np.array([[1], [0], [1], [0]])
    s = np.array([[0.9], [0.8], [0.7], [0.1]])
    out = tagging.evaluate(y, s, ["x"], thresholds=0.85)
    assert out["roc_auc_macro"] == pytest.approx(0.75)
    assert out["pr_auc_macro"] == pytest.approx((1 + 2 / 3) / 2)
    # threshold 0.85: only 0.9 predicted (a TP) -> precision 1, recall 1/2, F1 2/3
    assert (out["precision_macro"], out["recall_macro"], out["f1_macro"]) == pytest.approx((1, 0.5, 2 / 3))
    assert out["per_label"]["support"] == {"x": 2}


def test_constant_columns_excluded_with_warning(data):
    y, s = data
    y = y.copy()
    y[:, 1] = 0  # piano: no positive
    y[:, 3] = 1  # slow: no negative
    with pytest.warns(MetricWarning, match="single class"):
        out = tagging.evaluate(y, s, TAGS)
    assert out["excluded_tags"] == {"piano": "no positive example", "slow": "no negative example"}
    keep = [0, 2, 4]
    assert out["roc_auc_macro"] == pytest.approx(roc_auc_score(y[:, keep], s[:, keep], average="macro"))
    assert out["pr_auc_micro"] == pytest.approx(average_precision_score(y[:, keep], s[:, keep], average="micro"))
    assert set(out["per_label"]["roc_auc"]) == {"rock", "female", "techno"}
    assert out["n_tags_evaluated"] == 3
    assert not any(np.isnan(v) for k, v in out.items() if isinstance(v, float))


def test_all_columns_constant_gives_zero_not_nan():
    y = np.zeros((4, 2), dtype=int)
    with pytest.warns(MetricWarning):
        out = tagging.evaluate(y, np.full((4, 2), 0.3), ["a", "b"])
    assert out["roc_auc_macro"] == 0.0 and out["f1_micro"] == 0.0 and out["n_tags_evaluated"] == 0


def test_never_predicted_tag_warns(data):
    y, s = data
    with pytest.warns(MetricWarning, match="never predicted"):
        out = tagging.evaluate(y, s, TAGS, thresholds=[0.5, 0.5, 0.5, 0.5, 2.0])
    assert out["per_label"]["precision"]["techno"] == 0.0


@pytest.mark.parametrize(
    ("y", "s", "tags", "kwargs", "match"),
    [
        (np.ones((3, 2)), np.ones((3, 3)), ["a", "b"], {}, r"y_score shape \(3, 3\) differs"),
        (np.array([[1, 2]]), np.ones((1, 2)), ["a", "b"], {}, r"y_true\[0, 1\] = .*2.*expected 0 or 1"),
        (np.ones((2, 2)), np.array([[0.1, np.nan], [0.2, 0.3]]), ["a", "b"], {}, r"y_score\[0, 1\]"),
        (np.ones((2, 2)), np.ones((2, 2)), ["a", "a"], {}, "duplicate names"),
        (np.ones((2, 2)), np.ones((2, 2)), ["a"], {}, "expected 2 names"),
        (np.ones(3), np.ones(3), ["a"], {}, "2-D"),
        (np.ones((2, 2)), np.ones((2, 2)), ["a", "b"], {"thresholds": [0.5]}, "expected a scalar or 2"),
        (np.ones((2, 2)), np.ones((2, 2)), ["a", "b"], {"thresholds": {"a": 0.5}}, r"no value for tag\(s\) \['b'\]"),
    ],
)
def test_malformed_input_raises(y, s, tags, kwargs, match):
    with pytest.raises(ValueError, match=match):
        tagging.evaluate(y, s, tags, **kwargs)


def test_matrices_from_table():
    predictions = pd.DataFrame({
        "run_id": "r", "track_id": ["t2", "t2", "t1", "t1", "t9", "t9"],
        "tag": ["rock", "piano"] * 3, "score": [0.9, 0.2, 0.1, 0.8, 0.5, 0.5],
        "predicted": [True, False, False, True, True, False]})
    truth = {"t1": ["piano"], "t2": ["rock"], "t3": ["rock"]}
    tracks, y, s, pred = tagging.matrices_from_table(predictions, truth, tags=["rock", "piano"])
    assert tracks == ["t1", "t2"]
    assert y.tolist() == [[False, True], [True, False]]
    assert s.tolist() == [[0.1, 0.8], [0.9, 0.2]]
    assert pred.tolist() == [[False, True], [True, False]]
    with pytest.raises(ValueError, match=r"track 't1'.*\['drums'\] not in the vocabulary"):
        tagging.matrices_from_table(predictions, {"t1": ["drums"]}, tags=["rock", "piano"])
    with pytest.raises(ValueError, match="duplicate row for track 't1', tag 'rock'"):
        tagging.matrices_from_table(pd.concat([predictions, predictions.iloc[[2]]]), truth)
