"""What a synthetic dataset generator is asked to make."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate.

    Parameters
    ----------
    kind
        Which dataset (a key of :data:`GENERATORS`).
    tracks_per_class
        Tracks rendered per class for ``genre``. The multi-label and time-based kinds
        (``tags``, ``chords``, ``instruments``), whose tracks carry several labels each,
        render :func:`track_count` = ``tracks_per_class * 10`` tracks: as many as the
        10-class genre set, so one size setting fits every kind.
    duration_s
        Length of each track.
    seed
        Master seed; the same spec always gives byte-identical files.
    sample_rates, channels, formats
        Drawn per file, to exercise decoding and resampling.
    corrupt_tracks
        Extra manifest rows that point at a missing file and at a non-audio file, to show
        error handling end to end (0 disables).
    """

    kind: str = "genre"
    tracks_per_class: int = 40
    duration_s: float = 10.0
    seed: int = 0
    sample_rates: tuple[int, ...] = (16_000, 22_050, 44_100, 48_000)
    channels: tuple[int, ...] = (1, 2)
    formats: tuple[str, ...] = ("wav", "flac")
    corrupt_tracks: int = 2


def track_count(spec: SyntheticSpec) -> int:
    """Number of tracks of a multi-label or time-based synthetic dataset (see :class:`SyntheticSpec`)."""
    return spec.tracks_per_class * 10


def split_for_index(index: int) -> str:
    """Deterministic 60/20/20 split by index within a class: 0 → test, 1 → valid (mod 5)."""
    return {0: "test", 1: "valid"}.get(index % 5, "train")
