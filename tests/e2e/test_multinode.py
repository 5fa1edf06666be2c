"""A real multi-node Ray cluster on one machine: every stage as its own ``ray job submit``,
and the worker node killed in the middle of inference.

The cluster is the one of cluster/README.md, "A local multi-node test cluster": a head
(``ray start --head``, advertising a ``head`` resource that pins job drivers, and with them
the Ray Train controller, to it) and one worker node (``ray start --address``), each a
separate raylet with 3 CPUs of its own, token authentication on. Here each runs under
``--block`` in its own session, on free ports and with its own temp dir, so that the test
can kill exactly one node and, even on failure, stop every process it started without
touching any other Ray on the machine (``ray stop`` would stop them all).

The stages then run as five jobs over one shared ``paths.root`` (the demo, all stages in one
job, is tests/e2e/test_job_submit.py's):

- shard;
- train on 2 Ray Train workers of 2 CPUs each: they cannot share a 3-CPU node, so Ray
  Train's default PACK placement puts one on each node, and the CPU left on each node
  feeds Ray Data;
- sweep: a one-trial Ray Tune sweep whose trainer is spread the same way;
- infer with 2 actors while a placeholder job holds the head's CPUs, so both actors (and
  the blocks they read) live on the worker node. Once the driver has written its first
  Parquet part the worker node is SIGKILLed and the placeholder released: Ray Data must
  restart the actors on the head, rebuild the lost blocks, and the job still succeed with
  every track in ``predictions/tracks`` exactly once;
- evaluate.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

from tests.e2e.ray_nodes import BIN, REPO, Node, free_port, short_temp_dir  # noqa: E402

RUN_ID = "multinode"
NODE_CPUS = 3          # on each node
TRAIN_WORKER_CPUS = 2  # 2 × 2 > 3: the two train workers cannot share a node
STAGE_TIMEOUT_S = 420
TRACKS = 62            # the tiny synthetic set below: 6 per genre × 10 genres + 2 broken files
COMMON = ["runtime=cluster", "runtime.progress_bars=false", "dataset.synthetic.tracks_per_class=6",
          "dataset.synthetic.duration_s=6.0"]
TRAIN = ["train.num_workers=2", f"train.cpus_per_worker={TRAIN_WORKER_CPUS}", "train.batch_size=16"]


# ---- the cluster: the ray CLI for what the test is about, the REST API for polling --------

class Cluster:
    def __init__(self, env: dict[str, str], token: str, tmp: Path):
        self.env, self.token, self.tmp, self.nodes = env, token, tmp, {}
        self.ray_tmp = short_temp_dir()
        self.gcs = f"127.0.0.1:{free_port()}"
        self.address = f"http://127.0.0.1:{free_port()}"
        self.root = tmp / "out"
        # Ray's own processes look a cluster up by this when several run on one machine
        # (Ray Train's placement-group cleaner, for one, otherwise fails to choose).
        env["RAY_API_SERVER_ADDRESS"] = self.address

    def start(self) -> None:
        # cluster/README.md's commands, plus --block, free ports and a temp dir per node.
        common = [f"--num-cpus={NODE_CPUS}", "--disable-usage-stats"]
        self.nodes["head"] = Node("head", [
            "--head", f"--port={self.gcs.split(':')[1]}", "--dashboard-host=127.0.0.1",
            f"--dashboard-port={self.address.rsplit(':', 1)[1]}", '--resources={"head": 2}', *common,
            f"--ray-client-server-port={free_port()}", f"--dashboard-agent-listen-port={free_port()}",
            f"--temp-dir={self.ray_tmp / 'head'}"], self.env, self.tmp)
        self.wait_for_nodes(1)
        self.nodes["worker"] = Node("worker", [
            f"--address={self.gcs}", *common, f"--dashboard-agent-listen-port={free_port()}",
            f"--temp-dir={self.ray_tmp / 'worker'}"], self.env, self.tmp)
        self.node_ids = {("head" if n["is_head_node"] else "worker"): n["node_id"] for n in self.wait_for_nodes(2)}

    def stop(self) -> None:
        for node in reversed(list(self.nodes.values())):
            node.stop()
        shutil.rmtree(self.ray_tmp, ignore_errors=True)

    def ray(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        result = subprocess.run([str(BIN / "ray"), *args], env=self.env, cwd=REPO, capture_output=True, text=True,
                                timeout=timeout)
        assert result.returncode == 0, f"ray {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result

    def api(self, path: str):
        """GET from the dashboard's REST API (jobs, state) with the cluster's token."""
        request = urllib.request.Request(f"{self.address}{path}", headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def alive_nodes(self) -> list[dict]:
        try:
            nodes = self.api("/api/v0/nodes?limit=100&detail=true")["data"]["result"]["result"]
        except OSError:  # the dashboard is still starting
            return []
        return [n for n in nodes if n["state"] == "ALIVE"]

    def wait_for_nodes(self, count: int, timeout: float = 120) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node in self.nodes.values():
                if node.proc.poll() is not None:
                    raise AssertionError(f"{node.log.name} exited:\n{node.log.read_text()[-4000:]}")
            if len(nodes := self.alive_nodes()) == count:
                return nodes
            time.sleep(1)
        raise AssertionError(f"the cluster did not reach {count} alive node(s) in {timeout:.0f} s")

    def actors(self, class_part: str) -> list[dict]:
        """Every actor, alive or dead, whose class name contains ``class_part``."""
        actors = self.api("/api/v0/actors?limit=10000&detail=true")["data"]["result"]["result"]
        return [a for a in actors if class_part in a["class_name"]]

    def job_status(self, job: str) -> str:
        return self.api(f"/api/jobs/{job}")["status"]

    def submit(self, stage: str, *overrides: str) -> subprocess.Popen:
        """``ray job submit`` of one stage, its driver pinned to the head; output to job-<stage>.log.

        ``overrides`` come after ``COMMON`` and ``paths.root``; the sweep gets no ``run_id``
        (each trial derives its own).
        """
        job, log_path = f"autotag-{stage}-{time.time_ns()}", self.tmp / f"job-{stage}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [str(BIN / "ray"), "job", "submit", "--address", self.address, "--submission-id", job,
                 "--working-dir", ".", "--entrypoint-resources", '{"head": 1}', "--",
                 "python", "-m", f"pipelines.{stage}", *COMMON, f"paths.root={self.root}",
                 *([] if stage == "sweep" else [f"run_id={RUN_ID}"]), *overrides],
                env=self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        proc.job, proc.log_path = job, log_path
        return proc

    def wait_job(self, proc: subprocess.Popen) -> str:
        """Waits for a submitted job, asserts it succeeded and returns its driver's log."""
        try:
            proc.wait(timeout=STAGE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            subprocess.run([str(BIN / "ray"), "job", "stop", "--no-wait", "--address", self.address, proc.job],
                           env=self.env, capture_output=True, timeout=60)
            proc.kill()
        status, logs = self.job_status(proc.job), self.api(f"/api/jobs/{proc.job}/logs")["logs"]
        assert status == "SUCCEEDED", f"job {proc.job}: {status}\n{logs[-8000:]}"
        return logs

    def run_stage(self, stage: str, *overrides: str) -> str:
        return self.wait_job(self.submit(stage, *overrides))

    @contextmanager
    def head_cpus_held(self):
        """A placeholder job holding all the head's CPUs, so that new work goes to the worker node."""
        job = f"placeholder-{time.time_ns()}"
        self.ray("job", "submit", "--address", self.address, "--submission-id", job, "--no-wait",
                 "--entrypoint-resources", '{"head": 1}', f"--entrypoint-num-cpus={NODE_CPUS}",
                 "--", "python", "-c", "import time; time.sleep(3600)")
        deadline = time.monotonic() + 60
        while self.job_status(job) != "RUNNING":
            assert time.monotonic() < deadline, f"placeholder job {job} did not start"
            time.sleep(0.5)

        def release():
            if self.job_status(job) == "RUNNING":
                self.ray("job", "stop", "--address", self.address, job)
        try:
            yield release
        finally:
            release()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multinode")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "RAY_AUTH_MODE": "token",
           "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    token = subprocess.run([str(BIN / "ray"), "get-auth-token", "--generate"], env=env, capture_output=True,
                           text=True, check=True).stdout.strip()
    cluster = Cluster(env, token, tmp)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


# ---- the stages, in order: each fixture is one job --------------------------------------

@pytest.fixture(scope="module")
def sharded(cluster):
    return cluster.run_stage("shard")


@pytest.fixture(scope="module")
def trained(cluster, sharded):
    return cluster.run_stage("train", *TRAIN, "train.max_epochs=2")


@pytest.fixture(scope="module")
def inferred(cluster, trained):
    """Infer on the worker node only, and SIGKILL that node once the first part is written."""
    tracks_dir = cluster.root / "predictions" / "tracks" / f"run_id={RUN_ID}"
    with cluster.head_cpus_held() as release_head:
        job = cluster.submit("infer", "infer.num_actors=2", "infer.cpus_per_actor=1",
                             "infer.tracks_per_batch=1", "infer.rows_per_file=4")
        deadline = time.monotonic() + STAGE_TIMEOUT_S
        while not any(tracks_dir.glob("part-*.parquet")):
            if job.poll() is not None or time.monotonic() > deadline:
                cluster.wait_job(job)
                raise AssertionError(f"job {job.job} wrote no Parquet part before it ended")
            time.sleep(0.05)
        actors_before = cluster.actors("BatchPredictor")
        cluster.nodes["worker"].kill()
        written = duckdb.sql(f"SELECT count(*) FROM read_parquet('{tracks_dir}/part-*.parquet')").fetchall()[0][0]
        release_head()
        logs = cluster.wait_job(job)
    return {"logs": logs, "written_before_kill": written, "actors_before": actors_before,
            "actors_after": cluster.actors("BatchPredictor"), "tracks_dir": tracks_dir}


def test_the_cluster_has_two_nodes_with_their_own_cpus(cluster):
    nodes = cluster.alive_nodes()
    assert sorted(n["is_head_node"] for n in nodes) == [False, True]
    assert [n["resources_total"]["CPU"] for n in nodes] == [NODE_CPUS, NODE_CPUS]
    assert [n["resources_total"].get("head") for n in nodes if n["is_head_node"]] == [2]


def test_shard_job_writes_the_shards(cluster, sharded):
    assert f"sharded {TRACKS - 2} tracks" in sharded
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{cluster.root}/shards/synthetic_genre/index.parquet')"
                      ).fetchall()[0][0] == TRACKS - 2


def test_train_job_runs_one_worker_on_each_node(cluster, trained):
    assert "training multinode on 2 worker(s)" in trained and "best epoch" in trained
    workers = cluster.actors("RayTrainWorker")
    assert sorted(w["node_id"] for w in workers) == sorted(cluster.node_ids.values()), workers
    assert {c["node_id"] for c in cluster.actors("TrainController")} == {cluster.node_ids["head"]}
    assert (cluster.root / "checkpoints" / RUN_ID / "best" / "meta.json").is_file()


def test_sweep_job_runs_a_one_trial_tune_sweep(cluster, trained):
    """Runs before the infer test, while both nodes are alive: its trial needs both."""
    logs = cluster.run_stage("sweep", "sweep=smoke", "sweep.combinations=[{frontend:lms_conv2d,backend:autopool}]",
                             "sweep.evaluate=false", *TRAIN, "train.max_epochs=1")
    assert "sweep smoke: 1 trials" in logs
    results = cluster.root / "reports" / "sweep-smoke" / "results.parquet"
    assert duckdb.sql(f"SELECT run_id, status FROM read_parquet('{results}')").fetchall() == [
        ("synthetic_genre-lms_conv2d-autopool", "ok")]


def test_infer_job_survives_losing_the_worker_node(cluster, inferred):
    assert f"{TRACKS} tracks to tag" in inferred["logs"]
    # The kill came mid-inference, while the actors were on the node that died ...
    assert 0 < inferred["written_before_kill"] < TRACKS
    assert {a["node_id"] for a in inferred["actors_before"] if a["node_id"]} == {cluster.node_ids["worker"]}
    assert [n["node_id"] for n in cluster.alive_nodes()] == [cluster.node_ids["head"]]
    # ... and Ray restarted them on the head.
    assert any(int(a["num_restarts"]) >= 1 for a in inferred["actors_after"]), inferred["actors_after"]

    manifest = f"read_parquet('{cluster.root}/data/synthetic_genre/manifest.parquet')"
    tracks = f"read_parquet('{inferred['tracks_dir']}/part-*.parquet')"
    assert duckdb.sql(f"SELECT count(*), count(DISTINCT track_id) FROM {tracks}").fetchall()[0] == (TRACKS, TRACKS)
    assert duckdb.sql(f"SELECT count(*) FROM {manifest} m JOIN {tracks} t USING (track_id)").fetchall()[0][0] == TRACKS
    assert duckdb.sql(f"SELECT status, count(*) FROM {tracks} GROUP BY 1 ORDER BY 1").fetchall() == [
        ("error", 2), ("ok", TRACKS - 2)]
    tags = f"read_parquet('{cluster.root}/predictions/tags/run_id={RUN_ID}/*.parquet')"
    assert duckdb.sql(f"SELECT count(*), count(DISTINCT (track_id, tag)) FROM {tags}").fetchall()[0] == (600, 600)


def test_evaluate_job_reports_on_the_test_split(cluster, inferred):
    logs = cluster.run_stage("evaluate")
    metrics = json.loads((cluster.root / "reports" / RUN_ID / "metrics.json").read_text())
    coverage = metrics["runs"][RUN_ID]["coverage"]
    # The two broken files are test tracks: error rows, hence no score to evaluate.
    assert (coverage["evaluated_tracks"], coverage["missing_predictions"]) == (20, 2), logs[-3000:]
