"""MagnaTagATune annotations_final.csv adapter."""

from __future__ import annotations

import pytest

from autotag.data.adapters import prepare_mtt
from autotag.data.adapters.mtt import read_annotations, select_tags

HEADER = ["clip_id", "no voice", "guitar", "classical", "slow", "mp3_path"]
CLIPS = [  # clip_id, no voice, guitar, classical, slow, path
    ("2", "1", "0", "1", "1", "f/american_bach_soloists-joseph_haydn__masses-01-kyrie-30-59.mp3"),
    ("6", "0", "1", "1", "0", "0/jacob_heringman-josquin-19-gintzler-204-233.mp3"),
    ("10", "0", "0", "1", "1", "c/american_bach_soloists-bach-02-gloria-0-29.mp3"),
    ("11", "0", "0", "0", "0", "d/tilopa-out_of_the_blue-05-two-117-146.mp3"),
    ("12", "1", "1", "0", "1", "e/jacob_heringman-blame_not-03-fantasia-30-59.mp3"),
    ("15", "0", "0", "1", "0", "1/tilopa-out_of_the_blue-06-three-0-29.mp3"),
]


def write_csv(path, header=HEADER, clips=CLIPS, quoted=True):
    quote = (lambda v: f'"{v}"') if quoted else (lambda v: v)
    lines = ["\t".join(quote(v) for v in header)] + ["\t".join(quote(v) for v in clip) for clip in clips]
    path.write_text("\n".join(lines) + "\n")
    return path


def _row(root, path, tags, split):
    stem = path[: -len(".mp3")].replace("/", "-")
    return {"track_id": stem, "audio_path": str((root / path).resolve()), "duration_s": None, "split": split,
            "genre": None, "tags": tags, "chords": None, "instruments": None}


def test_top_n_selection_and_rows(tmp_path):
    csv_path = write_csv(tmp_path / "annotations_final.csv")
    table = prepare_mtt(csv_path, top_n=2, audio_root=tmp_path / "mp3")
    root = tmp_path / "mp3"
    # classical (4 clips) and slow (3) are the two most frequent tags
    assert table.to_pylist() == [
        _row(root, CLIPS[0][-1], ["classical", "slow"], "valid"),
        _row(root, CLIPS[1][-1], ["classical"], "train"),
        _row(root, CLIPS[2][-1], ["classical", "slow"], "train"),
        _row(root, CLIPS[3][-1], [], "train"),
        _row(root, CLIPS[4][-1], ["slow"], "train"),
        _row(root, CLIPS[5][-1], ["classical"], "test"),
    ]


def test_tie_break_by_name_and_explicit_tags(tmp_path):
    tags, clips = read_annotations(write_csv(tmp_path / "annotations_final.csv", quoted=False))
    assert tags == ["no voice", "guitar", "classical", "slow"]
    assert select_tags(tags, clips, 3) == ["classical", "guitar", "slow"]  # guitar == no voice (2): name order
    assert select_tags(tags, clips, None) == sorted(tags)
    table = prepare_mtt(tmp_path / "annotations_final.csv", tags=["guitar"], drop_untagged=True, split="train")
    assert table.column("tags").to_pylist() == [["guitar"], ["guitar"]]
    assert table.column("audio_path")[0].as_py() == str((tmp_path / CLIPS[1][-1]).resolve())


def test_mtt_folder_split_and_artist_split(tmp_path):
    csv_path = write_csv(tmp_path / "annotations_final.csv")
    folders = prepare_mtt(csv_path, split="mtt_folders").column("split").to_pylist()
    assert folders == ["test", "train", "valid", "test", "test", "train"]
    by_artist = prepare_mtt(csv_path, split="artist_disjoint")
    artist_split = {}
    for row in by_artist.to_pylist():
        artist = row["track_id"].split("-")[1]
        assert artist_split.setdefault(artist, row["split"]) == row["split"]
    assert sorted(artist_split.values()) == ["test", "train", "valid"]


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda h, c: (h, c[:2] + [c[2][:-1]] + c[3:]), "annotations_final.csv line 4: expected 6 columns, got 5"),
    (lambda h, c: (h, c[:1] + [c[1][:2] + ("2",) + c[1][3:]] + c[2:]),
     "annotations_final.csv line 3: tag 'guitar' is '2'; expected 0 or 1"),
    (lambda h, c: (h, c + [("99", "0", "0", "0", "0", " ")]), "annotations_final.csv line 8: empty mp3_path"),
    (lambda h, c: (["id"] + h[1:], c), "annotations_final.csv line 1: expected a tab-separated header"),
])
def test_malformed_csv_names_file_and_line(tmp_path, mutate, message):
    header, clips = mutate(list(HEADER), list(CLIPS))
    with pytest.raises(ValueError, match=message):
        prepare_mtt(write_csv(tmp_path / "annotations_final.csv", header, clips))


def test_other_errors(tmp_path):
    csv_path = write_csv(tmp_path / "annotations_final.csv")
    with pytest.raises(ValueError, match=r"tag\(s\) \['rock'\] are not columns"):
        prepare_mtt(csv_path, tags=["rock"])
    with pytest.raises(ValueError, match="top_n=0"):
        prepare_mtt(csv_path, top_n=0)
    with pytest.raises(ValueError, match="do not exist"):
        prepare_mtt(tmp_path / "missing.csv")
    bad_folder = write_csv(tmp_path / "b.csv", clips=[("1", "0", "0", "0", "0", "x/a-b.mp3")])
    with pytest.raises(ValueError, match="b.csv line 2: split 'mtt_folders' needs a path in folders 0..f"):
        prepare_mtt(bad_folder, split="mtt_folders")
