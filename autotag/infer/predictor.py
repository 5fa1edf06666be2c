"""Predict one track at a time from a checkpoint: decode, cut patches, run, aggregate.

:class:`TrackPredictor` is the callable Ray Data maps over batches of manifest rows
(``track_id``, ``audio_path``); it loads the checkpoint once, in its constructor. It
never raises for a bad file: it returns a row with ``status="error"`` and the reason.

Track-level models (genre, tags) give one score per label: the ``mean`` (default) or
``max`` of the patch probabilities. Frame-level models (chords, instruments) run over
overlapping windows stitched into one frame sequence (:mod:`autotag.infer.frames`), then
decode it into segments (:mod:`autotag.infer.decode`): Viterbi-smoothed chords, or
thresholded instrument activity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import json

import numpy as np
import torch

from autotag.data.audio import AudioDecodeError, decode_audio
from autotag.data.patches import cut_patches
from autotag.infer.decode import activity_segments, chord_segments
from autotag.infer.frames import stitched_frames, track_frame_times
from autotag.train import checkpoint

AGGREGATES = ("mean", "max")


class TrackPredictor:
    """Checkpoint → track-level scores for batches of ``{track_id, audio_path}`` rows.

    Parameters
    ----------
    checkpoint_dir
        A checkpoint written by ``pipelines.train`` (``meta.json`` + ``model.safetensors``).
    patch_batch_size
        Patches per forward pass (bounds memory whatever the track length).
    aggregate
        ``mean`` (default, feeds ``score``) or ``max`` of patch probabilities.
    max_duration_s
        Longer files become error rows.
    device
        ``cuda`` when the actor was given a GPU, else ``cpu``.
    chord_switch_penalty
        Viterbi cost of a chord change (log-probability units; 0 = frame-wise argmax).
    smooth_frames
        Median-filter width (frames) for instrument activity.
    """

    def __init__(self, checkpoint_dir: str, patch_batch_size: int = 64, aggregate: str = "mean",
                 max_duration_s: float | None = 3600.0, device: str | None = None, num_threads: int | None = None,
                 chord_switch_penalty: float = 5.0, smooth_frames: int = 1):
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate {aggregate!r} not in {AGGREGATES}")
        if num_threads:
            torch.set_num_threads(num_threads)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model, self.task, self.meta = checkpoint.load(checkpoint_dir, self.device)
        self.checkpoint = str(Path(checkpoint_dir))
        self.patch_batch_size = patch_batch_size
        self.aggregate = aggregate
        self.max_duration_s = max_duration_s
        self.chord_switch_penalty = chord_switch_penalty
        self.smooth_frames = smooth_frames
        frontend = self.model.frontend
        self.patch_samples, self.hop_samples = frontend.patch_samples, frontend.patch_hop_samples

    @torch.no_grad()
    def patch_probabilities(self, samples: np.ndarray) -> np.ndarray:
        """``(n,)`` waveform → ``(num_patches, num_labels)`` probabilities."""
        patches = cut_patches(samples, self.patch_samples, self.hop_samples)
        out = []
        for start in range(0, len(patches), self.patch_batch_size):
            chunk = torch.from_numpy(patches[start : start + self.patch_batch_size]).to(self.device)
            out.append(self.task.probabilities(self.model(chunk)).cpu().numpy())
        return np.concatenate(out)

    def predict_track(self, samples: np.ndarray) -> np.ndarray:
        """Track-level scores ``(num_labels,)`` (track-level models)."""
        probs = self.patch_probabilities(samples)
        return probs.mean(0) if self.aggregate == "mean" else probs.max(0)

    @torch.no_grad()
    def _run_windows(self, windows: np.ndarray) -> np.ndarray:
        logits = self.model(torch.from_numpy(windows).to(self.device))
        return self.task.probabilities(logits).cpu().numpy()

    def frame_probabilities(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Frame times (s) and probabilities ``(T, num_labels)`` over the whole track."""
        frontend = self.model.frontend
        probs = stitched_frames(samples, self._run_windows, self.patch_samples, frontend.output_hop_samples,
                                frontend.output_offset_samples, batch_size=self.patch_batch_size)
        times = track_frame_times(len(samples), frontend.output_hop_samples, frontend.output_offset_samples,
                                  frontend.sample_rate)
        return times, probs

    def predict_segments(self, samples: np.ndarray) -> list[dict]:
        """Chord or instrument segments ``{start_s, end_s, label, confidence}`` (frame-level models)."""
        times, probs = self.frame_probabilities(samples)
        duration = len(samples) / self.model.frontend.sample_rate
        labels = self.task.vocabulary
        if self.task.kind == "frame_multiclass":
            return chord_segments(probs, times, duration, labels, self.chord_switch_penalty)
        return activity_segments(probs, times, duration, labels, self.task.threshold, self.smooth_frames)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n, k = len(batch["track_id"]), self.task.num_outputs
        scores = np.zeros((n, k), dtype=np.float32)
        segments = [""] * n
        status, error, duration = ["ok"] * n, [""] * n, np.full(n, np.nan)
        for i, path in enumerate(batch["audio_path"]):
            try:
                audio = decode_audio(str(path), max_duration_s=self.max_duration_s)
                if self.task.frame_level:
                    segments[i] = json.dumps(self.predict_segments(audio.samples))
                else:
                    scores[i] = self.predict_track(audio.samples)
                duration[i] = audio.duration_s
            except AudioDecodeError as exc:
                status[i], error[i] = "error", exc.reason
            except (RuntimeError, ValueError) as exc:  # a model failure on one track must not stop the run
                status[i], error[i] = "error", f"inference failed: {exc}"
        return {"track_id": batch["track_id"], "audio_path": batch["audio_path"], "duration_s": duration,
                "status": np.asarray(status, dtype=object), "error": np.asarray(error, dtype=object),
                "scores": scores, "segments": np.asarray(segments, dtype=object)}

    def describe(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "model": self.meta["model"], "task": self.task.to_dict()}
