"""The pure-python TensorFlow checkpoint reader, on a checkpoint TensorFlow itself wrote.

``tests/fixtures/pretrained/tiny/ckpt.*`` was written by ``tf.raw_ops.SaveV2``
(``benchmarks/pretrained_reference.py:write_tiny_checkpoint``): 150 groups of four tensors
(float32, int64, float64 scalar, float16) whose values are recomputed here from the formula.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from autotag.pretrained.tf_checkpoint import (
    CheckpointFormatError,
    TFCheckpoint,
    crc32c,
    read_table,
)
from tests.pretrained_fixtures import FIXTURES, require_musicnn

TINY = FIXTURES / "tiny" / "ckpt"


def expected(i: int) -> dict[str, np.ndarray]:
    return {f"block_{i:03d}/a_rather_long_variable_name_to_fill_index_blocks/kernel":
            (np.arange(6, dtype=np.float32).reshape(2, 3) + i) / 7,
            f"block_{i:03d}/counts": np.arange(i, i + 4, dtype=np.int64),
            f"block_{i:03d}/scale": np.array(i * 0.5),
            f"block_{i:03d}/half": np.full((3,), i, np.float16)}


def test_every_tensor_of_a_tensorflow_checkpoint_reads_back_exactly():
    ckpt = TFCheckpoint(TINY)
    want = {k: v for i in range(150) for k, v in expected(i).items()}
    assert ckpt.names() == sorted(want)
    for name, value in want.items():
        got = ckpt.read(name)
        assert got.dtype == value.dtype and got.shape == value.shape, name
        np.testing.assert_array_equal(got, value, err_msg=name)


def test_the_index_spans_several_blocks():
    # LevelDB's default block size is 4 KiB; 600 long keys cannot fit one block.
    assert TINY.with_suffix(".index").stat().st_size > 3 * 4096
    assert len(read_table(TINY.with_suffix(".index"))) == 601  # + the header entry ""


def test_crc32c_known_vector():
    assert crc32c(b"123456789") == 0xE3069283  # the standard CRC-32C check value


def test_a_corrupt_index_is_an_error_naming_the_file(tmp_path):
    for name in ("ckpt.index", "ckpt.data-00000-of-00001"):
        shutil.copy(TINY.parent / name, tmp_path / name)
    index = tmp_path / "ckpt.index"
    raw = bytearray(index.read_bytes())
    raw[100] ^= 0xFF
    index.write_bytes(bytes(raw))
    with pytest.raises(CheckpointFormatError, match=r"ckpt\.index: block at 0: CRC-32C mismatch"):
        TFCheckpoint(tmp_path / "ckpt")
    index.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointFormatError, match="not a TensorFlow checkpoint index"):
        TFCheckpoint(tmp_path / "ckpt")
    with pytest.raises(CheckpointFormatError, match="cannot read"):
        TFCheckpoint(tmp_path / "missing")


def test_unknown_names_and_short_data_fail_clearly(tmp_path):
    with pytest.raises(KeyError, match="no tensor 'nope'"):
        TFCheckpoint(TINY).read("nope")
    shutil.copy(TINY.with_suffix(".index"), tmp_path / "ckpt.index")
    data = (TINY.parent / "ckpt.data-00000-of-00001").read_bytes()
    (tmp_path / "ckpt.data-00000-of-00001").write_bytes(data[: len(data) // 2])
    last = TFCheckpoint(tmp_path / "ckpt")
    with pytest.raises(CheckpointFormatError, match="cut short"):
        last.read_all()


def test_musicnn_checkpoint_holds_792079_model_values():
    folder = require_musicnn()
    ckpt = TFCheckpoint(f"{folder / 'MTT_musicnn'}/")
    shapes = {n: s for n, s in ckpt.shapes().items() if "Adam" not in n and "_power" not in n}
    assert sum(int(np.prod(s)) for s in shapes.values()) == 792_079
    assert shapes["conv2d/kernel"] == (7, 38, 1, 204) and shapes["dense_1/kernel"] == (200, 50)
