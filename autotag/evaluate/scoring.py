"""Evaluate runs: one run's prediction tables against manifest ground truth, one section per task,
and several runs side by side — the entry module of :mod:`autotag.evaluate`.

:func:`evaluate_run` scores one run from its tables alone (no model, no audio, no Ray);
:func:`results_frame` lays several runs side by side like the tutorial's results table;
``pipelines.evaluate`` wires them to the report (:mod:`autotag.evaluate.report_content`).

Conventions
-----------
Ground truth is the manifest (:mod:`autotag.data.manifest`) restricted to one split. Each
prediction table gives one :class:`Section` of the run's metrics:

- ``tags`` with task kind ``multiclass`` (its ``autotag.task`` metadata) against the column
  ``task.label_key`` (``genre``): section named after the label key (``genre``);
- ``tags`` with kind ``multilabel`` against ``task.label_key`` (``tags``): section ``tagging``;
- ``chords`` against the manifest's ``chords`` segments: section ``chords``;
- ``instruments`` against the manifest's ``instruments`` segments: section ``instruments``;

plus ``<label_key>_patch`` (``genre_patch``): every patch of the evaluated tracks, its scores
read from the run's ``activations`` table, with patch label = track label, the tutorial's
protocol (its results table is per patch; ours defaults to track level, the mean of patch
probabilities). Scoring reads tables only: no audio is decoded and no model is run.

A track is *evaluated* when it has a ground-truth label in the split and the run predicted it
(an ``ok`` row of the ``tracks`` table, or rows in the task table when there is no ``tracks``
table); ground-truth tracks without a prediction (decode errors) are counted as ``missing``.
Predictions of tracks outside the split are ignored. No evaluated track at all is an error.

References
----------
Peeters, G. et al., "Deep Learning 101 for Audio-based MIR", ISMIR 2024 tutorial, chapter
"Auto-Tagging (front-ends)".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from autotag.config import EvaluateConfig
from autotag.evaluate import chords, classification, instruments, tables, tagging
from autotag.evaluate.artefacts import RunArtefacts
from autotag.evaluate.common import warn
from autotag.predictions import PredictionTable


@dataclass
class Section:
    """One task's metrics for one run, and which tracks they cover."""

    name: str
    metrics: dict[str, Any]
    track_ids: list[str]
    missing: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    misclassified: list[dict[str, Any]] = field(default_factory=list)
    """Tracks whose decision differs from the reference: ``{track_id, reference, estimate}``."""

    def coverage(self) -> dict[str, Any]:
        """``evaluated_tracks`` and ``missing_predictions`` counts."""
        return {"evaluated_tracks": len(self.track_ids), "missing_predictions": len(self.missing)}


def split_truth(truth: pd.DataFrame, split: str, source: str = "manifest") -> pd.DataFrame:
    """Manifest rows of ``split``, indexed by ``track_id``.

    Raises
    ------
    ValueError
        No row has that split.
    """
    rows = truth[truth["split"] == split]
    if rows.empty:
        found = sorted(truth["split"].dropna().unique())
        raise ValueError(f"{source}: no track in split {split!r}; splits present: {found}")
    return rows.set_index("track_id", drop=False)


def _labelled(truth: pd.DataFrame, column: str, run_id: str, table: str) -> pd.DataFrame:
    if column not in truth.columns:
        raise ValueError(f"run {run_id!r} {table}: the manifest has no {column!r} column")
    return truth[truth[column].notna()]


def _overlap(labelled: pd.DataFrame, predicted: set[str], run_id: str, table: str,
             column: str, split: str) -> tuple[list[str], list[str]]:
    """Evaluated and missing track ids (manifest order); raises when nothing overlaps."""
    ids = labelled["track_id"].astype(str).tolist()
    kept = [t for t in ids if t in predicted]
    if not kept:
        raise ValueError(
            f"run {run_id!r} {table}: none of its {len(predicted)} predicted track(s) is among the "
            f"{len(ids)} {split!r} track(s) of the manifest with a {column!r} label; expected the "
            f"predictions and the manifest to share track_ids (predicted e.g. {sorted(predicted)[:3]}, "
            f"manifest e.g. {ids[:3]})")
    return kept, [t for t in ids if t not in predicted]


def task_of(table: PredictionTable) -> tuple[dict[str, Any], list[str]]:
    """The ``autotag.task`` metadata of a ``tags`` table and its label vocabulary.

    Raises
    ------
    ValueError
        The metadata lacks ``autotag.task`` (or its ``kind``/``label_key``).
    """
    task = table.metadata.get("task")
    if not isinstance(task, dict) or not {"kind", "label_key"} <= set(task):
        raise ValueError(f"{table.directory}: Parquet metadata 'autotag.task' missing or without "
                         f"'kind'/'label_key' (got {task!r}); expected the tables written by pipelines.infer")
    labels = table.metadata.get("labels") or task.get("vocabulary")
    if not labels:
        raise ValueError(f"{table.directory}: no label vocabulary in 'autotag.labels' or 'autotag.task'")
    return task, [str(label) for label in labels]


def score_tags(truth: pd.DataFrame, run: RunArtefacts, split: str,
               threshold: float | None = None) -> Section:
    """The ``tags`` table of ``run`` scored by its task kind (see the module docstring).

    Parameters
    ----------
    truth
        Manifest rows of ``split`` (:func:`split_truth`).
    run
        The run; must have a ``tags`` table.
    split
        For messages.
    threshold
        Multi-label decision threshold; ``None``: the run's own decisions (its ``predicted``
        column, taken at its ``task.threshold``).

    Raises
    ------
    ValueError
        Unknown task kind, no overlapping track, malformed table or labels outside the vocabulary.
    """
    table = run.tables["tags"]
    task, labels = task_of(table)
    key = str(task["label_key"])
    labelled = _labelled(truth, key, run.run_id, "tags")
    predicted = run.ok_track_ids("tags") & set(table.frame["track_id"].astype(str))
    kept, missing = _overlap(labelled, predicted, run.run_id, "tags", key, split)
    rows = table.frame[table.frame["track_id"].isin(kept)]
    if task["kind"] == "multiclass":
        reference = dict(zip(kept, ([labelled.at[t, key]] for t in kept)))
        ids, y_true, y_score, _ = tagging.matrices_from_table(rows, reference, labels)
        ref = [labels[i] for i in y_true.argmax(1)]
        est = [labels[i] for i in y_score.argmax(1)]
        wrong = [{"track_id": t, "reference": r, "estimate": e} for t, r, e in zip(ids, ref, est) if r != e]
        return Section(key, classification.evaluate(ref, est, labels), ids, missing, labels, wrong)
    if task["kind"] == "multilabel":
        reference = {t: list(labelled.at[t, key]) for t in kept}
        ids, y_true, y_score, y_pred = tagging.matrices_from_table(rows, reference, labels)
        metrics = _tagging(y_true, y_score, y_pred, labels, task, threshold)
        decided = y_score >= threshold if threshold is not None else y_pred.astype(bool)
        return Section("tagging", metrics, ids, missing, labels, _wrong_tags(ids, y_true >= 0.5, decided, labels))
    raise ValueError(f"{table.directory}: task kind {task['kind']!r} in 'autotag.task'; expected "
                     "'multiclass' or 'multilabel' for a tags table")


def _wrong_tags(ids: list[str], truth: np.ndarray, decided: np.ndarray, labels: list[str]) -> list[dict[str, Any]]:
    """Tracks whose decided tag set differs from the reference set."""
    def names(row: np.ndarray) -> list[str]:
        return [labels[i] for i in np.flatnonzero(row)]

    return [{"track_id": t, "reference": names(truth[i]), "estimate": names(decided[i])}
            for i, t in enumerate(ids) if not np.array_equal(truth[i], decided[i])]


def _tagging(y_true: np.ndarray, y_score: np.ndarray, y_pred: np.ndarray, labels: list[str],
             task: Mapping[str, Any], threshold: float | None) -> dict[str, Any]:
    """Tag metrics; P/R/F1 of the run's own ``predicted`` decisions unless ``threshold`` is set.

    The run's decisions were taken on the float32 scores it stored; re-thresholding those in
    float64 could flip a score equal to the threshold, so they are used as they are.
    """
    if threshold is not None:
        return dict(tagging.evaluate(y_true, y_score, labels, thresholds=threshold))
    metrics = dict(tagging.evaluate(y_true, y_score, labels, y_pred=y_pred))
    own = float(task.get("threshold", 0.5))
    metrics["per_label"]["threshold"] = {tag: own for tag in metrics["per_label"]["precision"]}
    return metrics


def track_activations(table: PredictionTable, track: str) -> tuple[np.ndarray, np.ndarray]:
    """Times (s) and scores ``(rows, labels)`` of one track in an ``activations`` table, in time order."""
    rows = table.frame[table.frame["track_id"].astype(str) == track].sort_values("time_s")
    scores = np.stack([np.asarray(s, dtype=np.float64) for s in rows["scores"]]) if len(rows) else np.zeros((0, 0))
    return rows["time_s"].to_numpy(np.float64), scores


def score_patches(section: Section, truth: pd.DataFrame, label_key: str, activations: PredictionTable) -> Section:
    """Multi-class scores per patch of the tracks of ``section`` (patch label = track label).

    Parameters
    ----------
    section
        The track-level multi-class section (its tracks and label order are reused).
    truth
        Manifest rows indexed by ``track_id`` (``label_key``).
    label_key
        The manifest column of the track labels.
    activations
        The run's ``activations`` table: one row per patch, ``scores`` in ``section.labels``
        order (written by inference; no audio is decoded and no model run here).

    Returns
    -------
    Section
        ``<label_key>_patch``: :func:`autotag.evaluate.classification.evaluate` on patches plus
        ``n_tracks``; tracks without activations are listed as missing, with a warning.

    Raises
    ------
    ValueError
        No track of the section has activations, or their width is not the label count.
    """
    reference: list[str] = []
    estimate: list[str] = []
    scored, failed = [], []
    for track in section.track_ids:
        _, probabilities = track_activations(activations, track)
        if not len(probabilities):
            failed.append(track)
            continue
        if probabilities.shape[1] != len(section.labels):
            raise ValueError(f"{activations.directory}: track {track!r} has {probabilities.shape[1]} scores per "
                             f"patch; expected {len(section.labels)} (one per label of the tags table)")
        estimate.extend(section.labels[i] for i in np.argmax(probabilities, axis=1))
        reference.extend([str(truth.at[track, label_key])] * len(probabilities))
        scored.append(track)
    if failed:
        warn(f"patch-level scores: {len(failed)} track(s) have no activations, skipped: {failed[:5]}")
    if not scored:
        raise ValueError(f"patch-level scores: none of the {len(section.track_ids)} tracks has rows in "
                         f"{activations.directory}")
    metrics = {"n_tracks": len(scored), **classification.evaluate(reference, estimate, section.labels)}
    return Section(f"{section.name}_patch", metrics, scored, failed, section.labels)


def _segments(value: Any) -> list[dict[str, Any]]:
    return [dict(s) for s in value] if value is not None else []


def score_chords(truth: pd.DataFrame, run: RunArtefacts, split: str, frame_rate: float) -> Section:
    """The ``chords`` table against the manifest's ``chords`` column (mir_eval, WCSR, frames).

    Invalid annotations (either side) leave their track out with a warning, listed under
    ``invalid_tracks``; see :func:`autotag.evaluate.chords.evaluate`.
    """
    table = run.tables["chords"]
    labelled = _labelled(truth, "chords", run.run_id, "chords")
    kept, missing = _overlap(labelled, run.ok_track_ids("chords"), run.run_id, "chords", "chords", split)
    references = {t: chords.annotation_from_segments(_segments(labelled.at[t, "chords"])) for t in kept}
    rows = table.frame[table.frame["track_id"].astype(str).isin(kept)]
    estimates = chords.annotations_from_table(rows)
    metrics = dict(chords.evaluate(references, estimates, frame_rate=frame_rate, errors="skip"))
    metrics["frame_rate"] = float(frame_rate)
    return Section("chords", metrics, kept, missing)


def score_instruments(truth: pd.DataFrame, run: RunArtefacts, split: str, frame_rate: float) -> Section:
    """The ``instruments`` table against the manifest's ``instruments`` column.

    The vocabulary is the table's ``autotag.labels`` plus every label on either side, so an
    instrument the model does not know still counts (recall 0).
    """
    table = run.tables["instruments"]
    labelled = _labelled(truth, "instruments", run.run_id, "instruments")
    kept, missing = _overlap(labelled, run.ok_track_ids("instruments"), run.run_id, "instruments",
                             "instruments", split)
    references = {t: _segments(labelled.at[t, "instruments"]) for t in kept}
    rows = table.frame[table.frame["track_id"].astype(str).isin(kept)]
    estimates = instruments.segments_from_table(rows)
    vocabulary = sorted({str(v) for v in table.metadata.get("labels") or []}
                        | {s["label"] for segs in references.values() for s in segs}
                        | {s[2] for segs in estimates.values() for s in segs})
    durations = {**run.durations(), **_manifest_durations(labelled.loc[kept])}
    metrics = dict(instruments.evaluate(references, estimates, vocabulary, frame_rate,
                                        durations=durations, errors="skip"))
    return Section("instruments", metrics, kept, missing, vocabulary)


def _manifest_durations(rows: pd.DataFrame) -> dict[str, float]:
    known = rows.dropna(subset=["duration_s"])
    return dict(zip(known["track_id"].astype(str), known["duration_s"].astype(float)))


def run_metrics(sections: Sequence[Section]) -> dict[str, Any]:
    """The run's metrics dict: one key per section plus ``coverage``.

    ``coverage`` holds ``evaluated_tracks`` / ``missing_predictions`` of the first section (the
    ``tags`` task when present) and the same counts per section under its name.
    """
    metrics: dict[str, Any] = {s.name: s.metrics for s in sections}
    coverage: dict[str, Any] = dict(sections[0].coverage()) if sections else {}
    coverage.update({s.name: s.coverage() for s in sections})
    metrics["coverage"] = coverage
    return metrics


def missing_ids(sections: Sequence[Section]) -> Mapping[str, list[str]]:
    """``{section: [track_id, ...]}`` of ground-truth tracks without a prediction."""
    return {s.name: s.missing for s in sections if s.missing}


def misclassified(sections: Sequence[Section]) -> Mapping[str, list[dict[str, Any]]]:
    """``{section: [{track_id, reference, estimate}, ...]}`` of the track-level decisions that are wrong."""
    return {s.name: s.misclassified for s in sections if s.misclassified}


# ---------------------------------------------------------------------------------------------- whole runs

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
        :func:`autotag.evaluate.artefacts.load_run`.
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
