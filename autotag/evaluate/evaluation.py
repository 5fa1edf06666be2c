"""Evaluate runs end to end: scores per task, the results table, report figures and tables.

:func:`evaluate_run` scores one run (:mod:`autotag.evaluate.scoring`), loading its checkpoint
once when patch-level scores or the main run's figures need it; :func:`results_frame` lays
several runs side by side like the tutorial's results table; :func:`report_figures` and
:func:`report_tables` build the HTML report's content for the main run. ``pipelines.evaluate``
wires them together; nothing here needs Ray.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from safetensors.torch import load_file

from autotag.config import EvaluateConfig
from autotag.data.audio import decode_audio
from autotag.evaluate import chords, plots, tables
from autotag.evaluate.common import warn
from autotag.evaluate.filters import learned_filters
from autotag.evaluate.report import ReportFigure, ReportTable
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
from autotag.train import checkpoint as checkpoints

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

HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy")


@dataclass
class RunEvaluation:
    """One scored run: its artefacts, sections and (when loaded) the checkpoint's model."""

    run: RunArtefacts
    sections: list[Section]
    predictor: TrackPredictor | None = None
    model: AutotagModel | None = None
    frame_rate: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def metrics(self) -> dict[str, Any]:
        """``{section: metrics, ..., "coverage": ...}`` (see :func:`scoring.run_metrics`)."""
        return run_metrics(self.sections)

    def section(self, name: str) -> Section | None:
        """The section called ``name``, or None."""
        return next((s for s in self.sections if s.name == name), None)


def load_model(checkpoint_dir: str | Path) -> AutotagModel:
    """The checkpoint's model in eval mode on the CPU, whatever its task kind."""
    meta = checkpoints.read_meta(checkpoint_dir)
    model = checkpoints.model_from_meta(meta)
    model.load_state_dict(load_file(str(Path(checkpoint_dir) / checkpoints.WEIGHTS), device="cpu"))
    return model.eval()


def _predictor(run: RunArtefacts, labels: Sequence[str]) -> TrackPredictor | None:
    """A predictor on the run's checkpoint when its vocabulary matches the predictions'."""
    if run.checkpoint_dir is None:
        return None
    predictor = TrackPredictor(str(run.checkpoint_dir), device="cpu")
    if list(predictor.task.vocabulary) != list(labels):
        warn(f"run {run.run_id!r}: checkpoint {run.checkpoint_dir} has labels "
             f"{list(predictor.task.vocabulary)[:5]}..., the predictions {list(labels)[:5]}...; "
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
    if "tags" in run.tables:
        section = score_tags(truth, run, cfg.split, cfg.threshold)
        result.sections.append(section)
        multiclass = section.name != "tagging"
        if (main or (cfg.patch_level and multiclass)) and run.checkpoint_dir is not None:
            result.predictor = _predictor(run, section.labels)
        if cfg.patch_level and multiclass and result.predictor is not None:
            key = result.predictor.task.label_key
            result.sections.append(score_patches(section, truth, key, result.predictor.patch_probabilities,
                                                 max_duration_s))
    if result.predictor is not None:
        result.model = result.predictor.model
    elif run.checkpoint_dir is not None and (main or {"chords", "instruments"} & set(run.tables)):
        result.model = load_model(run.checkpoint_dir)
    if {"chords", "instruments"} & set(run.tables):
        result.frame_rate = _frame_rate(cfg, result.model, run.run_id)
    if "chords" in run.tables:
        result.sections.append(score_chords(truth, run, cfg.split, result.frame_rate))
    if "instruments" in run.tables:
        result.sections.append(score_instruments(truth, run, cfg.split, result.frame_rate))
    return result


def results_frame(evaluations: Sequence[RunEvaluation]) -> pd.DataFrame:
    """Runs x headline metrics (:data:`HEADLINE`), with each run's model, like the tutorial's table."""
    long = tables.metrics_table({e.run.run_id: e.metrics for e in evaluations})
    present = set(long.loc[long["label"] == tables.ALL_LABELS, "metric"])
    wide = tables.results_table(long, [m for m in HEADLINE if m in present])
    models = {e.run.run_id: e.run.model_name for e in evaluations}
    wide.insert(1, "model", wide["run_id"].map(models))
    order = {e.run.run_id: i for i, e in enumerate(evaluations)}
    return wide.sort_values("run_id", key=lambda s: s.map(order)).reset_index(drop=True)


def pick_track(section: Section, wanted: str | None, run_id: str) -> str:
    """``wanted`` if the section evaluated it, else (``wanted`` None) its first track.

    Raises
    ------
    ValueError
        ``wanted`` is not an evaluated track of the section.
    """
    if wanted is None:
        return section.track_ids[0]
    if wanted not in section.track_ids:
        raise ValueError(f"evaluate.report_track={wanted!r} is not an evaluated track of run {run_id!r} "
                         f"({section.name}); expected one of {section.track_ids[:10]}")
    return wanted


def _confusion_figures(evaluation: RunEvaluation, split: str) -> list[ReportFigure]:
    figures = []
    for section in evaluation.sections:
        if "confusion_matrix" not in section.metrics:
            continue
        patch = section.name.endswith("_patch")
        unit = "patches" if patch else "tracks"
        title = f"Confusion matrix — {section.name}, {split} split, {len(section.track_ids)} tracks"
        png = plots.confusion_matrix(np.asarray(section.metrics["confusion_matrix"]), section.labels,
                                     title=f"{evaluation.run.run_id}: {section.name}")
        figures.append(ReportFigure("confusion-matrix-patch" if patch else "confusion-matrix", title, png,
                                    caption=f"Rows: reference; columns: estimate; counts of {unit}, "
                                            "colours normalised per reference class (recall)."))
    return figures


def _tag_o_gram(evaluation: RunEvaluation, truth: pd.DataFrame, track: str,
                max_duration_s: float | None) -> ReportFigure:
    predictor = evaluation.predictor
    audio = decode_audio(str(truth.at[track, "audio_path"]), max_duration_s=max_duration_s)
    probabilities = predictor.patch_probabilities(audio.samples)
    key = predictor.task.label_key
    reference = truth.at[track, key]
    shown = reference if isinstance(reference, str) else ", ".join(map(str, reference))
    png = plots.tag_o_gram(probabilities, list(predictor.task.vocabulary),
                           frame_rate=audio.sample_rate / predictor.hop_samples,
                           title=f"{evaluation.run.run_id}: track {track}")
    return ReportFigure("tag-o-gram", f"Tag-o-gram — track {track}", png,
                        caption=f"Patch probabilities of {len(probabilities)} patches "
                                f"({predictor.patch_samples / audio.sample_rate:.2f} s, hop "
                                f"{predictor.hop_samples / audio.sample_rate:.2f} s); reference {key}: {shown}.")


def _chord_timeline(evaluation: RunEvaluation, truth: pd.DataFrame, track: str) -> ReportFigure:
    ref_iv, ref_lab = chords.annotation_from_segments([dict(s) for s in truth.at[track, "chords"]])
    rows = evaluation.run.tables["chords"].frame
    est = chords.annotations_from_table(rows[rows["track_id"].astype(str) == track])
    est_iv, est_lab = est.get(track, (np.empty((0, 2)), []))
    png = plots.chord_timeline(ref_iv, ref_lab, est_iv, est_lab,
                               title=f"{evaluation.run.run_id}: track {track}")
    majmin = evaluation.section("chords").metrics.get("per_track", {}).get("majmin", {}).get(track)
    score = f" majmin {majmin:.3f}." if majmin is not None else ""
    return ReportFigure("chord-timeline", f"Chord timeline — track {track}", png,
                        caption=f"Reference (blue, manifest) vs estimate (red, predictions).{score}")


def _filter_figure(model: AutotagModel, run_id: str) -> ReportFigure | None:
    bank = learned_filters(model.frontend)
    if bank is None:
        return None
    name = "SincNet" if bank.kind == "sincnet" else "Conv1d"
    order = "in filter order (mel-spaced at initialisation)" if bank.kind == "sincnet" else \
        "sorted by peak frequency"
    png = plots.filter_responses(bank.weights, bank.sample_rate, title=f"{run_id}: {name}")
    return ReportFigure(f"filters-{bank.kind}", f"Learned {name} filters — frequency responses", png,
                        caption=f"{len(bank.weights)} filters of {bank.weights.shape[1]} taps "
                                f"(front-end layer {bank.module!r}), {order}.")


def _history_figures(evaluations: Sequence[RunEvaluation]) -> list[ReportFigure]:
    main = evaluations[0]
    figures = []
    if main.run.history is not None:
        history = main.run.history[[c for c in HISTORY_COLUMNS if c in main.run.history.columns]]
        figures.append(ReportFigure("training-curves", f"Training curves — {main.run.run_id}",
                                    plots.training_curves(history, title=main.run.run_id),
                                    caption="Loss and accuracy per epoch; the dashed line marks the "
                                            "lowest validation loss (the checkpoint evaluated)."))
    histories = {e.run.run_id: e.run.history for e in evaluations
                 if e.run.history is not None and "val_loss" in e.run.history.columns}
    if len(histories) > 1:
        figures.append(ReportFigure("training-curves-runs", "Validation loss across runs",
                                    plots.curves_across_runs(histories)))
    return figures


def report_figures(evaluations: Sequence[RunEvaluation], truth: pd.DataFrame, cfg: EvaluateConfig,
                   max_duration_s: float | None = 3600.0) -> list[ReportFigure]:
    """The report's figures: those of the main run (``evaluations[0]``), then curves across runs."""
    main = evaluations[0]
    figures = _confusion_figures(main, cfg.split)
    tags = main.section("tagging") or next((s for s in main.sections if "confusion_matrix" in s.metrics
                                            and not s.name.endswith("_patch")), None)
    if tags is not None and main.predictor is not None:
        figures.append(_tag_o_gram(main, truth, pick_track(tags, cfg.report_track, main.run.run_id),
                                   max_duration_s))
    if main.section("chords") is not None:
        figures.append(_chord_timeline(main, truth, pick_track(main.section("chords"), cfg.report_track,
                                                               main.run.run_id)))
    if main.model is not None and (bank := _filter_figure(main.model, main.run.run_id)) is not None:
        figures.append(bank)
    return figures + _history_figures(evaluations)


def per_label_frame(per_label: Mapping[str, Mapping[str, Any]], index_name: str) -> pd.DataFrame:
    """``{metric: {label: value}}`` as a labels x metrics frame (integer counts stay integers)."""
    frame = pd.DataFrame({metric: pd.Series(dict(values), dtype=object).infer_objects()
                          for metric, values in per_label.items()})
    frame.index.name = index_name
    return frame


def _section_tables(section: Section) -> list[ReportTable]:
    per_label = section.metrics.get("per_label")
    if section.name == "chords":
        frame = pd.DataFrame({"wcsr": section.metrics["wcsr"], "track_mean": section.metrics["track_mean"]})
        frame.index.name = "comparison"
        return [ReportTable("table-chords", "Chords — mir_eval scores", frame,
                            caption="WCSR: correct duration over comparable duration, summed over "
                                    "tracks; track_mean: mean of per-track scores; seg: segmentation.")]
    if section.name == "instruments":
        return [ReportTable(f"table-instruments-{level}", f"Instruments — {level} level, per instrument",
                            per_label_frame(section.metrics[level]["per_label"], "instrument"))
                for level in ("frame", "segment")]
    if not per_label:
        return []
    what = "tag" if section.name == "tagging" else "class"
    caption = ""
    if section.metrics.get("excluded_tags"):
        caption = f"Excluded (single class in the ground truth): {section.metrics['excluded_tags']}"
    return [ReportTable(f"table-{section.name.replace('_', '-')}", f"Per {what} — {section.name}",
                        per_label_frame(per_label, what), caption=caption)]


def report_tables(evaluation: RunEvaluation) -> list[ReportTable]:
    """Per-class / per-tag / per-instrument values and the chord comparisons of one run."""
    return [table for section in evaluation.sections for table in _section_tables(section)]
