"""Offline checks of cluster/runtime_env.yaml and cluster/requirements.txt.

The runtime_env goes through the same code as
``ray job submit --working-dir . --runtime-env cluster/runtime_env.yaml``: Ray's CLI
helper ``parse_runtime_env_args`` reads it, ``RuntimeEnv(**cfg)`` validates every
field (the job SDK calls it before sending), and after the working directory is
uploaded, ``_validate_no_local_paths`` must pass. Nothing is started.

``RuntimeEnv`` silently treats unknown top-level keys as plugin names, so the known
fields are checked explicitly too.
"""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from ray.dashboard.modules.dashboard_sdk import parse_runtime_env_args
from ray.runtime_env import RuntimeEnv
from ray.runtime_env.runtime_env import RuntimeEnvConfig, _validate_no_local_paths

REPO = Path(__file__).resolve().parents[3]
RUNTIME_ENV = REPO / "cluster" / "runtime_env.yaml"
REQUIREMENTS = REPO / "cluster" / "requirements.txt"
# What JobSubmissionClient puts in place of a local working_dir after uploading it.
UPLOADED_URI = "gcs://_ray_pkg_0123456789abcdef.zip"


def _raw() -> dict:
    return yaml.safe_load(RUNTIME_ENV.read_text())


def _requirements() -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in REQUIREMENTS.read_text().splitlines())
    return [line for line in lines if line]


def test_parses_like_ray_job_submit_and_validates():
    submitted = parse_runtime_env_args(runtime_env=str(RUNTIME_ENV), working_dir=str(REPO))
    RuntimeEnv(**copy.deepcopy(submitted))
    submitted["working_dir"] = UPLOADED_URI
    _validate_no_local_paths(RuntimeEnv(**submitted))


def test_only_known_fields():
    raw = _raw()
    assert set(raw) <= RuntimeEnv.known_fields, set(raw) - RuntimeEnv.known_fields
    assert set(raw["config"]) <= RuntimeEnvConfig.known_fields
    assert set(raw["pip"]) <= {"packages", "pip_check", "pip_install_options", "pip_version"}


def test_no_dependency_on_files_outside_the_repo():
    raw = _raw()
    assert "working_dir" not in raw and "py_modules" not in raw, "--working-dir . supplies the code"
    assert isinstance(raw["pip"]["packages"], list), "inline pins, not a requirements-file path"
    text = RUNTIME_ENV.read_text()
    assert "/work/" not in text and "../" not in text and "shared/" not in text


def test_env_vars_are_strings():
    assert all(isinstance(v, str) for v in _raw()["env_vars"].values())


def test_pip_pins_equal_requirements_txt_and_exclude_ray():
    packages = _raw()["pip"]["packages"]
    assert packages == _requirements()
    for spec in packages:
        requirement = Requirement(spec)
        assert requirement.name.lower() != "ray", "the cluster's own Ray must never be reinstalled"
        assert re.fullmatch(r"==\d+(\.\d+)*", str(requirement.specifier)), f"{spec}: pin exactly"


def test_torch_and_torchaudio_are_2_11():
    pins = {Requirement(s).name: str(Requirement(s).specifier) for s in _requirements()}
    assert pins["torch"].startswith("==2.11.") and pins["torchaudio"].startswith("==2.11.")


def test_pins_satisfy_pyproject_and_cover_every_runtime_dependency():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = {}
    for spec in _requirements():
        requirement = Requirement(spec)
        pins[requirement.name.lower().replace("_", "-")] = str(requirement.specifier)[2:]
    for dependency in project["dependencies"]:
        requirement = Requirement(dependency)
        name = requirement.name.lower().replace("_", "-")
        if name == "ray":
            assert requirement.specifier.contains("2.60.0")
            continue
        assert name in pins, f"{dependency} from pyproject.toml is not pinned in {REQUIREMENTS.name}"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} violates {dependency}"


@pytest.mark.parametrize("pattern", [".git", ".venv"])
def test_heavy_local_folders_are_never_uploaded(pattern):
    assert pattern in _raw()["excludes"]
