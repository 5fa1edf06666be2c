"""The manifest contract: required columns, valid ids, splits, vocabularies."""

from __future__ import annotations

import pyarrow as pa
import pytest

from autotag.data import manifest


def _row(i, **extra):
    return {"track_id": f"t-{i}", "audio_path": f"/a/{i}.wav", "split": "train", **extra}


def test_round_trip_keeps_labels_and_fills_missing_columns(tmp_path):
    rows = [_row(0, genre="rock", tags=["loud", "guitar"]),
            _row(1, genre="jazz", chords=[{"start_s": 0.0, "end_s": 1.5, "label": "C:maj"}])]
    path = manifest.write(manifest.build_table(rows), tmp_path / "m.parquet")
    table = manifest.read(path)
    assert table.schema.equals(manifest.SCHEMA)
    assert table.column("tags").to_pylist() == [["loud", "guitar"], None]
    assert table.column("chords").to_pylist()[1] == [{"start_s": 0.0, "end_s": 1.5, "label": "C:maj"}]
    assert manifest.label_vocabulary(table, "genre") == ["jazz", "rock"]
    assert manifest.label_vocabulary(table, "tags") == ["guitar", "loud"]


@pytest.mark.parametrize("track_id", ["a.b", "a/b", "_x", "", "-x", "a b"])
def test_track_ids_that_cannot_be_keys_are_refused(track_id):
    with pytest.raises(manifest.ManifestError, match="track_id"):
        manifest.build_table([{**_row(0), "track_id": track_id}])


def test_duplicates_unknown_split_missing_columns_and_unknown_columns():
    with pytest.raises(manifest.ManifestError, match="duplicate"):
        manifest.build_table([_row(0), _row(0)])
    with pytest.raises(manifest.ManifestError, match="split 'dev'"):
        manifest.build_table([{**_row(0), "split": "dev"}])
    with pytest.raises(manifest.ManifestError, match="missing required"):
        manifest.validate(pa.table({"track_id": ["a"]}))
    with pytest.raises(manifest.ManifestError, match="unknown manifest column"):
        manifest.build_table([{**_row(0), "gnere": "rock"}])


def test_missing_manifest_file_is_named(tmp_path):
    with pytest.raises(manifest.ManifestError, match="does not exist"):
        manifest.read(tmp_path / "nope.parquet")
