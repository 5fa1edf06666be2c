"""Stitching windows into track frames, Viterbi smoothing and segment decoding."""

from __future__ import annotations

import numpy as np
import pytest

from autotag.infer.frames import stitched_frames, track_frame_times, window_hop
from autotag.infer.segments import activity_segments, chord_segments, median_filter, runs_to_segments, viterbi

HOP, OFFSET, WINDOW = 64, 32.0, 1024


def local_energy(samples: np.ndarray) -> np.ndarray:
    """A 'model' with a 3-hop receptive field: mean |x| around each output frame centre."""
    n = len(samples)
    centres = (OFFSET + np.arange(int(np.floor((n - 1 - OFFSET) / HOP)) + 1) * HOP).astype(int)
    return np.stack([[np.abs(samples[max(c - 96, 0) : c + 96]).mean(), samples[c]] for c in centres])


def run_windows(windows: np.ndarray) -> np.ndarray:
    return np.stack([local_energy(w) for w in windows])


@pytest.mark.parametrize("length", [WINDOW, 5_000, 20_000, 20_000 + 37])
def test_stitching_equals_a_single_pass_for_a_limited_receptive_field(length):
    x = np.random.default_rng(length).standard_normal(length).astype(np.float32)
    whole = local_energy(x)
    stitched = stitched_frames(x, run_windows, WINDOW, HOP, OFFSET, batch_size=3)
    assert stitched.shape == whole.shape == (len(track_frame_times(length, HOP, OFFSET)), 2)
    # Frames near the end of the track see zero padding in both cases only within the track.
    np.testing.assert_allclose(stitched[:-2], whole[:-2], rtol=1e-6)


def test_short_track_gives_its_frames_from_one_padded_window():
    x = np.ones(300, np.float32)
    out = stitched_frames(x, run_windows, WINDOW, HOP, OFFSET)
    assert out.shape[0] == len(track_frame_times(300, HOP, OFFSET)) == 5


def test_window_hop_is_a_multiple_of_the_output_hop():
    assert window_hop(1000, 64) == 704 and window_hop(50, 64) == 64
    with pytest.raises(ValueError, match="multiple"):
        stitched_frames(np.zeros(4000, np.float32), run_windows, WINDOW, HOP, OFFSET, hop=100)


def test_viterbi_zero_penalty_is_argmax_and_penalty_removes_blips():
    rng = np.random.default_rng(0)
    truth = np.repeat([0, 2, 1, 2], 50)
    probs = np.full((len(truth), 3), 0.1)
    probs[np.arange(len(truth)), truth] = 0.8
    noisy = truth.copy()
    flips = rng.choice(len(truth), 25, replace=False)
    noisy[flips] = (truth[flips] + 1) % 3
    probs[flips] = 0.1
    probs[flips, noisy[flips]] = 0.55
    probs /= probs.sum(1, keepdims=True)
    logp = np.log(probs)
    np.testing.assert_array_equal(viterbi(logp, 0.0), probs.argmax(1))
    smooth = viterbi(logp, 3.0)
    changes = lambda p: int((np.diff(p) != 0).sum())  # noqa: E731
    assert changes(smooth) == 3 < changes(probs.argmax(1))
    assert (smooth == truth).mean() >= (probs.argmax(1) == truth).mean()


def test_viterbi_matches_brute_force_on_a_tiny_case():
    import itertools

    logp = np.log(np.array([[0.6, 0.4], [0.3, 0.7], [0.55, 0.45], [0.2, 0.8]]))
    best = max(itertools.product(range(2), repeat=4),
               key=lambda p: sum(logp[t, c] for t, c in enumerate(p)) - 1.0 * sum(a != b for a, b in zip(p, p[1:])))
    assert tuple(viterbi(logp, 1.0)) == best


def test_segments_have_half_way_boundaries_and_cover_the_track():
    times = np.array([0.25, 0.75, 1.25, 1.75])
    segments = runs_to_segments(np.array([3, 3, 5, 5]), times, 2.1, np.array([0.5, 0.7, 0.9, 0.8]))
    assert segments == [(0.0, 1.0, 3, pytest.approx(0.6)), (1.0, 2.1, 5, pytest.approx(0.85))]
    chords = chord_segments(np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9]]), np.array([0.5, 1.5, 2.5]), 3.0,
                            ["C:maj", "N"], switch_penalty=0.0)
    assert [(c["start_s"], c["end_s"], c["label"]) for c in chords] == [(0.0, 2.0, "C:maj"), (2.0, 3.0, "N")]


def test_instrument_activity_segments_and_median_filter():
    probs = np.array([[0.9, 0.1], [0.9, 0.6], [0.2, 0.7], [0.9, 0.8]])
    segments = activity_segments(probs, np.arange(4) + 0.5, 4.0, ["bass", "piano"], threshold=0.5)
    assert [(s["label"], s["start_s"], s["end_s"]) for s in segments] == [
        ("bass", 0.0, 2.0), ("piano", 1.0, 4.0), ("bass", 3.0, 4.0)]
    assert median_filter(np.array([[1], [0], [1], [1], [0]], bool), 3)[:, 0].tolist() == [True, True, True, True, False]
