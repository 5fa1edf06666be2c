"""Evaluate runs: every task's scores for one run, and several runs side by side.

:func:`evaluate_run` scores one run (:mod:`autotag.evaluate.scoring`), loading its checkpoint
once when patch-level scores or the main run's figures (:mod:`autotag.evaluate.figures`) need
it; :func:`results_frame` lays several runs side by side like the tutorial's results table.
``pipelines.evaluate`` wires them together; nothing here needs Ray.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
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
from autotag.infer.predictor import TrackPredictor
from autotag.models import AutotagModel
from autotag.models import checkpoint as checkpoints

DEFAULT_FRAME_RATE = 100.0
"""Frames per second (10 ms, the MIREX frame hop) when neither config nor checkpoint gives one."""

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
    """One scored run: its artefacts, sections and (when loaded) the checkpoint's model."""

    run: RunArtefacts
    sections: list[Section]
    predictor: TrackPredictor | None = None
    model: AutotagModel | None = None
    frame_rate: float | None = None
    dataset: str = ""  # the data set it was scored on (shown in the results table)

    @property
    def metrics(self) -> dict[str, Any]:
        """``{section: metrics, ..., "coverage": ...}`` (see :func:`scoring.run_metrics`)."""
        return run_metrics(self.sections)

    def section(self, name: str) -> Section | None:
        """The section called ``name``, or None."""
        return next((s for s in self.sections if s.name == name), None)


def load_model(checkpoint_dir: str | Path) -> AutotagModel:
    """The checkpoint's model in eval mode on the CPU, whatever its task kind."""
    return checkpoints.load(checkpoint_dir, "cpu")[0]


def _predictor(run: RunArtefacts, tags: Section | None, needed: bool) -> TrackPredictor | None:
    """A predictor on the run's checkpoint when ``needed``; None when its labels differ from the
    ``tags`` predictions' (a checkpoint other than the one that made them)."""
    if not needed or run.checkpoint_dir is None:
        return None
    predictor = TrackPredictor(str(run.checkpoint_dir), device="cpu")
    if tags is not None and list(predictor.task.vocabulary) != list(tags.labels):
        warn(f"run {run.run_id!r}: checkpoint {run.checkpoint_dir} has labels "
             f"{list(predictor.task.vocabulary)[:5]}..., the predictions {list(tags.labels)[:5]}...; "
             "patch-level scores and tag-o-gram skipped")
        return None
    return predictor


def _frame_rate(cfg: EvaluateConfig, model: AutotagModel | None, run_id: str) -> float:
    if cfg.frame_rate is not None:
        return float(cfg.frame_rate)
    if model is not None:
        return float(model.frontend.frame_rate)
    warn(f"run {run_id!r}: no evaluate.frame_rate and no checkpoint; frame-level chord and "
         f"instrument scores use {DEFAULT_FRAME_RATE:g} frames/s")
    return DEFAULT_FRAME_RATE


def evaluate_run(truth: pd.DataFrame, run: RunArtefacts, cfg: EvaluateConfig, main: bool = False,
                 max_duration_s: float | None = 3600.0) -> RunEvaluation:
    """Score every prediction table of ``run`` against ``truth`` (the split's manifest rows).

    Parameters
    ----------
    truth
        :func:`autotag.evaluate.scoring.split_truth` of the manifest.
    run
        :func:`autotag.evaluate.runs.load_run`.
    cfg
        ``evaluate`` options (split, threshold, patch level, frame rate).
    main
        The report's run: its checkpoint is also loaded for the figures.
    max_duration_s
        Longer audio files are skipped by the patch-level scores.
    """
    result = RunEvaluation(run, [])
    tags = score_tags(truth, run, cfg.split, cfg.threshold) if "tags" in run.tables else None
    multiclass = tags is not None and tags.name != "tagging"
    result.sections.extend([tags] if tags is not None else [])
    result.predictor = _predictor(run, tags, main or (cfg.patch_level and multiclass))
    if cfg.patch_level and multiclass and result.predictor is not None:
        result.sections.append(score_patches(tags, truth, result.predictor.task.label_key,
                                             result.predictor.patch_probabilities, max_duration_s))
    timed = {"chords", "instruments"} & set(run.tables)
    if result.predictor is not None:
        result.model = result.predictor.model
    elif run.checkpoint_dir is not None and (main or timed):
        result.model = load_model(run.checkpoint_dir)
    if timed:
        result.frame_rate = _frame_rate(cfg, result.model, run.run_id)
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
