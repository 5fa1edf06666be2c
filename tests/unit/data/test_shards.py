"""Shard planning and writing: deterministic assignment, round trip, errors, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

from autotag.data import manifest, shards
from autotag.data.audio import decode_audio
from tests.conftest import write_tone


def _catalogue(tmp_path, n_good=5):
    rows = []
    for i in range(n_good):
        path = write_tone(tmp_path / f"g{i}.wav", sr=[16_000, 44_100][i % 2], seconds=1.0 + 0.1 * i,
                          channels=1 + i % 2, freq=200 + 50 * i)
        rows.append({"track_id": f"good-{i}", "audio_path": str(path), "split": ["train", "test"][i % 2],
                     "genre": f"g{i % 3}"})
    (tmp_path / "bad.wav").write_text("nope" * 100)
    rows.append({"track_id": "bad-0", "audio_path": str(tmp_path / "bad.wav"), "split": "train", "genre": "g0"})
    rows.append({"track_id": "bad-1", "audio_path": str(tmp_path / "missing.wav"), "split": "test", "genre": "g1"})
    return manifest.build_table(rows)


def test_plan_is_deterministic_and_grouped_by_split(tmp_path):
    table = _catalogue(tmp_path)
    plans = shards.plan_shards(table, tracks_per_shard=2)
    again = shards.plan_shards(table.take(list(reversed(range(table.num_rows)))), tracks_per_shard=2)
    assert [(p.name, [r["track_id"] for r in p.rows]) for p in plans] == \
        [(p.name, [r["track_id"] for r in p.rows]) for p in again]
    assert {p.split for p in plans} == {"train", "test"}
    assert sorted(r["track_id"] for p in plans for r in p.rows) == sorted(table.column("track_id").to_pylist())


def test_every_good_track_once_with_labels_every_bad_track_as_error(tmp_path):
    table = _catalogue(tmp_path)
    results = [shards.write_shard(p, tmp_path / "out") for p in shards.plan_shards(table, 3)]
    samples = {key: (y, meta) for r in results for key, y, meta in shards.iter_shard(r.path)}
    assert sorted(samples) == [f"good-{i}" for i in range(5)]
    for i in range(5):
        y, meta = samples[f"good-{i}"]
        expected = decode_audio(tmp_path / f"g{i}.wav").samples
        assert np.max(np.abs(y - expected)) <= 1 / 32768 + 1e-6  # FLAC 16-bit precision
        assert meta["labels"] == {"genre": f"g{i % 3}"} and meta["sample_rate"] == 22_050
    errors = {e["track_id"]: e for e in shards.errors_table(results).to_pylist()}
    assert set(errors) == {"bad-0", "bad-1"}
    assert "not a readable audio file" in errors["bad-0"]["reason"] and "does not exist" in errors["bad-1"]["reason"]
    assert shards.index_table(results).num_rows == 5


def test_rerun_skips_finished_shards_and_rebuilds_unfinished_ones(tmp_path):
    plans = shards.plan_shards(_catalogue(tmp_path), 3)
    first = [shards.write_shard(p, tmp_path / "out") for p in plans]
    before = {r.path: open(r.path, "rb").read() for r in first}
    # Simulate a crash after the tar but before the sidecar of the first shard.
    shards.shard_path(tmp_path / "out", plans[0]).with_suffix(".json").unlink()
    second = [shards.write_shard(p, tmp_path / "out") for p in plans]
    assert [r.skipped for r in second] == [False] + [True] * (len(plans) - 1)
    assert {r.path: open(r.path, "rb").read() for r in second} == before
    assert json.loads(shards.shard_path(tmp_path / "out", plans[0]).with_suffix(".json").read_text())["tracks"]


def test_tar_member_names_never_become_paths(tmp_path):
    import io
    import os
    import tarfile

    from autotag.data.audio import encode_flac

    evil = tmp_path / "deep" / "evil.tar"
    evil.parent.mkdir()
    members = {"../../escape.flac": encode_flac(np.zeros(100, np.float32)),
               "/etc/escape.json": json.dumps({"track_id": "escape"}).encode()}
    with tarfile.open(evil, "w") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    before = set(os.listdir(tmp_path))
    keys = [key for key, _, _ in shards.iter_shard(evil)]
    assert keys == ["escape"]  # only the basename keys the sample
    assert set(os.listdir(tmp_path)) == before and not os.path.exists("/etc/escape.json")


def test_bad_shard_size():
    with pytest.raises(ValueError, match="tracks_per_shard"):
        shards.plan_shards(manifest.build_table([]), 0)
