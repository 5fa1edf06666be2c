"""Decode each track of a batch once and run every model on it: the callable of the infer actor pool.

:class:`BatchPredictor` is what Ray Data maps over batches of rows that name a track
(``track_id``) and its audio (``audio_path`` — a local path or a pyarrow-filesystem URI —
or a member read from WebDataset shards, FLAC or pcm16: :func:`track_sources`). It holds one :class:`TrackPredictor` per
named checkpoint, loaded once in the constructor, so genre, tags and chords of a catalogue
come from a single decode of each file. With ``decode_threads`` > 1 the next tracks of the batch
decode in threads (libsndfile and soxr release the GIL) while the models run on the current
one, at most ``decode_threads`` tracks ahead, so memory stays bounded with hour-long files:
this keeps a GPU actor's models fed from several CPUs. It never raises for a bad file: a file that cannot
be decoded gives every model an error row with the reason; a model that fails on one track
gives only that model an error row.

Output columns: ``track_id``, ``audio_path``, ``duration_s`` for the track, then per model
``<name>.status``, ``<name>.error``, ``<name>.scores``, ``<name>.segments``,
``<name>.activations`` (and ``<name>.embedding`` when asked). :func:`model_batch` cuts out one
model's columns under the plain names :func:`autotag.infer.rows.output_tables` reads.
"""

from __future__ import annotations

import functools
import json
import re
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from autotag.data.audio import AudioDecodeError, DecodedAudio
from autotag.infer.predictor import FILE, TrackPredictor, load_audio
from autotag.memory import reuse_freed_memory

MODEL_NAME = re.compile(r"^[A-Za-z0-9_]+$")
PER_MODEL = ("status", "error", "scores", "segments", "activations", "embedding")


def check_model_names(names) -> None:
    bad = [name for name in names if not MODEL_NAME.match(str(name))]
    if bad:
        raise ValueError(f"infer.models: model name(s) {bad} must be letters, digits or '_' "
                         "(each names its run folder, <run_id>-<name>)")


class BatchPredictor:
    """Named checkpoints → per-model scores or segments for batches of tracks, one decode each.

    Parameters
    ----------
    checkpoints
        Model name → checkpoint directory (written by ``pipelines.train``).
    max_duration_s
        Longer files become error rows.
    decode_threads
        Tracks decoded ahead, in threads, while the models run (1: one after the other).
    **options
        Passed to every :class:`TrackPredictor` (``patch_batch_size``, ``aggregate``,
        ``device``, ``num_threads``, ``chord_switch_penalty``, ``smooth_frames``,
        ``embeddings``, ``activations``).
    """

    def __init__(self, checkpoints: dict[str, str], max_duration_s: float | None = 3600.0, decode_threads: int = 1,
                 **options: Any):
        if not checkpoints:
            raise ValueError("BatchPredictor needs at least one checkpoint")
        if decode_threads < 1:
            raise ValueError(f"decode_threads must be at least 1, got {decode_threads}")
        check_model_names(checkpoints)
        reuse_freed_memory()  # each track's buffers reuse the last one's pages (autotag.memory)
        self.max_duration_s = max_duration_s
        self.decoder = ThreadPoolExecutor(decode_threads, thread_name_prefix="decode") if decode_threads > 1 else None
        self.decode_ahead = decode_threads
        self.predictors = {name: TrackPredictor(str(path), max_duration_s=max_duration_s, **options)
                           for name, path in checkpoints.items()}

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ids = track_ids(batch)
        n = len(ids)
        sources = track_sources(batch, ids)
        duration = np.full(n, np.nan)
        columns = {name: ModelColumns(predictor, n) for name, predictor in self.predictors.items()}
        for i, decoded in enumerate(self._decoded(sources)):
            try:
                audio = decoded()
            except AudioDecodeError as exc:
                for model in columns.values():
                    model.fail(i, exc.reason)
                continue
            duration[i] = audio.duration_s
            for model in columns.values():
                model.predict(i, audio.samples)
        out = {"track_id": np.asarray(ids, dtype=object),
               "audio_path": np.asarray([str(source[0]) if source[0] is not None else "" for source in sources],
                                        dtype=object),
               "duration_s": duration}
        for name, model in columns.items():
            out.update({f"{name}.{key}": value for key, value in model.arrays().items()})
        return out

    def _decoded(self, sources: list[tuple]) -> Iterator[Callable[[], DecodedAudio]]:
        """Per track, in order, a call that returns its decoded audio (or raises its decode
        error): with threads, the result of a decode started up to ``decode_ahead`` tracks
        earlier; without, a decode run there and then."""
        if self.decoder is None:
            for path, data, name, codec in sources:
                yield functools.partial(load_audio, path, data, name, self.max_duration_s, codec)
            return
        pending: deque[Future] = deque()
        for path, data, name, codec in sources:
            pending.append(self.decoder.submit(load_audio, path, data, name, self.max_duration_s, codec))
            if len(pending) > self.decode_ahead:  # the models run on one while decode_ahead decode
                yield pending.popleft().result
        while pending:
            yield pending.popleft().result



def track_ids(batch: dict[str, np.ndarray]) -> list[str]:
    """The ``track_id`` of each row of a batch of tracks (or WebDataset shard rows)."""
    if "track_id" in batch:
        return [str(t) for t in batch["track_id"]]
    return [meta["track_id"] for meta in batch["json"]]


def track_sources(batch: dict[str, np.ndarray], ids: list[str]) -> list[tuple[Any, Any, str, str | None]]:
    """Each row's ``(audio_path, bytes, name, codec)`` for :func:`autotag.infer.predictor.load_audio`:
    rows read from shards carry their member's bytes and codec (``shard_audio``, ``shard_codec``),
    the others the path or URI of their file. Errors name the file (a shard row's source), else the track."""
    n = len(ids)
    paths = batch.get("audio_path", np.asarray([None] * n, dtype=object))
    if "shard_codec" in batch:
        return [(paths[i], batch["shard_audio"][i], str(paths[i] or ids[i]), batch["shard_codec"][i])
                for i in range(n)]
    return [(paths[i], None, str(paths[i] or ids[i]), FILE) for i in range(n)]


class ModelColumns:
    """One model's output columns for a batch of ``n`` tracks, filled track by track."""

    def __init__(self, predictor: TrackPredictor, n: int):
        self.predictor = predictor
        self.status, self.error = ["ok"] * n, [""] * n
        self.scores = np.zeros((n, len(predictor.labels)), dtype=np.float32)  # majmin runs: 25
        self.segments, self.activations = [""] * n, [""] * n
        self.embeddings: list[np.ndarray | None] = [None] * n

    def fail(self, i: int, reason: str) -> None:
        self.status[i], self.error[i] = "error", reason

    def predict(self, i: int, samples: np.ndarray) -> None:
        self.record(i, lambda: self.predictor.predict(samples))

    def record(self, i: int, compute: Callable[[], dict[str, Any]]) -> None:
        """Track ``i``'s outputs from ``compute`` (its prediction), or its error row if that fails."""
        try:
            result = compute()
        except (RuntimeError, ValueError) as exc:  # a model failure on one track must not stop the run
            self.fail(i, f"inference failed: {exc}")
            return
        self.scores[i] = result["scores"]
        self.segments[i] = json.dumps(result.get("segments", []))
        self.activations[i] = json.dumps(result["activations"]) if "activations" in result else ""
        self.embeddings[i] = result.get("embedding")

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"status": np.asarray(self.status, dtype=object), "error": np.asarray(self.error, dtype=object),
               "scores": self.scores, "segments": np.asarray(self.segments, dtype=object),
               "activations": np.asarray(self.activations, dtype=object)}
        if self.predictor.want_embeddings:
            dim = next((e.shape[0] for e in self.embeddings if e is not None),
                       self.predictor.model.backend.embedding_dim)
            out["embedding"] = np.stack([e if e is not None else np.zeros(dim, np.float32) for e in self.embeddings])
        return out


def model_batch(batch: dict[str, np.ndarray], name: str, skip: set[str] | frozenset[str] = frozenset()
                ) -> dict[str, np.ndarray]:
    """One model's rows of a :class:`BatchPredictor` output under plain column names, without
    the tracks in ``skip`` (already written for this model by an earlier attempt)."""
    keep = np.asarray([str(t) not in skip for t in batch["track_id"]], dtype=bool)
    columns = {key: batch[key] for key in ("track_id", "audio_path", "duration_s")}
    columns.update({key: batch[f"{name}.{key}"] for key in PER_MODEL if f"{name}.{key}" in batch})
    return {key: np.asarray(value)[keep] for key, value in columns.items()}


class RowBuffer:
    """Batches of output rows (same columns) gathered until they are written ``n`` rows at a time."""

    def __init__(self):
        self.parts: list[dict[str, np.ndarray]] = []
        self.rows = 0

    def __len__(self) -> int:
        return self.rows

    def add(self, batch: dict[str, np.ndarray]) -> None:
        if len(batch["track_id"]):
            self.parts.append(batch)
            self.rows += len(batch["track_id"])

    def take(self, n: int) -> dict[str, np.ndarray]:
        """The first ``n`` rows gathered (all of them if fewer), removed from the buffer."""
        whole = {key: np.concatenate([np.asarray(part[key]) for part in self.parts]) for key in self.parts[0]}
        taken = {key: value[:n] for key, value in whole.items()}
        rest = {key: value[n:] for key, value in whole.items()}
        self.parts = [rest] if len(rest["track_id"]) else []
        self.rows = len(rest["track_id"])
        return taken
