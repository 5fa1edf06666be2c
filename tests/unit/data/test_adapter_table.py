"""CSV/TSV/Parquet table adapter."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from autotag.data import manifest
from autotag.data.adapters import prepare_table

CSV = """id,file,label,tags,chords,split,singer
t1,songs/a.wav,rock,guitar;drums,,train,alice
t2,/abs/b.flac,pop,"[""vocal"", ""piano""]","[{""start_s"": 0, ""end_s"": 1.5, ""label"": ""Bb:7""}]",valid,bob
,songs/sub/c.mp3,,,"[[0.0, 2.0, ""N:-""]]",test,carol
"""


def _csv(tmp_path, text=CSV, name="tracks.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_with_column_mapping(tmp_path):
    table = prepare_table(_csv(tmp_path), columns={"track_id": "id", "audio_path": "file", "genre": "label",
                                                   "artist": "singer"})
    empty = {"duration_s": None, "instruments": None}
    assert table.to_pylist() == [
        {"track_id": "t1", "audio_path": str((tmp_path / "songs" / "a.wav").resolve()), "split": "train",
         "genre": "rock", "tags": ["drums", "guitar"], "chords": None, **empty},
        {"track_id": "t2", "audio_path": "/abs/b.flac", "split": "valid", "genre": "pop", "tags": ["piano", "vocal"],
         "chords": [{"start_s": 0.0, "end_s": 1.5, "label": "A#:maj"}], **empty},
        {"track_id": "songs-sub-c", "audio_path": str((tmp_path / "songs" / "sub" / "c.mp3").resolve()),
         "split": "test", "genre": None, "tags": None, "chords": [{"start_s": 0.0, "end_s": 2.0, "label": "N"}],
         **empty},
    ]
    by_artist = prepare_table(tmp_path / "tracks.csv", columns={"audio_path": "file", "artist": "singer"},
                              split="artist_disjoint")
    assert sorted(by_artist.column("split").to_pylist()) == ["test", "train", "valid"]


def test_parquet_native_types_uris_and_default_split(tmp_path):
    rows = [{"audio_path": f"s3://bucket/music/{i}.flac", "duration_s": 30.0 + i, "tags": ["a"] if i else [],
             "instruments": [{"start_s": 0.0, "end_s": 1.0, "label": "piano"}]} for i in range(6)]
    path = tmp_path / "tracks.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    table = prepare_table(path)
    assert table.column("track_id").to_pylist() == [f"bucket-music-{i}" for i in range(6)]
    assert table.column("audio_path").to_pylist() == [r["audio_path"] for r in rows]
    assert table.column("split").to_pylist() == ["valid", "train", "train", "train", "train", "test"]
    assert table.column("tags").to_pylist()[:2] == [[], ["a"]]
    assert table.column("instruments")[0].as_py() == [{"start_s": 0.0, "end_s": 1.0, "label": "piano"}]


def test_our_own_manifest_round_trips(tmp_path):
    original = manifest.build_table([
        {"track_id": "x1", "audio_path": "/data/x1.wav", "duration_s": 3.0, "split": "test", "genre": "jazz",
         "chords": [{"start_s": 0.0, "end_s": 3.0, "label": "C:maj"}]}])
    path = manifest.write(original, tmp_path / "manifest.parquet")
    assert prepare_table(path).equals(original)


def test_tsv_and_split_override(tmp_path):
    path = _csv(tmp_path, "audio_path\tsplit\na.wav\ttrain\nb.wav\ttrain\nc.wav\ttrain\n", "t.tsv")
    assert prepare_table(path).column("split").to_pylist() == ["train"] * 3
    assert prepare_table(path, split="index_modulo").column("split").to_pylist() == ["valid", "train", "test"]


@pytest.mark.parametrize(("text", "message"), [
    ("audio_path,genre\na.wav,rock\nb.wav,pop,extra\n", "tracks.csv line 3: expected 2 columns, got 3"),
    ("audio_path,split\na.wav,train\nb.wav,dev\n", r"tracks.csv line 3: split 'dev' not in \('train'"),
    ("audio_path,genre\na.wav,rock\n,pop\n", "tracks.csv line 3: empty audio_path"),
    ("audio_path,chords\na.wav,[{\"start_s\": 0}]\n", "tracks.csv line 2 chords: segment 0"),
    ("audio_path,chords\na.wav,\"[[0, 1, \"\"C:foo\"\"]]\"\n", "tracks.csv line 2 chords segment 0: chord label"),
    ("audio_path,tags\na.wav,\"[\"\"a\"\", 3]\"\n", "tracks.csv line 2: tags must be a list of strings"),
    ("audio_path,tags\na.wav,[oops\n", "tracks.csv line 2: tags '\\[oops' is not a JSON list"),
    ("audio_path,duration_s\na.wav,long\n", "tracks.csv line 2: duration_s 'long' is not a number"),
    ("file,genre\na.wav,rock\n", r"tracks.csv: no 'audio_path' column; columns are \['file', 'genre'\]"),
    ("track_id,audio_path,split\na.b,x.wav,train\n", r"tracks.csv row 0: track_id 'a.b'"),
])
def test_malformed_tables_name_file_and_line(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        prepare_table(_csv(tmp_path, text))


def test_argument_errors(tmp_path):
    path = _csv(tmp_path)
    with pytest.raises(ValueError, match=r"column mapping: unknown key\(s\) \['labels'\]"):
        prepare_table(path, columns={"labels": "label"})
    with pytest.raises(ValueError, match="unknown table format '.json'"):
        prepare_table(_csv(tmp_path, json.dumps([]), "t.json"))
    with pytest.raises(ValueError, match="does not exist"):
        prepare_table(tmp_path / "none.csv")


def test_every_adapter_names_the_file_that_is_not_utf8(tmp_path):
    """A text file in another encoding is a ValueError naming it, never a bare UnicodeDecodeError."""
    from autotag.data.adapters import prepare_mtt, prepare_pyjama, read_lab

    latin1 = "Beyonc\xe9\tx\n".encode("latin-1")
    for name in ("a.lab", "annotations_final.csv", "p.json", "t.csv"):
        (tmp_path / name).write_bytes(latin1)
    for call, name in ((lambda: read_lab(tmp_path / "a.lab"), "a.lab"),
                       (lambda: prepare_mtt(tmp_path / "annotations_final.csv"), "annotations_final.csv"),
                       (lambda: prepare_pyjama(tmp_path / "p.json"), "p.json"),
                       (lambda: prepare_table(tmp_path / "t.csv"), "t.csv")):
        with pytest.raises(ValueError, match=rf"^{name}: not UTF-8 text \(byte 6: b'\\xe9'\)$"):
            call()
