"""GTZAN folder adapter."""

from __future__ import annotations

import re

import pytest

from autotag.data import splits
from autotag.data.adapters import prepare_gtzan


def _tree(root, tiny_audio, ext=".wav"):
    for genre in ("blues", "classical"):
        for number in range(3):
            tiny_audio(root / genre / f"{genre}.{number:05d}{ext}")
    (root / "blues" / "README.txt").write_text("not audio")
    (root / "classical" / ".DS_Store").write_bytes(b"\0")
    return root


def _row(root, genre, number, split, ext=".wav"):
    return {"track_id": f"{genre}-{genre}-{number:05d}",
            "audio_path": str((root / genre / f"{genre}.{number:05d}{ext}").resolve()),
            "duration_s": None, "split": split, "genre": genre, "tags": None, "chords": None, "instruments": None}


def test_rows_and_tutorial_split(tmp_path, tiny_audio):
    root = _tree(tmp_path / "gtzan", tiny_audio)
    table = prepare_gtzan(root)
    assert table.to_pylist() == [
        _row(root, "blues", 0, "valid"), _row(root, "blues", 1, "train"), _row(root, "blues", 2, "train"),
        _row(root, "classical", 0, "train"), _row(root, "classical", 1, "train"), _row(root, "classical", 2, "test"),
    ]


def test_original_tarball_layout_with_au_files(tmp_path, tiny_audio):
    root = _tree(tmp_path / "download" / "genres", tiny_audio, ext=".au")
    table = prepare_gtzan(tmp_path / "download")
    assert table.column("track_id").to_pylist()[:2] == ["blues-blues-00000", "blues-blues-00001"]
    assert table.column("audio_path")[0].as_py() == str((root / "blues" / "blues.00000.au").resolve())


def test_explicit_lists_drop_unlisted_clips(tmp_path, tiny_audio):
    root = _tree(tmp_path / "gtzan", tiny_audio)
    (tmp_path / "test_filtered.txt").write_text("classical/classical.00002.wav\n")
    lists = splits.from_lists(["blues/blues.00000.wav", "blues/blues.00001.wav"], ["classical-classical-00000"],
                              tmp_path / "test_filtered.txt", unlisted="drop")
    table = prepare_gtzan(root, split=lists)
    assert list(zip(table.column("track_id").to_pylist(), table.column("split").to_pylist())) == [
        ("blues-blues-00000", "train"), ("blues-blues-00001", "train"),
        ("classical-classical-00000", "valid"), ("classical-classical-00002", "test")]


@pytest.mark.parametrize(("bad", "message"), [
    ("blues/rock.00009.wav", "blues/rock.00009.wav: file name must be 'blues.<number>.<ext>'"),
    ("blues/blues.wav", "blues/blues.wav: file name must be"),
    ("stray.wav", "stray.wav: expected <genre>/<genre>.<NNNNN>.<ext>"),
    ("blues/deeper/blues.00010.wav", "blues/deeper/blues.00010.wav: expected"),
])
def test_malformed_trees_name_the_file(tmp_path, tiny_audio, bad, message):
    root = _tree(tmp_path / "gtzan", tiny_audio)
    tiny_audio(root / bad)
    with pytest.raises(ValueError, match=re.escape(message)):
        prepare_gtzan(root)


def test_empty_or_missing_root(tmp_path):
    with pytest.raises(ValueError, match="no audio files found"):
        prepare_gtzan(tmp_path)
    with pytest.raises(ValueError, match="is not a directory"):
        prepare_gtzan(tmp_path / "missing")
