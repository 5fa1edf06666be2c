"""Offline checks of the `ray up` cluster YAMLs in cluster/ (AWS, GCP).

Each YAML is validated with Ray's own machinery, exactly as `ray up` does before it
touches a cloud API: the JSON schema shipped in the wheel
(``ray/autoscaler/ray-schema.json``, which rejects unknown keys) and
``prepare_config`` + ``validate_config`` (merges the provider defaults, then checks
head type, worker counts and Docker settings). No credentials and no network are
needed; nothing is started.

The remaining tests pin down the properties the project relies on: the node layout
(CPU head, GPU group, CPU decode group), token authentication on every node, a
dashboard bound to localhost only, object-store shared memory per node type, and the
dependency pins being the same as ``cluster/requirements.txt``.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

REPO = Path(__file__).resolve().parents[3]
CLUSTER = REPO / "cluster"
RAY_UP_YAMLS = ["aws.yaml", "gcp.yaml"]
RAY_IMAGE = "rayproject/ray:2.60.0-py311-gpu"
TOKEN_DIR = "/home/ray/.ray-auth"


def _load(name: str) -> dict:
    return yaml.safe_load((CLUSTER / name).read_text())


def _requirements() -> dict[str, str]:
    pins = {}
    for line in (CLUSTER / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower()] = version
    return pins


def _worker_types(cfg: dict) -> dict[str, dict]:
    return {k: v for k, v in cfg["available_node_types"].items() if k != cfg["head_node_type"]}


@pytest.fixture(scope="module")
def ray_schema() -> dict:
    return json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())


@pytest.mark.parametrize("name", RAY_UP_YAMLS)
def test_matches_rays_cluster_schema(name, ray_schema):
    jsonschema.validate(_load(name), ray_schema)


@pytest.mark.parametrize("name", RAY_UP_YAMLS)
def test_passes_rays_prepare_and_validate(name):
    prepared = prepare_config(copy.deepcopy(_load(name)))
    validate_config(prepared)
    assert prepared["head_node_type"] in prepared["available_node_types"]


def test_schema_check_catches_a_misspelt_key(ray_schema):
    cfg = _load("aws.yaml")
    cfg["idle_timeout_minute"] = 5
    with pytest.raises(jsonschema.ValidationError, match="idle_timeout_minute"):
        jsonschema.validate(cfg, ray_schema)


@pytest.mark.parametrize("name", RAY_UP_YAMLS)
def test_node_layout_is_cpu_head_gpu_group_cpu_group(name):
    cfg = _load(name)
    head = cfg["available_node_types"][cfg["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0, "the head must be a CPU node"
    assert head["resources"].get("head", 0) >= 1, "drivers are pinned with the 'head' resource"
    workers = _worker_types(cfg)
    gpu = [n for n, t in workers.items() if t["resources"].get("GPU", 0) > 0]
    cpu = [n for n, t in workers.items() if t["resources"].get("GPU", 0) == 0]
    assert len(gpu) == 1 and len(cpu) == 1, workers.keys()
    for node_type in workers.values():
        assert node_type["min_workers"] == 0 < node_type["max_workers"], "groups must autoscale"
    assert cfg["max_workers"] == sum(t["max_workers"] for t in workers.values())


@pytest.mark.parametrize("name", RAY_UP_YAMLS)
def test_head_is_not_preemptible(name):
    cfg = _load(name)
    node_config = cfg["available_node_types"][cfg["head_node_type"]]["node_config"]
    text = json.dumps(node_config)
    assert "InstanceMarketOptions" not in text and "SPOT" not in text and "preemptible" not in text


@pytest.mark.parametrize("name", RAY_UP_YAMLS)
def test_uses_official_ray_260_image_with_shm_per_node_type(name):
    cfg = _load(name)
    assert cfg["docker"]["image"] == RAY_IMAGE
    assert any(o.startswith("--shm-size=") for o in cfg["docker"]["head_run_options"])
    for node_name, node_type in _worker_types(cfg).items():
        options = node_type["docker"]["worker_run_options"]
        assert any(o.startswith("--shm-size=") for o in options), node_name


@pytest.mark.parametrize("name", RAY_UP_YAMLS)
def test_every_ray_start_uses_token_auth_from_a_mounted_file(name):
    cfg = _load(name)
    assert cfg["file_mounts"] == {TOKEN_DIR: "~/.autotag/ray-auth"}
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        starts = [c for c in cfg[key] if "ray start" in c]
        assert starts, key
        for command in starts:
            assert "RAY_AUTH_MODE=token" in command, (key, command)
            assert f"RAY_AUTH_TOKEN_PATH={TOKEN_DIR}/auth_token" in command, (key, command)
    raw = (CLUSTER / name).read_text()
    assert not re.search(r"RAY_AUTH_TOKEN\s*=", raw), "never write a token into the YAML"


@pytest.mark.parametrize("name", RAY_UP_YAMLS)
def test_dashboard_binds_localhost_only(name):
    cfg = _load(name)
    head_start = " ".join(cfg["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start
    assert "0.0.0.0" not in (CLUSTER / name).read_text()


@pytest.mark.parametrize("name", RAY_UP_YAMLS)
def test_setup_pins_equal_requirements_txt(name):
    cfg = _load(name)
    installs = [c for c in cfg["setup_commands"] if c.startswith("pip install")]
    assert len(installs) == 1
    pins = {}
    for token in shlex.split(installs[0]):
        if "==" in token:
            package, version = token.split("==")
            pins[package.lower()] = version
    assert pins == _requirements()
