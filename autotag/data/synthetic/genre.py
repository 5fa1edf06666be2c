"""Synthetic genre dataset: 10 classes that differ in timbre, pitch range and rhythm."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autotag.data.synthetic.primitives import Timbre, finish_mix, midi_to_hz, render_drums, render_note
from autotag.data.synthetic.spec import SyntheticSpec, split_for_index
from autotag.data.synthetic.writer import write_track


@dataclass(frozen=True)
class GenreStyle:
    timbre: Timbre
    midi_range: tuple[int, int]
    bpm: float
    notes_per_beat: float
    drums: str = ""
    offbeat: bool = False  # notes on the off-beats (reggae skank)
    note_fill: float = 0.9  # fraction of the note slot that sounds


_SAW = tuple(1.0 / k for k in range(1, 11))
_SQUARE = tuple(1.0 / k if k % 2 else 0.0 for k in range(1, 12))
_TRIANGLE = tuple(1.0 / k**2 if k % 2 else 0.0 for k in range(1, 8))

GENRES: dict[str, GenreStyle] = {
    "blues": GenreStyle(Timbre(_SAW[:6], decay_per_s=1.0), (40, 58), 72, 1, "k...s...k...s..."),
    "classical": GenreStyle(Timbre((1.0, 0.3, 0.1), attack_s=0.08, decay_per_s=0.3, vibrato_hz=5.5), (62, 86), 84, 2),
    "country": GenreStyle(Timbre(_SAW, decay_per_s=6.0), (52, 72), 112, 2, "k.h.s.h.k.h.s.h."),
    "disco": GenreStyle(Timbre(_SQUARE, decay_per_s=3.0), (45, 60), 122, 2, "k.o.k.o.k.o.k.o."),
    "hiphop": GenreStyle(Timbre((1.0, 0.15), decay_per_s=1.5), (28, 40), 88, 0.5, "x.h.s.hkx.h.s.hh"),
    "jazz": GenreStyle(Timbre(_TRIANGLE, decay_per_s=2.5), (55, 79), 150, 1, "h..hh..hh..hh..h", note_fill=0.7),
    "metal": GenreStyle(Timbre(_SAW, decay_per_s=0.5, drive=6.0), (36, 52), 170, 4, "xhxhshxhxhxhshxh"),
    "pop": GenreStyle(Timbre((1.0, 0.5, 0.33, 0.25, 0.2), decay_per_s=1.2), (60, 76), 116, 1, "k...s...k.k.s..."),
    "reggae": GenreStyle(Timbre((1, 1, 1, 1), decay_per_s=8.0), (55, 67), 76, 1, "..h.k.h...h.k.h.",
                         offbeat=True, note_fill=0.35),
    "rock": GenreStyle(Timbre(_SQUARE, decay_per_s=1.0, drive=2.5), (40, 60), 132, 2, "k.h.s.h.kkh.s.h."),
}

_PENTATONIC = (0, 2, 4, 7, 9)


def render_genre_track(style: GenreStyle, duration_s: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Render one track of a genre: a pentatonic melody over the genre's drum loop."""
    bpm = style.bpm * rng.uniform(0.92, 1.08)
    slot_s = 60.0 / bpm / style.notes_per_beat
    n = int(duration_s * sr)
    melody = np.zeros(n)
    low, high = style.midi_range
    root = rng.integers(low, low + 12)
    scale = [m for octave in range(-12, 36, 12) for m in (root + d + octave for d in _PENTATONIC) if low <= m <= high]
    offset = slot_s / 2 if style.offbeat else 0.0
    k = 0
    while (start_s := offset + k * slot_s) < duration_s:
        freq = midi_to_hz(float(rng.choice(scale)))
        note = render_note(freq, slot_s * style.note_fill, sr, style.timbre, rng)
        start = int(start_s * sr)
        end = min(n, start + len(note))
        melody[start:end] += note[: end - start]
        k += 1
    drums = render_drums(style.drums, bpm, duration_s, sr, rng)
    return finish_mix(melody / max(np.abs(melody).max(), 1e-9) + 0.7 * drums, rng)


def generate_genre(out_dir: Path, spec: SyntheticSpec) -> list[dict]:
    """Render ``spec.tracks_per_class`` tracks per genre; return their manifest rows."""
    rows = []
    for class_index, (genre, style) in enumerate(GENRES.items()):
        for i in range(spec.tracks_per_class):
            rng = np.random.default_rng([spec.seed, class_index, i])
            track_id = f"{genre}-{i:05d}"
            path = write_track(out_dir / "audio" / genre / track_id, spec, rng,
                               lambda sr: render_genre_track(style, spec.duration_s, sr, rng))
            rows.append({"track_id": track_id, "audio_path": str(path.resolve()), "duration_s": spec.duration_s,
                         "split": split_for_index(i), "genre": genre})
    return rows
