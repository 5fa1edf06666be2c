"""The split inference pipeline against today's fused one, through Ray: the same tables to 1e-5 (rows,
labels, segments, error rows) on a catalogue with a long file and a corrupt one, and the same resume."""

from __future__ import annotations

import io
import json
import logging
import re
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
import soundfile as sf
import torch

from autotag import predictions
from autotag.data.audio import encode_flac
from autotag.data.chords import CHORD_LABELS
from autotag.data.tasks import Task
from autotag.models import build_model, checkpoint
from pipelines import infer
from pipelines.common import load_config

pytestmark = pytest.mark.slow
MODELS = {  # name: frontend, backend, frontend params, task kind, vocabulary
    "tags": ("lms_conv2d", "autopool", {}, "multilabel", ("bass", "drums", "piano")),
    "chords": ("cqt_conv2d", "conv_bilstm", {"channels": 2, "patch_frames": 128, "patch_hop_frames": 32},
               "frame_multiclass", CHORD_LABELS),
}
TABLES = {"tags": ("tracks", "tags", "activations", "embeddings"), "chords": ("tracks", "chords", "embeddings")}
LONG_S = 150.0


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory) -> Path:
    """Six short files (mixed rates, formats), one 150-s file, one corrupt file, two checkpoints."""
    root = tmp_path_factory.mktemp("split")
    rng = np.random.default_rng(0)
    music = root / "music"
    music.mkdir()
    for i in range(6):
        sr = [22_050, 44_100, 16_000][i % 3]
        t = np.arange(int(sr * (2 + i))) / sr
        wave = 0.3 * np.sin(2 * np.pi * 110 * (i + 1) * t) + 0.05 * rng.standard_normal(len(t))
        sf.write(music / f"song{i}.{['wav', 'flac'][i % 2]}", wave, sr)
    sf.write(music / "long.flac", 0.1 * rng.standard_normal(int(22_050 * LONG_S)), 22_050)
    (music / "corrupt.flac").write_bytes(b"fLaC" + bytes(rng.integers(0, 256, 2000, dtype=np.uint8)))
    for seed, (name, (frontend, backend, params, kind, vocabulary)) in enumerate(MODELS.items()):
        torch.manual_seed(seed)
        model = build_model(frontend, backend, len(vocabulary), params, {}, task=kind)
        spec = {"frontend": frontend, "frontend_params": params, "backend": backend, "backend_params": {}}
        checkpoint.save(root / "ckpt" / name, model, {"model": spec, "task": Task(kind, name, vocabulary).to_dict(),
                                                      "config": {}, "epoch": 0})
    return root


def _run(root: Path, run_id: str, pipeline: str, source: Path | None = None, *extra: str) -> dict:
    models = "{" + ", ".join(f"{name}: {root / 'ckpt' / name}" for name in MODELS) + "}"
    cfg = load_config([f"paths.root={root}", f"run_id={run_id}", f"infer.models={models}",
                       f"infer.input={source or root / 'music'}", f"infer.pipeline={pipeline}",
                       "runtime.progress_bars=false", "infer.tracks_per_batch=2", "infer.patch_batch_size=8",
                       "infer.pieces_per_batch=3", "infer.embeddings=true", "infer.activations=true",
                       "infer.rows_per_file=3", *extra])
    return infer.run(cfg)


def _table(root: Path, run_id: str, table: str) -> pd.DataFrame:
    frame = predictions.read_table(root / "predictions", table, run_id).frame
    frame = frame.drop(columns=[c for c in ("run_id", "processed_at") if c in frame])
    keys = [c for c in ("track_id", "tag", "time_s", "start_s") if c in frame]
    return frame.sort_values(keys).reset_index(drop=True)


def _assert_same(split: pd.DataFrame, fused: pd.DataFrame, where: str) -> None:
    assert list(split.columns) == list(fused.columns), where
    assert len(split) == len(fused), where
    for column in split.columns:
        a, b = split[column].to_numpy(), fused[column].to_numpy()
        if a.dtype == object and len(a) and isinstance(a[0], np.ndarray):
            np.testing.assert_allclose(np.stack(a), np.stack(b), rtol=1e-5, atol=1e-5, err_msg=f"{where}.{column}")
        elif np.issubdtype(a.dtype, np.floating):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=f"{where}.{column}")
        else:
            assert a.tolist() == b.tolist(), f"{where}.{column}"


def test_split_writes_the_fused_tables(ray_session, catalogue, caplog):
    fused = _run(catalogue, "fused", "fused")
    caplog.clear()  # only the split run's lines (another test may have set autotag's loggers to INFO)
    with caplog.at_level(logging.INFO, logger="autotag.infer"):
        split = _run(catalogue, "split", "split", None, "infer.progress_every_s=0.001")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("tagged ")]
    done = [int(re.match(r"tagged (\d+)/8 tracks \(\d+%\), [\d.]+ tracks/s", line).group(1)) for line in lines]
    assert len(done) >= 3 and done == sorted(done) and done[-1] == 8  # lines while it runs, not only at the end
    assert re.search(r", \d+ audio s/s \(1 with errors\)$", lines[-1])
    assert any(" left, " in line for line in lines[:-1])  # an ETA while tracks remain
    for result in (fused, split):
        assert (result["tracks_ok"], result["tracks_error"]) == (7, 1)
    for name, tables in TABLES.items():
        for table in tables:
            _assert_same(_table(catalogue, f"split-{name}", table), _table(catalogue, f"fused-{name}", table),
                         f"{name}.{table}")
        tracks = _table(catalogue, f"split-{name}", "tracks")
        assert tracks["track_id"].tolist() == ["corrupt", "long", *(f"song{i}" for i in range(6))]
        assert tracks.loc[0, "status"] == "error" and tracks.loc[0, "error"]
        assert tracks.loc[1, "duration_s"] == pytest.approx(LONG_S)
    chords = _table(catalogue, "split-chords", "chords")
    assert chords[chords.track_id == "long"]["end_s"].max() == pytest.approx(LONG_S)


def test_split_resumes_as_fused_does(ray_session, catalogue, tmp_path):
    files = sorted((catalogue / "music").iterdir())
    first = tmp_path / "first.csv"
    pacsv.write_csv(pa.table({"audio_path": [str(f) for f in files[::2]],
                              "track_id": [f.stem for f in files[::2]]}), first)
    for pipeline in ("fused", "split"):
        run_id = f"resume-{pipeline}"
        part = _run(catalogue, run_id, pipeline, first)
        whole = _run(catalogue, run_id, pipeline)
        again = _run(catalogue, run_id, pipeline)
        assert part["tracks_ok"] + part["tracks_error"] == 4
        assert (whole["tracks_skipped"], whole["tracks_ok"] + whole["tracks_error"]) == (4, 4)
        assert (again["tracks_skipped"], again["tracks_ok"], again["tracks_error"]) == (8, 0, 0)
        assert (again["runs"]["tags"]["run_ok"], again["runs"]["tags"]["run_error"]) == (7, 1)
    for name, tables in TABLES.items():
        for table in tables:
            _assert_same(_table(catalogue, f"resume-split-{name}", table),
                         _table(catalogue, f"resume-fused-{name}", table), f"resume {name}.{table}")
        assert _table(catalogue, f"resume-split-{name}", "tracks")["track_id"].is_unique


def _write_shard(path: Path, members: dict[str, dict[str, bytes]]) -> Path:
    """A WebDataset tar: per key, its audio members (``{"flac": bytes}``, ...) and a ``key.json``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for key, audio in members.items():
            meta = json.dumps({"track_id": key, "source": f"/src/{key}.flac"}).encode()
            for name, data in [*((f"{key}.{ext}", data) for ext, data in audio.items()), (f"{key}.json", meta)]:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def test_split_reads_webdataset_shards_as_fused_does(ray_session, catalogue, tmp_path):
    """FLAC bytes from a shard (``key.flac`` + ``key.json`` members), a corrupt one among them."""
    shard = _write_shard(tmp_path / "shards" / "test-000000.tar",
                         {key: {"flac": (catalogue / "music" / f"{key}.flac").read_bytes()}
                          for key in ("song1", "song3", "corrupt")})
    results = {p: _run(catalogue, f"shards-{p}", p, shard.parent) for p in ("fused", "split")}
    assert [(r["tracks_ok"], r["tracks_error"]) for r in results.values()] == [(2, 1), (2, 1)]
    for name, tables in TABLES.items():
        for table in tables:
            _assert_same(_table(catalogue, f"shards-split-{name}", table),
                         _table(catalogue, f"shards-fused-{name}", table), f"shards {name}.{table}")
    tracks = _table(catalogue, "shards-split-tags", "tracks")
    assert tracks["audio_path"].tolist() == ["/src/corrupt.flac", "/src/song1.flac", "/src/song3.flac"]


def test_pcm16_shards_tag_as_their_flac_shards_do(ray_session, catalogue, tmp_path):
    """The same 16-bit audio as ``key.pcm16`` members (``shard.codec=pcm16``) and as FLAC: the
    same tables through both pipelines; a member of odd length and a sample with no audio
    member become error rows that say so."""
    rng = np.random.default_rng(3)
    audio = {key: np.rint(np.clip(0.3 * rng.standard_normal(22_050 * seconds), -1, 1) * 32767).astype("<i2")
             for key, seconds in (("a", 4), ("b", 7))}
    flac = _write_shard(tmp_path / "flac" / "test-000000.tar",
                        {key: {"flac": encode_flac(y.astype(np.float32) / 32768)} for key, y in audio.items()})
    pcm = _write_shard(tmp_path / "pcm16" / "test-000000.tar",
                       {**{key: {"pcm16": y.tobytes()} for key, y in audio.items()},
                        "odd": {"pcm16": b"\x00\x01\x02"}, "silent": {}})
    results = {"flac": _run(catalogue, "codec-flac", "fused", flac.parent),
               **{p: _run(catalogue, f"codec-pcm16-{p}", p, pcm.parent) for p in ("fused", "split")}}
    assert [(r["tracks_ok"], r["tracks_error"]) for r in results.values()] == [(2, 0), (2, 2), (2, 2)]
    for pipeline in ("fused", "split"):
        for name, tables in TABLES.items():
            for table in tables:
                got = _table(catalogue, f"codec-pcm16-{pipeline}-{name}", table)
                if table == "tracks":
                    errors = got[got["status"] == "error"].set_index("track_id")["error"].to_dict()
                    assert errors == {"odd": "pcm16 audio of 3 bytes; expected an even number (16-bit samples)",
                                      "silent": "shard sample has no audio member (expected one of flac, pcm16)"}
                    got = got[got["status"] == "ok"].reset_index(drop=True)
                _assert_same(got, _table(catalogue, f"codec-flac-{name}", table), f"pcm16 {pipeline} {name}.{table}")
