"""Inference from S3 when the store lets it down: an object deleted between the catalogue scan
and its read is an error row naming its URI while every other track is tagged once; a re-run
with ``infer.retry_errors`` after the object is back tags it, still once. The checkpoint is
read from S3 too (untrained: these tests check the plumbing, not what a model learned)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
import torch

from autotag import storage
from autotag.data.tasks import Task
from autotag.infer import inputs
from autotag.models import build_model, checkpoint
from pipelines import infer
from pipelines.common import load_config

pytestmark = pytest.mark.slow
N_TRACKS = 6


def wav_bytes(seed: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, 0.1 * np.random.default_rng(seed).standard_normal(16_000 * 2), 16_000, format="WAV")
    return buffer.getvalue()


@pytest.fixture
def catalogue(s3_bucket, tmp_path):
    """``N_TRACKS`` WAV objects under ``<bucket>/music/`` and an untrained checkpoint under ``<bucket>/ckpt``."""
    for i in range(N_TRACKS):
        storage.atomic_write_bytes(f"{s3_bucket}/music/disc{i % 2}/t{i}.wav", wav_bytes(i))
    torch.manual_seed(0)
    task = Task("multilabel", "tags", ("bass", "drums", "piano"))
    spec = {"frontend": "lms_conv2d", "frontend_params": {}, "backend": "autopool", "backend_params": {}}
    checkpoint.save(tmp_path / "ckpt", build_model("lms_conv2d", "autopool", 3, task="multilabel"),
                    {"model": spec, "task": task.to_dict(), "config": {}, "epoch": 0})
    checkpoint.publish(tmp_path / "ckpt", f"{s3_bucket}/ckpt")
    return s3_bucket


def test_an_object_deleted_after_the_scan_is_an_error_row_naming_its_uri(ray_session, catalogue):
    bucket = catalogue
    scanned = inputs.track_rows(f"{bucket}/music/")  # the catalogue scan: every object is listed
    assert scanned.num_rows == N_TRACKS
    listed = f"{bucket}/scanned.parquet"
    storage.atomic_write_table(scanned, listed)
    gone = f"{bucket}/music/disc1/t3.wav"
    storage.location(gone).unlink()  # deleted between the listing and the read
    args = [f"paths.root={bucket}/out", "run_id=gone", f"infer.checkpoint={bucket}/ckpt", f"infer.input={listed}",
            "infer.tracks_per_batch=2", "infer.rows_per_file=2", "runtime.progress_bars=false"]
    result = infer.run(load_config(args))
    assert (result["tracks_ok"], result["tracks_error"]) == (N_TRACKS - 1, 1)
    tracks = storage.read_table(next(iter(sorted(storage.location(result["tracks_dir"]).glob("part-*")))))
    rows = [r for p in sorted(storage.location(result["tracks_dir"]).glob("part-*.parquet"))
            for r in storage.read_table(p).to_pylist()]
    assert tracks.num_rows >= 1 and len(rows) == N_TRACKS == len({r["track_id"] for r in rows})
    (error,) = [r for r in rows if r["status"] == "error"]
    assert error["track_id"] == "disc1-t3" and error["audio_path"] == gone and "does not exist" in error["error"]

    storage.atomic_write_bytes(gone, wav_bytes(3))  # the object is back: retry just that track
    again = infer.run(load_config([*args, "infer.retry_errors=true"]))
    assert (again["tracks_ok"], again["tracks_error"], again["tracks_skipped"]) == (1, 0, N_TRACKS - 1)
    rows = [r for p in sorted(storage.location(result["tracks_dir"]).glob("part-*.parquet"))
            for r in storage.read_table(p).to_pylist()]
    assert sorted(r["track_id"] for r in rows) == sorted(scanned.column("track_id").to_pylist())
    assert {r["status"] for r in rows} == {"ok"}
