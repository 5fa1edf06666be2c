"""The split inference pipeline: CPU tasks decode and cut, model actors only run models, the driver finishes.

The fused pipeline (:class:`autotag.infer.batch.BatchPredictor`) does everything for a track in
one actor; on a GPU node its GPU waits while the actor decodes. Here the work is in three parts:

1. :func:`decode_pieces` (Ray Data tasks, one per CPU): decode and resample each track once and
   cut it, for every model, into pieces of at most ``patch_batch_size`` patches or windows
   (:mod:`autotag.infer.pieces`). A file that cannot be decoded becomes one error row (model
   ``""``) that passes on to the writer. A long file yields its pieces a few megabytes at a time,
   so a 1-hour file is many blocks, not one.
2. :class:`PieceModels` (an actor pool, with GPUs when asked): the forward passes, several pieces
   of one model in one pass, whatever track they come from. Audio leaves the rows here.
3. :class:`TrackAssembler` (the driver, beside the writer): collects the outputs of each track's
   pieces, which arrive in any order and in different batches, and once a track has them all,
   aggregates (mean/max, stitching, Viterbi) with the same
   :meth:`~autotag.infer.predictor.TrackPredictor.finish` as the fused pipeline, into the rows
   :class:`~autotag.infer.batch.BatchPredictor` returns.

Waves and outputs travel as raw float32 bytes (their lengths differ from piece to piece).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autotag.data.audio import AudioDecodeError
from autotag.infer.batch import ModelColumns, check_model_names, track_ids, track_sources
from autotag.infer.pieces import PieceCutter
from autotag.infer.predictor import TrackPredictor, load_audio
from autotag.memory import reuse_freed_memory

PIECE_BYTES = 32 * 1024**2  # waves per yielded batch of a decode task: long files go out in parts


def _piece_row(track: dict, model: str, first: int, pieces: int, wave: bytes, starts: bytes,
               status: str = "ok", error: str = "") -> dict[str, Any]:
    return {**track, "model": model, "first": first, "pieces": pieces, "status": status, "error": error,
            "wave": wave, "starts": starts}


def _columns(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    out = {}
    for key in rows[0]:
        values = [row[key] for row in rows]
        out[key] = np.asarray(values, dtype=object if isinstance(values[0], (str, bytes)) else None)
    return out


def decode_pieces(batch: dict[str, np.ndarray], cutters: dict[str, PieceCutter], max_duration_s: float | None,
                  piece_bytes: int = PIECE_BYTES) -> Iterator[dict[str, np.ndarray]]:
    """Rows naming tracks (``track_id`` with ``audio_path``, or a shard member's bytes and codec:
    :func:`autotag.infer.batch.track_sources`) → one row per piece
    and model: ``track_id``, ``audio_path``, ``num_samples``, ``duration_s``, ``model``, ``first``
    (its first patch or window), ``pieces`` (of that track and model), ``status``, ``error``,
    ``wave`` and ``starts`` (raw float32 / int64 bytes). Yields a batch per track, and within a
    long track every ``piece_bytes`` of waves."""
    reuse_freed_memory()
    ids = track_ids(batch)
    for track_id, (path, data, name, codec) in zip(ids, track_sources(batch, ids), strict=True):
        track = {"track_id": track_id, "audio_path": str(path) if path is not None else "",
                 "num_samples": 0, "duration_s": float("nan")}
        try:
            audio = load_audio(path, data, name, max_duration_s, codec)
        except AudioDecodeError as exc:
            yield _columns([_piece_row(track, "", 0, 1, b"", b"", "error", exc.reason)])
            continue
        track.update(num_samples=len(audio.samples), duration_s=audio.duration_s)
        rows, size = [], 0
        for name, cutter in cutters.items():
            count = cutter.count(len(audio.samples))
            for piece in cutter.pieces(audio.samples):
                rows.append(_piece_row(track, name, piece.first, count, piece.wave.tobytes(), piece.starts.tobytes()))
                size += piece.wave.nbytes
                if size >= piece_bytes:
                    yield _columns(rows)
                    rows, size = [], 0
        if rows:
            yield _columns(rows)


class PieceModels:
    """The model actors of the split pipeline: piece rows → the same rows with each piece's outputs
    (``out``, raw float32 bytes, of shape ``shape``) instead of its audio.

    Parameters
    ----------
    checkpoints
        Model name → checkpoint directory.
    **options
        Passed to every :class:`TrackPredictor` (``patch_batch_size``, ``device``, ``num_threads``,
        ``embeddings``, ``activations``, ...).
    """

    def __init__(self, checkpoints: dict[str, str], **options: Any):
        check_model_names(checkpoints)
        reuse_freed_memory()  # each batch's buffers reuse the last one's pages (autotag.memory)
        self.predictors = {name: TrackPredictor(str(path), **options) for name, path in checkpoints.items()}

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(batch["track_id"])
        status = np.asarray(batch["status"], dtype=object).copy()
        error = np.asarray(batch["error"], dtype=object).copy()
        out = np.full(n, b"", dtype=object)
        shape = np.zeros((n, 3), dtype=np.int64)
        for name, predictor in self.predictors.items():
            rows = [i for i in range(n) if batch["model"][i] == name and status[i] == "ok"]
            if not rows:
                continue
            pieces = [(np.frombuffer(batch["wave"][i], dtype=np.float32).copy(),  # torch wants writable arrays
                       np.frombuffer(batch["starts"][i], dtype=np.int64)) for i in rows]
            for i, result in zip(rows, self._run(predictor, pieces)):
                if isinstance(result, str):
                    status[i], error[i] = "error", result
                    continue
                result = np.ascontiguousarray(result, dtype=np.float32)
                out[i] = result.tobytes()
                shape[i] = result.shape if result.ndim == 3 else (result.shape[0], 1, result.shape[1])
        keep = {k: v for k, v in batch.items() if k not in ("wave", "starts", "status", "error")}
        return {**keep, "status": status, "error": error, "out": out, "shape": shape}

    @staticmethod
    def _run(predictor: TrackPredictor, pieces: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray | str]:
        """Every piece in one pass; if that fails, one by one, so that only the pieces that fail
        alone become errors (a model failing on one track fails only that track)."""
        try:
            return predictor.run_pieces(pieces)
        except (RuntimeError, ValueError) as exc:  # a model failure on one track must not stop the run
            if len(pieces) == 1:
                return [f"inference failed: {exc}"]
        return [PieceModels._run(predictor, [piece])[0] for piece in pieces]


@dataclass
class _Track:
    audio_path: str
    num_samples: int
    duration_s: float
    expected: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, list[tuple[int, np.ndarray]]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    received: dict[str, int] = field(default_factory=dict)


class TrackAssembler:
    """Piece outputs, in any order and batch → the rows of :class:`~autotag.infer.batch.BatchPredictor`
    for each track whose pieces have all come.

    Parameters
    ----------
    predictors
        Model name → its :class:`TrackPredictor` (on the CPU: only ``finish`` is used).
    """

    def __init__(self, predictors: dict[str, TrackPredictor]):
        self.predictors = predictors
        self.tracks: dict[str, _Track] = {}

    @property
    def pending(self) -> int:
        """Tracks with pieces still to come."""
        return len(self.tracks)

    def add(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
        """Take a batch of :class:`PieceModels` rows; the rows of the tracks it completed, or None."""
        complete = []
        for i, track_id in enumerate(batch["track_id"]):
            track = self.tracks.setdefault(str(track_id), _Track(str(batch["audio_path"][i]),
                                                                 int(batch["num_samples"][i]),
                                                                 float(batch["duration_s"][i])))
            name, status = str(batch["model"][i]), str(batch["status"][i])
            if not name:  # the file could not be decoded: an error for every model
                track.errors = {model: str(batch["error"][i]) for model in self.predictors}
                track.expected = dict.fromkeys(self.predictors, 0)
            else:
                track.expected[name] = int(batch["pieces"][i])
                track.received[name] = track.received.get(name, 0) + 1
                if status != "ok":
                    track.errors.setdefault(name, str(batch["error"][i]))
                else:
                    output = np.frombuffer(batch["out"][i], dtype=np.float32).reshape(batch["shape"][i])
                    track.outputs.setdefault(name, []).append((int(batch["first"][i]), output))
            if self._complete(track):
                complete.append((str(track_id), self.tracks.pop(str(track_id))))
        return self._rows(complete) if complete else None

    def _complete(self, track: _Track) -> bool:
        return all(name in track.expected and track.received.get(name, 0) >= track.expected[name]
                   for name in self.predictors)

    def _rows(self, complete: list[tuple[str, _Track]]) -> dict[str, np.ndarray]:
        n = len(complete)
        columns = {name: ModelColumns(predictor, n) for name, predictor in self.predictors.items()}
        for i, (_, track) in enumerate(complete):
            for name, model in columns.items():
                if name in track.errors:
                    model.fail(i, track.errors[name])
                    continue
                outputs = track.outputs[name]
                if not model.predictor.task.frame_level:  # track-level outputs are (P, 1, C)
                    outputs = [(first, out[:, 0, :]) for first, out in outputs]
                model.record(i, lambda p=model.predictor, o=outputs, t=track: p.finish(t.num_samples, o))
        out = {"track_id": np.asarray([t for t, _ in complete], dtype=object),
               "audio_path": np.asarray([track.audio_path for _, track in complete], dtype=object),
               "duration_s": np.asarray([track.duration_s for _, track in complete], dtype=np.float64)}
        for name, model in columns.items():
            out.update({f"{name}.{key}": value for key, value in model.arrays().items()})
        return out
