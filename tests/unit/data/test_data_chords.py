"""The 25-class chord vocabulary, reduction and frame/segment mapping."""

from __future__ import annotations

import mir_eval
import numpy as np
import pytest

from autotag.data import chords
from autotag.data.chords import (
    CHORD_LABELS,
    EXCLUDED,
    EXCLUDED_INDEX,
    NO_CHORD_INDEX,
    chord_index,
    chord_label,
    frames_to_segments,
    reduce_to_majmin,
    segments_to_frames,
)

REDUCTIONS = [
    # plain triads, both spellings
    ("C:maj", "C:maj"), ("C", "C:maj"), ("C#:min", "C#:min"), ("Db:min", "C#:min"), ("Bb:maj", "A#:maj"),
    ("Cb:maj", "B:maj"), ("B#:min", "C:min"), ("E#:maj", "F:maj"), ("Fb:min", "E:min"), ("Dbb:maj", "C:maj"),
    # richer chords reduce to their triad
    ("C:7", "C:maj"), ("A:min7", "A:min"), ("G:maj7", "G:maj"), ("D:9", "D:maj"), ("E:min9", "E:min"),
    ("F:maj6", "F:maj"), ("A:min6", "A:min"), ("C:minmaj7", "C:min"), ("C:7(#9)", "C:maj"), ("Ab:13", "G#:maj"),
    ("C:(3,5)", "C:maj"), ("C:(b3,5,b7)", "C:min"), ("C:maj(9)", "C:maj"),
    # inversions keep the root
    ("Bb:maj/5", "A#:maj"), ("C:maj/3", "C:maj"), ("A:min/b3", "A:min"), ("G:7/b7", "G:maj"), ("C/5", "C:maj"),
    # no chord
    ("N", "N"), ("N:-", "N"), (" N ", "N"),
    # no major/minor triad: excluded, as MIREX majmin does
    ("X", "X"), ("C:dim", "X"), ("C:aug", "X"), ("C:sus4", "X"), ("C:sus2", "X"), ("C:hdim7", "X"),
    ("C:dim7", "X"), ("C:5", "X"), ("C:1", "X"), ("C:maj(*3)", "X"), ("C:min(*b3)", "X"),
]


@pytest.mark.parametrize(("label", "expected"), REDUCTIONS)
def test_reduce_to_majmin(label, expected):
    assert reduce_to_majmin(label) == expected


@pytest.mark.parametrize(("label", "expected"), REDUCTIONS)
def test_reduction_agrees_with_mir_eval_majmin(label, expected):
    """A reduced label scores 1 against the original under mir_eval majmin; excluded ones score -1."""
    if label.strip() == "N:-":
        return  # not mir_eval syntax
    score = mir_eval.chord.majmin([label.strip()], [expected if expected != EXCLUDED else "N"])[0]
    assert score == (-1.0 if expected == EXCLUDED else 1.0)


@pytest.mark.parametrize("label", ["C:foo", "c:maj", "H:maj", "C:maj/x", "", "C::maj"])
def test_invalid_labels_raise_value_error(label):
    with pytest.raises(ValueError, match="chord label"):
        reduce_to_majmin(label)


def test_non_string_label_raises():
    with pytest.raises(ValueError, match="expected a string"):
        reduce_to_majmin(3)


def test_vocabulary_order_is_root_plus_12_times_minor():
    assert len(CHORD_LABELS) == 25 and len(set(CHORD_LABELS)) == 25
    assert CHORD_LABELS[0] == "C:maj" and CHORD_LABELS[11] == "B:maj"
    assert CHORD_LABELS[12] == "C:min" and CHORD_LABELS[23] == "B:min"
    assert CHORD_LABELS[NO_CHORD_INDEX] == "N"
    for index, label in enumerate(CHORD_LABELS[:24]):
        root, quality = label.split(":")
        assert index == chords.PITCH_CLASSES.index(root) + 12 * (quality == "min")
        assert reduce_to_majmin(label) == label
        assert chord_label(chord_index(label)) == label


def test_seed_order_is_the_tutorials_printed_order():
    printed = ("A#:maj, A#:min, A:maj, A:min, B:maj, B:min, C#:maj, C#:min, C:maj, C:min, D#:maj, D#:min, D:maj, "
               "D:min, E:maj, E:min, F#:maj, F#:min, F:maj, F:min, G#:maj, G#:min, G:maj, G:min, N:-")
    assert chords.SEED_CHORD_LABELS == tuple(printed.split(", "))


def test_chord_index_of_excluded_and_bad_index():
    assert chord_index("C:dim") == EXCLUDED_INDEX
    assert chord_index("C:dim", excluded_index=NO_CHORD_INDEX) == NO_CHORD_INDEX
    assert chord_label(EXCLUDED_INDEX) == "X"
    with pytest.raises(ValueError, match="chord class index 25"):
        chord_label(25)


def test_segments_to_frames_covers_t0_and_fills_gaps_with_no_chord():
    segments = [{"start_s": 0.0, "end_s": 0.3, "label": "C:maj"},
                {"start_s": 0.5, "end_s": 0.7, "label": "A:min7"},
                (0.7, 0.8, "C:dim")]
    frames = segments_to_frames(segments, num_frames=10, frame_rate=10.0)
    c, a, n, x = chord_index("C:maj"), chord_index("A:min"), NO_CHORD_INDEX, EXCLUDED_INDEX
    assert frames.tolist() == [c, c, c, n, n, a, a, x, n, n]
    assert frames.dtype == np.int64


def test_segment_boundaries_at_frame_times_land_on_the_frame():
    hop, sr = 512, 22050
    frame_rate = sr / hop
    start = 7 * hop / sr  # a boundary exactly at frame 7's time
    frames = segments_to_frames([(start, 20 * hop / sr, "G:maj")], 25, frame_rate)
    assert np.flatnonzero(frames == chord_index("G:maj")).tolist() == list(range(7, 20))


def test_later_segments_win_and_bad_segments_raise():
    assert segments_to_frames([(0, 1, "C"), (0.5, 1, "D")], 4, 4.0).tolist() == [0, 0, 2, 2]
    with pytest.raises(ValueError, match="start_s <= end_s"):
        segments_to_frames([(1.0, 0.5, "C")], 4, 4.0)
    with pytest.raises(ValueError, match="C:foo"):
        segments_to_frames([(0.0, 0.5, "C:foo")], 4, 4.0)


def test_frames_to_segments_roundtrip():
    frames = np.array([24, 0, 0, 0, 21, 21, EXCLUDED_INDEX, 24, 24])
    segments = frames_to_segments(frames, frame_rate=2.0, duration_s=4.5)
    assert segments == [
        {"start_s": 0.0, "end_s": 0.25, "label": "N"},
        {"start_s": 0.25, "end_s": 1.75, "label": "C:maj"},
        {"start_s": 1.75, "end_s": 2.75, "label": "A:min"},
        {"start_s": 2.75, "end_s": 3.25, "label": "X"},
        {"start_s": 3.25, "end_s": 4.5, "label": "N"},
    ]
    assert segments_to_frames(segments, len(frames), 2.0).tolist() == frames.tolist()
    assert frames_to_segments([], 2.0) == []
