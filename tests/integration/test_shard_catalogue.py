"""``pipelines.shard`` on a generated catalogue of good and broken files, on embedded Ray.

The catalogue mixes formats (WAV 8/16-bit and float, FLAC 24-bit, OGG/Vorbis, MP3, a FLAC
named ``.wav``), rates (8 to 96 kHz), channel counts (1 to 6), a one-hour file (exactly
``shard.max_duration_s``), and broken inputs (missing, empty, truncated, not audio, not
audio behind an audio extension, zero-length, all-NaN and inf float WAV, longer than the
limit, a directory). Every good file must land in exactly one shard with its labels and its
audio (to 16-bit precision); every bad one must be in the errors table with a reason; a run
killed midway and run again must end with the same bytes as a clean run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from autotag.data import manifest, shards
from autotag.data.audio import decode_audio
from pipelines import shard
from pipelines.common import load_config

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
HOUR_S = 3600


def _tone(sr: int, seconds: float, channels: int = 1, freq: float = 330.0) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    y = 0.4 * np.sin(2 * np.pi * freq * t) + 0.05 * np.sin(2 * np.pi * 3.1 * freq * t)
    return np.stack([y * (1 - 0.1 * c) for c in range(channels)], axis=1).astype(np.float32)


def _write(path: Path, data: np.ndarray, sr: int, fmt: str, subtype: str | None = None) -> Path:
    with sf.SoundFile(path, "w", sr, data.shape[1], format=fmt, subtype=subtype) as handle:
        for start in range(0, len(data), 8192):  # blocks: one big OGG/MP3 write crashes libsndfile 1.2
            handle.write(data[start : start + 8192])
    return path


def _write_long(path: Path, seconds: int, sr: int = 8_000) -> Path:
    with sf.SoundFile(path, "w", sr, 1, subtype="PCM_16") as handle:
        for start in range(0, seconds, 60):
            handle.write(_tone(sr, min(60, seconds - start)))
    return path


def _good(audio: Path) -> dict[str, Path]:
    return {
        "wav16-44k-stereo": _write(audio / "a.wav", _tone(44_100, 3.0, 2), 44_100, "WAV", "PCM_16"),
        "flac24-48k": _write(audio / "b.flac", _tone(48_000, 2.5), 48_000, "FLAC", "PCM_24"),
        "ogg-22k": _write(audio / "c.ogg", _tone(22_050, 2.0), 22_050, "OGG", "VORBIS"),
        "mp3-44k-stereo": _write(audio / "d.mp3", _tone(44_100, 2.0, 2), 44_100, "MP3", "MPEG_LAYER_III"),
        "float-96k-6ch": _write(audio / "e.wav", _tone(96_000, 1.5, 6), 96_000, "WAV", "FLOAT"),
        "u8-8k": _write(audio / "f.wav", _tone(8_000, 2.0), 8_000, "WAV", "PCM_U8"),
        "flac-named-wav": _write(audio / "g.wav", _tone(32_000, 2.0, 2), 32_000, "FLAC", "PCM_16"),
        "one-hour": _write_long(audio / "hour.wav", HOUR_S),
    }


def _bad(audio: Path) -> dict[str, tuple[Path, str]]:
    (audio / "empty.wav").write_bytes(b"")
    (audio / "text.wav").write_text("not audio\n" * 50)
    (audio / "image.flac").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    truncated = _write(audio / "truncated.flac", _tone(44_100, 3.0), 44_100, "FLAC", "PCM_16")
    truncated.write_bytes(truncated.read_bytes()[:3000])
    sf.write(audio / "zero.wav", np.zeros(0), 22_050)
    sf.write(audio / "nan.wav", np.full(4000, np.nan, np.float32), 22_050, subtype="FLOAT")
    inf = np.zeros(4000, np.float32)
    inf[2000] = -np.inf
    sf.write(audio / "inf.wav", inf, 22_050, subtype="FLOAT")
    _write_long(audio / "too_long.wav", HOUR_S + 1)
    (audio / "folder.wav").mkdir()
    return {
        "missing": (audio / "missing.flac", "does not exist"),
        "empty": (audio / "empty.wav", "empty"),
        "not-audio": (audio / "text.wav", "not a readable audio file"),
        "wrong-extension": (audio / "image.flac", "not a readable audio file"),
        "truncated": (audio / "truncated.flac", "truncated"),
        "zero-length": (audio / "zero.wav", "no audio samples"),
        "all-nan": (audio / "nan.wav", "non-finite"),
        "inf": (audio / "inf.wav", "non-finite"),
        "too-long": (audio / "too_long.wav", "exceeds the limit of 3600.0 s"),
        "directory": (audio / "folder.wav", "directory"),
    }


def _labels(i: int) -> dict:
    return {"genre": f"genre{i % 3}", "tags": [f"tag{i % 4}", "loud"],
            "chords": [{"start_s": 0.0, "end_s": 1.0 + i, "label": "C:maj"}, {"start_s": 1.0 + i, "end_s": 9.5,
                                                                               "label": "A:min"}]}


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    root = tmp_path_factory.mktemp("catalogue")
    audio = root / "audio"
    audio.mkdir()
    good, bad = _good(audio), _bad(audio)
    paths = {**good, **{k: p for k, (p, _) in bad.items()}}
    rows = [{"track_id": track_id, "audio_path": str(path), "split": ("train", "valid", "test")[i % 3], **_labels(i)}
            for i, (track_id, path) in enumerate(sorted(paths.items()))]
    rows[[r["track_id"] for r in rows].index("one-hour")]["split"] = "valid"
    manifest.write(manifest.build_table(rows), root / "manifest.parquet")
    return {"root": root, "good": good, "bad": bad, "rows": {r["track_id"]: r for r in rows}}


def _overrides(catalogue, root: Path) -> list[str]:
    return ["dataset=manifest", f"dataset.manifest={catalogue['root'] / 'manifest.parquet'}", f"paths.root={root}",
            "shard.tracks_per_shard=2", "runtime.progress_bars=false"]


@pytest.fixture(scope="module")
def clean_run(ray_session, catalogue, tmp_path_factory):
    cfg = load_config(_overrides(catalogue, tmp_path_factory.mktemp("clean")))
    return cfg, shard.run(cfg)


def _tars(shards_dir: str | Path) -> dict[str, bytes]:
    return {str(p.relative_to(shards_dir)): p.read_bytes() for p in sorted(Path(shards_dir).glob("*/*-*.tar"))}


def _samples(shards_dir: str | Path) -> list[tuple[str, np.ndarray, dict]]:
    return [s for path in sorted(Path(shards_dir).glob("*/*-*.tar")) for s in shards.iter_shard(path)]


def test_every_good_file_once_with_labels_and_audio(catalogue, clean_run):
    cfg, summary = clean_run
    good = catalogue["good"]
    assert summary["tracks"] == len(good) and summary["errors"] == len(catalogue["bad"])
    samples = _samples(cfg.paths.shards)
    assert Counter(key for key, _, _ in samples) == Counter(list(good))  # exactly once each, nothing else
    for key, y, meta in samples:
        row = catalogue["rows"][key]
        assert meta["labels"] == {k: row[k] for k in ("genre", "tags", "chords")}
        assert meta["split"] == row["split"] and meta["source"] == str(good[key]) and meta["sample_rate"] == 22_050
        if key == "one-hour":
            assert len(y) == HOUR_S * 22_050 and meta["duration_s"] == HOUR_S
            continue
        expected = decode_audio(good[key]).samples
        assert len(y) == len(expected) and np.max(np.abs(y - expected)) <= 1 / 32768 + 1e-6
    index = pq.read_table(summary["index"]).to_pylist()
    assert sorted(r["track_id"] for r in index) == sorted(good)
    assert all(Path(r["path"]).exists() and r["split"] == catalogue["rows"][r["track_id"]]["split"] for r in index)


def test_every_bad_file_is_an_error_row_with_its_reason(catalogue, clean_run):
    _, summary = clean_run
    errors = {e["track_id"]: e for e in pq.read_table(summary["errors_table"]).to_pylist()}
    assert set(errors) == set(catalogue["bad"])
    for track_id, (path, reason) in catalogue["bad"].items():
        assert reason in errors[track_id]["reason"] and errors[track_id]["audio_path"] == str(path)
        assert errors[track_id]["stage"] in ("open", "header", "decode")


def test_rerun_skips_every_shard_and_changes_no_byte(catalogue, clean_run):
    cfg, summary = clean_run
    before = _tars(cfg.paths.shards)
    again = shard.run(cfg)
    assert again["skipped_shards"] == again["shards"] == summary["shards"]
    assert again["tracks"] == summary["tracks"] and again["errors"] == summary["errors"]
    assert _tars(cfg.paths.shards) == before


def test_uris_for_manifest_audio_and_shards(ray_session, catalogue, tmp_path):
    rows = [{**r, "audio_path": Path(r["audio_path"]).as_uri()} for r in catalogue["rows"].values()
            if r["track_id"] in ("ogg-22k", "mp3-44k-stereo", "missing", "truncated")]
    manifest.write(manifest.build_table(rows), tmp_path / "manifest.parquet")
    out = (tmp_path / "shards").as_uri()
    cfg = load_config(["dataset=manifest", f"dataset.manifest={(tmp_path / 'manifest.parquet').as_uri()}",
                       f"paths.root={tmp_path}", f"paths.shards={out}", "runtime.progress_bars=false"])
    summary = shard.run(cfg)
    assert summary["tracks"] == 2 and summary["errors"] == 2 and summary["index"] == f"{out}/index.parquet"
    index = pq.read_table(tmp_path / "shards" / "index.parquet").to_pylist()
    assert all(r["path"].startswith(f"{out}/") for r in index)
    assert sorted(k for k, _, _ in _samples(tmp_path / "shards")) == ["mp3-44k-stereo", "ogg-22k"]


def _shard_command(catalogue, root: Path) -> list[str]:
    return [sys.executable, "-m", "pipelines.shard", *_overrides(catalogue, root), "runtime.num_cpus=1"]


def test_killed_run_resumes_to_the_same_shards(catalogue, clean_run, tmp_path):
    cfg, summary = clean_run
    # A fresh local Ray in the child, whatever cluster `ray start` may have left running here.
    env = {**os.environ, "RAY_ADDRESS": "local", "RAY_USAGE_STATS_ENABLED": "0"}
    command = _shard_command(catalogue, tmp_path)
    sidecars = tmp_path / "shards" / "custom"
    child = subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not list(sidecars.glob("*/*.json")) and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        finished_at_kill = len(list(sidecars.glob("*/*.json")))
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    assert 1 <= finished_at_kill < summary["shards"], "the run was not killed midway"
    resumed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "finished earlier, skipped" in resumed.stderr  # the per-shard progress lines
    assert _tars(sidecars) == _tars(cfg.paths.shards)  # the complete set, byte for byte
    keys = [key for key, _, _ in _samples(sidecars)]
    assert len(keys) == len(set(keys)) == summary["tracks"]
    assert not [p for p in sidecars.rglob(".*")]  # no temporaries left behind
