"""The report's content for evaluated runs: figures (PNG) and per-label tables.

Figures describe the *main* run (the first evaluation), each only when its data exists:

- ``confusion-matrix`` / ``confusion-matrix-patch``: multi-class, track and patch level;
- ``tag-o-gram``: the probabilities over time of the report track, from the run's
  ``activations`` table (patch probabilities of a genre/tag model, frame probabilities of a
  chord/instrument model), when inference wrote it;
- ``chord-timeline`` / ``instrument-timeline``: reference (manifest) against estimate
  (predictions) for the report track;
- ``filters-sincnet`` / ``filters-conv1d``: learned first-layer filters as frequency responses
  (arrays from the checkpoint through :mod:`autotag.models.filters`, passed in by the caller);
- ``training-curves``: the run's metrics history; ``training-curves-runs``: validation loss of
  every run, when more than one has a history.

The report track is ``evaluate.report_track``, or the first evaluated track of the task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from autotag.config import EvaluateConfig
from autotag.evaluate import chords, plots
from autotag.evaluate.report import ReportFigure, ReportTable
from autotag.evaluate.scoring import RunEvaluation, Section, track_activations

HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy")


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


def confusion_figures(evaluation: RunEvaluation, split: str) -> list[ReportFigure]:
    """A confusion matrix per multi-class section (track level, then patch level)."""
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


def _describe(reference: Any) -> str:
    if isinstance(reference, str):
        return reference
    items = list(reference)
    if items and isinstance(items[0], Mapping):
        return ", ".join(sorted({str(s["label"]) for s in items}))
    return ", ".join(map(str, items)) or "none"


def _rate(times: np.ndarray, recorded: Any) -> float:
    """Rows per second: as recorded with the predictions, else from the spacing of ``times``."""
    if recorded:
        return float(recorded)
    steps = np.diff(times)
    return float(1.0 / np.median(steps)) if len(steps) and np.median(steps) > 0 else 1.0


def tag_o_gram(evaluation: RunEvaluation, truth: pd.DataFrame, wanted: str | None) -> ReportFigure | None:
    """Probabilities over time for the report track, from the main run's ``activations`` table."""
    run = evaluation.run
    activations, task = run.tables.get("activations"), run.metadata.get("task") or {}
    if activations is None or not task:
        return None
    kind, key = str(task.get("kind")), str(task.get("label_key"))
    section = evaluation.section("tagging" if kind == "multilabel" else key)
    if section is None:
        return None
    track = pick_track(section, wanted, run.run_id)
    times, probabilities = track_activations(activations, track)
    if not len(probabilities):
        return None
    labels = [str(label) for label in run.metadata.get("labels") or task.get("vocabulary") or []]
    timebase = run.timebase
    if kind.startswith("frame_"):
        rate = _rate(times, timebase.get("frame_rate"))
        unit = f"{len(probabilities)} frames ({rate:.1f} per second)"
    else:
        rate = _rate(times, 1.0 / timebase["hop_s"] if timebase.get("hop_s") else None)
        patch = f"{timebase['patch_s']:.2f} s, " if timebase.get("patch_s") else ""
        unit = f"{len(probabilities)} patches ({patch}hop {1.0 / rate:.2f} s)"
    png = plots.tag_o_gram(probabilities, labels, frame_rate=rate, title=f"{run.run_id}: track {track}")
    return ReportFigure("tag-o-gram", f"Tag-o-gram — track {track}", png,
                        caption=f"Probabilities of {unit}; reference {key}: {_describe(truth.at[track, key])}.")


def _segments_of(frame: pd.DataFrame, track: str, column: str) -> tuple[np.ndarray, list[str]]:
    rows = frame[frame["track_id"].astype(str) == track].sort_values(["start_s", column])
    return rows[["start_s", "end_s"]].to_numpy(np.float64).reshape(-1, 2), rows[column].astype(str).tolist()


def timeline(evaluation: RunEvaluation, truth: pd.DataFrame, wanted: str | None,
             task: str) -> ReportFigure | None:
    """Reference vs estimate segments of the report track, for ``task`` ``chords`` or ``instruments``."""
    section = evaluation.section(task)
    if section is None:
        return None
    track = pick_track(section, wanted, evaluation.run.run_id)
    column = "chord" if task == "chords" else "instrument"
    if task == "chords":
        ref_iv, ref_lab = chords.annotation_from_segments([dict(s) for s in truth.at[track, task]])
    else:
        ref = sorted((s["start_s"], s["end_s"], s["label"]) for s in truth.at[track, task])
        ref_iv, ref_lab = np.array([r[:2] for r in ref], np.float64).reshape(-1, 2), [r[2] for r in ref]
    est_iv, est_lab = _segments_of(evaluation.run.tables[task].frame, track, column)
    png = plots.chord_timeline(ref_iv, ref_lab, est_iv, est_lab,
                               title=f"{evaluation.run.run_id}: {task}, track {track}")
    score = section.metrics.get("per_track", {}).get("majmin", {}).get(track)  # chords only
    note = f" Track majmin score {score:.3f}." if score is not None else ""
    name = "Chord" if task == "chords" else "Instrument"
    return ReportFigure(f"{name.lower()}-timeline", f"{name} timeline — track {track}", png,
                        caption=f"Reference (blue, manifest) vs estimate (red, predictions).{note}")


class FilterArrays(Protocol):
    """A learned filter bank as arrays (:class:`autotag.models.filters.FilterBank` is one)."""

    kind: str  # "sincnet" or "conv1d"
    module: str
    weights: np.ndarray  # (n_filters, taps)
    sample_rate: float


def filter_figure(bank: FilterArrays | None, run_id: str) -> ReportFigure | None:
    """Frequency responses of a front-end's learned filter bank, if it has one."""
    if bank is None:
        return None
    name = "SincNet" if bank.kind == "sincnet" else "Conv1d"
    order = ("in filter order (mel-spaced at initialisation)" if bank.kind == "sincnet"
             else "sorted by peak frequency")
    png = plots.filter_responses(bank.weights, bank.sample_rate, title=f"{run_id}: {name}")
    return ReportFigure(f"filters-{bank.kind}", f"Learned {name} filters — frequency responses", png,
                        caption=f"{len(bank.weights)} filters of {bank.weights.shape[1]} taps "
                                f"(front-end layer {bank.module!r}), {order}.")


def history_figures(evaluations: Sequence[RunEvaluation]) -> list[ReportFigure]:
    """Training curves of the main run, and validation loss across runs."""
    main = evaluations[0]
    figures = []
    if main.run.history is not None:
        history = main.run.history[[c for c in HISTORY_COLUMNS if c in main.run.history.columns]]
        figures.append(ReportFigure("training-curves", f"Training curves — {main.run.run_id}",
                                    plots.training_curves(history, title=main.run.run_id),
                                    caption="Loss and accuracy per epoch; the dashed line marks the "
                                            "lowest validation loss (the checkpoint kept)."))
    histories = {e.run.run_id: e.run.history for e in evaluations
                 if e.run.history is not None and "val_loss" in e.run.history.columns}
    if len(histories) > 1:
        figures.append(ReportFigure("training-curves-runs", "Validation loss across runs",
                                    plots.curves_across_runs(histories)))
    return figures


def report_figures(evaluations: Sequence[RunEvaluation], truth: pd.DataFrame, cfg: EvaluateConfig,
                   filters: FilterArrays | None = None) -> list[ReportFigure]:
    """Every figure of the report, in order (see the module docstring); ``filters``: the main run's
    learned filter bank, taken from its checkpoint by the caller (:mod:`autotag.models.filters`)."""
    main = evaluations[0]
    figures = confusion_figures(main, cfg.split)
    optional = [tag_o_gram(main, truth, cfg.report_track),
                timeline(main, truth, cfg.report_track, "chords"),
                timeline(main, truth, cfg.report_track, "instruments"),
                filter_figure(filters, main.run.run_id)]
    return figures + [f for f in optional if f is not None] + history_figures(evaluations)


def per_label_frame(per_label: Mapping[str, Mapping[str, Any]], index_name: str) -> pd.DataFrame:
    """``{metric: {label: value}}`` as a labels x metrics frame (integer counts stay integers)."""
    frame = pd.DataFrame({metric: pd.Series(dict(values), dtype=object).infer_objects()
                          for metric, values in per_label.items()})
    frame.index.name = index_name
    return frame


def section_tables(section: Section) -> list[ReportTable]:
    """Per-class / per-tag / per-instrument values, or the chord comparisons, of one section."""
    if section.name == "chords":
        frame = pd.DataFrame({"wcsr": section.metrics["wcsr"], "track_mean": section.metrics["track_mean"]})
        frame.index.name = "comparison"
        return [ReportTable("chords", "Chords — mir_eval scores", frame,
                            caption="wcsr: correct duration / comparable duration, summed over tracks; "
                                    "track_mean: mean of per-track scores; underseg/overseg/seg: "
                                    "segmentation.")]
    if section.name == "instruments":
        return [ReportTable(f"instruments-{level}", f"Instruments — {level} level, per instrument",
                            per_label_frame(section.metrics[level]["per_label"], "instrument"))
                for level in ("frame", "segment")]
    if not section.metrics.get("per_label"):
        return []
    what = "tag" if section.name == "tagging" else "class"
    excluded = section.metrics.get("excluded_tags")
    caption = f"Excluded (one class only in the ground truth): {excluded}" if excluded else ""
    return [ReportTable(section.name.replace("_", "-"), f"Per {what} — {section.name}",
                        per_label_frame(section.metrics["per_label"], what), caption=caption)]


def track_tables(evaluation: RunEvaluation) -> list[ReportTable]:
    """The run's failed tracks (error rows of ``tracks``) and misclassified tracks, when there are any."""
    tables = []
    failed = evaluation.run.failed_tracks()
    if failed:
        frame = pd.DataFrame(failed)
        tables.append(ReportTable("failed-tracks", f"Failed tracks — {len(failed)}", frame,
                                  caption="Tracks inference could not tag (status = 'error'), with the reason."))
    wrong = [{"task": s.name, **row, **{k: ", ".join(row[k]) for k in ("reference", "estimate")
                                         if isinstance(row[k], list)}}
             for s in evaluation.sections for row in s.misclassified]
    if wrong:
        frame = pd.DataFrame(wrong)
        tables.append(ReportTable("misclassified-tracks", f"Misclassified tracks — {len(wrong)}", frame,
                                  caption="Evaluated tracks whose track-level decision differs from the reference."))
    return tables


def report_tables(evaluation: RunEvaluation) -> list[ReportTable]:
    """The per-label tables of every section of one run, then its failed and misclassified tracks."""
    return [table for section in evaluation.sections for table in section_tables(section)] + track_tables(evaluation)

