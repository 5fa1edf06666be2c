"""A real multi-node Ray cluster on one machine: every stage as its own ``ray job submit``,
and a worker node killed in the middle of inference.

The cluster is the one of cluster/README.md, "A local multi-node test cluster": a head
(``ray start --head``, advertising a ``head`` resource that pins job drivers and hence the
Ray Train controller to it) and one worker node (``ray start --address``), each a separate
raylet with its own CPUs, token authentication on. Here each runs under ``--block`` in its
own session, on free ports and with its own temp dir, so the test can kill exactly one
node's processes and cleans up everything it started, even on failure, without touching
any other Ray on the machine (``ray stop`` would stop them all).

The stages then run as four jobs over one shared ``paths.root``:

- shard;
- train on 2 Ray Train workers that cannot share a node: each asks for 2 CPUs and every
  node has 3 (Ray Train packs by default; a bundle that does not fit spills to the other
  node, and the CPU left on each node feeds Ray Data);
- infer with 2 actors (Ray Data spreads them), during which the worker node is SIGKILLed
  once the first Parquet part is written; the job must still succeed with every track in
  ``predictions/tracks`` exactly once;
- evaluate.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
RUN_ID = "multinode"
NODE_CPUS = 3          # per node; a 2-CPU train worker leaves 1 CPU there for Ray Data
TRAIN_WORKER_CPUS = 2  # 2 × 2 > 3: the two train workers cannot share a node
STAGE_TIMEOUT_S = 420
# The demo's tiny settings: 62 tracks (60 + 2 broken files), 2 epochs.
COMMON = ["runtime=cluster", f"run_id={RUN_ID}", "runtime.progress_bars=false",
          "dataset.synthetic.tracks_per_class=6", "dataset.synthetic.duration_s=6.0"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- processes: a node is the process tree of its `ray start --block` ---------------------

def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat: tells a pid apart from a later process reusing it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def process_tree(root: int) -> dict[int, str]:
    """``{pid: start time}`` of ``root`` and all its descendants (raylet, agents, workers, drivers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if (started := _start_time(pid)) is not None:
            tree[pid] = started
            todo.extend(children.get(pid, []))
    return tree


def kill_tree(tree: dict[int, str]) -> None:
    """SIGKILL every process of a snapshot that is still the same process."""
    for pid, started in tree.items():
        if _start_time(pid) == started:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class Node:
    """One ``ray start --block`` (head or worker) and its log."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path):
        self.name, self.log = name, log_dir / f"ray-start-{name}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([str(BIN / "ray"), "start", "--block", *args], env=env, cwd=REPO,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self) -> None:
        """Lose the node: SIGKILL its raylet, agents and workers at once, like a dead machine."""
        kill_tree(process_tree(self.proc.pid))
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM (``ray start --block`` then stops its processes), then SIGKILL what is left."""
        tree = process_tree(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        kill_tree({**tree, **process_tree(self.proc.pid)})
        self.proc.wait(timeout=30)


# ---- the cluster and the ray CLI ---------------------------------------------------------

class Cluster:
    def __init__(self, env: dict[str, str], tmp: Path):
        self.env, self.tmp, self.nodes = env, tmp, {}
        self.gcs = f"127.0.0.1:{free_port()}"
        self.dashboard_port = free_port()
        self.address = f"http://127.0.0.1:{self.dashboard_port}"

    def ray(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([str(BIN / "ray"), *args], env=self.env, cwd=REPO, capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"ray {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n"
                                 f"{result.stderr}")
        return result

    def start(self) -> None:
        # The same flags as cluster/README.md, plus free ports and private temp dirs.
        common = ["--node-ip-address=127.0.0.1", f"--num-cpus={NODE_CPUS}", "--disable-usage-stats",
                  f"--dashboard-agent-listen-port={free_port()}"]
        self.nodes["head"] = Node("head", [
            "--head", f"--port={self.gcs.split(':')[1]}", "--dashboard-host=127.0.0.1",
            f"--dashboard-port={self.dashboard_port}", f"--ray-client-server-port={free_port()}",
            '--resources={"head": 2}', f"--temp-dir={self.tmp / 'head'}", *common], self.env, self.tmp)
        self.wait_for_nodes(1)
        common[-1] = f"--dashboard-agent-listen-port={free_port()}"
        self.nodes["worker"] = Node("worker", [
            f"--address={self.gcs}", f"--temp-dir={self.tmp / 'worker'}", *common], self.env, self.tmp)
        nodes = self.wait_for_nodes(2)
        self.node_ids = {("head" if n["is_head_node"] else "worker"): n["node_id"] for n in nodes}

    def stop(self) -> None:
        for node in reversed(list(self.nodes.values())):
            node.stop()

    def alive_nodes(self) -> list[dict]:
        result = self.ray("list", "nodes", "--address", self.address, "--filter", "state=ALIVE", "--format",
                          "json", check=False)
        try:
            return json.loads(result.stdout) if result.returncode == 0 else []
        except json.JSONDecodeError:  # "No resource in the cluster" while the node registers
            return []

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
        """Every actor (alive or dead) whose class name contains ``class_part``."""
        result = self.ray("list", "actors", "--address", self.address, "--detail", "--format", "json",
                          "--limit", "10000")
        return [a for a in json.loads(result.stdout) if class_part in a["class_name"]]

    def submit(self, stage: str, *overrides: str) -> subprocess.Popen:
        """``ray job submit`` of one stage, the driver pinned to the head; logs go to a file."""
        job = f"autotag-{stage}-{int(time.time())}"
        log_path = self.tmp / f"job-{stage}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [str(BIN / "ray"), "job", "submit", "--address", self.address, "--submission-id", job,
                 "--working-dir", ".", "--entrypoint-resources", '{"head": 1}', "--",
                 "python", "-m", f"pipelines.{stage}", *COMMON, f"paths.root={self.tmp / 'out'}", *overrides],
                env=self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        proc.job, proc.log_path = job, log_path
        return proc

    def wait_job(self, proc: subprocess.Popen) -> str:
        """Waits for the job; asserts it succeeded and returns its driver log."""
        try:
            proc.wait(timeout=STAGE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.ray("job", "stop", "--address", self.address, proc.job, check=False)
            proc.kill()
        status = self.ray("job", "status", "--address", self.address, proc.job, check=False)
        logs = self.ray("job", "logs", "--address", self.address, proc.job, check=False).stdout
        assert f"Job '{proc.job}' succeeded" in status.stdout, (
            f"{status.stdout}\n{status.stderr}\n--- job logs ---\n{logs[-6000:]}\n--- submit ---\n"
            f"{proc.log_path.read_text()[-3000:]}")
        return logs

    def run_stage(self, stage: str, *overrides: str) -> str:
        return self.wait_job(self.submit(stage, *overrides))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multinode")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "RAY_AUTH_MODE": "token",
           "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    subprocess.run([str(BIN / "ray"), "get-auth-token", "--generate"], env=env, capture_output=True, check=True)
    cluster = Cluster(env, tmp)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


# ---- the stages, in order; each fixture is one job --------------------------------------

@pytest.fixture(scope="module")
def sharded(cluster):
    return cluster.run_stage("shard")


@pytest.fixture(scope="module")
def trained(cluster, sharded):
    return cluster.run_stage("train", "train.num_workers=2", f"train.cpus_per_worker={TRAIN_WORKER_CPUS}",
                             "train.batch_size=16", "train.max_epochs=2")


@pytest.fixture(scope="module")
def inferred(cluster, trained):
    """Infer, SIGKILLing the worker node as soon as the driver has written its first part."""
    tracks_dir = cluster.tmp / "out" / "predictions" / "tracks" / RUN_ID
    job = cluster.submit("infer", "infer.num_actors=2", "infer.cpus_per_actor=1", "infer.tracks_per_batch=1",
                         "infer.rows_per_file=4")
    deadline = time.monotonic() + STAGE_TIMEOUT_S
    while not list(tracks_dir.glob("part-*.parquet")) and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    cluster.nodes["worker"].kill()
    written = duckdb.sql(f"SELECT count(*) FROM read_parquet('{tracks_dir}/part-*.parquet')").fetchall()[0][0] \
        if list(tracks_dir.glob("part-*.parquet")) else 0
    logs = cluster.wait_job(job)
    return {"logs": logs, "tracks_written_before_kill": written, "tracks_dir": tracks_dir}


def manifest_track_ids(cluster) -> set[str]:
    path = cluster.tmp / "out" / "data" / "synthetic_genre" / "manifest.parquet"
    return {row[0] for row in duckdb.sql(f"SELECT track_id FROM read_parquet('{path}')").fetchall()}


def test_the_cluster_has_two_nodes_with_their_own_cpus(cluster):
    nodes = cluster.alive_nodes()
    assert sorted(n["is_head_node"] for n in nodes) == [False, True]
    assert all(n["resources_total"]["CPU"] == NODE_CPUS for n in nodes)
    assert [n["resources_total"].get("head") for n in nodes if n["is_head_node"]] == [2]


def test_shard_job_writes_shards_and_logs_progress(cluster, sharded):
    assert "sharded 60 tracks" in sharded
    assert len(list((cluster.tmp / "out" / "shards" / "synthetic_genre").glob("*/*.tar"))) >= 3


def test_train_job_runs_its_two_workers_on_both_nodes(cluster, trained):
    assert "training multinode on 2 worker(s)" in trained
    workers = cluster.actors("TrainWorker")
    assert {w["node_id"] for w in workers} == set(cluster.node_ids.values()), workers
    controllers = cluster.actors("TrainController")
    assert {c["node_id"] for c in controllers} == {cluster.node_ids["head"]}
    assert (cluster.tmp / "out" / "checkpoints" / RUN_ID / "best" / "meta.json").is_file()


def test_infer_job_survives_losing_the_worker_node(cluster, inferred):
    expected = manifest_track_ids(cluster)
    assert len(expected) == 62
    assert inferred["tracks_written_before_kill"] < len(expected), "inference ended before the node was killed"
    assert "62 tracks to tag" in inferred["logs"]
    assert [n["node_id"] for n in cluster.alive_nodes()] == [cluster.node_ids["head"]]
    tracks = f"read_parquet('{inferred['tracks_dir']}/part-*.parquet')"
    rows = duckdb.sql(f"SELECT track_id FROM {tracks}").fetchall()
    assert len(rows) == len(expected) and {r[0] for r in rows} == expected, "a track is missing or duplicated"
    assert duckdb.sql(f"SELECT status, count(*) FROM {tracks} GROUP BY 1 ORDER BY 1").fetchall() == [
        ("error", 2), ("ok", 60)]
    tags = cluster.tmp / "out" / "predictions" / "tags" / RUN_ID
    assert duckdb.sql(f"SELECT count(*), count(DISTINCT (track_id, tag)) FROM read_parquet('{tags}/*.parquet')"
                      ).fetchall() == [(600, 600)]


def test_evaluate_job_reports_on_the_test_split(cluster, inferred):
    logs = cluster.run_stage("evaluate")
    metrics = json.loads((cluster.tmp / "out" / "reports" / RUN_ID / "metrics.json").read_text())
    coverage = metrics["runs"][RUN_ID]["coverage"]
    assert coverage["evaluated_tracks"] == 20 and coverage["missing_predictions"] == 0, logs[-3000:]
