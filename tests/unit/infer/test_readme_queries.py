"""The README's analyst queries run, unchanged, on tables written by the prediction writer."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import numpy as np
import pytest

from autotag.data.tasks import Task
from autotag.infer.rows import output_tables
from autotag.predictions import PredictionWriter

README = Path(__file__).resolve().parents[3] / "README.md"


def _queries() -> list[str]:
    block = re.search(r"```sql\n(-- 1\..*?)```", README.read_text(), re.S).group(1)
    return [q.strip() for q in block.split(";") if q.strip()]


def _batch(ids, scores, status=None, segments=None):
    n = len(ids)
    status = status or ["ok"] * n
    return {"track_id": np.array(ids, dtype=object),
            "audio_path": np.array([f"/m/{i}.flac" for i in ids], dtype=object),
            "duration_s": np.full(n, 30.0), "status": np.array(status, dtype=object),
            "error": np.array(["" if s == "ok" else "file does not exist" for s in status], dtype=object),
            "scores": np.array(scores, dtype=np.float32),
            "segments": np.array([json.dumps(s) for s in (segments or [[]] * n)], dtype=object),
            "activations": np.array([""] * n, dtype=object)}


@pytest.fixture()
def predictions(tmp_path):
    genre = Task("multiclass", "genre", ("classical", "rock"))
    tags = Task("multilabel", "tags", ("drums", "piano"))
    chords = Task("frame_multiclass", "chords", ("C:maj", "N"))
    for run_id, task, batch in (
        ("demo", genre, _batch(["a", "b", "c"], [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], ["ok", "ok", "ok"])),
        ("tags", tags, _batch(["a", "b", "c", "d"], [[0.7, 0.9], [0.8, 0.1], [0.1, 0.6], [0, 0]],
                              ["ok", "ok", "ok", "error"])),
        ("chords", chords, _batch(["a"], [[0, 0]], segments=[[
            {"start_s": 0.0, "end_s": 90.0, "label": "C:maj", "confidence": 0.9},
            {"start_s": 90.0, "end_s": 120.0, "label": "N", "confidence": 0.8}]])),
    ):
        name = {"multiclass": "tags", "multilabel": "tags", "frame_multiclass": "chords"}[task.kind]
        writer = PredictionWriter(tmp_path / "outputs" / "predictions", run_id, {}, tables=(name,))
        writer.write(output_tables(batch, run_id, task, "m", "/ckpt"))
    return tmp_path


def test_the_five_readme_queries(predictions, monkeypatch):
    monkeypatch.chdir(predictions)
    queries = _queries()
    assert len(queries) == 5
    assert (predictions / "outputs" / "predictions" / "tags" / "run_id=demo").is_dir()  # Hive-style run folders
    assert all("hive_partitioning = true" in q for q in queries)
    results = [duckdb.sql(q).fetchall() for q in queries]
    assert sorted(results[0]) == [("classical", 2), ("rock", 1)]
    assert results[1] == [("a", pytest.approx(0.9, abs=1e-3)), ("c", pytest.approx(0.6, abs=1e-3)),
                          ("b", pytest.approx(0.1, abs=1e-3))]
    assert results[2] == [("C:maj", 1.5, 1), ("N", 0.5, 1)]
    assert [(r[0], r[1], r[3]) for r in results[3]] == [("tags", "d", "file does not exist")]
    assert results[4] == [("a", "classical", ["drums", "piano"])]
