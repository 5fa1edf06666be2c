"""The tutorial's pyjama JSON adapter."""

from __future__ import annotations

import json

import pytest

from autotag.data.adapters import prepare_gtzan, prepare_pyjama


def write_pyjama(path, entries):
    path.write_text(json.dumps({"schemaversion": 1.31,
                                "collection": {"descriptiondefinition": {}, "entry": entries}}, indent=1))
    return path


def _atom(value, **extra):
    return {"value": value, **extra}


GTZAN_ENTRIES = [{"filepath": [_atom(f"{g}+++{g}.{i:05d}.wav")], "genre": [_atom(g)]}
                 for g in ("blues", "rock") for i in range(3)]


def _empty_row(**values):
    return {"duration_s": None, "genre": None, "tags": None, "chords": None, "instruments": None, **values}


def test_gtzan_pyjama_rows_match_the_folder_adapter_ids(tmp_path, tiny_audio):
    path = write_pyjama(tmp_path / "gtzan.pyjama", GTZAN_ENTRIES)
    table = prepare_pyjama(path, audio_root=tmp_path / "audio")
    rows = table.to_pylist()
    assert rows[0] == _empty_row(track_id="blues-blues-00000", split="valid", genre="blues",
                                 audio_path=str((tmp_path / "audio" / "blues" / "blues.00000.wav").resolve()))
    assert [r["split"] for r in rows] == ["valid", "train", "train", "train", "train", "test"]
    for entry in GTZAN_ENTRIES:
        tiny_audio(tmp_path / "audio" / entry["filepath"][0]["value"].replace("+++", "/"))
    folder = prepare_gtzan(tmp_path / "audio")
    assert folder.column("track_id").to_pylist() == table.column("track_id").to_pylist()
    assert folder.column("audio_path").to_pylist() == table.column("audio_path").to_pylist()


def test_mtt_pyjama_tags_and_artist_split(tmp_path):
    entries = [{"filepath": [_atom(f"0+++artist{i % 3}-album-{i:02d}-title-0-29.mp3")],
                "tag": [_atom("rock"), _atom("guitar"), _atom("rock")], "artist": [_atom(f"artist{i % 3}")]}
               for i in range(6)]
    table = prepare_pyjama(write_pyjama(tmp_path / "mtt.pyjama", entries), split="artist_disjoint")
    rows = table.to_pylist()
    assert rows[0]["track_id"] == "0-artist0-album-00-title-0-29"
    assert rows[0]["tags"] == ["guitar", "rock"] and rows[0]["genre"] is None
    assert {r["split"] for r in rows if "artist0" in r["track_id"]} == {rows[0]["split"]}
    assert {r["split"] for r in rows} == {"train", "valid", "test"}


def test_chord_pyjama_reduces_labels_and_keeps_times(tmp_path):
    chords = [_atom("N:-", time=0.0, duration=0.104), _atom("Db:maj", time=0.104, duration=1.754),
              _atom("A:min7", time=1.858, duration=1.0), _atom("C:dim", time=2.858, duration=0.5),
              _atom("G:maj", time=3.358, duration=0.0)]
    entries = [{"filepath": [_atom("001")], "chord": chords}, {"filepath": [_atom("002")], "chord": []}]
    with pytest.warns(UserWarning, match="rwc.pyjama entry 0: dropped 1 zero-length segment"):
        table = prepare_pyjama(write_pyjama(tmp_path / "rwc.pyjama", entries), audio_suffix=".wav", split="train")
    assert table.to_pylist()[0] == _empty_row(
        track_id="001", audio_path=str((tmp_path / "001.wav").resolve()), split="train",
        chords=[{"start_s": 0.0, "end_s": 0.104, "label": "N"},
                {"start_s": 0.104, "end_s": 0.104 + 1.754, "label": "C#:maj"},
                {"start_s": 1.858, "end_s": 2.858, "label": "A:min"},
                {"start_s": 2.858, "end_s": 3.358, "label": "X"}])
    assert table.to_pylist()[1]["chords"] == []
    with pytest.warns(UserWarning, match="zero-length"):
        raw = prepare_pyjama(tmp_path / "rwc.pyjama", reduce_chords=False, split="train")
    assert [s["label"] for s in raw.column("chords")[0].as_py()][:2] == ["N:-", "Db:maj"]


@pytest.mark.parametrize(("entries", "message"), [
    ([{"genre": [_atom("rock")]}], "bad.pyjama entry 0: missing 'filepath'"),
    ([GTZAN_ENTRIES[0], {"filepath": "x.wav"}], "bad.pyjama entry 1: field 'filepath' must be a list"),
    ([{"filepath": [_atom("a")], "genre": [_atom("rock"), _atom("pop")]}],
     "bad.pyjama entry 0: field 'genre' has 2 values"),
    ([{"filepath": [_atom("a")], "chord": [_atom("C:maj", time=0.0)]}],
     "bad.pyjama entry 0: chord atom 0 needs 'time' and 'duration'"),
    ([{"filepath": [_atom("a")], "chord": [_atom("C:foo", time=0.0, duration=1.0)]}],
     "bad.pyjama entry 0 chord atom 0: chord label 'C:foo'"),
    ([{"filepath": [_atom("a")], "chord": [_atom("C:maj", time=1.0, duration=-0.5)]}],
     "bad.pyjama entry 0 chord atom 0: segment"),
    ([{"filepath": [_atom("a")], "chord": [_atom("C:maj", time="soon", duration=1)]}],
     "bad.pyjama entry 0 chord atom 0: segment times 'soon'"),
    (["not an object"], "bad.pyjama entry 0: expected a JSON object"),
    ([{"filepath": [_atom("...")]}], "bad.pyjama entry 0: cannot derive a track id"),
])
def test_malformed_entries_name_file_and_entry(tmp_path, entries, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        prepare_pyjama(write_pyjama(tmp_path / "bad.pyjama", entries), split="train")


def test_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "broken.pyjama"
    path.write_text('{"collection": {"entry": [\n  {"filepath": [{"value": "a"}]},\n  oops\n]}}')
    with pytest.raises(ValueError, match="broken.pyjama line 3 column 3: invalid JSON"):
        prepare_pyjama(path)
    path.write_text('{"entries": []}')
    with pytest.raises(ValueError, match="broken.pyjama: expected a JSON object with a 'collection'"):
        prepare_pyjama(path)
