"""Sweep — Ray Tune over front-end × back-end × hyper-parameter combinations.

    python -m pipelines.sweep [sweep=smoke] [sweep.grid='{train.lr:[0.01,0.001]}'] [key=value ...]

Every combination of ``conf/sweep/<option>.yaml`` crossed with every grid point is one trial
(:func:`autotag.train.sweep.plan`): the train stage composed from this command's overrides plus
the trial's, under its own run id. Each Tune trial runs :func:`run_trial`, a driver function that
builds the train stage's ``TorchTrainer`` (:func:`pipelines.train.build_trainer`) with
``TuneReportCallback``, fits, publishes the best checkpoint and, with ``sweep.evaluate``, tags
and evaluates the ``evaluate.split`` tracks with it. This is Ray 2.60's pattern for Train V2:
``Tuner(TorchTrainer(...))`` is no longer supported.

Writes ``paths.reports/sweep-<name>/results.{md,parquet}`` (one row per trial, failed trials
included), Tune's state under ``.../sweep-<name>/tune`` and the evaluation predictions under
``.../sweep-<name>/predictions``; checkpoints go where the train stage puts them
(``paths.checkpoints/<run_id>``), so re-running a sweep resumes every trial.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from autotag.config import AutotagConfig, from_container
from autotag.models import checkpoint
from autotag.train import sweep as plans
from pipelines import evaluate, infer, shard, train
from pipelines.common import cli, init_ray, load_config

log = logging.getLogger("autotag.sweep")
# A trial's driver only waits on its trainer, so it takes no CPU: Train's workers and Ray Data need
# them all on a small machine (ecosystem §9). Tune rejects an all-zero request, hence the memory.
DRIVER_RESOURCES = {"CPU": 0, "memory": 256 * 1024**2}


def sweep_dir(cfg: AutotagConfig) -> Path:
    return Path(cfg.paths.reports) / f"sweep-{cfg.sweep.name}"


@dataclass(frozen=True)
class TrialRun:
    """A planned trial: its run id, settings, the ``pipelines.train`` overrides that reproduce it, its config."""

    run_id: str
    settings: dict[str, Any]
    overrides: list[str]
    cfg: AutotagConfig


def compose_trials(cfg: AutotagConfig, overrides: Sequence[str]) -> list[TrialRun]:
    """Compose every trial's config, failing before any training on a bad one.

    Raises
    ------
    SweepError
        ``cfg`` was not composed from ``overrides``, a malformed sweep, or two trials sharing a run id.
    ConfigError
        A trial's overrides do not compose (unknown group, key or value).
    """
    # An absolute root: Tune runs trials in another working directory.
    base = [*(o for o in overrides if not o.startswith("paths.root=")), f"paths.root={cfg.paths.root}"]
    if load_config(base).to_dict() != cfg.to_dict():
        raise plans.SweepError("sweep: cfg must be the config composed from `overrides` (they compose every trial)")
    runs: dict[str, TrialRun] = {}
    for trial in plans.plan(cfg.sweep.combinations, cfg.sweep.grid):
        run_id = load_config([*base, *trial.overrides]).run_id + trial.suffix
        if run_id in runs:
            raise plans.SweepError(f"sweep: two trials would share run_id {run_id!r} ({list(trial.overrides)}); "
                             f"set run_id in one of the combinations")
        command = [*base, *trial.overrides, plans.format_override("run_id", run_id)]
        runs[run_id] = TrialRun(run_id, trial.settings, command, load_config(command))
    return list(runs.values())


def max_concurrent_trials(cfg: AutotagConfig) -> int:
    """``sweep.max_concurrent_trials``, or the cluster's GPUs / GPUs per trial (1 on CPU)."""
    import ray

    if cfg.sweep.max_concurrent_trials is not None:
        return cfg.sweep.max_concurrent_trials
    if cfg.train.use_gpu:
        return max(1, int(ray.cluster_resources().get("GPU", 0) // cfg.train.num_workers))
    return 1


def evaluate_best(cfg: AutotagConfig, best_checkpoint: str) -> dict[str, float]:
    """Tag ``evaluate.split`` with the trial's best checkpoint and evaluate; ``test_<metric>`` values.

    Predictions go to the sweep's own folder, the trial's run replaced (``infer.overwrite``), so
    they always come from this checkpoint (the train stage may have resumed and published a newer one).
    """
    predictions = sweep_dir(cfg) / "predictions"
    eval_cfg = dataclasses.replace(
        cfg, paths=dataclasses.replace(cfg.paths, predictions=str(predictions)),
        infer=dataclasses.replace(cfg.infer, split=cfg.evaluate.split, checkpoint=best_checkpoint, overwrite=True),
        evaluate=dataclasses.replace(cfg.evaluate, runs=()))
    infer.run(eval_cfg)
    metrics = evaluate.run(eval_cfg)
    return {f"test_{k}": float(v) for k, v in metrics.items() if isinstance(v, float)}


def run_trial(config: dict[str, Any], trials: dict[str, dict[str, Any]]) -> None:
    """Tune driver function: train one trial, publish its best checkpoint, evaluate, report."""
    from ray import tune
    from ray.tune.integration.ray_train import TuneReportCallback

    cfg = from_container(AutotagConfig, trials[config["run_id"]])
    start = time.perf_counter()
    result = train.build_trainer(cfg, callbacks=(TuneReportCallback(),)).fit()
    published = train.publish_best(cfg, result, time.perf_counter() - start)
    summary = plans.history_summary(pq.read_table(published["history"]).to_pylist())
    model = checkpoint.model_from_meta(checkpoint.read_meta(published["best_checkpoint"]))
    summary["params"] = sum(p.numel() for p in model.parameters())
    if cfg.sweep.evaluate:
        summary.update(evaluate_best(cfg, published["best_checkpoint"]))
    tune.report({**summary, "trial_seconds": time.perf_counter() - start})


def result_row(trial: TrialRun, result) -> dict[str, Any]:
    """One results-table row from a Tune ``Result`` (an error row when the trial failed)."""
    metrics = dict(result.metrics or {}) if result.error is None else {}
    ok = result.error is None and "params" in metrics
    error = None if ok else str(result.error or "trial ended without a summary").strip().splitlines()[-1]
    row = {"combo": plans.combo_label(trial.cfg.frontend.name, trial.cfg.backend.name, trial.settings),
           "run_id": trial.run_id, "status": "ok" if ok else "error", "error": error, "overrides": trial.overrides}
    if ok:
        row.update({k: v for k, v in metrics.items()
                    if k in {name for name, _ in plans.COLUMNS} or k.startswith("test_")})
    return row


def ensure_shards(configs: Sequence[AutotagConfig]) -> None:
    """Shard each distinct data set the trials read, once, when its shards are missing."""
    done: set[str] = set()
    for cfg in configs:
        if cfg.paths.shards not in done and not (Path(cfg.paths.shards) / "index.parquet").exists():
            log.info("no shards in %s: sharding first", cfg.paths.shards)
            shard.run(cfg)
        done.add(cfg.paths.shards)


def run(cfg: AutotagConfig, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Run the sweep; ``overrides`` are the ``key=value`` strings ``cfg`` was composed from."""
    from ray import tune

    start = time.perf_counter()
    trials = compose_trials(cfg, overrides)
    init_ray(cfg)
    ensure_shards([t.cfg for t in trials])
    out_dir = sweep_dir(cfg)
    log.info("sweep %s: %d trials, at most %d at a time", cfg.sweep.name, len(trials), max_concurrent_trials(cfg))
    driver = tune.with_parameters(run_trial, trials={t.run_id: t.cfg.to_dict() for t in trials})
    tuner = tune.Tuner(
        tune.with_resources(driver, DRIVER_RESOURCES),
        param_space={"run_id": tune.grid_search([t.run_id for t in trials])},
        tune_config=tune.TuneConfig(metric="val_loss", mode="min", max_concurrent_trials=max_concurrent_trials(cfg),
                                    trial_name_creator=lambda t: t.config["run_id"],
                                    trial_dirname_creator=lambda t: t.config["run_id"]),
        run_config=tune.RunConfig(name="tune", storage_path=str(out_dir)))
    grid = tuner.fit()
    by_run = {r.config["run_id"]: r for r in grid}
    rows = [result_row(t, by_run[t.run_id]) for t in trials]
    ok = [r for r in rows if r["status"] == "ok"]
    best = min(ok, key=lambda r: r["val_loss"])["run_id"] if ok else None
    title = (f"Sweep `{cfg.sweep.name}` — {cfg.dataset.name}: val = `valid` split (patches, best epoch), "
             f"test = `{cfg.evaluate.split}` split (tracks, best checkpoint)")
    paths = plans.write_results(out_dir, rows, title, best_run_id=best, metadata={
        "dataset": cfg.dataset.name, "val_split": "valid", "test_split": cfg.evaluate.split,
        "sweep": dataclasses.asdict(cfg.sweep), "overrides": list(overrides)})
    print("\n" + paths["markdown"].read_text())
    return {"sweep": cfg.sweep.name, "trials": len(rows), "ok": len(ok), "errors": len(rows) - len(ok),
            "best_run_id": best, "results_md": str(paths["markdown"]), "results_parquet": str(paths["parquet"]),
            "seconds": round(time.perf_counter() - start, 1)}


def summary(result: dict[str, Any]) -> str:
    return (f"sweep {result['sweep']}: {result['ok']} of {result['trials']} trials ok, best {result['best_run_id']}, "
            f"in {result['seconds']:.0f} s -> {result['results_md']}")


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """A trial that does not compose is a :class:`ConfigError` (one line, exit 2) before any training."""
    args = list(sys.argv[1:] if argv is None else argv)
    return cli(functools.partial(run, overrides=[a for a in args if not a.startswith("-")]), argv=args,
               prog=prog or "python -m pipelines.sweep", doc=__doc__, sections=("run_id", "sweep", "train"),
               summary=summary)


if __name__ == "__main__":
    raise SystemExit(main())
