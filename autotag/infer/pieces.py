"""A decoded track cut into the pieces one forward pass takes, and put back together after.

A *piece* is a run of consecutive patches (track-level models) or windows (frame-level
models) of one track: the span of the waveform they cover and their starts in it. A piece
holds at most ``per_piece`` patches or windows, so a 1-hour file becomes many pieces of
bounded size instead of one giant block, and the pieces of a track may be run in different
batches, by different actors, in any order: :class:`PieceCutter` numbers them and
:meth:`autotag.infer.predictor.TrackPredictor.finish` puts their outputs back in order.

The fused pipeline (:mod:`autotag.infer.batch`) cuts and runs the pieces of a track in one
actor; the split pipeline (:mod:`autotag.infer.split`) cuts them in CPU tasks and runs them
in model actors. Both cut with the same :class:`PieceCutter`, so both run the same forward
passes on the same samples.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from autotag.data.patches import patch_starts
from autotag.infer.frames import padded_track, window_count


@dataclass(frozen=True)
class Piece:
    """Patches or windows ``first … first + len(starts) - 1`` of a track: ``wave[s : s + length]``
    for each ``s`` of ``starts``."""

    first: int
    wave: np.ndarray
    starts: np.ndarray


@dataclass(frozen=True)
class PieceCutter:
    """How one model cuts a track: ``length``-sample patches (or windows) every ``hop`` samples,
    ``per_piece`` of them per piece. Plain numbers, so CPU tasks cut without loading the model.

    ``frame_level`` models pad the track to the end of its last window (their frame outputs are
    stitched, :mod:`autotag.infer.frames`); track-level models pad only a track shorter than one patch.
    """

    frame_level: bool
    length: int
    hop: int
    per_piece: int
    track_context_min: int | None = None
    """Set for frame-level models whose frames all depend on the whole input (crema): a track no
    longer than one window is then one unpadded piece of its own length (zero-padded only up to
    this many samples), so that its outputs equal the original's instead of a padded window's."""

    def whole(self, num_samples: int) -> bool:
        """Whether a track of ``num_samples`` samples is one piece of its own length."""
        return self.frame_level and self.track_context_min is not None and num_samples <= self.length

    def starts(self, num_samples: int) -> np.ndarray:
        """Start of every patch or window of a track of ``num_samples`` samples."""
        if self.frame_level:
            return np.arange(window_count(num_samples, self.length, self.hop), dtype=np.int64) * self.hop
        return patch_starts(max(num_samples, self.length), self.length, self.hop)

    def count(self, num_samples: int) -> int:
        """Pieces of a track of ``num_samples`` samples."""
        return -(-len(self.starts(num_samples)) // self.per_piece)

    def pieces(self, samples: np.ndarray) -> Iterator[Piece]:
        """The track's pieces in order; their waves are views of one padded copy at most."""
        if self.whole(len(samples)):
            wave = np.pad(samples, (0, max(0, self.track_context_min - len(samples))))
            yield Piece(0, np.ascontiguousarray(wave, dtype=np.float32), np.zeros(1, dtype=np.int64))
            return
        starts = self.starts(len(samples))
        if self.frame_level:
            samples = padded_track(samples, self.length, self.hop)
        elif len(samples) < self.length:
            samples = np.pad(samples, (0, self.length - len(samples)))
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        for first in range(0, len(starts), self.per_piece):
            chunk = starts[first : first + self.per_piece]
            yield Piece(first, samples[chunk[0] : chunk[-1] + self.length], (chunk - chunk[0]).astype(np.int64))
