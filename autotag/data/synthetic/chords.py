"""Synthetic chord dataset: rendered major/minor triads and no-chord segments, with exact segment labels.

Each track is a sequence of segments of 0.5 to 2.5 s whose boundaries lie on a 0.1 s
grid (an integer number of samples at 16, 22.05, 44.1 and 48 kHz), the last one ending at
the track's end. A segment is one of the 24 major/minor chords of
:data:`autotag.data.chords.CHORD_LABELS` (90 %, uniformly, never the previous chord) or
``N`` (10 %). Labels are the manifest's ``chords`` segments ``{start_s, end_s, label}``;
each audio file also gets a ``.lab`` file beside it.

Chord segments are triads in a random inversion (root position, first or second), with
the lowest note between MIDI 48 and 64, sometimes doubled by a bass root an octave or two
below, played sustained, re-struck on every beat, or broken (notes entering 60 ms apart).
The timbre (number and slope of harmonics, odd-only or all, attack, decay) is drawn per
track. ``N`` segments are near-silence, band-pass noise or an unpitched drum loop. Every
note starts at or after its segment's first sample and fades out by its last one, so the
frame labels derived from the segments (:func:`autotag.data.chords.segments_to_frames`)
match the audio exactly; only the white noise of the final mix spans segments.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from autotag.data.chords import CHORD_LABELS, NO_CHORD, PITCH_CLASSES
from autotag.data.synthetic.primitives import finish_mix, midi_to_hz, render_drums
from autotag.data.synthetic.sources import add, envelope, random_groove, render_source, tone
from autotag.data.synthetic.spec import SyntheticSpec, split_for_index, track_count
from autotag.data.synthetic.writer import write_track

TICK_S = 0.1
SEGMENT_TICKS = (5, 25)
NO_CHORD_PROBABILITY = 0.1
_PATTERNS = ("sustain", "restrike", "broken")


def plan_segments(duration_s: float, rng: np.random.Generator) -> list[dict]:
    """Random chord segments covering ``[0, duration_s]`` (see the module docstring)."""
    total = max(math.floor(duration_s / TICK_S + 1e-9), 1)
    bounds = [0]
    while total - bounds[-1] > 0:
        step = int(rng.integers(SEGMENT_TICKS[0], SEGMENT_TICKS[1] + 1))
        bounds.append(min(bounds[-1] + step, total))
    if len(bounds) > 2 and bounds[-1] - bounds[-2] < SEGMENT_TICKS[0]:
        del bounds[-2]  # fold a too-short last piece into the previous segment
    segments, previous = [], None
    for k, (start, end) in enumerate(zip(bounds[:-1], bounds[1:])):
        chords = [c for c in CHORD_LABELS[:-1] if c != previous]
        label = NO_CHORD if previous != NO_CHORD and rng.uniform() < NO_CHORD_PROBABILITY else str(rng.choice(chords))
        end_s = duration_s if k == len(bounds) - 2 else end * TICK_S
        segments.append({"start_s": round(start * TICK_S, 6), "end_s": round(end_s, 6), "label": label})
        previous = label
    return segments


def triad_midi(label: str, inversion: int, lowest: int) -> list[int]:
    """MIDI notes of a ``root:maj``/``root:min`` triad in ``inversion``, lowest note >= ``lowest``."""
    root_name, quality = label.split(":")
    root = PITCH_CLASSES.index(root_name)
    classes = [root, (root + (3 if quality == "min" else 4)) % 12, (root + 7) % 12]
    classes = classes[inversion:] + classes[:inversion]
    notes = [lowest + (classes[0] - lowest) % 12]
    for pc in classes[1:]:
        notes.append(notes[-1] + 1 + (pc - notes[-1] - 1) % 12)
    return notes


def draw_timbre(rng: np.random.Generator) -> dict:
    """Per-track timbre: harmonic amplitudes, attack and decay."""
    k = np.arange(1, int(rng.integers(4, 11)) + 1)
    amplitudes = k ** -rng.uniform(1.0, 2.2) * rng.uniform(0.7, 1.3, size=len(k))
    if rng.uniform() < 0.3:
        amplitudes[1::2] = 0.0  # odd harmonics only (clarinet-like)
    amplitudes[0] = 1.0
    return {"amplitudes": amplitudes, "attack_s": float(rng.uniform(0.005, 0.08)),
            "decay": float(rng.uniform(0.2, 3.0)), "bpm": float(rng.uniform(70, 140))}


def _chord_segment(label: str, n: int, sr: int, timbre: dict, rng: np.random.Generator) -> np.ndarray:
    notes = triad_midi(label, int(rng.integers(3)), int(rng.integers(48, 65)))
    if rng.uniform() < 0.5:  # the root one or two octaves below the lowest note
        root = PITCH_CLASSES.index(label.split(":")[0])
        notes.append(notes[0] - 12 * int(rng.integers(1, 3)) + (root - notes[0]) % 12)
    pattern = str(rng.choice(_PATTERNS))
    beat = max(int(60.0 / timbre["bpm"] * sr), 1)
    onsets = list(range(0, n, beat)) if pattern == "restrike" else [0]
    out = np.zeros(n)
    for v, m in enumerate(notes):
        for onset in onsets:
            onset += int(0.06 * sr) * v if pattern == "broken" else 0
            length = (min(onset + beat, n) if pattern == "restrike" else n) - onset
            if length <= 0:
                continue
            note = tone(midi_to_hz(float(m)), length, sr, timbre["amplitudes"], rng)
            add(out, onset, note * envelope(length, sr, timbre["attack_s"], timbre["decay"], release_s=0.02))
    return out / len(notes)


def _no_chord_segment(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    kind = int(rng.integers(3))
    if kind == 0:
        return np.zeros(n)
    if kind == 1:
        signal = 0.3 * render_source("pad", n, sr, random_groove(rng, (80, 120)), rng)
    else:
        drums = render_drums("k.h.s.h.k.h.s.h.", float(rng.uniform(80, 140)), (n + 1) / sr, sr, rng)
        signal = 0.5 * drums[:n]
    return signal * envelope(n, sr, 0.005, 0.0, release_s=0.02)


def render_chord_track(segments: list[dict], duration_s: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Render planned ``segments``; segment ``[start_s, end_s)`` spans samples ``round(t * sr)``."""
    timbre = draw_timbre(rng)
    out = np.zeros(int(duration_s * sr))
    for seg in segments:
        start, end = round(seg["start_s"] * sr), min(round(seg["end_s"] * sr), len(out))
        if end <= start:
            continue
        if seg["label"] == NO_CHORD:
            out[start:end] = _no_chord_segment(end - start, sr, rng)
        else:
            out[start:end] = _chord_segment(seg["label"], end - start, sr, timbre, rng)
    return finish_mix(out, rng, snr_db=(25, 40), gain_db=(-12, -1))


def write_lab(path: Path, segments: list[dict]) -> Path:
    """Write segments as a ``.lab`` file (``start end label`` per line, tab-separated)."""
    path.write_text("".join(f"{s['start_s']:.6f}\t{s['end_s']:.6f}\t{s['label']}\n" for s in segments))
    return path


def generate_chords(out_dir: Path, spec: SyntheticSpec) -> list[dict]:
    """Render the chord dataset under ``out_dir/audio/chords``; return its manifest rows."""
    rows = []
    for i in range(track_count(spec)):
        rng = np.random.default_rng([spec.seed, 102, i])
        segments = plan_segments(spec.duration_s, rng)
        track_id = f"chords-{i:05d}"
        path = write_track(out_dir / "audio" / "chords" / track_id, spec, rng,
                           lambda sr: render_chord_track(segments, spec.duration_s, sr, rng))
        write_lab(path.with_suffix(".lab"), segments)
        rows.append({"track_id": track_id, "audio_path": str(path.resolve()), "duration_s": spec.duration_s,
                     "split": split_for_index(i), "chords": segments})
    return rows
