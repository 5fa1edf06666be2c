"""JAMS adapter (plain JSON, no jams package)."""

from __future__ import annotations

import json

import pytest

from autotag.data.adapters import prepare_jams


def _annotation(namespace, data):
    return {"namespace": namespace, "data": data, "annotation_metadata": {"curator": {}}, "sandbox": {},
            "time": 0, "duration": None}


def _obs(time, duration, value):
    return {"time": time, "duration": duration, "value": value, "confidence": 1.0}


def write_jams(path, annotations, **metadata):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"file_metadata": {"title": "", "jams_version": "0.3.4", **metadata},
                                "annotations": annotations, "sandbox": {}}))
    return path


def test_rows_from_list_and_column_layouts(tmp_path, tiny_audio):
    a_audio = tiny_audio(tmp_path / "beatles" / "a.flac")
    write_jams(tmp_path / "beatles" / "a.jams", [
        _annotation("chord", [_obs(0.0, 1.0, "N"), _obs(1.0, 2.5, "Eb:7"), _obs(3.5, 1.0, "F#:min/b3")]),
        _annotation("chord", [_obs(0.0, 4.5, "C:maj")]),  # a second annotator: ignored
        _annotation("tag_gtzan", [_obs(0.0, 30.0, "rock")]),
        _annotation("tag_open", [_obs(0, 0, "guitar"), _obs(0, 0, "british"), _obs(0, 0, "guitar")]),
        _annotation("beat", [_obs(0.5, 0.0, 1)]),
    ], duration=4.5, artist="The Beatles")
    b_audio = tiny_audio(tmp_path / "b.wav")
    write_jams(tmp_path / "b.jams", [_annotation(
        "tag_medleydb_instruments", {"time": [0.0, 2.0], "duration": [2.0, 1.0], "value": ["piano", "voice"],
                                     "confidence": [1, 1]})])
    rows = prepare_jams(tmp_path, split="valid").to_pylist()
    assert rows == [
        {"track_id": "b", "audio_path": str(b_audio.resolve()), "duration_s": None, "split": "valid",
         "genre": None, "tags": None, "chords": None,
         "instruments": [{"start_s": 0.0, "end_s": 2.0, "label": "piano"},
                         {"start_s": 2.0, "end_s": 3.0, "label": "voice"}]},
        {"track_id": "beatles-a", "audio_path": str(a_audio.resolve()), "duration_s": 4.5, "split": "valid",
         "genre": "rock", "tags": ["british", "guitar"], "instruments": None,
         "chords": [{"start_s": 0.0, "end_s": 1.0, "label": "N"}, {"start_s": 1.0, "end_s": 3.5, "label": "D#:maj"},
                    {"start_s": 3.5, "end_s": 4.5, "label": "F#:min"}]},
    ]


def test_single_file_custom_namespaces_and_audio_root(tmp_path, tiny_audio):
    audio = tiny_audio(tmp_path / "audio" / "song.mp3")
    path = write_jams(tmp_path / "ann" / "song.jams", [_annotation("chord_harte", [_obs(0, 1, "G:maj")]),
                                                       _annotation("tag_open", [_obs(0, 0, "x")])])
    rows = prepare_jams(path, audio_root=tmp_path / "audio", namespaces={"chords": ["chord_harte"]},
                        split="train").to_pylist()
    assert rows[0]["audio_path"] == str(audio.resolve()) and rows[0]["tags"] is None
    assert rows[0]["chords"] == [{"start_s": 0.0, "end_s": 1.0, "label": "G:maj"}]
    with pytest.raises(ValueError, match=r"JAMS namespaces: unknown key\(s\) \['chord'\]"):
        prepare_jams(path, namespaces={"chord": ["chord"]})


@pytest.mark.parametrize(("annotations", "message"), [
    ([_annotation("chord", [_obs(0.0, 1.0, "C:foo")])], r"bad\.jams annotation 0 \(chord\) observation 0: chord label"),
    ([_annotation("chord", [{"time": 0.0}])], r"bad\.jams annotation 0 \(chord\): 'data' must be a list"),
    ([_annotation("chord", {"time": [0.0], "duration": [], "value": ["C"]})], "data columns .* differ in length"),
    ([_annotation("chord", [_obs(None, 1.0, "C")])], "observation 0: segment times None"),
    ([_annotation("tag_gtzan", [])], r"bad\.jams annotation 0 \(tag_gtzan\): no genre value"),
])
def test_malformed_annotations_name_the_file(tmp_path, tiny_audio, annotations, message):
    tiny_audio(tmp_path / "bad.wav")
    write_jams(tmp_path / "bad.jams", annotations)
    with pytest.raises(ValueError, match=message):
        prepare_jams(tmp_path, split="train")


def test_broken_files_and_missing_audio(tmp_path, tiny_audio):
    (tmp_path / "x.jams").write_text('{"annotations": [\n,]}')
    with pytest.raises(ValueError, match="x.jams line 2 column 1: invalid JSON"):
        prepare_jams(tmp_path)
    (tmp_path / "x.jams").write_text('{"file_metadata": {}}')
    with pytest.raises(ValueError, match="x.jams: not a JAMS file"):
        prepare_jams(tmp_path)
    write_jams(tmp_path / "x.jams", [])
    with pytest.raises(ValueError, match=r"x\.jams: no audio file"):
        prepare_jams(tmp_path)
    tiny_audio(tmp_path / "x.wav")
    tiny_audio(tmp_path / "x.flac")
    with pytest.raises(ValueError, match=r"x\.jams: 2 audio files"):
        prepare_jams(tmp_path)
    empty = tiny_audio(tmp_path / "empty" / "a.wav").parent
    with pytest.raises(ValueError, match="no .jams files found"):
        prepare_jams(empty)
    with pytest.raises(ValueError, match="does not exist"):
        prepare_jams(tmp_path / "missing")


def test_gzipped_jamz_files_are_read_and_found_by_folder_scans(tmp_path, tiny_audio):
    import gzip

    tiny_audio(tmp_path / "a.wav")
    tiny_audio(tmp_path / "b.flac")
    write_jams(tmp_path / "a.jams", [_annotation("tag_gtzan", [_obs(0.0, 30.0, "rock")])])
    document = {"file_metadata": {"duration": 2.0}, "sandbox": {},
                "annotations": [_annotation("tag_gtzan", [_obs(0.0, 30.0, "jazz")])]}
    (tmp_path / "b.jamz").write_bytes(gzip.compress(json.dumps(document).encode()))  # as jams.save(..., "b.jamz")
    rows = prepare_jams(tmp_path, split="train").to_pylist()
    assert [(r["track_id"], r["genre"], r["duration_s"]) for r in rows] == [("a", "rock", None), ("b", "jazz", 2.0)]
    assert prepare_jams(tmp_path / "b.jamz", split="train").column("genre").to_pylist() == ["jazz"]


@pytest.mark.parametrize(("name", "payload", "message"), [
    ("c.jamz", b"\x1f\x8b\x08\x00garbage", r"c\.jamz: cannot read"),
    ("c.jamz", b'{"annotations": []}', r"c\.jamz: a \.jamz file must be gzip-compressed JSON"),
    ("c.jams", b"\xff\xfe\x00binary", r"c\.jams: not UTF-8 text at byte 0"),
])
def test_unreadable_jams_files_raise_value_errors_naming_the_file(tmp_path, tiny_audio, name, payload, message):
    tiny_audio(tmp_path / "c.wav")
    (tmp_path / name).write_bytes(payload)
    with pytest.raises(ValueError, match=message):
        prepare_jams(tmp_path, split="train")
