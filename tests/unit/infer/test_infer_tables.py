"""Prediction tables: ranks, decisions, schemas, atomic parts, orphan clean-up, resume set."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq

from autotag.data.tasks import Task
from autotag.infer.rows import tags_rows, tracks_rows
from autotag.predictions import TAGS_SCHEMA, TRACKS_SCHEMA, PredictionWriter


def _batch():
    return {"track_id": np.array(["a", "b", "c"], dtype=object),
            "audio_path": np.array(["/a", "/b", "/c"], dtype=object),
            "duration_s": np.array([10.0, np.nan, 5.0]),
            "status": np.array(["ok", "error", "ok"], dtype=object),
            "error": np.array(["", "file does not exist", ""], dtype=object),
            "scores": np.array([[0.1, 0.7, 0.2], [0, 0, 0], [0.5, 0.2, 0.3]], dtype=np.float32)}


def test_tags_rows_rank_and_argmax_for_multiclass():
    task = Task("multiclass", "genre", ("blues", "jazz", "rock"))
    table = tags_rows(_batch(), "r1", task).to_pylist()
    assert table[0]["track_id"] == "a" and len(table) == 6  # the error track has no tag rows
    by = {(r["track_id"], r["tag"]): r for r in table}
    assert [by[("a", t)]["rank"] for t in ("blues", "jazz", "rock")] == [3, 1, 2]
    assert [by[("c", t)]["predicted"] for t in ("blues", "jazz", "rock")] == [True, False, False]


def test_tags_rows_threshold_for_multilabel():
    task = Task("multilabel", "tags", ("x", "y", "z"), threshold=0.25)
    rows = [r for r in tags_rows(_batch(), "r1", task).to_pylist() if r["predicted"]]
    assert {(r["track_id"], r["tag"]) for r in rows} == {("a", "y"), ("c", "x"), ("c", "z")}


def test_tracks_rows_keep_errors_with_reason():
    table = tracks_rows(_batch(), "r1", "lms_conv2d+autopool", "/ckpt")
    assert table.schema.equals(TRACKS_SCHEMA)
    rows = table.to_pylist()
    assert rows[1]["status"] == "error" and rows[1]["error"] == "file does not exist" and rows[1]["duration_s"] is None
    assert rows[0]["error"] is None


def test_writer_parts_metadata_resume_and_orphans(tmp_path):
    task = Task("multiclass", "genre", ("blues", "jazz", "rock"))
    writer = PredictionWriter(tmp_path, "r1", {"labels": list(task.vocabulary)})
    writer.write({"tracks": tracks_rows(_batch(), "r1", "m", "/c"), "tags": tags_rows(_batch(), "r1", task)})
    assert writer.done_track_ids() == {"a", "b", "c"}
    tags_file = tmp_path / "tags" / "run_id=r1" / "part-00000.parquet"
    assert pq.read_schema(tags_file).metadata[b"autotag.labels"] == b'["blues", "jazz", "rock"]'
    assert pq.read_table(tags_file).schema.remove_metadata().equals(TAGS_SCHEMA)
    # A crash between the tags part and the tracks part leaves an orphan tags part: removed on restart.
    (tmp_path / "tags" / "run_id=r1" / "part-00007.parquet").write_bytes(tags_file.read_bytes())
    (tmp_path / "tags" / "run_id=r1" / ".part-00008.parquet.tmp").write_bytes(b"partial")
    again = PredictionWriter(tmp_path, "r1", {})
    assert sorted(p.name for p in (tmp_path / "tags" / "run_id=r1").iterdir()) == ["part-00000.parquet"]
    assert again.next_part == 1
