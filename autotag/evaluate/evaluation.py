"""Evaluate runs: every task's scores for one run, and several runs side by side.

:func:`evaluate_run` scores one run (:mod:`autotag.evaluate.scoring`) from its tables alone;
:func:`results_frame` lays several runs side by side like the tutorial's results table.
``pipelines.evaluate`` wires them together; nothing here needs Ray, torch or a checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from autotag.config import EvaluateConfig
from autotag.evaluate import tables
from autotag.evaluate.common import warn
from autotag.evaluate.runs import RunArtefacts
from autotag.evaluate.scoring import (
    Section,
    run_metrics,
    score_chords,
    score_instruments,
    score_patches,
    score_tags,
)

DEFAULT_FRAME_RATE = 100.0
"""Frames per second (10 ms, the MIREX frame hop) when neither config nor predictions give one."""

HEADLINE = (
    "genre.accuracy", "genre.recall_macro", "genre.precision_macro", "genre.f1_macro",
    "genre_patch.accuracy", "genre_patch.recall_macro", "genre_patch.f1_macro",
    "tagging.roc_auc_macro", "tagging.pr_auc_macro", "tagging.roc_auc_micro", "tagging.pr_auc_micro",
    "tagging.f1_macro", "tagging.f1_micro",
    "chords.wcsr.majmin", "chords.track_mean.majmin", "chords.wcsr.mirex", "chords.wcsr.seg",
    "chords.frame.recall_macro",
    "instruments.frame.f1_macro", "instruments.frame.f1_micro", "instruments.segment.f1_macro",
    "coverage.evaluated_tracks",
)
"""Columns of the results table, in order (those no run has are left out)."""


@dataclass
class RunEvaluation:
    """One scored run: its artefacts, its sections and the frame rate of its time-based scores."""

    run: RunArtefacts
    sections: list[Section]
    frame_rate: float | None = None
    dataset: str = ""  # the data set it was scored on (shown in the results table)

    @property
    def metrics(self) -> dict[str, Any]:
        """``{section: metrics, ..., "coverage": ...}`` (see :func:`scoring.run_metrics`)."""
        return run_metrics(self.sections)

    def section(self, name: str) -> Section | None:
        """The section called ``name``, or None."""
        return next((s for s in self.sections if s.name == name), None)


def frame_rate(cfg: EvaluateConfig, run: RunArtefacts) -> float:
    """Frames per second of the run's time-based scores: ``evaluate.frame_rate``, else the model's
    as inference recorded it (``autotag.timebase``), else :data:`DEFAULT_FRAME_RATE` with a warning."""
    if cfg.frame_rate is not None:
        return float(cfg.frame_rate)
    recorded = run.timebase.get("frame_rate")
    if recorded:
        return float(recorded)
    warn(f"run {run.run_id!r}: no evaluate.frame_rate and no frame rate recorded with the predictions; "
         f"frame-level chord and instrument scores use {DEFAULT_FRAME_RATE:g} frames/s")
    return DEFAULT_FRAME_RATE


def _patch_section(run: RunArtefacts, tags: Section, truth: pd.DataFrame) -> Section | None:
    """Patch-level scores from the run's activations, or None (with a warning) without them."""
    activations = run.tables.get("activations")
    if activations is None:
        warn(f"run {run.run_id!r}: no activations table; patch-level scores skipped (they are written by "
             "pipelines.infer with evaluate.patch_level=true or infer.activations=true)")
        return None
    return score_patches(tags, truth, tags.name, activations)


def evaluate_run(truth: pd.DataFrame, run: RunArtefacts, cfg: EvaluateConfig) -> RunEvaluation:
    """Score every prediction table of ``run`` against ``truth`` (the split's manifest rows).

    Reads tables only: no model is loaded and no audio decoded.

    Parameters
    ----------
    truth
        :func:`autotag.evaluate.scoring.split_truth` of the manifest.
    run
        :func:`autotag.evaluate.runs.load_run`.
    cfg
        ``evaluate`` options (split, threshold, patch level, frame rate).
    """
    result = RunEvaluation(run, [])
    tags = score_tags(truth, run, cfg.split, cfg.threshold) if "tags" in run.tables else None
    if tags is not None:
        result.sections.append(tags)
        patches = _patch_section(run, tags, truth) if cfg.patch_level and tags.name != "tagging" else None
        result.sections.extend([patches] if patches is not None else [])
    timed = {"chords", "instruments"} & set(run.tables)
    if timed:
        result.frame_rate = frame_rate(cfg, run)
    if "chords" in run.tables:
        result.sections.append(score_chords(truth, run, cfg.split, result.frame_rate))
    if "instruments" in run.tables:
        result.sections.append(score_instruments(truth, run, cfg.split, result.frame_rate))
    return result


def results_frame(evaluations: Sequence[RunEvaluation]) -> pd.DataFrame:
    """Runs x headline metrics (:data:`HEADLINE`), with each run's model and data set, like the
    tutorial's results table."""
    long = tables.metrics_table({e.run.run_id: e.metrics for e in evaluations})
    present = set(long.loc[long["label"] == tables.ALL_LABELS, "metric"])
    wide = tables.results_table(long, [m for m in HEADLINE if m in present])
    models = {e.run.run_id: e.run.model_name for e in evaluations}
    wide.insert(1, "model", wide["run_id"].map(models))
    wide.insert(2, "dataset", wide["run_id"].map({e.run.run_id: e.dataset for e in evaluations}))
    order = {e.run.run_id: i for i, e in enumerate(evaluations)}
    return wide.sort_values("run_id", key=lambda s: s.map(order)).reset_index(drop=True)
