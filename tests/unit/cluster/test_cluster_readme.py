"""cluster/README.md covers what operators need and stays in step with cluster/.

Checks that the guide names every file in cluster/, shows how to submit every stage,
explains token auth, dashboard access and a local multi-node cluster, and keeps the
"Cost/time estimate" section tied to measured benchmark numbers, with prices marked as
assumptions.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
CLUSTER = REPO / "cluster"
README = (CLUSTER / "README.md").read_text()
STAGES = ["shard", "train", "sweep", "infer", "evaluate", "demo"]


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"section '## {title}' is missing"
    return match.group(1)


def test_every_cluster_file_is_described():
    files = [p.relative_to(CLUSTER).as_posix() for p in CLUSTER.rglob("*") if p.is_file()]
    missing = [f for f in files if f != "README.md" and f"`{f}`" not in README and f"`{Path(f).name}`" not in README]
    assert missing == []


@pytest.mark.parametrize("stage", STAGES)
def test_shows_how_to_submit_each_stage(stage):
    assert f"python -m pipelines.{stage} runtime=cluster paths.root=" in README


@pytest.mark.parametrize(
    "needle",
    [
        "ray job submit --address http://127.0.0.1:8265 --working-dir .",
        "RAY_AUTH_MODE=token",
        "ray get-auth-token --generate",
        "ray start --head",
        "ray start --address=",
        "--dashboard-host=127.0.0.1",
        "kubectl port-forward",
        "ray dashboard cluster/",
        "KubeRay operator **v1.6.2**",
        "--shm-size",
        "--object-spilling-directory",
        "s3://",
        "gs://",
    ],
)
def test_mentions(needle):
    assert needle in README


def test_cost_section_names_its_benchmarks_and_marks_prices_as_assumptions():
    section = _section("Cost/time estimate")
    assert "benchmarks.infer_rtf" in section and "benchmarks.shard_throughput" in section
    assert "assumption" in section.lower()
    assert "| 1 M |" in section and "| 100 M |" in section
