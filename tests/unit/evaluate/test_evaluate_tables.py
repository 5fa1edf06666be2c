"""metrics.json + metrics.parquet: long-table rules, round trip, atomic writes."""

from __future__ import annotations

import json
from collections import OrderedDict

import numpy as np
import pyarrow.parquet as pq
import pytest

from autotag.evaluate import tables
from autotag.evaluate.common import MetricWarning, to_jsonable

METRICS = {
    "tagging": OrderedDict(
        n_tracks=10, roc_auc_macro=np.float64(0.8), excluded_tags={"piano": "no positive example"},
        per_label={"roc_auc": {"rock": 0.9, "jazz": np.float32(0.7)}, "support": {"rock": 3, "jazz": 4}}),
    "chords": {"wcsr": {"majmin": 0.6}, "per_track": {"majmin": {"t1": 0.5, "t2": 0.7}}},
    "classification": {"confusion_matrix": [[1, 2], [3, 4]], "labels": ["a", "b"], "accuracy": 0.5},
}


def test_flatten_rules():
    rows = set(tables.flatten(METRICS))
    assert ("tagging.roc_auc_macro", "", 0.8) in rows
    assert ("tagging.n_tracks", "", 10.0) in rows
    assert ("tagging.roc_auc", "rock", 0.9) in rows
    assert ("tagging.support", "jazz", 4.0) in rows
    assert ("chords.wcsr.majmin", "", 0.6) in rows
    assert ("chords.per_track.majmin", "t2", 0.7) in rows
    assert ("classification.accuracy", "", 0.5) in rows
    assert not any("confusion" in m or "excluded" in m or "labels" in m for m, _, _ in rows)
    assert len(rows) == 10


def test_write_and_read_back(tmp_path):
    metrics = {"run-a": METRICS, "run-b": {"tagging": {"roc_auc_macro": 0.7}}}
    paths = tables.write_metrics(tmp_path / "out", metrics, metadata={"dataset": "synthetic", "split": "test"})
    document = json.loads(paths["json"].read_text())
    assert document["metadata"] == {"dataset": "synthetic", "split": "test"}
    assert document["runs"]["run-a"]["tagging"]["per_label"]["roc_auc"]["jazz"] == pytest.approx(0.7)
    assert document["runs"]["run-a"]["classification"]["confusion_matrix"] == [[1, 2], [3, 4]]
    table, metadata = tables.read_metrics_table(paths["parquet"])
    assert metadata == {"dataset": "synthetic", "split": "test"}
    assert pq.read_schema(paths["parquet"]).names == ["run_id", "metric", "label", "value"]
    assert str(pq.read_schema(paths["parquet"]).field("value").type) == "double"
    assert len(table) == 11
    row = table[(table.run_id == "run-a") & (table.metric == "tagging.roc_auc") & (table.label == "rock")]
    assert row.value.tolist() == [0.9]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["metrics.json", "metrics.parquet"]


def test_results_table_across_runs(tmp_path):
    long = tables.metrics_table({"b": {"tagging": {"roc_auc_macro": 0.7, "pr_auc_macro": 0.2}},
                                 "a": {"tagging": {"roc_auc_macro": 0.8, "pr_auc_macro": 0.3}}})
    wide = tables.results_table(long, ["tagging.roc_auc_macro", "tagging.pr_auc_macro"])
    assert wide.columns.tolist() == ["run_id", "tagging.roc_auc_macro", "tagging.pr_auc_macro"]
    assert wide.values.tolist() == [["a", 0.8, 0.3], ["b", 0.7, 0.2]]
    with pytest.raises(ValueError, match=r"metric\(s\) \['tagging.nope'\] not in any run"):
        tables.results_table(long, ["tagging.nope"])


def test_non_finite_value_raises_before_anything_is_written(tmp_path):
    tables.write_metrics(tmp_path, {"r": {"x": 1.0}})
    before = (tmp_path / "metrics.json").read_bytes()
    with pytest.raises(ValueError, match=r"run 'r' metric 'tagging.auc' label '': value nan is not finite"):
        tables.write_metrics(tmp_path, {"r": {"tagging": {"auc": float("nan")}}})
    assert (tmp_path / "metrics.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "metrics.parquet"]


def test_bad_run_id_raises():
    with pytest.raises(ValueError, match="run_id ''"):
        tables.metrics_table({"": {"x": 1.0}})


def test_to_jsonable_casts_numpy_and_warns_on_nan():
    assert to_jsonable({"a": np.float64(0.5), "b": np.int64(3), "c": np.array([1.0, 2.0]), "d": np.bool_(True)}) \
        == {"a": 0.5, "b": 3, "c": [1.0, 2.0], "d": True}
    with pytest.warns(MetricWarning, match=r"metrics.x is nan"):
        assert to_jsonable({"x": float("nan")}) == {"x": None}
    with pytest.raises(TypeError, match="metrics.y: cannot write a object"):
        to_jsonable({"y": object()})
