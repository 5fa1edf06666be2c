"""Synthetic datasets of all four quadrants: determinism, label consistency, vocabularies."""

from __future__ import annotations

import hashlib
import warnings

import numpy as np
import pytest

from autotag.data import manifest
from autotag.data.adapters import read_lab
from autotag.data.chords import CHORD_LABELS, PITCH_CLASSES
from autotag.data.synthetic import GENERATORS, LABEL_KEYS, VOCABULARIES, SyntheticSpec, generate, track_count
from autotag.data.synthetic.chords import render_chord_track, triad_midi
from autotag.data.synthetic.instruments import INSTRUMENTS, render_instrument_track
from autotag.data.synthetic.sources import SOURCES, random_groove, render_source
from autotag.data.synthetic.tags import TAGS, render_tag_track

DURATION = 2.0
KINDS = ("genre", "tags", "chords", "instruments")


def _spec(kind: str) -> SyntheticSpec:
    return SyntheticSpec(kind=kind, tracks_per_class=1, duration_s=DURATION, sample_rates=(16_000, 22_050),
                         corrupt_tracks=2)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """Each kind generated twice, into two folders."""
    out = {}
    for kind in KINDS:
        dirs = [tmp_path_factory.mktemp(f"{kind}_{copy}") for copy in "ab"]
        out[kind] = [(d, manifest.read(generate(d, _spec(kind)))) for d in dirs]
    return out


def _digests(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "audio").rglob("*")) if p.is_file()}


@pytest.mark.parametrize("kind", KINDS)
def test_same_spec_gives_identical_files_and_labels(datasets, kind):
    (dir_a, table_a), (dir_b, table_b) = datasets[kind]
    assert _digests(dir_a) == _digests(dir_b)
    assert table_a.drop_columns(["audio_path"]).equals(table_b.drop_columns(["audio_path"]))
    expected = 10 * _spec(kind).tracks_per_class + 2  # + the corrupt rows
    assert len(table_a) == expected
    if kind != "genre":  # genre splits by index within a class, so one track per class is all test
        assert set(table_a.column("split").to_pylist()) == {"train", "valid", "test"}
    labels = table_a.column(LABEL_KEYS[kind]).to_pylist()
    assert all(label is not None for label in labels)
    assert set(manifest.label_vocabulary(table_a, LABEL_KEYS[kind])) <= set(VOCABULARIES[kind])


def test_registries_cover_every_kind():
    assert set(GENERATORS) == set(LABEL_KEYS) == set(VOCABULARIES) == set(KINDS)
    assert track_count(_spec("tags")) == 10
    with pytest.raises(ValueError, match="unknown synthetic dataset kind 'lyrics'"):
        generate("unused", SyntheticSpec(kind="lyrics"))


def _real_rows(table):
    return [r for r in table.to_pylist() if not r["track_id"].startswith("corrupt")]


def test_chord_segments_tile_the_track_and_match_the_lab_files(datasets):
    _root, table = datasets["chords"][0]
    for row in _real_rows(table):
        segments = row["chords"]
        assert segments[0]["start_s"] == 0.0 and segments[-1]["end_s"] == DURATION
        for before, after in zip(segments, segments[1:]):
            assert before["end_s"] == after["start_s"] and before["label"] != after["label"]
        assert all(s["label"] in CHORD_LABELS and s["end_s"] > s["start_s"] for s in segments)
        lab = read_lab(row["audio_path"].rsplit(".", 1)[0] + ".lab")
        assert lab == segments


def _chroma_top3(y: np.ndarray, sr: int) -> set[str]:
    import librosa

    with warnings.catch_warnings():  # librosa's CQT warns about its own short downsampled octaves
        warnings.simplefilter("ignore", UserWarning)
        chroma = librosa.feature.chroma_cqt(y=y, sr=sr, hop_length=512).mean(axis=1)
    return {PITCH_CLASSES[i] for i in np.argsort(chroma)[-3:]}


@pytest.mark.parametrize(("label", "notes"), [("C:maj", {"C", "E", "G"}), ("A:min", {"A", "C", "E"}),
                                              ("F#:maj", {"F#", "A#", "C#"})])
def test_rendered_chord_has_its_chroma_peaks_at_the_triad(label, notes):
    for seed in range(3):  # different timbre, inversion, octave and playing pattern each time
        y = render_chord_track([{"start_s": 0.0, "end_s": DURATION, "label": label}], DURATION, 22_050,
                               np.random.default_rng(seed))
        assert _chroma_top3(y, 22_050) == notes


def test_chord_changes_exactly_at_the_segment_boundary():
    sr, boundary = 22_050, 1.0
    plan = [{"start_s": 0.0, "end_s": boundary, "label": "C:maj"},
            {"start_s": boundary, "end_s": DURATION, "label": "F#:maj"}]
    y = render_chord_track(plan, DURATION, sr, np.random.default_rng(4))
    window = 2048  # frames that end before / start after the boundary see one chord only
    cut = int(boundary * sr)
    assert _chroma_top3(y[cut - 8 * window:cut], sr) == {"C", "E", "G"}
    assert _chroma_top3(y[cut:cut + 8 * window], sr) == {"F#", "A#", "C#"}


def test_triad_inversions():
    assert triad_midi("C:maj", 0, 48) == [48, 52, 55]
    assert triad_midi("C:maj", 1, 48) == [52, 55, 60]
    assert triad_midi("A:min", 2, 50) == [52, 57, 60]


def test_tag_sets_follow_the_documented_vocabulary(datasets):
    assert TAGS == ("bass", "drums", "fast", "loud", "pad", "piano", "quiet", "slow", "strings", "vocal")
    _root, table = datasets["tags"][0]
    for row in _real_rows(table):
        tags = set(row["tags"])
        assert tags <= set(TAGS) and row["tags"] == sorted(tags)
        assert 2 <= len(tags & set(SOURCES)) <= 4
        assert not {"fast", "slow"} <= tags and not {"loud", "quiet"} <= tags


def test_loud_and_quiet_tracks_differ_in_level():
    peaks = {}
    for level in ("loud", "quiet"):
        y = render_tag_track(["piano", "bass"], None, level, DURATION, 16_000, np.random.default_rng(0))
        peaks[level] = float(np.abs(y).max())
    assert 20 * np.log10(peaks["loud"] / peaks["quiet"]) > 20


def test_instrument_segments_follow_the_documented_vocabulary(datasets):
    assert INSTRUMENTS == ("bass", "drums", "pad", "piano", "strings", "vocal")
    _root, table = datasets["instruments"][0]
    for row in _real_rows(table):
        segments = row["instruments"]
        assert 3 <= len({s["label"] for s in segments}) <= 5
        assert all(s["label"] in INSTRUMENTS and 0.0 <= s["start_s"] < s["end_s"] <= DURATION for s in segments)
        assert [s["start_s"] for s in segments] == sorted(s["start_s"] for s in segments)
        for name in INSTRUMENTS:
            own = [s for s in segments if s["label"] == name]
            assert all(a["end_s"] <= b["start_s"] for a, b in zip(own, own[1:]))


def test_instrument_is_silent_outside_its_segments():
    sr = 16_000
    y = render_instrument_track({"piano": [{"start_s": 0.5, "end_s": 1.0, "label": "piano"}]}, DURATION, sr,
                                np.random.default_rng(0))
    inside, outside = y[int(0.5 * sr):sr], np.concatenate([y[:int(0.5 * sr)], y[sr:]])
    assert np.sqrt(np.mean(inside**2)) > 10 * np.sqrt(np.mean(outside**2))


@pytest.mark.parametrize("name", SOURCES)
def test_sources_render_finite_normalised_audio(name):
    y = render_source(name, 8000, 16_000, random_groove(np.random.default_rng(0), (100, 120)),
                      np.random.default_rng(1))
    assert y.shape == (8000,) and np.isfinite(y).all() and np.isclose(np.abs(y).max(), 1.0)
    with pytest.raises(ValueError, match="unknown source 'flute'"):
        render_source("flute", 10, 16_000, random_groove(np.random.default_rng(0), (100, 120)),
                      np.random.default_rng(1))
