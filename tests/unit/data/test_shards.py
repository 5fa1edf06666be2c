"""Shard planning and writing: deterministic assignment, round trip, errors, resume, byte cap, URIs."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

from autotag import storage
from autotag.data import manifest, shards
from autotag.data.audio import decode_audio, encode_flac
from tests.conftest import write_tone


def _catalogue(tmp_path, n_good=5, seconds=1.0):
    rows = []
    for i in range(n_good):
        path = write_tone(tmp_path / f"g{i}.wav", sr=[16_000, 44_100][i % 2], seconds=seconds + 0.1 * i,
                          channels=1 + i % 2, freq=200 + 50 * i)
        rows.append({"track_id": f"good-{i}", "audio_path": str(path), "split": ["train", "test"][i % 2],
                     "genre": f"g{i % 3}"})
    (tmp_path / "bad.wav").write_text("nope" * 100)
    rows.append({"track_id": "bad-0", "audio_path": str(tmp_path / "bad.wav"), "split": "train", "genre": "g0"})
    rows.append({"track_id": "bad-1", "audio_path": str(tmp_path / "missing.wav"), "split": "test", "genre": "g1"})
    return manifest.build_table(rows)


def _tar_names(path) -> list[str]:
    with tarfile.open(path) as tar:
        return tar.getnames()


def test_plan_is_deterministic_and_grouped_by_split(tmp_path):
    table = _catalogue(tmp_path)
    plans = shards.plan_shards(table, tracks_per_shard=2)
    again = shards.plan_shards(table.take(list(reversed(range(table.num_rows)))), tracks_per_shard=2)
    assert [(p.name, [r["track_id"] for r in p.rows]) for p in plans] == \
        [(p.name, [r["track_id"] for r in p.rows]) for p in again]
    assert [p.name for p in plans] == ["test-000000", "test-000001", "train-000000", "train-000001"]
    assert sorted(r["track_id"] for p in plans for r in p.rows) == sorted(table.column("track_id").to_pylist())
    # The spans the pipeline ships to its tasks describe the same plans.
    ordered = shards.sort_manifest(table)
    assert [shards.plan_from_span(ordered, s) for s in shards.plan_spans(ordered, 2)] == plans


def test_every_good_track_once_with_labels_every_bad_track_as_error(tmp_path):
    table = _catalogue(tmp_path)
    results = [shards.write_shard(p, tmp_path / "out") for p in shards.plan_shards(table, 3)]
    samples = {key: (y, meta) for r in results for key, y, meta in shards.iter_shard(r.path)}
    assert sorted(samples) == [f"good-{i}" for i in range(5)]
    flacs = {}
    for r in results:
        with tarfile.open(r.path) as tar:
            flacs.update({m.name[: -len(".flac")]: tar.extractfile(m).read() for m in tar if m.name.endswith(".flac")})
    for i in range(5):
        y, meta = samples[f"good-{i}"]
        expected = decode_audio(tmp_path / f"g{i}.wav").samples
        assert np.max(np.abs(y - expected)) <= 1 / 32768 + 1e-6  # FLAC 16-bit precision
        assert flacs[f"good-{i}"] == encode_flac(expected)  # streamed encoding = decode then encode, bit for bit
        assert meta["labels"] == {"genre": f"g{i % 3}"} and meta["sample_rate"] == 22_050
        assert meta["duration_s"] == pytest.approx(len(expected) / 22_050)
    errors = {e["track_id"]: e for e in shards.errors_table(results).to_pylist()}
    assert set(errors) == {"bad-0", "bad-1"}
    assert "not a readable audio file" in errors["bad-0"]["reason"] and "does not exist" in errors["bad-1"]["reason"]
    assert {e["stage"] for e in errors.values()} == {"open"}
    assert shards.index_table(results).num_rows == 5


def test_rerun_skips_finished_shards_and_rebuilds_unfinished_ones(tmp_path):
    plans = shards.plan_shards(_catalogue(tmp_path), 3)
    first = [shards.write_shard(p, tmp_path / "out") for p in plans]
    before = {r.path: open(r.path, "rb").read() for r in first}
    # Simulate a crash after the tar but before the sidecar of the first shard.
    Path(shards.sidecar_path(tmp_path / "out", plans[0])).unlink()
    second = [shards.write_shard(p, tmp_path / "out") for p in plans]
    assert [r.skipped for r in second] == [False] + [True] * (len(plans) - 1)
    assert {r.path: open(r.path, "rb").read() for r in second} == before
    assert json.loads(Path(shards.sidecar_path(tmp_path / "out", plans[0])).read_text())["tracks"]


def test_a_changed_plan_is_rebuilt_not_skipped(tmp_path):
    table = _catalogue(tmp_path)
    plan = shards.plan_shards(table, 10)[1]  # the train shard
    shards.write_shard(plan, tmp_path / "out")
    plan.rows[-1]["genre"] = "relabelled"
    again = shards.write_shard(plan, tmp_path / "out")
    assert not again.skipped
    metas = {key: meta for key, _, meta in shards.iter_shard(again.path)}
    assert metas[plan.rows[-1]["track_id"]]["labels"]["genre"] == "relabelled"


def test_byte_cap_splits_a_shard_into_parts_deterministically(tmp_path):
    table = _catalogue(tmp_path, n_good=8, seconds=2.0)
    plan = shards.plan_shards(table, 10)[1]  # 4 good train tracks + 1 bad
    cap = os.path.getsize(shards.write_shard(plan, tmp_path / "whole").path) // 2  # about two tracks a part
    result = shards.write_shard(plan, tmp_path / "a", max_shard_bytes=cap)
    assert len(result.parts) >= 2 and result.parts[0] == result.path
    assert [Path(p).name for p in result.parts] == ["train-000000.tar"] + [f"train-000000-{k}.tar"
                                                                          for k in range(1, len(result.parts))]
    assert all(os.path.getsize(p) <= cap for p in result.parts)
    keys = [key for p in result.parts for key, _, _ in shards.iter_shard(p)]
    assert keys == [r["track_id"] for r in plan.rows if r["track_id"].startswith("good")]
    index = shards.index_table([result]).to_pylist()
    for row in index:  # the index names the tar that really holds each track
        assert f"{row['track_id']}.flac" in _tar_names(row["path"]) and row["shard"] == Path(row["path"]).stem
    other = shards.write_shard(plan, tmp_path / "b", max_shard_bytes=cap)
    assert [Path(p).read_bytes() for p in result.parts] == [Path(p).read_bytes() for p in other.parts]
    # A bigger cap later: one tar, and the parts of the earlier build are gone.
    bigger = shards.write_shard(plan, tmp_path / "a", max_shard_bytes=10 * cap)
    assert bigger.parts == [result.path] and not any(Path(p).exists() for p in result.parts[1:])


def test_an_interrupted_writer_leaves_no_tar_and_no_sidecar(tmp_path, monkeypatch):
    plan = shards.plan_shards(_catalogue(tmp_path), 10)[1]
    real, calls = shards.encode_track, []

    def dying(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if killed in the middle of the shard
        return real(*args, **kwargs)

    monkeypatch.setattr(shards, "encode_track", dying)
    with pytest.raises(KeyboardInterrupt):
        shards.write_shard(plan, tmp_path / "out")
    assert os.listdir(tmp_path / "out" / "train") == []
    monkeypatch.setattr(shards, "encode_track", real)
    assert not shards.write_shard(plan, tmp_path / "out").skipped


def test_tidy_removes_temporaries_and_reports_foreign_tars(tmp_path):
    spans = shards.plan_spans(shards.sort_manifest(_catalogue(tmp_path)), 10)
    folder = tmp_path / "out" / "train"
    folder.mkdir(parents=True)
    for name in [".train-000000.tar.tmp-0123456789ab", "train-000000.tar", "train-000000-3.tar",
                 "train-000007.tar", "notes.txt"]:
        (folder / name).write_bytes(b"x")
    removed, foreign = shards.tidy(tmp_path / "out", spans)
    assert [Path(p).name for p in removed] == [".train-000000.tar.tmp-0123456789ab"]
    assert [Path(p).name for p in foreign] == ["train-000007.tar"]
    assert sorted(os.listdir(folder)) == ["notes.txt", "train-000000-3.tar", "train-000000.tar", "train-000007.tar"]


def test_uris_for_audio_and_output(tmp_path):
    table = _catalogue(tmp_path, n_good=2)
    rows = [{**r, "audio_path": Path(r["audio_path"]).as_uri()} for r in table.to_pylist()]
    plan = shards.plan_shards(manifest.build_table(rows), 10)[1]
    out = (tmp_path / "out dir").as_uri()
    result = shards.write_shard(plan, out)
    assert result.path == f"{out}/train/train-000000.tar" and (tmp_path / "out dir/train/train-000000.tar").exists()
    assert [k for k, _, _ in shards.iter_shard(result.path)] == ["good-0"]
    assert result.errors[0]["track_id"] == "bad-0" and result.errors[0]["audio_path"].startswith("file://")
    assert shards.write_shard(plan, out).skipped
    storage.atomic_write_table(shards.index_table([result]), storage.join(out, "index.parquet"))
    assert (tmp_path / "out dir" / "index.parquet").exists()


def test_tar_member_names_never_become_paths(tmp_path):
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


def test_track_ids_longer_than_ustar_names_survive(tmp_path):
    long_id = "artist-" + "x" * 150
    path = write_tone(tmp_path / "a.wav", seconds=0.2)
    table = manifest.build_table([{"track_id": long_id, "audio_path": str(path), "split": "train"}])
    result = shards.write_shard(shards.plan_shards(table, 1)[0], tmp_path / "out")
    assert [key for key, _, _ in shards.iter_shard(result.path)] == [long_id]
