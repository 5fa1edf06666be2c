"""The lock is the install: every dependency of pyproject.toml pinned in it, at a version its range allows."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from autotag.install_check import check

REPO = Path(__file__).resolve().parents[3]
LOCK = REPO / "requirements" / "lock.txt"
PIN = re.compile(r"^([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def locked() -> dict[str, list[tuple[Version, str | None]]]:
    """``name -> [(version, marker)]`` of every pin (a universal lock may pin two versions by marker)."""
    pins: dict[str, list[tuple[Version, str | None]]] = {}
    for line in LOCK.read_text().splitlines():
        match = PIN.match(line)
        if match:
            name, version, marker = match.groups()
            pins.setdefault(canonicalize_name(name), []).append((Version(version), marker))
    return pins


def declared() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = [r for group in project.get("optional-dependencies", {}).values() for r in group]
    return [Requirement(r) for r in (*project["dependencies"], *extras)]


def _applies_here(marker: str | None) -> bool:
    return marker is None or Marker(marker).evaluate()


@pytest.mark.parametrize("requirement", declared(), ids=str)
def test_every_declared_dependency_is_pinned_within_its_range(requirement):
    pins = [(v, m) for v, m in locked().get(canonicalize_name(requirement.name), []) if _applies_here(m)]
    assert pins, f"{requirement.name} is in pyproject.toml but not in {LOCK.name}: run `make lock`"
    for version, _ in pins:
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{requirement.name}=={version} in {LOCK.name} is outside pyproject.toml's {requirement}: run `make lock`")


def test_every_pin_has_hashes():
    text = LOCK.read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[-1])
    unhashed = [b.split("==")[0] for b in blocks if "==" in b.split("\n")[0] and "--hash=sha256:" not in b]
    assert not unhashed, f"pins without hashes: {unhashed[:5]}"


def test_torch_and_torchaudio_are_the_matching_pair():
    pins = locked()
    assert [str(v) for v, _ in pins["torch"]] == ["2.11.0"]
    assert [str(v) for v, _ in pins["torchaudio"]] == ["2.11.0"]
    pinned = {str(r.specifier) for r in declared() if r.name in ("torch", "torchaudio")}
    assert pinned == {"==2.11.0"}, "pyproject.toml pins torch and torchaudio to one exact pair"


def test_the_installed_packages_are_the_locked_ones():
    """The environment running the tests was filled from the lock (no drift since `make install`)."""
    from importlib.metadata import version

    pins = locked()
    for name in ("torch", "torchaudio", "ray", "pyarrow", "numpy", "soundfile", "av", "hydra-core"):
        wanted = {str(v) for v, m in pins[name] if _applies_here(m)}
        assert version(name) in wanted, f"{name} {version(name)} installed, {wanted} locked"


def test_the_native_libraries_load():
    assert check() == []


def test_a_library_that_does_not_load_is_one_line_naming_it():
    (line,) = check(("autotag_no_such_module",))
    assert line == "autotag_no_such_module: not installed"


def test_the_cluster_pins_are_the_locked_versions():
    pins = locked()
    for line in (REPO / "cluster" / "requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            requirement = Requirement(line)
            wanted = {str(v) for v, m in pins[canonicalize_name(requirement.name)] if _applies_here(m)}
            assert str(requirement.specifier)[2:] in wanted, f"cluster/requirements.txt {line}, lock {wanted}"


def test_the_weight_packages_are_pinned_with_hashes_and_installed():
    """requirements/pretrained.txt (installed with --no-deps): each pin has its hash and is what is installed."""
    from importlib.metadata import version

    text = (REPO / "requirements" / "pretrained.txt").read_text()
    pins = re.findall(r"^([A-Za-z0-9._-]+)==(\S+) \\\n\s+--hash=sha256:[0-9a-f]{64}$", text, flags=re.M)
    assert pins == [("musicnn", "0.1.0"), ("crema", "0.2.0")]
    assert all(version(name) == wanted for name, wanted in pins)
