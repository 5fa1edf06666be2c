"""Stage 4 — evaluate: predictions × manifest ground truth → metrics and an HTML report.

    python -m pipelines.evaluate [evaluate.split=test] [evaluate.runs=[run_a,run_b]] [evaluate.report_track=ID]

Scores the run ``run_id`` and every run of ``evaluate.runs`` (e.g. a sweep) on
``evaluate.split``, each prediction table by its task (:mod:`autotag.evaluate.scoring`):
genre (track and patch level), tags, chords (mir_eval) and instruments. ``run_id`` is scored
against ``dataset.manifest``; another run against the manifest recorded with its predictions
when that file exists (runs may span data sets), else ``dataset.manifest``. Writes to
``paths.reports/<run_id>/``:

- ``metrics.json`` (every number of every run) and ``metrics.parquet`` (run_id, metric, label, value);
- ``report.html``: one self-contained page with the results table across runs, the main run's
  figures (confusion matrices, tag-o-gram, chord and instrument timelines, learned filters,
  training curves) and per-class tables; each figure also as ``<name>.png`` beside it.

No Ray is needed, and no model is run: evaluation reads the prediction tables (patch-level
scores and the tag-o-gram from the ``activations`` table inference writes when
``evaluate.patch_level`` is on). Only the learned-filter figure reads the checkpoint's weights
(:mod:`autotag.models.filters`), and only for front-ends that have such filters.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from autotag import layout
from autotag.config import AutotagConfig
from autotag.data import manifest
from autotag.evaluate.artefacts import RunArtefacts, load_run
from autotag.evaluate.common import warn
from autotag.evaluate.report import ReportFigure, write_report
from autotag.evaluate.report_content import report_figures, report_tables
from autotag.evaluate.scoring import RunEvaluation, evaluate_run, misclassified, missing_ids, results_frame, split_truth
from autotag.evaluate.tables import write_metrics
from autotag.models.filters import checkpoint_filters
from autotag.storage import atomic_write_bytes
from pipelines.common import cli

log = logging.getLogger("autotag.evaluate")
REPORT_NAME = "report.html"


def run_ids(cfg: AutotagConfig) -> list[str]:
    """``run_id`` first, then ``evaluate.runs`` in order, each once."""
    return list(dict.fromkeys([cfg.run_id, *cfg.evaluate.runs]))


def ground_truth(cfg: AutotagConfig, run: RunArtefacts, main: bool) -> tuple[str, str]:
    """``(data set name, manifest path)`` a run is scored against.

    The main run: ``dataset.manifest`` as configured. Another run: the manifest recorded with its
    predictions when that file exists (a sweep may span data sets), else ``dataset.manifest``.
    """
    recorded = run.recorded_dataset
    path = recorded.get("manifest")
    if not main and isinstance(path, str) and Path(path).exists():
        return str(recorded.get("name") or Path(path).parent.name), path
    if path and path != cfg.dataset.manifest:
        warn(f"run {run.run_id!r} was predicted from manifest {path} but is evaluated against "
             f"{cfg.dataset.manifest}")
    return cfg.dataset.name, cfg.dataset.manifest


def _metadata(cfg: AutotagConfig, evaluations: list[RunEvaluation], manifests: dict[str, str]) -> dict[str, Any]:
    return {
        "dataset": cfg.dataset.name, "manifest": cfg.dataset.manifest, "split": cfg.evaluate.split,
        "run_id": cfg.run_id, "runs": [e.run.run_id for e in evaluations],
        "datasets": {e.run.run_id: e.dataset for e in evaluations}, "manifests": manifests,
        "models": {e.run.run_id: e.run.model_name for e in evaluations},
        "checkpoints": {e.run.run_id: str(e.run.checkpoint_dir or "") for e in evaluations},
        "frame_rates": {e.run.run_id: e.frame_rate for e in evaluations if e.frame_rate is not None},
        "missing_track_ids": {e.run.run_id: missing_ids(e.sections) for e in evaluations},
        "failed_tracks": {e.run.run_id: e.run.failed_tracks() for e in evaluations},
        "misclassified_tracks": {e.run.run_id: misclassified(e.sections) for e in evaluations},
    }


def _write_figures(out_dir: Path, figures: list[ReportFigure]) -> None:
    """Each figure as ``<key>.png`` (``-`` → ``_``); PNGs of an earlier evaluation are removed."""
    names = {f"{f.key.replace('-', '_')}.png" for f in figures}
    for stale in out_dir.glob("*.png"):
        if stale.name not in names:
            stale.unlink()
    for figure in figures:
        atomic_write_bytes(out_dir / f"{figure.key.replace('-', '_')}.png", figure.png)


HEADLINES = {"chords": {"wcsr_majmin": ("wcsr", "majmin"), "track_mean_majmin": ("track_mean", "majmin"),
                        "seg": ("wcsr", "seg"), "frame_recall_macro": ("frame", "recall_macro")},
             "instruments": {"frame_f1_macro": ("frame", "f1_macro"), "frame_f1_micro": ("frame", "f1_micro"),
                             "segment_f1_macro": ("segment", "f1_macro")}}
"""Headline numbers of the time-based tasks, ``{name: (key, key)}`` into their nested metrics."""


def _headline(evaluation: RunEvaluation) -> dict[str, float]:
    """The main run's first section's headline numbers: its top-level floats (accuracy,
    recall_macro, ... or the AUCs), or :data:`HEADLINES` for chords and instruments."""
    first = evaluation.sections[0]
    if first.name in HEADLINES:
        return {name: float(first.metrics[a][b]) for name, (a, b) in HEADLINES[first.name].items()
                if b in first.metrics.get(a, {})}
    return {k: v for k, v in first.metrics.items() if isinstance(v, float)}


def _score_runs(cfg: AutotagConfig) -> tuple[list[RunEvaluation], dict[str, str], pd.DataFrame]:
    """Every run scored on its ground truth: ``(evaluations, {run: manifest}, main run's truth)``."""
    truths: dict[str, pd.DataFrame] = {}
    manifests: dict[str, str] = {}
    evaluations = []
    for index, run_id in enumerate(run_ids(cfg)):
        artefacts = load_run(cfg.paths.predictions, cfg.paths.checkpoints, run_id)
        dataset, path = ground_truth(cfg, artefacts, main=index == 0)
        if path not in truths:
            truths[path] = split_truth(manifest.read(path).to_pandas(), cfg.evaluate.split, path)
        evaluation = evaluate_run(truths[path], artefacts, cfg.evaluate)
        evaluation.dataset, manifests[run_id] = dataset, path
        for section in evaluation.sections:
            if section.missing:
                log.warning("run %s %s: %d %s track(s) have no prediction (decode errors?): %s", run_id,
                            section.name, len(section.missing), cfg.evaluate.split, section.missing[:10])
        evaluations.append(evaluation)
    return evaluations, manifests, truths[cfg.dataset.manifest]


def _write_report(cfg: AutotagConfig, evaluations: list[RunEvaluation], truth: pd.DataFrame,
                  metadata: dict[str, Any], out_dir: Path) -> Path:
    filters = checkpoint_filters(evaluations[0].run.checkpoint_dir)
    figures = report_figures(evaluations, truth, cfg.evaluate, filters)
    _write_figures(out_dir, figures)
    about = {"dataset": cfg.dataset.name, "manifest": cfg.dataset.manifest, "split": cfg.evaluate.split,
             "runs": ", ".join(metadata["runs"]),
             "checkpoint": metadata["checkpoints"][cfg.run_id] or "none found"}
    caption = (f"{cfg.evaluate.split} split of each run's data set; figures and per-label tables below: "
               f"run {cfg.run_id} on {cfg.dataset.name} ({cfg.dataset.manifest}).")
    return write_report(out_dir / REPORT_NAME, f"autotag evaluation — {cfg.run_id}", results_frame(evaluations),
                        figures, about, caption, tables=report_tables(evaluations[0]))


def run(cfg: AutotagConfig) -> dict[str, Any]:
    """Evaluate the configured runs on ``evaluate.split``; returns headline numbers and paths."""
    evaluations, manifests, truth = _score_runs(cfg)
    out_dir = layout.report_dir(cfg.paths.reports, cfg.run_id)
    metadata = _metadata(cfg, evaluations, manifests)
    paths = write_metrics(out_dir, {e.run.run_id: e.metrics for e in evaluations}, metadata)
    report = _write_report(cfg, evaluations, truth, metadata, out_dir)
    main = evaluations[0]
    return {"run_id": cfg.run_id, "split": cfg.evaluate.split, **_headline(main),
            **{k: v for k, v in main.metrics["coverage"].items() if isinstance(v, int)},
            "runs": metadata["runs"], "metrics_json": str(paths["json"]),
            "metrics_parquet": str(paths["parquet"]), "report": str(report), "report_dir": str(out_dir)}


def summary(result: dict[str, Any]) -> str:
    scores = "  ".join(f"{k} {v:.4f}" for k, v in result.items() if isinstance(v, float))
    return (f"evaluated run {result['run_id']} on the {result['split']} split: {scores}\n"
            f"  report {result['report']}")


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    return cli(run, argv=argv, prog=prog, doc=__doc__, sections=("run_id", "evaluate", "paths"), summary=summary)


if __name__ == "__main__":
    raise SystemExit(main())
