"""crema's decoding steps beyond the Viterbi: inversions from the bass head, and the majmin reduction."""

from __future__ import annotations

import numpy as np
import pytest

from autotag.data.chords import CHORD_LABELS, NO_CHORD_INDEX, majmin_projection
from autotag.infer.predictor import reduce_chord_posteriors
from autotag.infer.segments import add_inversions

TIMES = (np.arange(4) + 0.5) * 0.5  # frame centres, 0.5-s frames


def bass_on(pitch_class: int) -> np.ndarray:
    bass = np.full((4, 13), 0.01)
    bass[:, pitch_class] = 0.9
    return bass


@pytest.mark.parametrize(("label", "pitch_class", "expected"), [
    ("C:maj", 4, "C:maj/3"),  # E under C major: first inversion
    ("G:7", 11, "G:7/3"),
    ("A:min", 4, "A:min/5"),
    ("C:maj", 2, "C:maj"),  # D is not a note of C major
    ("C:maj", 0, "C:maj"),  # the root: root position
    ("C:maj", 12, "C:maj"),  # the bass head's no-chord class
    ("N", 4, "N"),
])
def test_bass_degree_is_added_when_it_is_a_chord_note(label, pitch_class, expected):
    segments = [{"start_s": 0.0, "end_s": 2.0, "label": label, "confidence": 0.5}]
    assert add_inversions(segments, bass_on(pitch_class), TIMES)[0] == {**segments[0], "label": expected}


def test_bass_is_averaged_geometrically_over_the_segment_and_the_next_frame():
    bass = bass_on(4)
    bass[2:, :] = 0.01
    bass[2:, 7] = 0.9  # G from frame 2 on
    segments = [{"start_s": 0.0, "end_s": 1.0, "label": "C:maj", "confidence": 1.0},
                {"start_s": 1.0, "end_s": 2.0, "label": "C:maj", "confidence": 1.0}]
    assert [s["label"] for s in add_inversions(segments, bass, TIMES)] == ["C:maj/3", "C:maj/5"]


def test_majmin_reduction_sums_posteriors_and_sends_chords_without_a_reading_to_n():
    vocabulary = ["C:maj", "C:7", "C:dim", "A:min7", "N"]
    probs = np.array([[0.3, 0.3, 0.2, 0.1, 0.1], [0.0, 0.0, 1.0, 0.0, 0.0]])
    reduced = reduce_chord_posteriors(probs, majmin_projection(vocabulary))
    assert reduced.shape == (2, 25)
    assert reduced[0, CHORD_LABELS.index("C:maj")] == pytest.approx(0.6 / 0.8)
    assert reduced[0, CHORD_LABELS.index("A:min")] == pytest.approx(0.1 / 0.8)
    assert reduced[1, NO_CHORD_INDEX] == 1.0 and reduced[1].sum() == 1.0


def test_chord_vocabulary_is_checked_when_the_config_is_composed():
    from autotag.config import ConfigError
    from pipelines.common import load_config

    assert load_config(["infer.chord_vocabulary=majmin"]).infer.chord_vocabulary == "majmin"
    with pytest.raises(ConfigError, match=r"infer.chord_vocabulary: 'majmn' is not one of \['full', 'majmin'\]"):
        load_config(["infer.chord_vocabulary=majmn"])


def test_majmin_runs_write_25_class_activations(tmp_path):
    """A chord model under chord_vocabulary=majmin: segments, scores and activations in the 25 classes."""
    import torch

    from autotag.data.tasks import Task
    from autotag.infer.predictor import TrackPredictor
    from autotag.models import build_model, checkpoint

    torch.manual_seed(0)
    vocabulary = ["C:maj", "C:7", "C:dim", "A:min7", "N"]
    params = {"patch_frames": 96, "patch_hop_frames": 48}
    model = build_model("cqt_conv2d", "conv_bilstm", 5, params, task="frame_multiclass")
    spec = {"frontend": "cqt_conv2d", "backend": "conv_bilstm", "frontend_params": params, "backend_params": {}}
    ckpt = checkpoint.save(tmp_path / "ckpt", model, {"model": spec,
                                                      "task": Task("frame_multiclass", "chords", vocabulary).to_dict()})
    predictor = TrackPredictor(str(ckpt), device="cpu", activations=True, chord_vocabulary="majmin")
    out = predictor.predict(0.1 * np.random.default_rng(0).standard_normal(22_050 * 2).astype(np.float32))
    assert out["scores"].shape == (25,) and out["scores"].sum() == pytest.approx(1.0, abs=1e-5)
    assert len(out["activations"]["scores"][0]) == 25
    assert {s["label"] for s in out["segments"]} <= {"C:maj", "A:min", "N"}
