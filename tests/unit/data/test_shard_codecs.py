"""Shard codecs: pcm16 and FLAC hold the same 16-bit samples; old FLAC shards keep reading."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from autotag.data import manifest, shards
from autotag.data.audio import decode_audio, encode_flac
from autotag.data.tasks import Task
from autotag.errors import ConfigError
from autotag.train.patch_rows import shard_batch_to_patches, waveform
from pipelines.common import load_config
from tests.conftest import write_tone


def _table(tmp_path: Path, n: int = 3):
    rows = [{"track_id": f"t{i}", "audio_path": str(write_tone(tmp_path / f"t{i}.wav", sr=44_100, seconds=0.5 + 0.2 * i,
                                                                  channels=2, freq=300 + 90 * i)),
             "split": "train", "genre": ["a", "b"][i % 2]} for i in range(n)]
    return manifest.build_table(rows)


def _members(path: str) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar}


def _write(tmp_path: Path, codec: str, out: str | None = None) -> shards.ShardResult:
    plan = shards.plan_shards(_table(tmp_path), 10)[0]
    return shards.write_shard(plan, tmp_path / (out or codec), codec=codec)


def test_pcm16_holds_the_float_audio_to_16_bit_precision_and_flac_decodes_to_the_same_samples(tmp_path):
    pcm = _write(tmp_path, "pcm16")
    flac = _write(tmp_path, "flac")
    assert sorted(_members(pcm.path)) == ["t0.json", "t0.pcm16", "t1.json", "t1.pcm16", "t2.json", "t2.pcm16"]
    assert pcm.codec == "pcm16" and flac.codec == "flac"
    assert json.loads(Path(shards.sidecar_path(tmp_path / "pcm16", shards.plan_shards(_table(tmp_path), 10)[0]))
                      .read_text())["codec"] == "pcm16"
    from_pcm = {key: (y, meta) for key, y, meta in shards.iter_shard(pcm.path)}
    from_flac = {key: y for key, y, _ in shards.iter_shard(flac.path)}
    for i in range(3):
        y, meta = from_pcm[f"t{i}"]
        expected = decode_audio(tmp_path / f"t{i}.wav").samples
        assert y.dtype == np.float32 and len(y) == len(expected) == round((0.5 + 0.2 * i) * 22_050)
        assert np.max(np.abs(y - expected)) <= 1 / 32768
        np.testing.assert_array_equal(y, from_flac[f"t{i}"])  # the same 16-bit samples
        assert meta["codec"] == "pcm16" and meta["labels"] == {"genre": ["a", "b"][i % 2]}
    assert len(_members(pcm.path)["t2.pcm16"]) == 2 * len(from_pcm["t2"][0])  # raw: 2 bytes a sample, no header
    # The 16-bit samples themselves, as the training rows take them, from either codec.
    members = {**_members(pcm.path), **_members(flac.path)}
    for codec in shards.CODECS:
        as_int = shards.decode_member(codec, members[f"t1.{codec}"], dtype="int16")
        assert as_int.dtype == np.int16
        np.testing.assert_array_equal(as_int.astype(np.float32) / 32768, from_flac["t1"])


def test_a_stereo_flac_member_down_mixes_alike_to_float_and_to_int16():
    left = np.linspace(-0.5, 0.5, 2205, dtype=np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, np.stack([left, -left / 3], axis=1), 22_050, format="FLAC", subtype="PCM_16")
    as_float = shards.decode_member("flac", buffer.getvalue())
    as_int = shards.decode_member("flac", buffer.getvalue(), dtype="int16")
    assert as_float.dtype == np.float32 and as_int.shape == as_float.shape == (2205,)
    assert np.max(np.abs(as_int / 32768 - as_float)) <= 0.5 / 32768  # the int16 mix is rounded
    with pytest.raises(ValueError, match="decoded sample type 'float64'"):
        shards.decode_member("flac", buffer.getvalue(), dtype="float64")


def test_flac_shards_keep_the_bytes_and_fingerprint_they_had_before_the_codec_option(tmp_path):
    result = _write(tmp_path, "flac")
    members = _members(result.path)
    assert sorted(members) == ["t0.flac", "t0.json", "t1.flac", "t1.json", "t2.flac", "t2.json"]
    assert "codec" not in json.loads(members["t0.json"])
    plan = shards.plan_shards(_table(tmp_path), 10)[0]
    assert result.fingerprint == shards.plan_fingerprint(plan, None, None)
    assert shards.plan_fingerprint(plan, None, None, "pcm16") != result.fingerprint
    # A sidecar written before the option (no codec key) reads as FLAC and stays finished.
    sidecar = Path(shards.sidecar_path(tmp_path / "flac", plan))
    sidecar.write_text(json.dumps({k: v for k, v in json.loads(sidecar.read_text()).items() if k != "codec"}))
    again = shards.write_shard(plan, tmp_path / "flac")
    assert again.skipped and again.codec == "flac"


def test_changing_the_codec_rewrites_the_shard(tmp_path):
    plan = shards.plan_shards(_table(tmp_path), 10)[0]
    shards.write_shard(plan, tmp_path / "out")
    result = shards.write_shard(plan, tmp_path / "out", codec="pcm16")
    assert not result.skipped and all(name.endswith((".pcm16", ".json")) for name in _members(result.path))


def test_an_old_hand_made_flac_shard_and_a_pcm16_one_cut_the_same_patches(tmp_path):
    samples = (np.sin(np.arange(5000) / 7.0) * 0.4).astype(np.float32)
    meta = {"track_id": "x", "labels": {"genre": "b"}}
    old = tmp_path / "old.tar"
    with tarfile.open(old, "w") as tar:  # as shards were written before the codec option
        for name, payload in {"x.flac": encode_flac(samples), "x.json": json.dumps(meta).encode()}.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    [(key, y, read_meta)] = list(shards.iter_shard(old))
    assert key == "x" and read_meta == meta
    pcm = np.clip(np.rint(samples * 32768), -32768, 32767).astype("<i2").tobytes()
    task = Task("multiclass", "genre", ("a", "b")).to_dict()
    mixed = {"json": np.asarray([meta, {**meta, "track_id": "y"}], dtype=object),
             "flac": np.asarray([encode_flac(samples), None], dtype=object),
             "pcm16": np.asarray([None, pcm], dtype=object)}
    rows = shard_batch_to_patches(mixed, task, patch_samples=2000, hop_samples=1000)
    assert list(rows["patch_id"]) == ["x:0", "x:1", "x:2", "x:3", "y:0", "y:1", "y:2", "y:3"]
    np.testing.assert_array_equal(rows["audio"][:4], rows["audio"][4:])
    assert rows["audio"].dtype == np.int16  # the shards' own samples, half the bytes of float32
    np.testing.assert_array_equal(waveform(torch.from_numpy(rows["audio"][0])).numpy(), y[:2000])
    assert list(rows["target"]) == [1] * 8


def test_bad_codec_input_fails_with_one_line_naming_it(tmp_path):
    with pytest.raises(ValueError, match=r"member x\.pcm16: pcm16 audio of 3 bytes"):
        shards.decode_member("pcm16", b"abc", "member x.pcm16")
    with pytest.raises(ValueError, match="shard codec 'wav' unknown; known: flac, pcm16"):
        shards.write_shard(shards.plan_shards(_table(tmp_path, 1), 1)[0], tmp_path / "out", codec="wav")
    with pytest.raises(ValueError, match="shard sample z: no audio member"):
        shard_batch_to_patches({"json": np.asarray([{"track_id": "z", "labels": {}}], dtype=object)},
                               Task("multiclass", "genre", ("a",)).to_dict(), 10, 10)
    with pytest.raises(ConfigError, match="shard.codec"):
        load_config(["shard.codec=wav"])
