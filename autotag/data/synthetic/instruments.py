"""Synthetic instrument-activity dataset: sources entering and leaving over time.

Vocabulary (:data:`INSTRUMENTS`, 6 labels, sorted): ``bass drums pad piano strings vocal``
-- the sources of :mod:`autotag.data.synthetic.sources`.

Each track uses 3 to 5 of the six instruments at one tempo and key. Each instrument
alternates between playing (1.5 to 5 s) and resting (1 to 4 s), starting in either state,
with boundaries on a 0.1 s grid; it plays at least once. Its audio is its source rendered
inside each playing segment only (restarting on the beat, 5 ms fades inside the
segment), so nothing of an instrument sounds outside its labels. Labels are the manifest's
``instruments`` segments ``{start_s, end_s, label}``, one per playing stretch, sorted by
start time; several instruments overlap. The dataset has
:func:`~autotag.data.synthetic.spec.track_count` tracks, split 60/20/20 by
:func:`~autotag.data.synthetic.spec.split_for_index`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from autotag.data.synthetic.primitives import finish_mix
from autotag.data.synthetic.sources import SOURCES, random_groove, render_source
from autotag.data.synthetic.spec import SyntheticSpec, split_for_index, track_count
from autotag.data.synthetic.writer import write_track

INSTRUMENTS = SOURCES
"""The instrument vocabulary, sorted (the class order)."""

TICK_S = 0.1
_PLAY_TICKS = (15, 50)
_REST_TICKS = (10, 40)


def plan_activity(instrument: str, duration_s: float, rng: np.random.Generator) -> list[dict]:
    """Playing segments of one instrument over ``[0, duration_s]``; at least one."""
    total = math.floor(duration_s / TICK_S + 1e-9)
    playing = bool(rng.integers(2))
    tick, segments = 0, []
    while tick < total:
        low, high = _PLAY_TICKS if playing else _REST_TICKS
        end = min(tick + int(rng.integers(low, high + 1)), total)
        if playing:
            segments.append((tick, end))
        tick, playing = end, not playing
    if not segments:
        segments.append((0, min(_PLAY_TICKS[0], total)))
    return [{"start_s": round(a * TICK_S, 6), "end_s": round(duration_s if b == total else b * TICK_S, 6),
             "label": instrument} for a, b in segments]


def fade(signal: np.ndarray, sr: int, fade_s: float = 0.005) -> np.ndarray:
    """``signal`` with linear fades over its first and last ``fade_s`` (at most half its length each)."""
    ramp = min(max(int(fade_s * sr), 1), len(signal) // 2)
    if ramp:
        signal[:ramp] *= np.linspace(0.0, 1.0, ramp, endpoint=False)
        signal[len(signal) - ramp:] *= np.linspace(1.0, 0.0, ramp)
    return signal


def render_instrument_track(activity: dict[str, list[dict]], duration_s: float, sr: int,
                            rng: np.random.Generator) -> np.ndarray:
    """Mix each instrument's source, rendered only inside its playing segments.

    Segment ``[start_s, end_s)`` spans samples ``round(start_s * sr)`` to ``round(end_s * sr)``;
    the source (re)starts on the beat at each entry.
    """
    n = int(duration_s * sr)
    groove = random_groove(rng, (70.0, 160.0))
    mix = np.zeros(n)
    for name, segments in activity.items():
        level = 10 ** (rng.uniform(-6.0, 0.0) / 20)
        for seg in segments:
            start, end = round(seg["start_s"] * sr), min(round(seg["end_s"] * sr), n)
            if end > start:
                mix[start:end] += level * fade(render_source(name, end - start, sr, groove, rng), sr)
    return finish_mix(mix, rng, snr_db=(25, 40), gain_db=(-12, -1))


def generate_instruments(out_dir: Path, spec: SyntheticSpec) -> list[dict]:
    """Render the instrument dataset under ``out_dir/audio/instruments``; return its manifest rows."""
    rows = []
    for i in range(track_count(spec)):
        rng = np.random.default_rng([spec.seed, 103, i])
        chosen = sorted(str(s) for s in rng.choice(INSTRUMENTS, size=int(rng.integers(3, 6)), replace=False))
        activity = {name: plan_activity(name, spec.duration_s, rng) for name in chosen}
        track_id = f"instruments-{i:05d}"
        path = write_track(out_dir / "audio" / "instruments" / track_id, spec, rng,
                           lambda sr: render_instrument_track(activity, spec.duration_s, sr, rng))
        segments = sorted((s for segs in activity.values() for s in segs), key=lambda s: (s["start_s"], s["label"]))
        rows.append({"track_id": track_id, "audio_path": str(path.resolve()), "duration_s": spec.duration_s,
                     "split": split_for_index(i), "instruments": segments})
    return rows
