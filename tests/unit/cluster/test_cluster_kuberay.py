"""Offline checks of the KubeRay manifests in cluster/kuberay/ against KubeRay v1.6.2.

There is no CRD schema in the Ray wheel, so the fixture
``kuberay_v1_6_2_crd_subset.json`` (next to this file) holds a trimmed, attributed
copy of the ``ray.io/v1`` fields of KubeRay v1.6.2: every object our manifests use
lists all of its v1.6.2 fields with ``additionalProperties: false``, so an unknown or
misspelt key is rejected, as the API server's structural-schema pruning would
silently drop it. Pod templates are checked for the key container fields.

The security tests enforce what the cluster design promises: token authentication
from a Kubernetes Secret, nothing exposed through a public Service or Ingress.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml
from ray.runtime_env import RuntimeEnv

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
KUBERAY = REPO / "cluster" / "kuberay"
MANIFESTS = ["raycluster.yaml", "rayjob.yaml"]
SCHEMA_FILE = HERE / "kuberay_v1_6_2_crd_subset.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _load(name: str) -> dict:
    docs = [d for d in yaml.safe_load_all((KUBERAY / name).read_text()) if d]
    assert len(docs) == 1, f"{name}: expected one document, got {len(docs)}"
    return docs[0]


def _cluster_spec(manifest: dict) -> dict:
    spec = manifest["spec"]
    return spec["rayClusterSpec"] if manifest["kind"] == "RayJob" else spec


def _pod_specs(cluster_spec: dict) -> dict[str, dict]:
    pods = {"head": cluster_spec["headGroupSpec"]["template"]["spec"]}
    for group in cluster_spec.get("workerGroupSpecs", []):
        pods[group["groupName"]] = group["template"]["spec"]
    return pods


def _errors(validator, document) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_fixture_names_its_version_and_source():
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["x-kuberay-version"] == "v1.6.2"
    attribution = json.dumps(schema["x-attribution"])
    assert "ray-project/kuberay" in attribution and "v1.6.2" in attribution


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_matches_kuberay_v1_6_2_fields(name, validator):
    assert _errors(validator, _load(name)) == []


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda m: m["spec"].__setitem__("workerGroupSpec", []), "workerGroupSpec"),
        (lambda m: m["spec"]["headGroupSpec"]["rayStartParams"].__setitem__("num-cpus", 4), "is not of type 'string'"),
        (lambda m: m["spec"]["authOptions"].__setitem__("mode", "tokens"), "tokens"),
        (lambda m: m["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0].__setitem__(
            "imagePullPolice", "Always"), "imagePullPolice"),
        (lambda m: m["spec"]["workerGroupSpecs"][0].pop("groupName"), "groupName"),
    ],
    ids=["unknown-spec-key", "non-string-rayStartParam", "bad-auth-mode", "container-typo", "missing-groupName"],
)
def test_fixture_rejects_bad_raycluster(mutate, expected, validator):
    manifest = copy.deepcopy(_load("raycluster.yaml"))
    mutate(manifest)
    errors = _errors(validator, manifest)
    assert any(expected in e for e in errors), errors


def test_fixture_rejects_bad_rayjob(validator):
    manifest = copy.deepcopy(_load("rayjob.yaml"))
    manifest["spec"]["submissionMode"] = "K8sMode"
    manifest["spec"]["shutdownAfterJobFinish"] = True
    errors = " ".join(_errors(validator, manifest))
    assert "K8sMode" in errors and "shutdownAfterJobFinish" in errors


@pytest.mark.parametrize("name", MANIFESTS)
def test_token_auth_from_a_secret(name):
    cluster_spec = _cluster_spec(_load(name))
    assert cluster_spec["authOptions"] == {"mode": "token", "secretName": "autotag-ray-auth"}
    for pod in _pod_specs(cluster_spec).values():
        for container in pod["containers"]:
            for env in container.get("env", []):
                if env["name"].startswith("RAY_AUTH_TOKEN"):
                    assert "value" not in env, "a token must come from a Secret, not a literal"


@pytest.mark.parametrize("name", MANIFESTS)
def test_nothing_is_exposed_publicly(name):
    cluster_spec = _cluster_spec(_load(name))
    head = cluster_spec["headGroupSpec"]
    assert head["serviceType"] == "ClusterIP"
    assert not head.get("enableIngress", False)
    assert "headService" not in head
    assert "LoadBalancer" not in json.dumps(_load(name)), "no LoadBalancer Service anywhere"
    for pod in _pod_specs(cluster_spec).values():
        assert not pod.get("hostNetwork", False)


@pytest.mark.parametrize("name", MANIFESTS)
def test_ray_version_and_one_image_everywhere(name):
    cluster_spec = _cluster_spec(_load(name))
    assert cluster_spec["rayVersion"] == ray.__version__ == "2.60.0"
    images = {c["image"] for p in _pod_specs(cluster_spec).values() for c in p["containers"]}
    assert len(images) == 1, images


@pytest.mark.parametrize("name", MANIFESTS)
def test_worker_groups_gpu_and_cpu_decode(name):
    cluster_spec = _cluster_spec(_load(name))
    groups = {g["groupName"]: g for g in cluster_spec["workerGroupSpecs"]}
    assert set(groups) == {"gpu", "cpu-decode"}
    for group in groups.values():
        assert group["minReplicas"] == 0 < group["maxReplicas"]
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    gpu_limits = groups["gpu"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    cpu_limits = groups["cpu-decode"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert int(gpu_limits["nvidia.com/gpu"]) >= 1
    assert "nvidia.com/gpu" not in cpu_limits
    assert cluster_spec["enableInTreeAutoscaling"] is True


def _gibibytes(quantity: str) -> float:
    units = {"Gi": 1.0, "Mi": 1 / 1024}
    for suffix, scale in units.items():
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * scale
    raise ValueError(f"unexpected quantity {quantity!r}: expected Gi or Mi")


@pytest.mark.parametrize("name", MANIFESTS)
def test_object_store_shm_is_memory_backed_and_below_the_limit(name):
    for group, pod in _pod_specs(_cluster_spec(_load(name))).items():
        volumes = {v["name"]: v for v in pod["volumes"]}
        container = pod["containers"][0]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        shm = volumes[mounts["/dev/shm"]]["emptyDir"]
        assert shm["medium"] == "Memory", group
        memory_limit = _gibibytes(container["resources"]["limits"]["memory"])
        assert 0.25 * memory_limit <= _gibibytes(shm["sizeLimit"]) <= 0.5 * memory_limit, group


def test_rayjob_cluster_is_the_raycluster_spec():
    # One definition of the cluster shape; a change to one file must go to both.
    assert _load("rayjob.yaml")["spec"]["rayClusterSpec"] == _load("raycluster.yaml")["spec"]


def test_rayjob_entrypoint_and_runtime_env():
    spec = _load("rayjob.yaml")["spec"]
    assert spec["entrypoint"].startswith("python -m pipelines.")
    assert "runtime=cluster" in spec["entrypoint"] and "paths.root=" in spec["entrypoint"]
    assert not any(op in spec["entrypoint"] for op in ("&&", ";", "|")), "the submitter shell would split it"
    runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert set(runtime_env) <= RuntimeEnv.known_fields
    RuntimeEnv(**runtime_env)  # raises on anything `ray job submit` would refuse
    assert spec["submissionMode"] == "K8sJobMode"
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] > 0
    assert json.loads(spec["entrypointResources"]) == {"head": 1}
    assert spec["rayClusterSpec"]["headGroupSpec"]["resources"]["head"] != "0"
