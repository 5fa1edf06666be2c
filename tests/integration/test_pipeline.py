"""The four stages on embedded Ray, run once on a small synthetic genre set.

Asserts outcomes: shards and error table, checkpoint contents, the Parquet schemas and
row counts (every track exactly once, error rows for the bad files), learned accuracy
well above chance, DuckDB over the output, and an idempotent re-run of inference.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from autotag.predictions import TAGS_SCHEMA, TRACKS_SCHEMA
from pipelines import evaluate, infer, shard, train
from pipelines.common import load_config

pytestmark = pytest.mark.slow

TRACKS_PER_CLASS = 12
OVERRIDES = [
    f"dataset.synthetic.tracks_per_class={TRACKS_PER_CLASS}", "dataset.synthetic.duration_s=8.0",
    "shard.tracks_per_shard=40", "train.batch_size=16", "train.max_epochs=10", "train.patience=4",
    "runtime.progress_bars=false", "run_id=it",
]


@pytest.fixture(scope="module")
def run(ray_session, tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    cfg = load_config([*OVERRIDES, f"paths.root={root}"])
    results = {"cfg": cfg}
    for name, stage in (("shard", shard), ("train", train), ("infer", infer), ("evaluate", evaluate)):
        results[name] = stage.run(cfg)
    return results


def test_shards_hold_every_good_track_and_errors_name_the_bad_ones(run):
    assert run["shard"]["tracks"] == 10 * TRACKS_PER_CLASS and run["shard"]["errors"] == 2
    errors = pq.read_table(run["shard"]["errors_table"]).to_pylist()
    assert {e["track_id"] for e in errors} == {"corrupt-00000", "corrupt-00001"}
    assert all(e["reason"] and e["audio_path"].endswith(".wav") for e in errors)
    index = pq.read_table(run["shard"]["index"]).to_pandas()
    assert index["track_id"].is_unique and set(index["split"]) == {"train", "valid", "test"}


def test_checkpoint_carries_config_vocabulary_and_history(run):
    meta = json.loads((Path(run["train"]["best_checkpoint"]) / "meta.json").read_text())
    assert meta["task"]["vocabulary"] == sorted(meta["task"]["vocabulary"]) and len(meta["task"]["vocabulary"]) == 10
    assert meta["config"]["train"]["batch_size"] == 16 and meta["model"]["frontend"] == "lms_conv2d"
    assert meta["epoch"] == run["train"]["best_epoch"]
    assert (Path(run["train"]["best_checkpoint"]) / "model.safetensors").exists()
    history = pq.read_table(run["train"]["history"]).to_pandas()
    assert list(history["epoch"]) == list(range(len(history)))
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]


def test_prediction_tables_follow_the_schema_with_every_track_once(run):
    root = run["cfg"].paths.predictions
    tracks = pq.read_table(run["infer"]["tracks_dir"])
    tags = pq.read_table(run["infer"]["tags_dir"])
    assert tracks.schema.remove_metadata().equals(TRACKS_SCHEMA)
    assert tags.schema.remove_metadata().equals(TAGS_SCHEMA)
    n = 10 * TRACKS_PER_CLASS + 2
    assert tracks.num_rows == n and len(set(tracks.column("track_id").to_pylist())) == n
    assert tags.num_rows == 10 * 10 * TRACKS_PER_CLASS
    errors = {r["track_id"]: r for r in tracks.to_pylist() if r["status"] == "error"}
    assert set(errors) == {"corrupt-00000", "corrupt-00001"}
    assert "does not exist" in errors["corrupt-00000"]["error"]
    assert "not a readable audio file" in errors["corrupt-00001"]["error"]
    first = next(Path(run["infer"]["tags_dir"]).glob("*.parquet"))
    labels = json.loads(pq.read_schema(first).metadata[b"autotag.labels"])
    assert len(labels) == 10
    assert Path(root).is_dir()


def test_duckdb_reads_the_output(run):
    root = run["cfg"].paths.predictions
    top = duckdb.sql(f"""
        SELECT tag AS genre, count(*) AS tracks
        FROM read_parquet('{root}/tags/*/*.parquet') WHERE predicted GROUP BY tag ORDER BY tag""").fetchall()
    assert sum(count for _, count in top) == 10 * TRACKS_PER_CLASS
    failed = duckdb.sql(f"""
        SELECT track_id, error FROM read_parquet('{root}/tracks/*/*.parquet') WHERE status = 'error'
        ORDER BY track_id""").fetchall()
    assert [t for t, _ in failed] == ["corrupt-00000", "corrupt-00001"]
    one_rank_1 = duckdb.sql(f"""
        SELECT count(*) FROM read_parquet('{root}/tags/*/*.parquet') WHERE rank = 1""").fetchall()[0][0]
    assert one_rank_1 == 10 * TRACKS_PER_CLASS


def test_learned_accuracy_is_well_above_chance(run):
    metrics = run["evaluate"]
    assert metrics["evaluated_tracks"] == 10 * (TRACKS_PER_CLASS // 5 + (TRACKS_PER_CLASS % 5 > 0))
    assert metrics["missing_predictions"] == 2  # the two corrupt test tracks
    assert metrics["recall_macro"] >= 0.5, metrics  # chance is 0.10
    report = json.loads(Path(metrics["metrics_json"]).read_text())
    genre = report["runs"]["it"]["genre"]
    assert sum(map(sum, genre["confusion_matrix"])) == metrics["evaluated_tracks"]
    assert (Path(metrics["report_dir"]) / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerunning_inference_adds_nothing(run):
    again = infer.run(run["cfg"])
    assert again["tracks_skipped"] == 10 * TRACKS_PER_CLASS + 2 and again["tracks_ok"] == 0
    tracks = pq.read_table(run["infer"]["tracks_dir"])
    assert tracks.num_rows == len(set(tracks.column("track_id").to_pylist())) == 10 * TRACKS_PER_CLASS + 2
