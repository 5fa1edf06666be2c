"""The four stages with every input and output on a real S3 endpoint (moto, on localhost).

Manifest and audio are uploaded to a bucket; shard writes its tars, index, errors and
sidecars there; train reads the shards from it and keeps Ray Train's storage and the
published checkpoint there; infer tags the ``s3://<bucket>/music/`` prefix into prediction
tables there, is killed once midway and resumed; evaluate reads them and writes its report
there. Nothing of the run lands on the local disk.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from autotag import storage
from autotag.data import manifest, synthetic
from autotag.data.synthetic.spec import SyntheticSpec
from pipelines import evaluate, infer, shard, train
from pipelines.common import load_config

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CLASSES, PER_CLASS = 10, 4


def upload_dataset(local: Path, bucket: str) -> tuple[str, list[dict]]:
    """Render a small synthetic genre set locally, upload its audio under ``<bucket>/music/``
    (``<track_id>.<ext>``, so a listing of the prefix finds the manifest's ids) and its manifest
    (audio paths rewritten to the URIs) to ``<bucket>/manifest.parquet``."""
    spec = SyntheticSpec(kind="genre", tracks_per_class=PER_CLASS, duration_s=4.0, seed=0,
                         sample_rates=(22050, 44100), channels=(1, 2), formats=("wav", "flac"), corrupt_tracks=0)
    rows = manifest.read(synthetic.generate(local, spec)).to_pylist()
    for row in rows:
        uri = f"{bucket}/music/{row['track_id']}{Path(row['audio_path']).suffix}"
        storage.atomic_write_bytes(uri, Path(row["audio_path"]).read_bytes())
        row["audio_path"] = uri
    location = f"{bucket}/manifest.parquet"
    manifest.write(manifest.build_table(rows), location)
    return location, rows


def overrides(bucket: str, manifest_uri: str) -> list[str]:
    return ["dataset=manifest", f"dataset.manifest={manifest_uri}", "dataset.name=s3genre", "dataset.label_key=genre",
            f"paths.root={bucket}/autotag", "shard.tracks_per_shard=10", "train.batch_size=16", "train.max_epochs=2",
            "train.patience=2", "train.num_workers=1", "infer.tracks_per_batch=2", "infer.rows_per_file=4",
            f"infer.input={bucket}/music/", "runtime.progress_bars=false", "run_id=s3run"]


def objects(uri: str) -> list[str]:
    """Every object key under ``uri`` (relative), straight from the endpoint."""
    return sorted(storage.relative_files(uri))


@pytest.fixture(scope="module")
def s3_run(ray_session, tmp_path_factory, s3_endpoint):
    import boto3

    bucket = "s3://autotag-e2e"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket[5:])
    manifest_uri, rows = upload_dataset(tmp_path_factory.mktemp("render"), bucket)
    args = overrides(bucket, manifest_uri)
    cfg = load_config(args)
    results = {"cfg": cfg, "rows": rows, "bucket": bucket, "args": args}
    results["shard"] = shard.run(cfg)
    results["train"] = train.run(cfg)
    results["killed_at"] = kill_infer_midway(cfg, args)
    results["infer"] = infer.run(cfg)
    results["evaluate"] = evaluate.run(cfg)
    return results


def kill_infer_midway(cfg, args: list[str]) -> int:
    """Run ``pipelines.infer`` in a child, SIGKILL it once its first ``tracks`` part is on S3;
    returns the tracks written by then."""
    env = {**os.environ, "RAY_ADDRESS": "local", "RAY_USAGE_STATS_ENABLED": "0"}
    tracks = f"{cfg.paths.predictions}/tracks/run_id={cfg.run_id}"
    child = subprocess.Popen([sys.executable, "-m", "pipelines.infer", *args, "runtime.num_cpus=2"], cwd=REPO,
                             env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while child.poll() is None and time.monotonic() < deadline and not _parts(tracks):
            time.sleep(0.05)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    return sum(pq.read_table(p.path, filesystem=_fs()).num_rows for p in _parts(tracks))


def _fs() -> pafs.FileSystem:
    return storage.filesystem_and_path("s3://autotag-e2e")[0]


def _parts(uri: str) -> list[pafs.FileInfo]:
    try:
        return [i for i in storage.list_files(uri) if i.base_name.startswith("part-")]
    except FileNotFoundError:
        return []


def test_shards_index_errors_and_sidecars_are_on_s3(s3_run):
    summary, bucket = s3_run["shard"], s3_run["bucket"]
    assert summary["tracks"] == CLASSES * PER_CLASS and summary["errors"] == 0
    assert summary["index"] == f"{bucket}/autotag/shards/s3genre/index.parquet"
    keys = objects(f"{bucket}/autotag/shards/s3genre")
    assert "index.parquet" in keys and "errors.parquet" in keys
    assert len([k for k in keys if k.endswith(".tar")]) == summary["tars"] >= 4
    assert len([k for k in keys if k.endswith(".json")]) == summary["shards"]
    index = storage.read_table(summary["index"]).to_pylist()
    assert sorted(r["track_id"] for r in index) == sorted(r["track_id"] for r in s3_run["rows"])
    assert all(r["path"].startswith(f"{bucket}/autotag/shards/s3genre/") for r in index)


def test_a_shard_rerun_on_s3_skips_every_finished_shard_and_rewrites_no_tar(s3_run):
    cfg, summary = s3_run["cfg"], s3_run["shard"]
    before = {i.path: i.mtime for i in storage.list_files(cfg.paths.shards) if i.path.endswith(".tar")}
    again = shard.run(cfg)
    assert again["skipped_shards"] == again["shards"] == summary["shards"] and again["tracks"] == summary["tracks"]
    assert {i.path: i.mtime for i in storage.list_files(cfg.paths.shards) if i.path.endswith(".tar")} == before


def test_training_keeps_its_run_and_best_checkpoint_on_s3(s3_run):
    result, bucket = s3_run["train"], s3_run["bucket"]
    assert result["best_checkpoint"] == f"{bucket}/autotag/checkpoints/s3run/best"
    assert result["epochs_run"] == 2
    keys = objects(f"{bucket}/autotag/checkpoints/s3run")
    assert {"best/model.safetensors", "best/meta.json", "history.parquet"} <= set(keys)
    assert any(k.startswith("checkpoint_") and k.endswith("/meta.json") for k in keys)  # Ray Train's storage
    meta = json.loads(storage.location(f"{result['best_checkpoint']}/meta.json").read_text())
    assert meta["epoch"] == result["best_epoch"] and len(meta["task"]["vocabulary"]) == CLASSES


def test_infer_killed_midway_resumes_with_every_track_exactly_once(s3_run):
    cfg, result = s3_run["cfg"], s3_run["infer"]
    total = CLASSES * PER_CLASS
    assert 0 < s3_run["killed_at"] < total, "the first attempt was not killed midway"
    assert result["tracks_skipped"] == s3_run["killed_at"] and result["tracks_ok"] == total - s3_run["killed_at"]
    tracks = storage.read_table(f"{cfg.paths.predictions}/tracks/run_id=s3run/part-00000.parquet")
    assert tracks.num_rows > 0
    filesystem, root = storage.filesystem_and_path(cfg.paths.predictions)
    rows = pq.ParquetDataset(f"{root}/tracks/run_id=s3run", filesystem=filesystem).read().to_pylist()
    ids = [r["track_id"] for r in rows]
    assert len(ids) == len(set(ids)) == total and {r["status"] for r in rows} == {"ok"}
    assert all(r["audio_path"].startswith(f"{s3_run['bucket']}/music/") for r in rows)
    tags = pq.ParquetDataset(f"{root}/tags/run_id=s3run", filesystem=filesystem).read()
    assert tags.num_rows == total * CLASSES
    assert not [k for k in objects(cfg.paths.predictions) if storage.TMP_MARK in k]  # no partial object left


def test_evaluate_reads_the_predictions_and_writes_the_report_on_s3(s3_run):
    result, bucket = s3_run["evaluate"], s3_run["bucket"]
    assert result["report"] == f"{bucket}/autotag/reports/s3run/report.html"
    keys = objects(f"{bucket}/autotag/reports/s3run")
    assert {"metrics.json", "metrics.parquet", "report.html"} <= set(keys)
    metrics = json.loads(storage.location(result["metrics_json"]).read_text())
    assert metrics["runs"]["s3run"]["coverage"]["evaluated_tracks"] == len(
        [r for r in s3_run["rows"] if r["split"] == "test"])


def _readme_sql(pattern: str) -> str:
    readme = (REPO / "README.md").read_text()
    return re.search(pattern, readme, re.S).group(1)


def test_the_readme_s3_query_runs_on_the_predictions_through_pyarrow(s3_run):
    """The README's DuckDB query over the predictions on S3, with pyarrow reading the objects
    (DuckDB's httpfs extension is downloaded at run time, which this machine cannot do)."""
    select = _readme_sql(r"```sql\nINSTALL httpfs.*?\n(SELECT tag AS genre.*?;)\n```")
    filesystem, root = storage.filesystem_and_path(s3_run["cfg"].paths.predictions)
    tags = ds.dataset(f"{root}/tags", filesystem=filesystem, format="parquet", partitioning="hive")
    query = re.sub(r"FROM read_parquet\([^)]*\)", "FROM tags", select).replace("'demo'", "'s3run'")
    connection = duckdb.connect()
    connection.register("tags", tags)
    counts = connection.execute(query).fetchall()
    assert sum(n for _, n in counts) == CLASSES * PER_CLASS  # one predicted genre per track
    assert counts == sorted(counts, key=lambda row: -row[1])


def test_the_readme_httpfs_query_reads_s3_directly_where_the_extension_loads(s3_run, s3_endpoint):
    connection = duckdb.connect()
    try:
        connection.execute("LOAD httpfs")
    except duckdb.Error as exc:
        pytest.skip(f"DuckDB's httpfs extension is not installed here and cannot be downloaded ({exc})"[:200])
    select = _readme_sql(r"```sql\nINSTALL httpfs.*?\n(SELECT tag AS genre.*?;)\n```")
    connection.execute(f"CREATE SECRET s3 (TYPE s3, KEY_ID 'autotag-test', SECRET 'autotag-test', REGION 'us-east-1', "
                       f"ENDPOINT '{s3_endpoint.removeprefix('http://')}', URL_STYLE 'path', USE_SSL false)")
    query = select.replace("s3://bucket/autotag", f"{s3_run['bucket']}/autotag").replace("'demo'", "'s3run'")
    assert sum(n for _, n in connection.execute(query).fetchall()) == CLASSES * PER_CLASS
