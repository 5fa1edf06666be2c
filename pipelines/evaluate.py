"""Stage 4 — evaluate: predictions × manifest ground truth → metrics and an HTML report.

    python -m pipelines.evaluate [evaluate.split=test] [evaluate.runs=[run_a,run_b]] [evaluate.report_track=ID]

Scores the run ``run_id`` and every run of ``evaluate.runs`` (e.g. a sweep) on the manifest's
``evaluate.split``, each prediction table by its task (:mod:`autotag.evaluate.scoring`):
genre (track and patch level), tags, chords (mir_eval) and instruments. Writes to
``paths.reports/<run_id>/``:

- ``metrics.json`` (every number of every run) and ``metrics.parquet`` (run_id, metric, label, value);
- ``report.html``: one self-contained page with the results table across runs, the main run's
  figures (confusion matrices, tag-o-gram, chord timeline, learned filters, training curves)
  and per-class tables; each figure also as ``<name>.png`` beside it.

No Ray is needed: evaluation reads Parquet and, for patch-level scores and figures, loads the
checkpoint once on this machine.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from autotag.config import AutotagConfig
from autotag.data import manifest
from autotag.evaluate.common import atomic_write_bytes, warn
from autotag.evaluate.evaluation import (
    RunEvaluation,
    evaluate_run,
    report_figures,
    report_tables,
    results_frame,
)
from autotag.evaluate.report import ReportFigure, write_report
from autotag.evaluate.runs import load_run
from autotag.evaluate.scoring import missing_ids, split_truth
from autotag.evaluate.tables import write_metrics
from pipelines.common import cli

log = logging.getLogger("autotag.evaluate")
REPORT_NAME = "report.html"


def run_ids(cfg: AutotagConfig) -> list[str]:
    """``run_id`` first, then ``evaluate.runs`` in order, each once."""
    return list(dict.fromkeys([cfg.run_id, *cfg.evaluate.runs]))


def _check_manifest(evaluation: RunEvaluation, cfg: AutotagConfig) -> None:
    recorded = ((evaluation.run.metadata.get("config") or {}).get("dataset") or {}).get("manifest")
    if recorded and recorded != cfg.dataset.manifest:
        warn(f"run {evaluation.run.run_id!r} was predicted from manifest {recorded} but is evaluated "
             f"against {cfg.dataset.manifest}")


def _metadata(cfg: AutotagConfig, evaluations: list[RunEvaluation]) -> dict[str, Any]:
    return {
        "dataset": cfg.dataset.name, "manifest": cfg.dataset.manifest, "split": cfg.evaluate.split,
        "run_id": cfg.run_id, "runs": [e.run.run_id for e in evaluations],
        "models": {e.run.run_id: e.run.model_name for e in evaluations},
        "checkpoints": {e.run.run_id: str(e.run.checkpoint_dir or "") for e in evaluations},
        "frame_rates": {e.run.run_id: e.frame_rate for e in evaluations if e.frame_rate is not None},
        "missing_track_ids": {e.run.run_id: missing_ids(e.sections) for e in evaluations},
    }


def _write_figures(out_dir: Path, figures: list[ReportFigure]) -> None:
    """Each figure as ``<key>.png`` (``-`` → ``_``); PNGs of an earlier evaluation are removed."""
    names = {f"{f.key.replace('-', '_')}.png" for f in figures}
    for stale in out_dir.glob("*.png"):
        if stale.name not in names:
            stale.unlink()
    for figure in figures:
        atomic_write_bytes(out_dir / f"{figure.key.replace('-', '_')}.png", figure.png)


def _headline(evaluation: RunEvaluation) -> dict[str, Any]:
    """The main run's first section's top-level numbers (accuracy, recall_macro, ... or AUCs)."""
    first = evaluation.sections[0]
    return {k: v for k, v in first.metrics.items() if isinstance(v, float)}


def run(cfg: AutotagConfig) -> dict[str, Any]:
    """Evaluate the configured runs on ``evaluate.split``; returns headline numbers and paths."""
    truth = split_truth(manifest.read(cfg.dataset.manifest).to_pandas(), cfg.evaluate.split,
                        cfg.dataset.manifest)
    evaluations = []
    for index, run_id in enumerate(run_ids(cfg)):
        artefacts = load_run(cfg.paths.predictions, cfg.paths.checkpoints, run_id)
        evaluation = evaluate_run(truth, artefacts, cfg.evaluate, main=index == 0,
                                  max_duration_s=cfg.infer.max_duration_s)
        _check_manifest(evaluation, cfg)
        for section in evaluation.sections:
            if section.missing:
                log.warning("run %s %s: %d %s track(s) have no prediction (decode errors?): %s", run_id,
                            section.name, len(section.missing), cfg.evaluate.split, section.missing[:10])
        evaluations.append(evaluation)
    out_dir = Path(cfg.paths.reports) / cfg.run_id
    metadata = _metadata(cfg, evaluations)
    paths = write_metrics(out_dir, {e.run.run_id: e.metrics for e in evaluations}, metadata)
    figures = report_figures(evaluations, truth, cfg.evaluate, cfg.infer.max_duration_s)
    _write_figures(out_dir, figures)
    about = {k: metadata[k] for k in ("dataset", "manifest", "split")}
    about["runs"] = ", ".join(metadata["runs"])
    about["checkpoint"] = metadata["checkpoints"][cfg.run_id] or "none found"
    report = write_report(out_dir / REPORT_NAME, f"autotag evaluation — {cfg.run_id}", results_frame(evaluations),
                          figures, about, f"{cfg.dataset.name}, {cfg.evaluate.split} split "
                          f"({cfg.dataset.manifest})", tables=report_tables(evaluations[0]))
    main = evaluations[0]
    return {"run_id": cfg.run_id, "split": cfg.evaluate.split, **_headline(main),
            **{k: v for k, v in main.metrics["coverage"].items() if isinstance(v, int)},
            "runs": metadata["runs"], "metrics_json": str(paths["json"]),
            "metrics_parquet": str(paths["parquet"]), "report": str(report), "report_dir": str(out_dir)}


if __name__ == "__main__":
    raise SystemExit(cli(run))
