"""Shared fixtures: small synthetic audio on disk, one local S3 endpoint and one embedded Ray per test session."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def write_tone(path: Path, sr: int = 22_050, seconds: float = 1.0, channels: int = 1, freq: float = 440.0,
               subtype: str = "PCM_16", fmt: str | None = None) -> Path:
    """A sine tone file (amplitude 0.5) for decode tests."""
    t = np.arange(int(sr * seconds)) / sr
    tone = 0.5 * np.sin(2 * np.pi * freq * t)
    data = np.stack([tone] * channels, axis=1) if channels > 1 else tone
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, sr, subtype=subtype, format=fmt)
    return path


S3_ENV = {"AWS_ACCESS_KEY_ID": "autotag-test", "AWS_SECRET_ACCESS_KEY": "autotag-test", "AWS_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3 endpoint on localhost (moto in server mode), for the whole session.

    The standard AWS variables point at it (``AWS_ENDPOINT_URL`` and test credentials) before
    the session's Ray starts, so Ray's workers inherit them; tests make their own buckets
    (:func:`s3_bucket`). Yields the endpoint URL.
    """
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = {k: os.environ.get(k) for k in (*S3_ENV, "AWS_ENDPOINT_URL")}
    os.environ.update({**S3_ENV, "AWS_ENDPOINT_URL": endpoint})
    yield endpoint
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def s3_bucket(s3_endpoint, request):
    """A new, empty bucket on the session's S3 endpoint; yields ``s3://<name>``."""
    import boto3

    name = "t-" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    name = f"{name}-{os.urandom(3).hex()}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return f"s3://{name}"


@pytest.fixture(scope="session")
def ray_session(s3_endpoint):
    """One embedded 2-CPU Ray instance for every integration test of the session (started after
    the S3 endpoint, so its workers reach it)."""
    import ray
    import ray.data

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, object_store_memory=512 * 1024**2, include_dashboard=False,
                 log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}})
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()
