"""autotag.storage against a real S3 endpoint (moto on localhost): atomic writes, folders,
listing, range reads, and the faults (refused endpoint, missing bucket, throttled and slow
requests) with their retries and one-line errors."""

from __future__ import annotations

import io
import socket
import time

import numpy as np
import pyarrow as pa
import pytest
import soundfile as sf

from autotag import storage
from autotag.data import manifest
from autotag.data.audio import open_audio
from autotag.infer import inputs
from tests.s3_proxy import MisbehavingProxy


@pytest.fixture
def endpoint_env(monkeypatch):
    """Set object-store variables for one test (the session's values come back afterwards)."""

    def set_env(**values: str) -> None:
        for key, value in values.items():
            monkeypatch.setenv(key, value)

    return set_env


def closed_port_url() -> str:
    """An endpoint URL on a localhost port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_atomic_write_shows_no_partial_object_and_leaves_no_temporary(s3_bucket):
    target = f"{s3_bucket}/run/tracks/part-00000.parquet"
    seen_during_write = []

    def write(filesystem, tmp):
        with filesystem.open_output_stream(tmp) as stream:
            stream.write(b"x" * 100_000)
            seen_during_write.append(storage.location(target).exists())

    storage.atomic_write(target, write)
    assert seen_during_write == [False]
    assert storage.location(target).read_bytes() == b"x" * 100_000
    assert list(storage.relative_files(f"{s3_bucket}/run")) == ["tracks/part-00000.parquet"]


def test_a_failed_write_leaves_neither_target_nor_temporary(s3_bucket):
    target = f"{s3_bucket}/out/report.html"

    def write(filesystem, tmp):
        with filesystem.open_output_stream(tmp) as stream:
            stream.write(b"half")
        raise RuntimeError("killed midway")

    with pytest.raises(RuntimeError):
        storage.atomic_write(target, write)
    assert list(storage.relative_files(s3_bucket)) == []


def test_uri_paths_join_list_read_and_delete(s3_bucket):
    root = storage.location(f"{s3_bucket}/predictions")
    assert isinstance(root, storage.UriPath) and not root.exists()
    for name in ("part-00001.parquet", "part-00000.parquet", "_run.json"):
        storage.atomic_write_bytes(root / "tracks" / name, name.encode())
    tracks = root / "tracks"
    assert tracks.is_dir() and not tracks.is_file() and tracks.name == "tracks" and tracks.parent == root
    assert [p.name for p in sorted(tracks.glob("part-*.parquet"))] == ["part-00000.parquet", "part-00001.parquet"]
    assert (tracks / "_run.json").read_text() == "_run.json"
    (tracks / "part-00001.parquet").unlink()
    assert sorted(p.name for p in tracks.iterdir()) == ["_run.json", "part-00000.parquet"]
    storage.remove_tree(tracks)
    assert not tracks.exists() and list(storage.relative_files(s3_bucket)) == []


def test_a_manifest_on_s3_round_trips(s3_bucket):
    rows = [{"track_id": f"t{i}", "audio_path": f"{s3_bucket}/music/t{i}.wav", "split": "train", "genre": "rock"}
            for i in range(3)]
    manifest.write(manifest.build_table(rows), f"{s3_bucket}/manifest.parquet")
    table = manifest.read(f"{s3_bucket}/manifest.parquet")
    assert table.column("track_id").to_pylist() == ["t0", "t1", "t2"]


def test_audio_on_s3_is_read_in_ranges_not_whole(s3_bucket, s3_endpoint, endpoint_env):
    """A 2-minute 44.1 kHz WAV object (10.6 MB) decoded block by block: when the first block
    is out the endpoint has sent a few read-ahead buffers (1 MiB ranged GETs, counted on the
    wire), not the object; then every sample arrives, the object read once."""
    sr = 44_100
    y = (0.1 * np.sin(np.arange(120 * sr) * 2 * np.pi * 440 / sr)).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, y, sr, format="WAV", subtype="PCM_16")
    size = buffer.tell()
    uri = f"{s3_bucket}/long.wav"
    storage.atomic_write_bytes(uri, buffer.getvalue())
    with MisbehavingProxy(s3_endpoint, "pass") as proxy:
        endpoint_env(AWS_ENDPOINT_URL=proxy.url)
        with open_audio(uri) as stream:
            blocks = stream.blocks()
            first = next(blocks)
            fetched_for_first = proxy.bytes_down
            total = len(first) + sum(len(b) for b in blocks)
        fetched = proxy.bytes_down
    assert total == 120 * 22_050 and len(first) < total / 10
    assert fetched_for_first < 4 * 2**20 < size / 2 and size <= fetched < 1.1 * size


def test_refused_endpoint_gives_one_line_errors_after_retrying(s3_bucket, endpoint_env):
    endpoint_env(AWS_ENDPOINT_URL=closed_port_url(), AWS_MAX_ATTEMPTS="2")
    start = time.monotonic()
    with pytest.raises(manifest.ManifestError) as caught:
        manifest.read(f"{s3_bucket}/manifest.parquet")
    message = str(caught.value)
    assert message.startswith(f"manifest {s3_bucket}/manifest.parquet: cannot read (") and "\n" not in message
    assert "connect" in message.lower() or "refused" in message.lower()
    with pytest.raises(inputs.InputError) as listing:
        inputs.track_rows(f"{s3_bucket}/music/")
    assert str(listing.value).startswith(f"infer input {s3_bucket}/music/: cannot list (")
    assert time.monotonic() - start < 30


def test_missing_bucket_is_a_clear_error(s3_endpoint):
    with pytest.raises(manifest.ManifestError, match=r"^manifest s3://no-such-bucket-x/m\.parquet does not exist$"):
        manifest.read("s3://no-such-bucket-x/m.parquet")
    with pytest.raises(inputs.InputError, match=r"^infer input s3://no-such-bucket-x/music: cannot list \(.*bucket"):
        inputs.track_rows("s3://no-such-bucket-x/music")


def _table_on(bucket: str) -> str:
    uri = f"{bucket}/t.parquet"
    storage.atomic_write_table(pa.table({"x": list(range(10))}), uri)
    return uri


def test_a_throttled_request_is_retried(s3_bucket, s3_endpoint, endpoint_env):
    uri = _table_on(s3_bucket)
    with MisbehavingProxy(s3_endpoint, "throttle", bad_connections=2) as proxy:
        endpoint_env(AWS_ENDPOINT_URL=proxy.url, AWS_MAX_ATTEMPTS="4")
        assert storage.read_table(uri).column("x").to_pylist() == list(range(10))
        assert proxy.connections >= 3  # two answered 503 SlowDown, then through


def test_throttling_past_the_retry_budget_is_a_clear_error(s3_bucket, s3_endpoint, endpoint_env):
    uri = _table_on(s3_bucket)
    with MisbehavingProxy(s3_endpoint, "throttle", bad_connections=100) as proxy:
        endpoint_env(AWS_ENDPOINT_URL=proxy.url, AWS_MAX_ATTEMPTS="2")
        with pytest.raises(manifest.ManifestError, match=r"cannot read \(.*HTTP status 503"):
            manifest.read(uri)
        assert proxy.connections == 2


def test_a_stalled_request_times_out_and_is_retried(s3_bucket, s3_endpoint, endpoint_env):
    uri = _table_on(s3_bucket)
    with MisbehavingProxy(s3_endpoint, "slow", bad_connections=1, delay_s=4.0) as proxy:
        endpoint_env(AWS_ENDPOINT_URL=proxy.url, AWS_MAX_ATTEMPTS="3", AUTOTAG_S3_REQUEST_TIMEOUT_S="1")
        start = time.monotonic()
        assert storage.read_table(uri).column("x").to_pylist() == list(range(10))
        assert time.monotonic() - start < 4.0 and proxy.connections >= 2


def test_bad_retry_settings_are_refused_in_one_line(s3_endpoint, endpoint_env):
    endpoint_env(AWS_MAX_ATTEMPTS="three")
    with pytest.raises(ValueError, match=r"^environment variable AWS_MAX_ATTEMPTS='three': expected a number$"):
        storage.filesystem_and_path("s3://any-bucket/x")


def test_object_store_env_sets_only_what_is_given():
    assert storage.object_store_env() == {}
    assert storage.object_store_env("http://127.0.0.1:9000", 5, 2.5) == {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_MAX_ATTEMPTS": "5", "AUTOTAG_S3_REQUEST_TIMEOUT_S": "2.5"}
    assert "AWS_ENDPOINT_URL" not in storage.object_store_env(max_attempts=2)


def test_runtime_config_keys_reach_the_filesystem(s3_endpoint, monkeypatch):
    from pipelines.common import load_config, use_object_store_settings

    for key in ("AWS_MAX_ATTEMPTS", "AUTOTAG_S3_REQUEST_TIMEOUT_S"):  # absent again after the test
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)  # restored after the test
    cfg = load_config([f"runtime.s3_endpoint={closed_port_url()}", "runtime.s3_max_attempts=5",
                       "runtime.s3_request_timeout_s=2.5"])
    env = use_object_store_settings(cfg.runtime)
    assert env == {"AWS_ENDPOINT_URL": cfg.runtime.s3_endpoint, "AWS_MAX_ATTEMPTS": "5",
                   "AUTOTAG_S3_REQUEST_TIMEOUT_S": "2.5"}
    filesystem, path = storage.filesystem_and_path("s3://bucket/key.parquet")
    options = filesystem.__reduce__()[1][0]  # the options the filesystem was made with
    assert path == "bucket/key.parquet" and options["request_timeout"] == 2.5
    assert options["endpoint_override"] == cfg.runtime.s3_endpoint.removeprefix("http://")
    assert options["scheme"] == "http"


def test_a_stage_facing_a_refused_endpoint_ends_in_one_line(s3_bucket, endpoint_env, capsys, tmp_path):
    from pipelines import evaluate

    endpoint_env(AWS_ENDPOINT_URL=closed_port_url(), AWS_MAX_ATTEMPTS="1")
    code = evaluate.main([f"paths.root={s3_bucket}/autotag", "run_id=r", f"dataset.manifest={tmp_path}/m.parquet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("error: object store: ")
    assert "NETWORK_CONNECTION" in err[0] or "connect" in err[0].lower()
