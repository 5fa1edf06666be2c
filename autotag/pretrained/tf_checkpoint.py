"""Read TensorFlow checkpoints (the "tensor bundle" V2 format) without TensorFlow.

A checkpoint prefix ``P`` is two files:

- ``P.index``: an immutable sorted table in LevelDB's SSTable layout. A 48-byte footer
  (two block handles and the magic number ``0xdb4775248b80fb57``) points at an index block,
  whose entries point at data blocks; every block is prefix-compressed key/value entries,
  a restart array, and a 5-byte trailer (compression type, masked CRC-32C). The key ``""``
  holds a ``BundleHeaderProto``; every other key is a tensor name whose value is a
  ``BundleEntryProto`` (dtype, shape, shard, offset, size, CRC-32C).
- ``P.data-00000-of-0000N``: the raw little-endian tensor bytes, at the entries' offsets.

The two protobuf messages are decoded here by their field numbers (wire format only), so
no generated code, TensorFlow or pickle is involved. Only what TF's own writer produces for
plain variables is supported (uncompressed blocks, little-endian, unsliced numeric tensors);
anything else raises :class:`CheckpointFormatError` naming the file.

References
----------
``tensorflow/core/util/tensor_bundle/tensor_bundle.{h,cc}`` and ``tensor_bundle.proto``;
LevelDB's ``doc/table_format.md``.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from autotag.errors import InputError

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_BYTES = 48
BLOCK_TRAILER_BYTES = 5

DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"), 2: np.dtype("<f8"), 3: np.dtype("<i4"), 4: np.dtype("u1"), 5: np.dtype("<i2"),
    6: np.dtype("i1"), 9: np.dtype("<i8"), 10: np.dtype("?"), 17: np.dtype("<u2"), 19: np.dtype("<f2"),
    22: np.dtype("<u4"), 23: np.dtype("<u8"),
}
"""TensorFlow ``DataType`` enum values → numpy dtypes (little-endian)."""


class CheckpointFormatError(InputError):
    """A TensorFlow checkpoint file that is not in the tensor-bundle format read here."""


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data`` (pure python; meant for small blocks)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def unmask_crc(masked: int) -> int:
    """Undo LevelDB's CRC masking (``rotate right 15`` after subtracting ``0xa282ead8``)."""
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def read_varint(buffer: bytes, pos: int) -> tuple[int, int]:
    """Decode a base-128 varint at ``pos``; returns ``(value, next position)``."""
    value, shift = 0, 0
    while True:
        if pos >= len(buffer):
            raise CheckpointFormatError("truncated varint")
        byte = buffer[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise CheckpointFormatError("varint longer than 64 bits")


def proto_fields(message: bytes) -> list[tuple[int, int | bytes]]:
    """``(field number, value)`` pairs of a protobuf message: ints for varint/fixed fields, bytes
    for length-delimited ones (nested messages, strings, packed arrays)."""
    fields: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(message):
        tag, pos = read_varint(message, pos)
        number, wire = tag >> 3, tag & 7
        value: int | bytes
        if wire == 0:
            value, pos = read_varint(message, pos)
        elif wire == 1:
            value, pos = struct.unpack_from("<Q", message, pos)[0], pos + 8
        elif wire == 2:
            size, pos = read_varint(message, pos)
            value, pos = message[pos : pos + size], pos + size
        elif wire == 5:
            value, pos = struct.unpack_from("<I", message, pos)[0], pos + 4
        else:
            raise CheckpointFormatError(f"protobuf wire type {wire} (field {number}) not supported")
        fields.append((number, value))
    return fields


def _block(data: bytes, offset: int, size: int, path: Path) -> bytes:
    """The contents of the block at ``offset`` after checking its trailer (no compression, CRC)."""
    end = offset + size
    if end + BLOCK_TRAILER_BYTES > len(data):
        raise CheckpointFormatError(f"{path}: block at {offset} (+{size}) runs past the end of the file")
    contents, kind = data[offset:end], data[end]
    if kind != 0:
        raise CheckpointFormatError(f"{path}: block at {offset} uses compression type {kind}; only uncompressed "
                                    "blocks (TensorFlow's default for checkpoints) are supported")
    stored = unmask_crc(struct.unpack_from("<I", data, end + 1)[0])
    if crc32c(data[offset : end + 1]) != stored:
        raise CheckpointFormatError(f"{path}: block at {offset}: CRC-32C mismatch (corrupt file)")
    return contents


def _block_entries(block: bytes, path: Path) -> list[tuple[bytes, bytes]]:
    """Key/value pairs of one block (keys are stored as shared prefix + suffix)."""
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    limit = len(block) - 4 - 4 * num_restarts
    if limit < 0:
        raise CheckpointFormatError(f"{path}: block with {num_restarts} restarts is larger than itself")
    entries, pos, key = [], 0, b""
    while pos < limit:
        shared, pos = read_varint(block, pos)
        unshared, pos = read_varint(block, pos)
        value_size, pos = read_varint(block, pos)
        if shared > len(key):
            raise CheckpointFormatError(f"{path}: entry shares {shared} bytes of a {len(key)}-byte key")
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        entries.append((key, block[pos : pos + value_size]))
        pos += value_size
    return entries


def read_table(path: str | Path) -> dict[bytes, bytes]:
    """Every key/value pair of an SSTable file (a checkpoint's ``.index``)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CheckpointFormatError(f"{path}: cannot read ({error.strerror})") from None
    if len(data) < FOOTER_BYTES or struct.unpack_from("<Q", data, len(data) - 8)[0] != TABLE_MAGIC:
        raise CheckpointFormatError(f"{path}: not a TensorFlow checkpoint index (no SSTable magic number at the end)")
    footer = data[-FOOTER_BYTES:]
    _, pos = read_varint(footer, 0)  # metaindex offset
    _, pos = read_varint(footer, pos)  # metaindex size
    index_offset, pos = read_varint(footer, pos)
    index_size, _ = read_varint(footer, pos)
    table: dict[bytes, bytes] = {}
    for _, handle in _block_entries(_block(data, index_offset, index_size, path), path):
        offset, pos = read_varint(handle, 0)
        size, _ = read_varint(handle, pos)
        table.update(_block_entries(_block(data, offset, size, path), path))
    return table


def _entry(name: str, value: bytes, path: Path) -> dict[str, object]:
    fields = proto_fields(value)
    entry: dict[str, object] = {"dtype": 0, "shape": (), "shard": 0, "offset": 0, "size": 0}
    for number, item in fields:
        if number == 1:
            entry["dtype"] = item
        elif number == 2:
            dims = [dict(proto_fields(dim)).get(1, 0) for n, dim in proto_fields(item) if n == 2]  # type: ignore[arg-type]
            entry["shape"] = tuple(int(d) for d in dims)  # type: ignore[arg-type]
        elif number in (3, 4, 5):
            entry[{3: "shard", 4: "offset", 5: "size"}[number]] = item
        elif number == 7:
            raise CheckpointFormatError(f"{path}: tensor {name!r} is stored in slices, which are not supported")
    return entry


class TFCheckpoint:
    """The tensors of a TensorFlow V2 checkpoint, read lazily by name.

    Parameters
    ----------
    prefix
        The checkpoint prefix: ``<dir>/model.ckpt`` for ``model.ckpt.index``, or ``<dir>/`` for
        musicnn's files named ``.index`` and ``.data-00000-of-00001``.

    Raises
    ------
    CheckpointFormatError
        If the index is missing or malformed, big-endian, or names an unsupported dtype.

    Examples
    --------
    >>> ckpt = TFCheckpoint("/path/to/musicnn/MTT_musicnn/")  # doctest: +SKIP
    >>> ckpt.shapes()["dense_1/kernel"]  # doctest: +SKIP
    (200, 50)
    """

    def __init__(self, prefix: str | Path):
        self.prefix = str(prefix)
        self.index_path = Path(self.prefix + ".index")
        table = read_table(self.index_path)
        header = dict(proto_fields(table.pop(b"", b"")))  # BundleHeaderProto
        self.num_shards = int(header.get(1, 1))  # type: ignore[arg-type]
        if header.get(2, 0) != 0:
            raise CheckpointFormatError(f"{self.index_path}: big-endian checkpoint, only little-endian is supported")
        self._entries = {key.decode(): _entry(key.decode(), value, self.index_path) for key, value in table.items()}

    def names(self) -> list[str]:
        """Tensor names, sorted."""
        return sorted(self._entries)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Name → shape of every tensor."""
        return {name: entry["shape"] for name, entry in self._entries.items()}  # type: ignore[misc]

    def data_path(self, shard: int) -> Path:
        return Path(f"{self.prefix}.data-{shard:05d}-of-{self.num_shards:05d}")

    def read(self, name: str) -> np.ndarray:
        """The tensor ``name`` as a numpy array.

        Raises
        ------
        KeyError
            If the checkpoint has no such tensor (the message lists a few names).
        CheckpointFormatError
            If its dtype is unsupported or its bytes do not fit its shape.
        """
        if name not in self._entries:
            raise KeyError(f"{self.index_path}: no tensor {name!r}; it has {len(self._entries)}, e.g. "
                           f"{self.names()[:5]}")
        entry = self._entries[name]
        dtype = DTYPES.get(entry["dtype"])  # type: ignore[arg-type]
        if dtype is None:
            raise CheckpointFormatError(f"{self.index_path}: tensor {name!r} has TensorFlow dtype {entry['dtype']}, "
                                        f"not one of the numeric types {sorted(DTYPES)}")
        shape: tuple[int, ...] = entry["shape"]  # type: ignore[assignment]
        size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if size != entry["size"]:
            raise CheckpointFormatError(f"{self.index_path}: tensor {name!r} of shape {shape} should take {size} "
                                        f"bytes, the index says {entry['size']}")
        path = self.data_path(int(entry["shard"]))  # type: ignore[call-overload]
        with open(path, "rb") as file:
            file.seek(int(entry["offset"]))  # type: ignore[call-overload]
            raw = file.read(size)
        if len(raw) != size:
            raise CheckpointFormatError(f"{path}: tensor {name!r} is cut short ({len(raw)} of {size} bytes)")
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()

    def read_all(self) -> dict[str, np.ndarray]:
        """Every tensor, by name."""
        return {name: self.read(name) for name in self.names()}
