"""A real-world catalogue, good and broken, through ``pipelines.shard`` and ``pipelines.infer`` twice.

The corpus is generated here by real encoders (libsndfile through soundfile, FFmpeg through
PyAV: ``tests/audio_corpus.py``): every format a music library holds (WAV, FLAC, OGG
Vorbis/Opus, MP3, AIFF, AAC in M4A/MP4/MKV/ADTS, ALAC, Opus in MKA, WMA, FLAC in MKA,
WavPack, 32-bit FLAC), broken variants of each (0 bytes, cut in half, text behind the
suffix, the wrong suffix), zero-length streams, 1 sample, 8 channels, 8 and 192 kHz, NaN
and inf float WAV, a one-hour file, unicode and apostrophes in names, symbolic links (two to
one file, one dangling), and the sidecars and hidden files that sit next to audio. APE has
an FFmpeg decoder but no encoder, so an ``.ape`` here is only a broken one.

Each run must give every audio candidate exactly one row (a shard sample or an error row;
a ``tracks`` row), the expected status, a true reason for each error, and exit code 0; the
second run must change nothing.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import torch

from autotag import predictions
from autotag.data.tasks import Task
from autotag.infer.inputs import track_rows
from autotag.models import build_model, checkpoint
from pipelines import infer, shard
from pipelines.common import cli, load_config
from tests.audio_corpus import FORMATS, encode, tone, write_format

pytestmark = pytest.mark.slow

OK = "ok"
HOUR_S = 3600
READABLE = "not a readable audio file"


def _sf(path: Path, data: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> Path:
    with sf.SoundFile(path, "w", rate, data.shape[1], format=fmt, subtype=subtype) as handle:
        for start in range(0, len(data), 8192):  # in blocks: one big OGG/MP3 write crashes libsndfile 1.2
            handle.write(data[start:start + 8192])
    return path


def _good(music: Path) -> list[Path]:
    """Files that must decode ``ok``."""
    stereo = tone(44_100, 0.6, 2)
    files = [
        _sf(music / "wav.wav", stereo, 44_100, "WAV", "PCM_16"),
        _sf(music / "flac.flac", tone(48_000, 0.6), 48_000, "FLAC", "PCM_24"),
        _sf(music / "ogg.ogg", tone(44_100, 2.0, 2), 44_100, "OGG", "VORBIS"),  # half of it still holds audio
        _sf(music / "mp3.mp3", stereo, 44_100, "MP3", "MPEG_LAYER_III"),
        _sf(music / "aiff.aiff", stereo, 44_100, "AIFF", "PCM_16"),
        _sf(music / "opus-libsndfile.opus", tone(48_000, 0.6), 48_000, "OGG", "OPUS"),
        _sf(music / "wav-8k.wav", tone(8_000, 0.6), 8_000, "WAV", "PCM_16"),
        _sf(music / "flac-192k.flac", tone(192_000, 0.6, 2), 192_000, "FLAC", "PCM_24"),
        _sf(music / "flac-8ch.flac", tone(44_100, 0.6, 8), 44_100, "FLAC", "PCM_16"),
        _sf(music / "one sample.wav", tone(22_050, 1 / 22_050), 22_050, "WAV", "PCM_16"),
        write_format(music, "opus-ogg", tone(48_000, 0.6, 8), stem="opus-8ch"),
        encode(music / "aac-8k.m4a", tone(8_000, 0.6), 8_000, "aac"),
        write_format(music, "flac-32bit", tone(44_100, 0.6, 4), stem="flac-32bit-4ch"),
        *(write_format(music, name, tone(rate, 0.6, 2)) for name, (_, _, _, rate, _) in FORMATS.items()),
        write_format(music, "aac-m4a", stereo, stem="m4a-named-flac").rename(music / "m4a-named-flac.flac"),
        _sf(music / "flac-named-m4a.m4a", stereo, 44_100, "FLAC", "PCM_16"),
        _sf(music / "wav-named-mp3.mp3", stereo, 44_100, "WAV", "PCM_16"),
        _sf(music / "no suffix", stereo, 44_100, "WAV", "PCM_16"),  # found by its content
    ]
    unicode_dir = music / "Björk – Jóga's (live)"
    unicode_dir.mkdir()
    files += [write_format(unicode_dir, "aac-m4a", stereo, stem="01 Jóga's"),
              _sf(unicode_dir / "02 日本語 'x'.flac", stereo, 44_100, "FLAC")]
    for link in ("link one.m4a", "link two.m4a"):  # two links to one file: two tracks
        os.symlink(music / "aac-m4a.m4a", music / link)
        files.append(music / link)
    with sf.SoundFile(music / "one hour.flac", "w", 8_000, 1, format="FLAC", subtype="PCM_16") as handle:
        for _ in range(HOUR_S // 60):  # silence compresses to almost nothing: cheap to write and to read
            handle.write(np.zeros(8_000 * 60, dtype=np.float32))
    return [*files, music / "one hour.flac"]


BROKEN_FORMATS = ("wav", "flac", "ogg", "mp3", "aac-m4a", "opus-ogg", "flac-mka", "wma", "aac-mp4", "wavpack")


def _source(folder: Path, name: str) -> Path:
    """A 3-s stereo noise file of one format (outside the corpus), to break: noise, so that even
    lossy codecs spread it over many packets and pages and half a file holds half the audio."""
    folder.mkdir(exist_ok=True)
    noise = (0.3 * np.random.default_rng(len(name)).standard_normal((3 * 44_100, 2))).astype(np.float32)
    libsndfile = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS"),
                  "mp3": ("MP3", "MPEG_LAYER_III")}
    if name in libsndfile:
        return _sf(folder / f"{name}.{name}", noise, 44_100, *libsndfile[name])
    rate = FORMATS[name][3]
    return write_format(folder, name, noise if rate == 44_100 else (0.3 * tone(rate, 3.0, 2)))


def _variants(music: Path, source: Path) -> dict[Path, str]:
    """Broken variants of one good file: 0 bytes, cut in half, text behind its suffix."""
    stem, suffix = source.stem, source.suffix
    empty, half, text = (music / f"{stem} {kind}{suffix}" for kind in ("empty", "half", "text"))
    empty.write_bytes(b"")
    half.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    text.write_text("this is not audio\n" * 50)
    return {empty: "file is empty (0 bytes)", half: HALF[stem], text: READABLE}


HALF = {  # what each format says when cut in half: truncated only where the header gives a length
    "wav": "truncated: header says 132300 frames, the file holds", "flac": "truncated: header says 132300 frames",
    "ogg": OK, "mp3": "truncated: header says", "aac-m4a": READABLE, "opus-ogg": OK,
    "flac-mka": "truncated: header says 132300 frames", "wma": "truncated: header says", "aac-mp4": READABLE,
    "wavpack": "truncated: header says 132300 frames",
}
"""Ogg carries no length in a header, so half an Ogg Vorbis/Opus file is a shorter track
(``ok``); MP4's index sits at the end, so half an M4A is not a readable file at all."""


def _broken(music: Path) -> dict[Path, str]:
    """Files that must be ``error`` rows (or ``ok`` for some halves), with a part of their reason."""
    broken: dict[Path, str] = {}
    for name in BROKEN_FORMATS:
        broken.update(_variants(music, _source(music.parent / "sources", name)))
    _sf(music / "zero frames.wav", np.zeros((0, 1), np.float32), 22_050, "WAV", "PCM_16")
    encode(music / "zero frames.mka", np.zeros((0, 2), np.float32), 44_100, "flac", container="matroska")
    nan, inf = tone(22_050, 0.5), tone(22_050, 0.5)
    nan[100] = np.nan
    inf[5_000] = np.inf
    _sf(music / "nan.wav", nan, 22_050, "WAV", "FLOAT")
    _sf(music / "inf.wav", inf, 22_050, "WAV", "FLOAT")
    _sf(music / "rate 4k.wav", tone(4_000, 0.5), 4_000, "WAV", "PCM_16")
    (music / "monkey.ape").write_bytes(b"MAC \x96\x0f" + bytes(200))  # FFmpeg decodes APE but has no encoder
    (music / "sound designer.sd2").write_bytes(bytes(300))  # libsndfile reads SD2 only on macOS
    os.symlink(music / "gone.flac", music / "dangling.flac")
    broken.update({
        music / "zero frames.wav": "contains no audio samples", music / "zero frames.mka": "ends before any audio data",
        music / "nan.wav": "non-finite (NaN/inf) samples, the first at 0.00 s",
        music / "inf.wav": "non-finite (NaN/inf) samples, the first at 0.23 s",
        music / "rate 4k.wav": "sample rate 4000 Hz outside", music / "monkey.ape": "FFmpeg:",
        music / "sound designer.sd2": "libsndfile:", music / "dangling.flac": "broken symbolic link",
    })
    return broken


def _sidecars(music: Path) -> None:
    """Files that are no audio and get no row: skipped by rule or by content, and counted."""
    (music / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(100))
    (music / "notes.txt").write_text("liner notes")
    (music / "album.cue").write_text('FILE "wav.wav" WAVE')
    (music / "chords.lab").write_text("0.0 1.0 C:maj")
    (music / "meta.json").write_text("{}")
    (music / "readme").write_text("plain text without a suffix")
    (music / ".hidden.flac").write_bytes(b"fLaC")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    music = root / "music"
    music.mkdir()
    good = _good(music)
    broken = _broken(music)
    _sidecars(music)
    expected = {str(p): OK for p in good} | {str(p): reason for p, reason in broken.items()}
    torch.manual_seed(0)
    task = Task("multilabel", "tags", ("bass", "drums", "piano"))
    spec = {"frontend": "lms_conv2d", "frontend_params": {}, "backend": "autopool", "backend_params": {}}
    checkpoint.save(root / "ckpt", build_model("lms_conv2d", "autopool", 3, task="multilabel"),
                    {"model": spec, "task": task.to_dict(), "config": {}, "epoch": 0})
    return {"root": root, "music": music, "expected": expected}


def test_decoding_each_file_alone_gives_its_expected_outcome(corpus):
    from autotag.data.audio import AudioDecodeError, decode_audio

    wrong = []
    for path, expected in corpus["expected"].items():
        try:
            decode_audio(path, max_duration_s=HOUR_S)
            outcome = OK
        except AudioDecodeError as exc:
            outcome = exc.reason
        if (outcome == OK) != (expected == OK) or expected not in outcome:
            wrong.append((Path(path).name, expected, outcome))
    assert not wrong


def _tracks_table(root: Path, run_id: str) -> list[tuple]:
    frame = predictions.read_table(root / "predictions", "tracks", run_id).frame
    columns = [frame[c].tolist() for c in ("track_id", "audio_path", "status", "error")]
    return sorted(zip(*columns, strict=True))


def _infer_args(corpus, run_id: str, source: Path) -> list[str]:
    return [f"paths.root={corpus['root']}", f"run_id={run_id}", f"infer.checkpoint={corpus['root'] / 'ckpt'}",
            f"infer.input={source}", "runtime.progress_bars=false", "infer.rows_per_file=16",
            "infer.tracks_per_batch=4"]


def _check_outcomes(rows: list[tuple], expected: dict[str, str]) -> list[tuple]:
    """(file, expected, got) for every row whose status or reason is not the expected one."""
    wrong = []
    for _, path, status, error in rows:
        want = expected[path]
        if (status == OK) != (want == OK) or (want != OK and want not in error):
            wrong.append((Path(path).name, want, status, error))
    return wrong


def test_infer_twice_every_file_one_row_true_reasons_exit_0(ray_session, corpus, caplog):
    expected = corpus["expected"]
    codes, tables = [], []
    for _ in range(2):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="autotag"):
            codes.append(cli(infer.run, argv=_infer_args(corpus, "corpus", corpus["music"])))
        tables.append(_tracks_table(corpus["root"], "corpus"))
        assert f"corpus: {sum(v == OK for v in expected.values())} ok," in caplog.text
        assert "skipped 7 files: 1 (no suffix), 1 .cue, 1 .jpg, 1 .json, 1 .lab, 1 .txt, 1 hidden" in caplog.text
    assert codes == [0, 0]
    rows = tables[0]
    assert sorted(path for _, path, _, _ in rows) == sorted(expected)  # every candidate once, nothing else
    assert len({track_id for track_id, _, _, _ in rows}) == len(rows)
    assert not _check_outcomes(rows, expected)
    assert tables[1] == tables[0]  # the re-run wrote nothing and changed nothing


def test_shard_twice_every_file_once_in_the_index_or_the_errors(ray_session, corpus):
    from autotag.data import manifest

    listed = track_rows(str(corpus["music"])).to_pylist()
    manifest.write(manifest.build_table([{**r, "split": "train"} for r in listed]), corpus["root"] / "manifest.parquet")
    cfg = load_config(["dataset=manifest", f"dataset.manifest={corpus['root'] / 'manifest.parquet'}",
                       f"paths.root={corpus['root']}", "shard.tracks_per_shard=16", "runtime.progress_bars=false"])
    first, second = shard.run(cfg), shard.run(cfg)
    assert second["skipped_shards"] == second["shards"] == first["shards"]
    path_of = {r["track_id"]: r["audio_path"] for r in listed}
    index = pq.read_table(first["index"]).column("track_id").to_pylist()
    errors = pq.read_table(first["errors_table"]).to_pylist()
    assert sorted(index + [e["track_id"] for e in errors]) == sorted(path_of)  # each exactly once
    rows = [(e["track_id"], e["audio_path"], "error", e["reason"]) for e in errors]
    rows += [(t, path_of[t], OK, "") for t in index]
    assert not _check_outcomes(rows, corpus["expected"])
    assert pq.read_table(second["errors_table"]).to_pylist() == errors


def test_an_all_broken_catalogue_exits_0_with_its_error_rows_and_a_summary(ray_session, corpus, tmp_path, caplog):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.flac").write_text("not audio")
    (broken / "b.m4a").write_bytes(b"")
    (broken / "c.wav").write_bytes(b"RIFF\x00\x00")
    for _ in range(2):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="autotag"):
            assert cli(infer.run, argv=_infer_args(corpus, "all-broken", broken)) == 0
        assert "all-broken: 0 ok, 3 errors (see " in caplog.text
        assert [status for _, _, status, _ in _tracks_table(corpus["root"], "all-broken")] == ["error"] * 3


def test_a_missing_input_root_is_one_line_and_exit_2(corpus, tmp_path, capsys):
    assert cli(infer.run, argv=_infer_args(corpus, "missing", tmp_path / "no such folder")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: infer input ") and "no such folder" in err[0]
    assert not (corpus["root"] / "predictions" / "tracks" / "missing").exists()


def test_a_missing_manifest_is_one_line_and_exit_2_for_shard(tmp_path, capsys):
    argv = ["dataset=manifest", f"dataset.manifest={tmp_path / 'none.parquet'}", f"paths.root={tmp_path}"]
    assert cli(shard.run, argv=argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: dataset: manifest {tmp_path / 'none.parquet'} does not exist"]
