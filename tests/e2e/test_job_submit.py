"""A real cluster path: ``ray start --head`` (token auth on), ``ray job submit`` of the demo,
then the Parquet output read back with DuckDB, and the head stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import duckdb
import pytest

from tests.e2e.ray_nodes import BIN, REPO, Node, free_port, short_temp_dir

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def ray_cli(*args: str, env: dict[str, str], timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(BIN / "ray"), *args], env=env, cwd=REPO, capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"ray {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    """A Ray head on free local ports with token authentication; exactly its processes are stopped."""
    temp_dir = short_temp_dir()
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "RAY_AUTH_MODE": "token",
           "RAY_USAGE_STATS_ENABLED": "0"}
    ray_cli("get-auth-token", "--generate", env=env)
    gcs, dashboard = free_port(), free_port()
    address = f"http://127.0.0.1:{dashboard}"
    env["RAY_API_SERVER_ADDRESS"] = address  # several Ray instances may run on this machine
    node = Node("head", ["--head", f"--port={gcs}", "--num-cpus=2", "--dashboard-host=127.0.0.1",
                         f"--dashboard-port={dashboard}", f"--ray-client-server-port={free_port()}",
                         f"--dashboard-agent-listen-port={free_port()}", f"--temp-dir={temp_dir}",
                         "--disable-usage-stats"], env, temp_dir)
    try:
        deadline = time.monotonic() + 120
        while ray_cli("job", "list", "--address", address, env=env, timeout=60, check=False).returncode != 0:
            assert node.proc.poll() is None, node.log.read_text()[-4000:]
            assert time.monotonic() < deadline, "the head's job server did not come up"
            time.sleep(1)
        yield {"env": env, "address": address, "gcs": f"127.0.0.1:{gcs}"}
    finally:
        node.stop()
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_submitting_without_the_token_is_refused(head):
    env = {**head["env"], "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "not-the-token"}
    result = ray_cli("job", "list", "--address", head["address"], env=env, timeout=60, check=False)
    assert result.returncode != 0


def test_demo_job_succeeds_and_its_parquet_is_queryable(head, tmp_path):
    root = tmp_path / "out"
    submission = f"autotag-e2e-{int(time.time())}"
    result = ray_cli(
        "job", "submit", "--address", head["address"], "--submission-id", submission, "--working-dir", ".",
        "--", "python", "-m", "pipelines.demo", "runtime=cluster", f"paths.root={root}",
        "dataset.synthetic.tracks_per_class=6", "dataset.synthetic.duration_s=6.0", "train.batch_size=16",
        "train.max_epochs=2", "runtime.progress_bars=false", env=head["env"], timeout=900, check=False)
    status = ray_cli("job", "status", "--address", head["address"], submission, env=head["env"], check=False)
    assert f"Job '{submission}' succeeded" in status.stdout, f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    assert "autotag demo finished" in result.stdout
    assert "TrainingReport(" not in result.stdout + result.stderr  # Ray Train's reports stay in Ray's logs

    tracks = duckdb.sql(f"SELECT status, count(*) FROM read_parquet('{root}/predictions/tracks/*/*.parquet') "
                        "GROUP BY status ORDER BY status").fetchall()
    assert tracks == [("error", 2), ("ok", 60)]
    genres = duckdb.sql(f"SELECT count(DISTINCT tag) FROM read_parquet('{root}/predictions/tags/*/*.parquet')"
                        ).fetchall()[0][0]
    assert genres == 10
    metrics = json.loads((root / "reports" / "demo" / "metrics.json").read_text())
    assert metrics["runs"]["demo"]["coverage"]["evaluated_tracks"] == 20
