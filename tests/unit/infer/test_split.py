"""The split pipeline's three parts (decode tasks, model actors, driver assembly) without Ray: the same
rows as the fused BatchPredictor, whatever the order and batching of the pieces."""

from __future__ import annotations

import json

import numpy as np
import pytest

from autotag.infer.batch import BatchPredictor
from autotag.infer.split import PieceModels, TrackAssembler, decode_pieces
from tests.conftest import write_tone
from tests.unit.infer.test_batch_predictor import MODELS, save_checkpoints

OPTIONS = {"patch_batch_size": 4, "device": "cpu", "embeddings": True, "activations": True}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, str]:
    return save_checkpoints(tmp_path_factory)


@pytest.fixture(scope="module")
def tracks(tmp_path_factory) -> dict[str, np.ndarray]:
    folder = tmp_path_factory.mktemp("audio")
    files = [write_tone(folder / "short.wav", seconds=0.5, freq=330.0),
             write_tone(folder / "mid.wav", sr=44_100, seconds=5.0, freq=220.0),
             write_tone(folder / "long.wav", seconds=70.0, freq=440.0)]
    (folder / "bad.flac").write_bytes(b"fLaC but not really")
    files.append(folder / "bad.flac")
    return {"track_id": np.array([f.stem for f in files], dtype=object),
            "audio_path": np.array([str(f) for f in files], dtype=object)}


def split_rows(checkpoints, tracks, seed: int, pieces_per_batch: int, piece_bytes: int) -> dict[str, np.ndarray]:
    """Decode, shuffle the piece rows, run them in batches of ``pieces_per_batch``, assemble."""
    cutters = {name: p.cutter for name, p in PieceModels(checkpoints, **OPTIONS).predictors.items()}
    rows = [batch for batch in decode_pieces(tracks, cutters, 3600.0, piece_bytes=piece_bytes)]
    flat = [{k: v[i] for k, v in batch.items()} for batch in rows for i in range(len(batch["track_id"]))]
    order = np.random.default_rng(seed).permutation(len(flat))
    models, assembler = PieceModels(checkpoints, **OPTIONS), TrackAssembler(PieceModels(checkpoints,
                                                                                        **OPTIONS).predictors)
    finished = []
    for first in range(0, len(flat), pieces_per_batch):
        chunk = [flat[i] for i in order[first : first + pieces_per_batch]]
        batch = {k: np.asarray([row[k] for row in chunk], dtype=object) for k in chunk[0]}
        done = assembler.add(models(batch))
        if done is not None:
            finished.append(done)
    assert assembler.pending == 0
    out = {k: np.concatenate([f[k] for f in finished]) for k in finished[0]}
    index = np.argsort(out["track_id"])
    return {k: v[index] for k, v in out.items()}


@pytest.mark.parametrize(("seed", "pieces_per_batch", "piece_bytes"), [(0, 1, 1), (1, 7, 2**20), (2, 64, 2**30)])
def test_split_parts_give_the_fused_rows(checkpoints, tracks, seed, pieces_per_batch, piece_bytes):
    fused = BatchPredictor(checkpoints, **OPTIONS)(tracks)
    index = np.argsort(fused["track_id"])
    fused = {k: v[index] for k, v in fused.items()}
    split = split_rows(checkpoints, tracks, seed, pieces_per_batch, piece_bytes)
    assert sorted(split) == sorted(fused)
    assert split["track_id"].tolist() == ["bad", "long", "mid", "short"]
    for key, expected in fused.items():
        got = split[key]
        if key.endswith(".segments") or key.endswith(".activations"):
            for a, b in zip(got, expected):
                assert (a == "") == (b == "")
                if a:
                    _close(json.loads(a), json.loads(b))
        elif expected.dtype == object:
            assert got.tolist() == expected.tolist(), key
        else:
            np.testing.assert_allclose(got.astype(np.float64), expected.astype(np.float64), rtol=1e-5, atol=1e-5,
                                       err_msg=key)
    for name in MODELS:
        assert split[f"{name}.status"].tolist() == ["error", "ok", "ok", "ok"]
        assert "not a readable audio file" in split[f"{name}.error"][0]
    long_segments = json.loads(split["chords.segments"][1])
    assert long_segments[-1]["end_s"] == pytest.approx(70.0)


def _close(a, b) -> None:
    if isinstance(a, dict):
        assert sorted(a) == sorted(b)
        for key in a:
            _close(a[key], b[key])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _close(x, y)
    elif isinstance(a, str):
        assert a == b
    else:
        assert a == pytest.approx(b, rel=1e-5, abs=1e-4)


def test_a_long_file_is_cut_into_bounded_pieces_yielded_in_parts(checkpoints, tracks):
    cutters = {name: p.cutter for name, p in PieceModels(checkpoints, **OPTIONS).predictors.items()}
    long_track = {k: v[2:3] for k, v in tracks.items()}
    batches = list(decode_pieces(long_track, cutters, 3600.0, piece_bytes=2**20))
    assert len(batches) > 3  # yielded a megabyte of waves at a time, not the track at once
    rows = {name: sum(int((b["model"] == name).sum()) for b in batches) for name in MODELS}
    for name, cutter in cutters.items():
        assert rows[name] == cutter.count(70 * 22_050) > 1
        sizes = [len(w) // 4 for b in batches for w, m in zip(b["wave"], b["model"]) if m == name]
        assert max(sizes) <= (cutter.per_piece - 1) * cutter.hop + cutter.length


def test_a_model_failing_on_one_piece_fails_only_that_track_and_model(checkpoints, tracks, monkeypatch):
    models = PieceModels(checkpoints, **OPTIONS)
    cutters = {name: p.cutter for name, p in models.predictors.items()}
    rows = list(decode_pieces({k: v[1:3] for k, v in tracks.items()}, cutters, 3600.0))
    batch = {k: np.concatenate([b[k] for b in rows]) for k in rows[0]}
    tags = np.flatnonzero(batch["model"] == "tags")
    bad = np.frombuffer(batch["wave"][tags[-1]], dtype=np.float32)  # the long track's last piece
    real = models.predictors["tags"].run_pieces

    def fails_on_bad(pieces):
        if any(np.array_equal(wave, bad) for wave, _ in pieces):
            raise RuntimeError("out of memory")
        return real(pieces)

    monkeypatch.setattr(models.predictors["tags"], "run_pieces", fails_on_bad)
    out = models(batch)
    failed = {(t, m) for t, m, s in zip(out["track_id"], out["model"], out["status"]) if s != "ok"}
    assert failed == {("long", "tags")}
    assert out["error"][tags[-1]] == "inference failed: out of memory"
    assembled = TrackAssembler(models.predictors).add(out)
    assert assembled["track_id"].tolist() == ["mid", "long"]
    assert assembled["tags.status"].tolist() == ["ok", "error"]
    assert assembled["genre.status"].tolist() == ["ok", "ok"] and assembled["chords.status"].tolist() == ["ok", "ok"]
