"""Static checks of cluster/Dockerfile (no Docker engine is needed or used).

The Dockerfile is parsed into instructions (line continuations joined, comments
dropped) and checked for what the cluster relies on: the official Ray 2.60 GPU base
image, the pinned torch/torchaudio 2.11 from cluster/requirements.txt, the project
installed, a non-root user, and no secret baked in.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
DOCKERFILE = REPO / "cluster" / "Dockerfile"
DOCKERIGNORE = REPO / "cluster" / "Dockerfile.dockerignore"


def _instructions() -> list[tuple[str, str]]:
    logical, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    assert not current, "Dockerfile ends inside a line continuation"
    result = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def _of(keyword: str) -> list[str]:
    return [rest for kw, rest in _instructions() if kw == keyword]


def test_single_stage_from_the_official_ray_2_60_gpu_image():
    assert _of("FROM") == ["rayproject/ray:2.60.0-py311-gpu"]
    assert _instructions()[0][0] == "FROM"


def test_installs_the_pinned_requirements():
    runs = " ".join(_of("RUN"))
    assert "pip install --no-cache-dir -r cluster/requirements.txt" in runs
    requirements = (REPO / "cluster" / "requirements.txt").read_text()
    assert re.search(r"^torch==2\.11\.\d+$", requirements, re.M)
    assert re.search(r"^torchaudio==2\.11\.\d+$", requirements, re.M)


def test_installs_the_project_and_checks_versions():
    runs = " ".join(_of("RUN"))
    assert re.search(r"pip install [^&]*-e \.", runs), "the project must be installed"
    assert "ray.__version__ == '2.60.0'" in runs
    assert "torch.__version__.startswith('2.11.')" in runs


def test_copies_everything_the_install_needs():
    copied = set()
    for rest in _of("COPY"):
        parts = [p for p in shlex.split(rest) if not p.startswith("--")]
        copied.update(parts[:-1])
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    expected = {"cluster/requirements.txt", "pyproject.toml", project["readme"], "autotag", "pipelines", "conf"}
    assert expected <= copied, expected - copied
    for source in copied - {project["readme"], "conf"}:
        # README.md and conf/ may not exist yet in a fresh checkout; the build needs them.
        assert (REPO / source).exists(), f"COPY source {source} is missing from the repository"


def test_build_context_ignores_everything_else():
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    patterns = [line for line in lines if line and not line.startswith("#")]
    assert patterns[0] == "*", "exclude everything first, then re-include what is copied"
    assert {"!pyproject.toml", "!autotag/", "!pipelines/", "!conf/", "!cluster/requirements.txt"} <= set(patterns)
    assert not any(p.startswith(("!.venv", "!.git")) for p in patterns)


def test_runs_as_the_ray_user():
    assert _of("USER")[-1] == "ray"


@pytest.mark.parametrize("secret", ["RAY_AUTH_TOKEN", "auth_token", "AWS_SECRET", "GOOGLE_APPLICATION_CREDENTIALS"])
def test_no_secret_is_baked_in(secret):
    code = " ".join(rest for _, rest in _instructions())
    assert secret not in code
