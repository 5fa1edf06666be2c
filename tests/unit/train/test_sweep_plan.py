"""The sweep's plan, its overrides and its results table: no Ray (the real sweep runs in
tests/integration/test_sweep.py)."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from autotag.config import ConfigError
from autotag.train import sweep as plans
from pipelines import sweep
from pipelines.common import conf_dir, load_config

FRONTENDS = ["lms_conv2d", "sincnet_abs", "waveform_conv1d", "tcn"]


def test_combinations_cross_the_grid_in_order():
    trials = plans.plan([{"frontend": "lms_conv2d"}, {"frontend": "tcn", "frontend.params.dropout": 0.1}],
                        {"train.lr": [0.01, 0.001], "train.batch_size": [32]})
    assert [t.overrides for t in trials] == [
        ("frontend=lms_conv2d", "train.lr=0.01", "train.batch_size=32"),
        ("frontend=lms_conv2d", "train.lr=0.001", "train.batch_size=32"),
        ("frontend=tcn", "frontend.params.dropout=0.1", "train.lr=0.01", "train.batch_size=32"),
        ("frontend=tcn", "frontend.params.dropout=0.1", "train.lr=0.001", "train.batch_size=32")]
    assert [t.suffix for t in trials[:2]] == ["-lr0.01-batch_size32", "-lr0.001-batch_size32"]
    assert plans.plan([], None)[0].overrides == ()


@pytest.mark.parametrize("combinations,grid,message", [
    ([{"frontend": "tcn"}], {"frontend": []}, "non-empty list"),
    ([{"train.lr": 0.1}], {"train.lr": [0.1]}, "also in sweep.grid"),
    ([{"frontend": "tcn"}, {"frontend": "tcn"}], None, "appears twice"),
    (["frontend=tcn"], None, "expected a mapping"),
    ([{"+train.extra": 1}], None, "no \\+/~ prefix"),
])
def test_bad_sweeps_are_clear_errors(combinations, grid, message):
    with pytest.raises(plans.SweepError, match=message):
        plans.plan(combinations, grid)


@pytest.mark.parametrize("key,value", [("run_id", "synthetic_genre-tcn-autopool-lr0.001"), ("a.b", "0.01"),
                                       ("a", "null"), ("a", "it's"), ("x", 1e-5), ("x", [1, "a b"]),
                                       ("x", {"k": True}), ("x", None), ("p", "/data/with space")])
def test_overrides_parse_back_to_the_value(key, value):
    parsed = OverridesParser.create().parse_overrides([plans.format_override(key, value)])[0]
    assert parsed.key_or_group == key and parsed.value() == value


# Extra overrides an option needs to compose (a data set that is not downloaded), and its data set name.
NEEDS = {"tutorial_gtzan": (["dataset=gtzan", "dataset.prepare.source=/data/gtzan/genres"], "gtzan")}


@pytest.mark.parametrize("option", sorted(p.stem for p in (conf_dir() / "sweep").glob("*.yaml")))
def test_every_sweep_option_composes_every_trial(option, tmp_path):
    extra, dataset = NEEDS.get(option, ([], "synthetic_genre"))
    overrides = [f"sweep={option}", f"paths.root={tmp_path}", *extra]
    trials = sweep.compose_trials(load_config(overrides), overrides)
    assert {t.cfg.frontend.name for t in trials} == set(FRONTENDS)
    for t in trials:
        assert t.run_id == f"{dataset}-{t.cfg.frontend.name}-{t.cfg.backend.name}" == t.cfg.run_id
        assert t.cfg.infer.checkpoint == str(tmp_path / "checkpoints" / t.run_id / "best")
        assert load_config(t.overrides).to_dict() == t.cfg.to_dict()  # the recorded overrides reproduce it


def test_experiment_presets_are_combinations_too(tmp_path):
    extra, _ = NEEDS["tutorial_gtzan"]
    overrides = ["sweep=tutorial_gtzan", f"paths.root={tmp_path}", *extra]
    trials = sweep.compose_trials(load_config(overrides), overrides)
    assert all(t.cfg.frontend.params["seed_compat"] and t.cfg.backend.params["seed_compat"] for t in trials)
    assert trials[0].overrides[-2:] == ["experiment=gtzan_lms_conv2d", "run_id=gtzan-lms_conv2d-autopool"]


def test_grid_points_get_their_own_run_ids(tmp_path):
    overrides = [f"paths.root={tmp_path}", "sweep.combinations=[{frontend:tcn,backend:autopool}]",
                 "sweep.grid={train.lr:[0.01,0.001]}"]
    trials = sweep.compose_trials(load_config(overrides), overrides)
    assert [(t.run_id, t.cfg.train.lr) for t in trials] == [("synthetic_genre-tcn-autopool-lr0.01", 0.01),
                                                             ("synthetic_genre-tcn-autopool-lr0.001", 0.001)]


def test_trials_that_would_share_a_run_id_or_do_not_compose_fail_early(tmp_path):
    same = [f"paths.root={tmp_path}", "sweep.combinations=[{frontend:tcn},{frontend:tcn,train.lr:0.1}]"]
    with pytest.raises(plans.SweepError, match="share run_id"):
        sweep.compose_trials(load_config(same), same)
    typo = [f"paths.root={tmp_path}", "sweep.combinations=[{frontend:tnc}]"]
    with pytest.raises(ConfigError, match="tnc"):
        sweep.compose_trials(load_config(typo), typo)
    with pytest.raises(plans.SweepError, match="composed from"):
        sweep.compose_trials(load_config(typo), [])


def test_results_table_keeps_failed_trials(tmp_path):
    ok = {"combo": "tcn + autopool", "run_id": "d-tcn-autopool", "status": "ok", "error": None, "val_loss": 1.5,
          "val_accuracy": 0.4, "params": 75_445, "epochs_run": 3, "best_epoch": 1, "epoch_seconds": 2.25,
          "samples_per_s": 812.4, "overrides": ["frontend=tcn"], "test_recall_macro": 0.5}
    failed = {"combo": "sincnet + autopool", "run_id": "d-sincnet-autopool", "status": "error",
              "error": "RuntimeError: out of memory", "overrides": ["frontend=sincnet"]}
    paths = plans.write_results(tmp_path, [ok, failed], "Sweep `t`", {"dataset": "d"}, best_run_id="d-tcn-autopool")
    table = pq.read_table(paths["parquet"])
    assert table.column("status").to_pylist() == ["ok", "error"]
    assert table.column("test_recall_macro").to_pylist() == [0.5, None]
    assert table.schema.metadata[b"autotag.best_run_id"] == b'"d-tcn-autopool"'
    lines = paths["markdown"].read_text().splitlines()
    assert lines[2].startswith("| Combo | Test macro recall | Val loss (best) |")
    assert lines[4] == ("| tcn + autopool ★ | **0.5000** | 1.5000 | 0.4000 | 75,445 | 3 (ep 1) | 2.2 s | 812 |")
    assert lines[5].startswith("| sincnet + autopool | error: RuntimeError: out of memory |")
    assert lines[5].count("|") == lines[4].count("|")
    worse = {**ok, "combo": "lms_conv2d + autopool", "run_id": "d-lms", "test_recall_macro": 0.25}
    written = plans.write_results(tmp_path, [ok, worse], "t", {}, best_run_id="d-lms")
    lines = written["markdown"].read_text().splitlines()
    assert lines[4].startswith("| tcn + autopool | **0.5000** |")  # the best test score is bold
    assert lines[5].startswith("| lms_conv2d + autopool ★ | 0.2500 |")  # the selected (val loss) trial is starred


def test_history_summary_takes_the_lowest_val_loss_and_median_timings():
    history = [{"epoch": e, "val_loss": v, "val_accuracy": a, "epoch_seconds": s, "samples_per_s": r}
               for e, v, a, s, r in [(0, 2.0, 0.1, 9.0, 100.0), (1, 1.0, 0.5, 2.0, 400.0), (2, 1.5, 0.6, 3.0, 300.0)]]
    assert plans.history_summary(history) == {"val_loss": 1.0, "val_accuracy": 0.5, "best_epoch": 1, "epochs_run": 3,
                                              "epoch_seconds": 3.0, "samples_per_s": 300.0}
    with pytest.raises(ValueError, match="empty"):
        plans.history_summary([])
