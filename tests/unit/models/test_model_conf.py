"""conf/frontend/*.yaml and conf/backend/*.yaml mirror the registries and constructor defaults."""

import inspect
from pathlib import Path

import pytest
import torch
import yaml

from autotag.models import BACKENDS, FRONTENDS, build_model

CONF = Path(__file__).resolve().parents[3] / "conf"
FROM_CODE = {"self", "in_channels", "in_frames"}  # supplied by build_model, not by config
# Not from the tutorial: no tutorial quirk to restore, hence no seed_compat.
NOT_FROM_TUTORIAL = {"musicnn", "musicnn_pool", "musicnn_vgg", "musicnn_flatten", "crema_cqt", "crema_chord"}


def load(group: str, name: str) -> dict:
    return yaml.safe_load((CONF / group / f"{name}.yaml").read_text())


@pytest.mark.parametrize(("group", "registry"), [("frontend", FRONTENDS), ("backend", BACKENDS)])
def test_one_yaml_per_component_with_every_default(group, registry):
    assert sorted(p.stem for p in (CONF / group).glob("*.yaml")) == registry.names()
    for name in registry.names():
        config = load(group, name)
        assert set(config) == {"name", "params"} and config["name"] == name
        signature = inspect.signature(registry.get(name).__init__).parameters
        defaults = {k: p.default for k, p in signature.items() if k not in FROM_CODE}
        if name in NOT_FROM_TUTORIAL:
            assert "seed_compat" not in config["params"], name
        else:
            assert next(iter(config["params"])) == "seed_compat" and config["params"]["seed_compat"] is False
        assert set(config["params"]) == set(defaults), name
        for key, default in defaults.items():
            value = config["params"][key]
            assert (list(value) if isinstance(value, list) else value) == (
                list(default) if isinstance(default, tuple) else default), f"{name}.{key}"


def test_yaml_params_build_the_models():
    model = build_model("tcn", "autopool", 10, load("frontend", "tcn")["params"], load("backend", "autopool")["params"])
    assert model(torch.zeros(2, model.frontend.patch_samples)).shape == (2, 10)
