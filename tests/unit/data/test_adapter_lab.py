"""Audio folder + .lab files adapter."""

from __future__ import annotations

import pytest

from autotag.data.adapters import prepare_lab, read_lab

LAB = """# Isophonics-style chord annotation
0.000000\t0.440000\tN
0.440000 2.100000 Db:maj
2.100000\t3.500000\tA:min7

3.500000\t4.000000\tBb:maj/5
4.000000\t4.250000\tC:sus4
"""


def _row(track_id, audio_path, split, **labels):
    return {"track_id": track_id, "audio_path": str(audio_path.resolve()), "duration_s": None, "split": split,
            "genre": None, "tags": None, "chords": None, "instruments": None, **labels}


def test_rows_with_reduced_chords(tmp_path, tiny_audio):
    song = tiny_audio(tmp_path / "album 1" / "01 Song.flac")
    (tmp_path / "album 1" / "01 Song.lab").write_text(LAB)
    other = tiny_audio(tmp_path / "b.wav")
    (tmp_path / "b.lab").write_text("0 1.5 E:min\n")
    rows = prepare_lab(tmp_path, split="test").to_pylist()
    assert rows == [
        _row("album-1-01-Song", song, "test", chords=[
            {"start_s": 0.0, "end_s": 0.44, "label": "N"}, {"start_s": 0.44, "end_s": 2.1, "label": "C#:maj"},
            {"start_s": 2.1, "end_s": 3.5, "label": "A:min"}, {"start_s": 3.5, "end_s": 4.0, "label": "A#:maj"},
            {"start_s": 4.0, "end_s": 4.25, "label": "X"}]),
        _row("b", other, "test", chords=[{"start_s": 0.0, "end_s": 1.5, "label": "E:min"}]),
    ]


def test_separate_lab_root_instruments_and_missing_labels(tmp_path, tiny_audio):
    audio = tiny_audio(tmp_path / "audio" / "x" / "t1.wav")
    tiny_audio(tmp_path / "audio" / "x" / "t2.wav")
    (tmp_path / "labels" / "x").mkdir(parents=True)
    (tmp_path / "labels" / "x" / "t1.lab").write_text("1.0 2.0 piano\n0.0 1.5 voice\n")
    (tmp_path / "labels" / "x" / "orphan.lab").write_text("0 1 piano\n")
    with pytest.raises(ValueError, match=r"t2\.wav: no label file .*t2\.lab"):
        prepare_lab(tmp_path / "audio", lab_root=tmp_path / "labels", kind="instruments")
    with pytest.warns(UserWarning, match="1 .lab file"):
        table = prepare_lab(tmp_path / "audio", lab_root=tmp_path / "labels", kind="instruments",
                            require_labels=False, split="train")
    assert table.to_pylist() == [
        _row("x-t1", audio, "train", instruments=[{"start_s": 0.0, "end_s": 1.5, "label": "voice"},
                                                  {"start_s": 1.0, "end_s": 2.0, "label": "piano"}]),
        _row("x-t2", tmp_path / "audio" / "x" / "t2.wav", "train"),
    ]


@pytest.mark.parametrize(("line", "message"), [
    ("0.5 1.0", "song.lab line 3: expected '<start_s> <end_s> <label>', got 2 field"),
    ("0.5 1.0 C:maj extra", "song.lab line 3: label 'C:maj extra' contains whitespace"),
    ("zero 1.0 C:maj", "song.lab line 3: segment times 'zero', '1.0' are not numbers"),
    ("2.0 1.0 C:maj", r"song.lab line 3: segment \[2.0, 1.0\]"),
    ("-1 1.0 C:maj", r"song.lab line 3: segment \[-1.0, 1.0\]"),
    ("0 nan C:maj", "song.lab line 3: segment"),
    ("1.0 2.0 C:foo", "song.lab line 3: chord label 'C:foo'"),
])
def test_malformed_lab_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "song.lab"
    path.write_text(f"0.0 0.5 N\n\n{line}\n")
    with pytest.raises(ValueError, match=message):
        read_lab(path)


def test_raw_labels_and_bad_arguments(tmp_path, tiny_audio):
    (tmp_path / "a.lab").write_text("0 1 G:7\n")
    assert read_lab(tmp_path / "a.lab", chords=False) == [{"start_s": 0.0, "end_s": 1.0, "label": "G:7"}]
    with pytest.raises(ValueError, match="kind='tags'"):
        prepare_lab(tmp_path, kind="tags")
    with pytest.raises(ValueError, match="no audio files found"):
        prepare_lab(tmp_path)
