"""The synthetic twins of the tutorial's multi-label and time-based experiments learn.

Each preset runs shard → train → infer → evaluate on 2 CPU Ray Train workers with a small
dataset and few epochs, and must beat chance by a stated margin:

==========================  ======================  ==========  ===============
preset                      metric (test split)     chance      asserted
==========================  ======================  ==========  ===============
synthetic_tags_lms_conv2d   macro ROC-AUC           0.50        >= 0.70
synthetic_chords            majmin WCSR (mir_eval)  0.04 (1/25) >= 0.40
synthetic_instruments       frame accuracy          majority    >= majority + 0.03
==========================  ======================  ==========  ===============
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autotag.data import manifest
from pipelines import evaluate, infer, shard, train
from pipelines.common import load_config

pytestmark = pytest.mark.slow


def _run(root: Path, experiment: str, *overrides: str) -> dict:
    cfg = load_config([f"experiment={experiment}", f"paths.root={root}", "runtime.progress_bars=false",
                       "dataset.synthetic.corrupt_tracks=0", *overrides])
    results = {"cfg": cfg}
    for name, stage in (("shard", shard), ("train", train), ("infer", infer), ("evaluate", evaluate)):
        results[name] = stage.run(cfg)
    results["metrics"] = json.loads(Path(results["evaluate"]["metrics_json"]).read_text())["runs"][cfg.run_id]
    return results


def test_tags(ray_session, tmp_path):
    # Batches of 16 want a smaller step than the tutorial's 0.01 (made for 128): at 0.01 the result
    # swung between 0.68 and 0.71 with the float rounding of the mel product; at 0.001, 0.78 both ways.
    run = _run(tmp_path, "synthetic_tags_lms_conv2d", "dataset.synthetic.tracks_per_class=12",
               "dataset.synthetic.duration_s=8.0", "train.batch_size=16", "train.max_epochs=10",
               "train.patience=5", "train.lr=0.001")
    tagging = run["metrics"]["tagging"]
    assert tagging["roc_auc_macro"] >= 0.70, tagging


def test_chords(ray_session, tmp_path):
    # 20 epochs: at 10 the model was still far from converged (majmin 0.28, val_accuracy rising every
    # epoch), and at that accuracy smoothing traded correct short segments for fewer ones (frame
    # accuracy 0.287 -> 0.279 on this machine); at 20, majmin 0.51 and smoothing no longer costs frames.
    run = _run(tmp_path, "synthetic_chords", "dataset.synthetic.tracks_per_class=8", "train.max_epochs=20")
    wcsr = run["metrics"]["chords"]["wcsr"]
    assert wcsr["majmin"] >= 0.40, wcsr
    assert 0 <= wcsr["seg"] <= 1
    _viterbi_beats_argmax(run["cfg"])


def _viterbi_beats_argmax(cfg) -> None:
    """Smoothing gives fewer segments than the frame-wise argmax, a better MIREX segmentation score
    (mir_eval's MeanSeg), and costs at most a point of frame accuracy: it may trade a few correct
    frames of a short segment for a cleaner segmentation. Runs differ (2 workers, Ray Data order):
    on 2026-12-07 one gave frame accuracy 0.5316 -> 0.5305, the next 0.557 -> 0.564, MeanSeg 0.80 -> 0.87."""
    from autotag.data import chords
    from autotag.data.audio import decode_audio
    from autotag.evaluate.chords import evaluate_track
    from autotag.infer.predictor import TrackPredictor

    predictor = TrackPredictor(cfg.infer.checkpoint)
    table = manifest.read(cfg.dataset.manifest).to_pandas()
    counts = {0.0: 0, cfg.infer.chord_switch_penalty: 0}
    hits = dict.fromkeys(counts, 0)
    segmentation = {penalty: [] for penalty in counts}
    frames = 0
    test = table.loc[table.split == "test"]
    for path, segments in zip(test["audio_path"], test["chords"]):
        times, probs = predictor.frame_probabilities(decode_audio(path).samples)
        reference = reference_frames(segments, times)
        frames += int((reference != chords.EXCLUDED_INDEX).sum())
        for penalty in counts:
            predictor.chord_switch_penalty = penalty
            estimate = predictor.segments_from(times, probs, times[-1])
            counts[penalty] += len(estimate)
            labels = np.full(len(times), -1)
            for seg in estimate:
                inside = (times >= seg["start_s"]) & (times < seg["end_s"] + 1e-9)
                labels[inside] = chords.CHORD_LABELS.index(seg["label"])
            hits[penalty] += int(((labels == reference) & (reference != chords.EXCLUDED_INDEX)).sum())
            segmentation[penalty].append(evaluate_track(*_annotation(segments), *_annotation(estimate))["seg"])
    raw, smooth = 0.0, cfg.infer.chord_switch_penalty
    accuracy = {k: v / frames for k, v in hits.items()}
    mean_seg = {k: float(np.mean(v)) for k, v in segmentation.items()}
    assert counts[smooth] < counts[raw], counts
    assert mean_seg[smooth] > mean_seg[raw], (mean_seg, accuracy)
    assert accuracy[smooth] >= accuracy[raw] - 0.01, (mean_seg, accuracy)
    print(f"segments {counts}, MeanSeg {mean_seg}, frame accuracy {accuracy}")


def _annotation(segments) -> tuple[np.ndarray, list[str]]:
    """Chord segments (dicts with start_s, end_s, label) as mir_eval's intervals and labels."""
    return (np.array([[seg["start_s"], seg["end_s"]] for seg in segments], dtype=float).reshape(-1, 2),
            [seg["label"] for seg in segments])


def reference_frames(segments, times):
    from autotag.data.tasks import Task, vocabulary_for

    task = Task("frame_multiclass", "chords", vocabulary_for("frame_multiclass", "chords", []))
    return task.encode_frames({"chords": list(segments)}, times)


def _activity(segments, labels, times) -> np.ndarray:
    grid = np.zeros((len(times), len(labels)), dtype=bool)
    for start, end, label in segments:
        grid[(times >= start) & (times < end), labels.index(label)] = True
    return grid


def test_instruments(ray_session, tmp_path):
    import duckdb

    run = _run(tmp_path, "synthetic_instruments", "dataset.synthetic.tracks_per_class=8", "train.max_epochs=10")
    cfg = run["cfg"]
    table = manifest.read(cfg.dataset.manifest).to_pandas()
    test = table[table["split"] == "test"]
    labels = manifest.label_vocabulary(manifest.read(cfg.dataset.manifest), "instruments")
    predicted = duckdb.sql(f"SELECT track_id, start_s, end_s, instrument FROM "
                           f"read_parquet('{run['infer']['instruments_dir']}/*.parquet')").fetchall()
    reference_all, predicted_all = [], []
    for track_id, segments, duration in zip(test["track_id"], test["instruments"], test["duration_s"]):
        times = np.arange(0.025, duration, 0.05)
        ref = _activity([(s["start_s"], s["end_s"], s["label"]) for s in segments], labels, times)
        est = _activity([(a, b, c) for t, a, b, c in predicted if t == track_id], labels, times)
        reference_all.append(ref)
        predicted_all.append(est)
    ref, est = np.concatenate(reference_all), np.concatenate(predicted_all)
    accuracy = float((ref == est).mean())
    majority = float(np.maximum(ref.mean(0), 1 - ref.mean(0)).mean())  # always the more frequent state
    assert accuracy >= majority + 0.03, (accuracy, majority)
    assert run["metrics"]["instruments"]["frame"]["n_frames"] > 0
