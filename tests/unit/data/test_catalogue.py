"""Folder scans miss nothing: every file is an audio candidate or a counted skip; links keep their names."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import soundfile as sf

from autotag.data.catalogue import scan_folder, sniff
from autotag.infer.inputs import InputError, check_source, track_rows
from tests.audio_corpus import tone, write_format


@pytest.fixture
def library(tmp_path):
    """A music folder as people keep them: audio in several formats, art, sheets, hidden files, links."""
    root = tmp_path / "music"
    album = root / "Artist" / "Album"
    album.mkdir(parents=True)
    sf.write(album / "01 track.flac", tone(22_050, 0.2), 22_050)
    write_format(album, "aac-m4a", tone(44_100, 0.2), stem="02 track")
    write_format(album, "flac-mka", tone(44_100, 0.2), stem="03 track")
    sf.write(album / "04 no suffix", tone(22_050, 0.2), 22_050, format="WAV")  # found by its content
    (album / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0 jpeg")
    (album / "album.cue").write_text("FILE x WAVE")
    (album / "notes.txt").write_text("liner notes")
    (album / "labels.lab").write_text("0 1 C:maj")
    (album / "readme").write_text("plain text, no suffix")
    (album / ".DS_Store").write_bytes(b"\x00\x00")
    (album / "._01 track.flac").write_bytes(b"\x00\x05\x16\x07")  # macOS resource fork
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref")
    (root / "broken.mp3").write_text("not audio")  # an audio suffix: a candidate, it will be an error row
    (root / "empty.wav").write_bytes(b"")
    os.symlink(album / "01 track.flac", root / "link one.flac")
    os.symlink(album / "01 track.flac", root / "link two.flac")
    os.symlink(root / "gone.flac", root / "dangling.flac")
    os.symlink(album, root / "album link")  # the same folder again: not scanned twice
    return root


def test_every_file_is_a_candidate_or_a_counted_skip(library):
    scan = scan_folder(library)
    assert scan.candidates == ["Artist/Album/01 track.flac", "Artist/Album/02 track.m4a", "Artist/Album/03 track.mka",
                               "Artist/Album/04 no suffix", "broken.mp3", "dangling.flac", "empty.wav",
                               "link one.flac", "link two.flac"]
    assert dict(scan.skipped) == {".jpg": 1, ".cue": 1, ".txt": 1, ".lab": 1, "(no suffix)": 1, "hidden": 2,
                                  "hidden folders": 1, "folder links already scanned": 1}
    assert scan.skipped_summary().startswith("9 files: 2 hidden, 1 (no suffix), 1 .cue,")


def test_track_rows_keep_the_paths_as_found_and_links_are_tracks_of_their_own(library, caplog):
    with caplog.at_level(logging.INFO, logger="autotag.infer"):
        rows = track_rows(str(library)).to_pylist()
    by_id = {r["track_id"]: r["audio_path"] for r in rows}
    assert by_id["link-one"] == str(library / "link one.flac") and by_id["link-two"] == str(library / "link two.flac")
    assert len(set(by_id.values())) == len(rows) == 9
    assert by_id["dangling"] == str(library / "dangling.flac")
    assert sum("skipped 9 files: 2 hidden" in m for m in caplog.messages) == 1


def test_a_glob_classifies_its_matches_the_same_way(library):
    rows = track_rows(str(library / "Artist" / "**" / "*")).to_pylist()
    assert sorted(r["track_id"] for r in rows) == ["Artist-Album-01-track", "Artist-Album-02-track",
                                                   "Artist-Album-03-track", "Artist-Album-04-no-suffix"]


def test_bad_input_roots_are_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        check_source(str(tmp_path / "missing"), str(tmp_path / "manifest.parquet"))
    with pytest.raises(InputError, match="dataset manifest .* does not exist"):
        check_source(None, str(tmp_path / "manifest.parquet"))
    (tmp_path / "only text").mkdir()
    (tmp_path / "only text" / "a.txt").write_text("x")
    with pytest.raises(InputError, match=r"no audio files found .*; skipped 1 file: 1 \.txt"):
        track_rows(str(tmp_path / "only text"))


@pytest.mark.parametrize("name", ["aac-m4a", "aac-adts", "opus-ogg", "wma", "flac-mka", "aac-mp4", "wavpack"])
def test_content_sniffing_knows_the_containers(tmp_path, name):
    path = write_format(tmp_path, name, tone(48_000, 0.1))
    assert sniff(path.read_bytes()[:32])


def test_sniffing_refuses_text_and_images():
    assert not sniff(b"hello world") and not sniff(b"\x89PNG\r\n\x1a\n") and not sniff(b"")
    assert sniff(b"RIFF\x00\x00\x00\x00WAVE") and sniff(b"fLaC") and sniff(np.array([0xFF, 0xFB], np.uint8).tobytes())
