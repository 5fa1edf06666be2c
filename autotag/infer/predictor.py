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
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autotag.config import Aggregate
from autotag.data.audio import DecodedAudio, decode_audio
from autotag.infer.frames import FrameStitcher, stitched_frames, track_frame_times, window_hop
from autotag.infer.pieces import PieceCutter
from autotag.infer.segments import activity_segments, chord_segments
from autotag.models import checkpoint

AGGREGATES = typing.get_args(Aggregate)


def load_audio(path: str | None, data: bytes | None, name: str, max_duration_s: float | None) -> DecodedAudio:
    """Decode in-memory bytes, or a local file or URI (``decode_audio`` streams both in blocks)."""
    if data is not None:
        return decode_audio(bytes(data), max_duration_s=max_duration_s, name=name)
    return decode_audio(str(path), max_duration_s=max_duration_s)


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
        Viterbi cost of a chord change (log-probability units; 0 = frame-wise argmax).
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
                 activations: bool = False, patch_activations: bool = False):
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate {aggregate!r} not in {AGGREGATES}")
        if num_threads:
            torch.set_num_threads(num_threads)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model, self.task, self.meta = checkpoint.load(checkpoint_dir, self.device)
        # Channels-last 2-D convolution weights (the chord model's Conv2d stack; the LMS front-end's
        # Conv2d) make the CPU kernels several times faster on these tall, thin feature maps.
        self.model = self.model.to(memory_format=torch.channels_last)
        self.checkpoint = str(Path(checkpoint_dir))
        self.patch_batch_size = patch_batch_size
        self.aggregate = aggregate
        self.max_duration_s = max_duration_s
        self.chord_switch_penalty = chord_switch_penalty
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
                           windows)

    @torch.no_grad()
    def run_pieces(self, pieces: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        """Outputs of pieces ``(wave, starts)`` in one forward pass: per piece ``(P, K)``
        probabilities of its patches (track-level) or ``(B, T_w, K)`` of its windows (frame-level),
        with the embedding's ``D`` columns appended when embeddings are asked for."""
        if self.task.frame_level:
            windows = [np.stack([wave[s : s + self.patch_samples] for s in starts]) for wave, starts in pieces]
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
            frontend = self.model.frontend
            stitcher = FrameStitcher(num_samples, self.patch_samples, frontend.output_hop_samples,
                                     frontend.output_offset_samples, self.cutter.hop)
            for first, out in outputs:
                stitcher.add(first, out)
            frames = stitcher.frames()
            times = track_frame_times(num_samples, frontend.output_hop_samples, frontend.output_offset_samples,
                                      self.sample_rate)
            probs = frames[:, :k]
            result: dict[str, Any] = {"segments": self.segments_from(times, probs, duration_s),
                                      "scores": probs.mean(0)}
            embeds = frames[:, k:] if self.want_embeddings else None
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

    def predict(self, samples: np.ndarray) -> dict[str, Any]:
        """Everything this predictor outputs for one decoded track: its pieces run one after the other."""
        return self.finish(len(samples), [(piece.first, self.run_pieces([(piece.wave, piece.starts)])[0])
                                          for piece in self.cutter.pieces(samples)])

    # ------------------------------------------------------------------ parts, for tests and evaluation

    def patch_probabilities(self, samples: np.ndarray) -> np.ndarray:
        """``(n,)`` waveform → ``(num_patches, num_labels)`` probabilities (track-level models)."""
        outputs = [self.run_pieces([(p.wave, p.starts)])[0] for p in self.cutter.pieces(samples)]
        return np.concatenate(outputs)[:, : self.task.num_outputs]

    def predict_track(self, samples: np.ndarray) -> np.ndarray:
        """Track-level scores ``(num_labels,)`` (track-level models)."""
        return self.predict(samples)["scores"]

    @torch.no_grad()
    def _run_windows(self, windows: np.ndarray) -> np.ndarray:
        embedding = self.model.embed(torch.from_numpy(windows).to(self.device))
        probs = self.model.head.probabilities(self.model.head(embedding).float()).cpu().numpy()
        if self.want_embeddings:  # carry the embedding through the stitching as extra columns
            return np.concatenate([probs, embedding.float().cpu().numpy()], axis=-1)
        return probs

    def frame_probabilities(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Frame times (s) and probabilities ``(T, num_labels)`` over the whole track (frame-level models)."""
        frontend = self.model.frontend
        out = stitched_frames(samples, self._run_windows, self.patch_samples, frontend.output_hop_samples,
                              frontend.output_offset_samples, batch_size=self.cutter.per_piece)
        times = track_frame_times(len(samples), frontend.output_hop_samples, frontend.output_offset_samples,
                                  self.sample_rate)
        return times, out[:, : self.task.num_outputs]

    def segments_from(self, times: np.ndarray, probs: np.ndarray, duration_s: float) -> list[dict]:
        """Chord or instrument segments ``{start_s, end_s, label, confidence}``."""
        labels = self.task.vocabulary
        if self.task.kind == "frame_multiclass":
            return chord_segments(probs, times, duration_s, labels, self.chord_switch_penalty)
        return activity_segments(probs, times, duration_s, labels, self.task.threshold, self.smooth_frames)

    def predict_segments(self, samples: np.ndarray) -> list[dict]:
        times, probs = self.frame_probabilities(samples)
        return self.segments_from(times, probs, len(samples) / self.sample_rate)

    def describe(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "model": self.meta["model"], "task": self.task.to_dict()}
