"""Synthetic multi-label tag dataset: mixtures of 2-4 sound sources plus tempo and loudness tags.

Vocabulary (:data:`TAGS`, 10 tags, sorted)::

    bass  drums  fast  loud  pad  piano  quiet  slow  strings  vocal

- source tags: each track mixes 2 to 4 of the six sources of
  :mod:`autotag.data.synthetic.sources` (drawn uniformly, at random relative gains of
  -6 to 0 dB); each present source is a tag;
- ``slow`` / ``fast``: a third of the tracks is at 60-80 BPM (``slow``), a third at
  150-180 BPM (``fast``), a third at 96-120 BPM (neither tag) -- note and drum rates follow;
- ``quiet`` / ``loud``: a third of the tracks peaks at -32 to -26 dBFS (``quiet``), a third at
  -2 to -0.5 dBFS after soft saturation (``loud``), a third at -18 to -12 dBFS (neither).

So a track has 2 to 6 tags, and like MagnaTagATune some tags exclude each other. The
dataset has :func:`~autotag.data.synthetic.spec.track_count` tracks (as many as the
10-class genre set of the same spec), split 60/20/20 by :func:`~autotag.data.synthetic.spec.split_for_index`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from autotag.data.synthetic.primitives import finish_mix
from autotag.data.synthetic.sources import SOURCES, random_groove, render_source
from autotag.data.synthetic.spec import SyntheticSpec, split_for_index, track_count
from autotag.data.synthetic.writer import write_track

TAGS = tuple(sorted((*SOURCES, "fast", "slow", "loud", "quiet")))
"""The tag vocabulary, sorted (the class order)."""

_TEMPI = {"slow": (60.0, 80.0), None: (96.0, 120.0), "fast": (150.0, 180.0)}
_LEVELS = {"quiet": (-32.0, -26.0), None: (-18.0, -12.0), "loud": (-2.0, -0.5)}


def draw_tags(rng: np.random.Generator) -> tuple[list[str], str | None, str | None]:
    """The sources, tempo tag and loudness tag of one track."""
    count = int(rng.integers(2, 5))
    sources = sorted(str(s) for s in rng.choice(SOURCES, size=count, replace=False))
    tempo = [None, "slow", "fast"][int(rng.integers(3))]
    level = [None, "quiet", "loud"][int(rng.integers(3))]
    return sources, tempo, level


def render_tag_track(sources: list[str], tempo: str | None, level: str | None, duration_s: float, sr: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Mix ``sources`` at the tempo and level of the tags."""
    n = int(duration_s * sr)
    groove = random_groove(rng, _TEMPI[tempo])
    mix = np.zeros(n)
    for name in sources:
        mix += render_source(name, n, sr, groove, rng) * 10 ** (rng.uniform(-6.0, 0.0) / 20)
    if level == "loud":  # compressed, dense: saturate before normalising
        mix = np.tanh(3.0 * mix / max(np.abs(mix).max(), 1e-9))
    return finish_mix(mix, rng, snr_db=(20, 35), gain_db=_LEVELS[level])


def generate_tags(out_dir: Path, spec: SyntheticSpec) -> list[dict]:
    """Render the tag dataset under ``out_dir/audio/tags``; return its manifest rows."""
    rows = []
    for i in range(track_count(spec)):
        rng = np.random.default_rng([spec.seed, 101, i])
        sources, tempo, level = draw_tags(rng)
        track_id = f"tags-{i:05d}"
        path = write_track(out_dir / "audio" / "tags" / track_id, spec, rng,
                           lambda sr: render_tag_track(sources, tempo, level, spec.duration_s, sr, rng))
        tags = sorted([*sources, *(t for t in (tempo, level) if t)])
        rows.append({"track_id": track_id, "audio_path": str(path.resolve()), "duration_s": spec.duration_s,
                     "split": split_for_index(i), "tags": tags})
    return rows
