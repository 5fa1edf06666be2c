"""Predict one decoded track with one checkpoint: cut patches or windows, run, aggregate.

:class:`TrackPredictor` loads the checkpoint once, in its constructor; the infer actors
(:class:`autotag.infer.batch.BatchPredictor`) hold one per model, decode each track once
and hand every predictor the same waveform.

Track-level models (genre, tags) give one score per label: the ``mean`` (default) or
``max`` of the patch probabilities; patches are cut and run in batches, so memory stays
bounded whatever the track length. Frame-level models (chords, instruments) run over
overlapping windows stitched into one frame sequence (:mod:`autotag.infer.frames`), then
decode it into segments (:mod:`autotag.infer.segments`): Viterbi-smoothed chords, or
thresholded instrument activity. On request each track also gets its embedding (mean of
the penultimate layer over patches or frames) and its activations (patch or frame
probabilities with their times, for tag-o-grams).
"""

from __future__ import annotations

import typing
from typing import Any

import numpy as np
import torch

from autotag.config import Aggregate, ChordVocabulary
from autotag.data.audio import DecodedAudio, decode_audio
from autotag.data.chords import CHORD_LABELS, NO_CHORD_INDEX, majmin_projection
from autotag.data.shards import decode_shard_audio
from autotag.data.tasks import Task
from autotag.infer.frames import FrameStitcher, track_frame_times, window_hop
from autotag.infer.pieces import PieceCutter
from autotag.infer.segments import activity_segments, add_inversions, chord_segments
from autotag.models import checkpoint
from autotag.storage import location

AGGREGATES = typing.get_args(Aggregate)
CHORD_VOCABULARIES = typing.get_args(ChordVocabulary)


def output_labels(task: Task, chord_vocabulary: str = "full") -> list[str]:
    """The labels a run writes: the model's vocabulary, or the 25 majmin classes for a chord model
    (``frame_multiclass``) under ``chord_vocabulary="majmin"``."""
    if chord_vocabulary not in CHORD_VOCABULARIES:
        raise ValueError(f"chord_vocabulary {chord_vocabulary!r} not in {CHORD_VOCABULARIES}")
    if chord_vocabulary == "majmin" and task.kind == "frame_multiclass":
        return list(CHORD_LABELS)
    return list(task.vocabulary)


FILE = "file"
"""The ``codec`` of a track read from its audio file, not from a shard member."""


def load_audio(path: str | None, data: bytes | None, name: str, max_duration_s: float | None,
               codec: str | None = FILE) -> DecodedAudio:
    """Decode a track: a shard sample's audio member ``data`` (``codec`` flac or pcm16, None when
    the sample has none: :func:`autotag.data.shards.decode_shard_audio`), else the local file or
    URI ``path`` (``decode_audio`` streams it in blocks)."""
    if codec != FILE:
        return decode_shard_audio(codec, data, name, max_duration_s)
    return decode_audio(str(path), max_duration_s=max_duration_s)


def reduce_chord_posteriors(probs: np.ndarray, projection: np.ndarray) -> np.ndarray:
    """``(T, K)`` posteriors → ``(T, 25)``: summed per reduced class and renormalised; a frame whose
    whole mass lies on chords without a majmin reading becomes ``N``."""
    reduced = probs @ projection
    total = reduced.sum(axis=1, keepdims=True)
    empty = total[:, 0] <= 0
    reduced = reduced / np.where(total > 0, total, 1.0)
    reduced[empty, NO_CHORD_INDEX] = 1.0
    return reduced


class TrackPredictor:
    """Checkpoint → track-level scores or segments for batches of tracks.

    Parameters
    ----------
    checkpoint_dir
        A checkpoint written by ``pipelines.train`` (``meta.json`` + ``model.safetensors``).
    patch_batch_size
        Patches (or windows) per forward pass; bounds memory whatever the track length.
    aggregate
        ``mean`` (default, feeds ``score``) or ``max`` of patch probabilities.
    max_duration_s
        Longer files become error rows.
    device
        ``cuda`` when the actor was given a GPU, else ``cpu``.
    num_threads
        Torch CPU threads of this actor.
    chord_switch_penalty
        Viterbi cost of a chord change (log-probability units; 0 = frame-wise argmax). A checkpoint
        whose ``meta.json`` states ``decoding.chord_switch_penalty`` (the converted crema) uses its own.
    chord_vocabulary
        ``full``: chord labels from the model's vocabulary; ``majmin``: frame posteriors summed into
        the 25 classes (:func:`autotag.data.chords.majmin_projection`) before decoding.
    chord_inversions
        With ``full`` and a model that has a bass head (crema), append the inversions crema's own
        ``predict`` adds (:func:`autotag.infer.segments.add_inversions`).
    smooth_frames
        Median-filter width (frames) for instrument activity.
    embeddings, activations
        Also return each track's embedding / its patch or frame probabilities.
    patch_activations
        Return the patch probabilities of a track-level model (genre, tags) even without
        ``activations``: evaluation's patch-level scores and tag-o-gram read them.
    """

    def __init__(self, checkpoint_dir: str, patch_batch_size: int = 64, aggregate: str = "mean",
                 max_duration_s: float | None = 3600.0, device: str | None = None, num_threads: int | None = None,
                 chord_switch_penalty: float = 5.0, smooth_frames: int = 1, embeddings: bool = False,
                 activations: bool = False, patch_activations: bool = False, chord_vocabulary: str = "full",
                 chord_inversions: bool = True):
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate {aggregate!r} not in {AGGREGATES}")
        if num_threads:
            torch.set_num_threads(num_threads)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model, self.task, self.meta = checkpoint.load(checkpoint_dir, self.device)
        # Channels-last 2-D convolution weights (the chord model's Conv2d stack; the LMS front-end's
        # Conv2d) make the CPU kernels several times faster on these tall, thin feature maps.
        self.model = self.model.to(memory_format=torch.channels_last)
        self.checkpoint = str(location(checkpoint_dir))
        self.patch_batch_size = patch_batch_size
        self.aggregate = aggregate
        self.max_duration_s = max_duration_s
        self.chord_switch_penalty = float(self.meta.get("decoding", {}).get("chord_switch_penalty",
                                                                            chord_switch_penalty))
        self.labels = output_labels(self.task, chord_vocabulary)
        self.chord_projection = (majmin_projection(self.task.vocabulary)
                                 if self.labels != list(self.task.vocabulary) else None)
        self.inversions = (chord_inversions and self.chord_projection is None
                           and hasattr(self.model.backend, "structure_from_embedding"))
        self.smooth_frames = smooth_frames
        self.want_embeddings = embeddings
        self.want_activations = activations or (patch_activations and not self.task.frame_level)
        frontend = self.model.frontend
        self.sample_rate = frontend.sample_rate
        self.patch_samples, self.hop_samples = frontend.patch_samples, frontend.patch_hop_samples

    # ------------------------------------------------------------------ pieces: cut, run, finish

    @property
    def cutter(self) -> PieceCutter:
        """How this model cuts a track into pieces (:mod:`autotag.infer.pieces`): patches of the
        training length and hop, ``patch_batch_size`` per forward pass; or windows of the patch
        length every :func:`window_hop`, at most as many samples per pass as ``patch_batch_size``
        3-s patches, so that long windows (the chord model's 24 s) keep activations, and memory, bounded."""
        if not self.task.frame_level:
            return PieceCutter(False, self.patch_samples, self.hop_samples, self.patch_batch_size)
        frontend = self.model.frontend
        windows = max(1, min(self.patch_batch_size, self.patch_batch_size * 65_536 // self.patch_samples))
        return PieceCutter(True, self.patch_samples, window_hop(self.patch_samples, frontend.output_hop_samples),
                           windows, self.model.min_samples if frontend.track_context else None)

    @torch.no_grad()
    def run_pieces(self, pieces: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        """Outputs of pieces ``(wave, starts)`` in one forward pass: per piece ``(P, K)``
        probabilities of its patches (track-level) or ``(B, T_w, K)`` of its windows (frame-level),
        with the embedding's ``D`` columns appended when embeddings are asked for."""
        if self.task.frame_level:
            windows = [np.stack([wave[s : s + self.patch_samples] for s in starts]) for wave, starts in pieces]
            if len({w.shape[1] for w in windows}) > 1:  # whole short tracks (track context) of their own lengths
                return [self._run_windows(w) for w in windows]
            out = self._run_windows(np.concatenate(windows) if len(windows) > 1 else windows[0])
        else:
            inputs = [self.model.patch_inputs(torch.from_numpy(wave).to(self.device), starts.tolist(),
                                              self.patch_samples) for wave, starts in pieces]
            embedding = self.model.embed_inputs(torch.cat(inputs) if len(inputs) > 1 else inputs[0])
            out = self.model.head.probabilities(self.model.head(embedding).float()).cpu().numpy()
            if self.want_embeddings:
                out = np.concatenate([out, embedding.float().cpu().numpy()], axis=-1)
        sizes = np.cumsum([len(starts) for _, starts in pieces])[:-1]
        return np.split(out, sizes) if len(pieces) > 1 else [out]

    def finish(self, num_samples: int, outputs: list[tuple[int, np.ndarray]]) -> dict[str, Any]:
        """Everything this predictor outputs for a track of ``num_samples`` samples from the outputs
        of its pieces, ``(first patch or window, run_pieces output)``, in any order."""
        outputs = sorted(outputs, key=lambda item: item[0])
        k = self.task.num_outputs
        duration_s = num_samples / self.sample_rate
        if self.task.frame_level:
            times, probs, extra = self._frames(num_samples, outputs)
            segments = self.segments_from(times, probs, duration_s, extra)
            if self.chord_projection is not None:  # scores and activations in the vocabulary the run writes
                probs = reduce_chord_posteriors(probs, self.chord_projection)
            result: dict[str, Any] = {"segments": segments, "scores": probs.mean(0)}
            embeds = extra if self.want_embeddings else None
        else:
            patches = np.concatenate([out for _, out in outputs])
            probs, embeds = patches[:, :k], (patches[:, k:] if self.want_embeddings else None)
            times = (self.cutter.starts(num_samples) + self.patch_samples / 2) / self.sample_rate  # patch centres
            result = {"scores": probs.mean(0) if self.aggregate == "mean" else probs.max(0)}
        if embeds is not None:
            result["embedding"] = embeds.mean(0)
        if self.want_activations:
            result["activations"] = {"time_s": np.round(times, 4).tolist(), "scores": np.round(probs, 4).tolist()}
        return result

    def _frames(self, num_samples: int, outputs: list[tuple[int, np.ndarray]]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Frame times, probabilities and the extra (embedding) columns, or None, of a frame-level
        model over a whole track, from its pieces' outputs in order."""
        frontend = self.model.frontend
        if self.cutter.whole(num_samples):  # one unpadded pass: frames of its own length
            frames = outputs[0][1][0]
            times = frontend.frame_times(len(frames))
        else:
            stitcher = FrameStitcher(num_samples, self.patch_samples, frontend.output_hop_samples,
                                     frontend.output_offset_samples, self.cutter.hop)
            for first, out in outputs:
                stitcher.add(first, out)
            frames = stitcher.frames()
            times = track_frame_times(num_samples, frontend.output_hop_samples, frontend.output_offset_samples,
                                      self.sample_rate)
        k = self.task.num_outputs
        return times, frames[:, :k], (frames[:, k:] if frames.shape[1] > k else None)

    def _piece_outputs(self, samples: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """``(first patch or window, run_pieces output)`` of each piece of a track, run one after the other."""
        return [(piece.first, self.run_pieces([(piece.wave, piece.starts)])[0])
                for piece in self.cutter.pieces(samples)]

    def predict(self, samples: np.ndarray) -> dict[str, Any]:
        """Everything this predictor outputs for one decoded track: its pieces run one after the other."""
        return self.finish(len(samples), self._piece_outputs(samples))

    # ------------------------------------------------------------------ parts, for tests and evaluation

    def patch_probabilities(self, samples: np.ndarray) -> np.ndarray:
        """``(n,)`` waveform → ``(num_patches, num_labels)`` probabilities (track-level models)."""
        return np.concatenate([out for _, out in self._piece_outputs(samples)])[:, : self.task.num_outputs]

    def predict_track(self, samples: np.ndarray) -> np.ndarray:
        """Track-level scores ``(num_labels,)`` (track-level models)."""
        return self.predict(samples)["scores"]

    @torch.no_grad()
    def _run_windows(self, windows: np.ndarray) -> np.ndarray:
        embedding = self.model.embed(torch.from_numpy(windows).to(self.device))
        probs = self.model.head.probabilities(self.model.head(embedding).float()).cpu().numpy()
        if self.want_embeddings or self.inversions:  # carry the embedding through the stitching as extra columns
            return np.concatenate([probs, embedding.float().cpu().numpy()], axis=-1)
        return probs

    def frame_probabilities(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Frame times (s) and probabilities ``(T, num_labels)`` over the whole track (frame-level models)."""
        return self._frame_outputs(samples)[:2]

    def _frame_outputs(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Frame times, probabilities and the extra (embedding) columns, or None, over the whole track."""
        return self._frames(len(samples), self._piece_outputs(samples))

    def segments_from(self, times: np.ndarray, probs: np.ndarray, duration_s: float,
                      embeddings: np.ndarray | None = None) -> list[dict]:
        """Chord or instrument segments ``{start_s, end_s, label, confidence}``; ``embeddings``: the
        frame embeddings, from which a crema model's inversions are read."""
        if self.task.kind == "frame_multiclass":
            if self.chord_projection is not None:
                probs = reduce_chord_posteriors(probs, self.chord_projection)
            segments = chord_segments(probs, times, duration_s, self.labels, self.chord_switch_penalty)
            if self.inversions and embeddings is not None:
                with torch.no_grad():
                    parts = self.model.backend.structure_from_embedding(torch.from_numpy(embeddings).to(self.device))
                segments = add_inversions(segments, parts["chord_bass"].float().cpu().numpy(), times)
            return segments
        return activity_segments(probs, times, duration_s, self.labels, self.task.threshold, self.smooth_frames)

    def predict_segments(self, samples: np.ndarray) -> list[dict]:
        times, probs, embeds = self._frame_outputs(samples)
        return self.segments_from(times, probs, len(samples) / self.sample_rate, embeds)

    def describe(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "model": self.meta["model"], "task": self.task.to_dict()}
