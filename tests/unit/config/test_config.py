"""Every config in every group composes into typed config; typos are errors."""

from __future__ import annotations

import pytest

from autotag.config import AutotagConfig, ConfigError, from_container
from pipelines.common import conf_dir, load_config

GROUPS = ["dataset", "task", "frontend", "backend", "shard", "train", "infer", "evaluate", "runtime", "experiment"]
NEEDS_SOURCE = {"gtzan", "mtt", "rwc_pop_chords", "instrument_segments"}


def _options(group):
    return sorted(p.stem for p in (conf_dir() / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in _options(g)])
def test_every_option_composes(group, option, tmp_path):
    overrides = [f"{group}={option}", f"paths.root={tmp_path}"]
    if group == "dataset" and option == "manifest":
        overrides.append("dataset.manifest=/data/m.parquet")
    if ((group == "dataset" and option in NEEDS_SOURCE)
            or (group == "experiment" and not option.startswith("synthetic"))):
        overrides.append("dataset.prepare.source=/data/catalogue")
    cfg = load_config(overrides)
    assert isinstance(cfg, AutotagConfig)
    assert cfg.paths.root == str(tmp_path)


@pytest.mark.parametrize("name", [p.stem for p in conf_dir().glob("*.yaml")])
def test_top_level_configs_compose(name):
    assert isinstance(load_config([], config_name=name), AutotagConfig)


def test_a_real_dataset_without_its_source_is_a_clear_error():
    with pytest.raises(ConfigError, match="prepare.source"):
        load_config(["dataset=gtzan"])


def test_experiments_overlay_groups_and_values():
    cfg = load_config(["experiment=rwc_pop_chords", "dataset.prepare.source=/data/rwc.pyjama"])
    assert (cfg.task.kind, cfg.frontend.name, cfg.backend.name) == ("frame_multiclass", "cqt_conv2d", "conv_bilstm")
    assert cfg.frontend.params["seed_compat"] is True and cfg.train.batch_size == 32
    assert cfg.dataset.prepare.adapter == "pyjama"


def test_relative_root_becomes_absolute_and_paths_follow(tmp_path):
    cfg = load_config(["paths.root=out"], base_dir=tmp_path)
    assert cfg.paths.root == str(tmp_path / "out")
    assert cfg.paths.shards.startswith(str(tmp_path / "out"))
    assert cfg.infer.checkpoint == str(tmp_path / "out" / "checkpoints" / cfg.run_id / "best")


def test_uri_roots_are_kept():
    cfg = load_config(["paths.root=s3://bucket/run"])
    assert cfg.paths.predictions == "s3://bucket/run/predictions"


@pytest.mark.parametrize("override,message", [
    ("train.lrr=0.1", "train.lrr"),
    ("frontend=nope", "frontend=nope: no such option"),
    ("train.batch_size=big", "train.batch_size"),
])
def test_bad_overrides_are_clear_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config([override])


def test_unknown_keys_in_a_container_are_rejected():
    with pytest.raises(ConfigError, match="unknown key"):
        from_container(AutotagConfig, {"run_id": "x", "bogus": 1})
