"""Six synthetic sound sources shared by the tag and instrument datasets, and a fast tone generator.

Sources (:data:`SOURCES`), each recognisable by a small CNN on a log-mel spectrogram:

- ``bass``: low (MIDI 28-43) plucked notes, few harmonics, on the beat;
- ``drums``: kick/snare/hat loops (:func:`~autotag.data.synthetic.primitives.render_drums`);
- ``pad``: band-pass filtered noise swelling slowly (no pitch);
- ``piano``: mid-high (MIDI 60-84) percussive notes with a fast exponential decay;
- ``strings``: sustained, slowly attacked, bright chords with vibrato (MIDI 55-79);
- ``vocal``: a sung melody (MIDI 55-74): a harmonic source shaped by vowel formants, with
  wide vibrato and legato notes.

Tones are read from a one-period wavetable (harmonics above Nyquist left out), so a note
costs a few array operations whatever its number of harmonics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from autotag.data.synthetic.primitives import midi_to_hz, render_drums

SOURCES = ("bass", "drums", "pad", "piano", "strings", "vocal")
_TABLE_SIZE = 4096
_MAX_HARMONICS = 64
_ONE_PERIOD = 2**32
_SHIFT = 20  # 2**32 / 2**20 = 4096 = _TABLE_SIZE
_SINES = np.sin(2 * np.pi * np.outer(np.arange(1, _MAX_HARMONICS + 1), np.arange(_TABLE_SIZE) / _TABLE_SIZE))
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)
_VOWELS = {  # formant centre frequencies (Hz) of five vowels, adult voice
    "a": (730, 1090, 2440), "e": (530, 1840, 2480), "i": (270, 2290, 3010),
    "o": (570, 840, 2410), "u": (300, 870, 2240),
}
_DRUM_PATTERNS = ("k...s...k...s...", "k.h.s.h.k.h.s.h.", "x.h.s.hkx.h.s.hh", "k.o.k.o.k.o.k.o.", "khhhshhhkhkhshhh")


def tone(freq: float, n: int, sr: int, amplitudes: np.ndarray, rng: np.random.Generator,
         vibrato_hz: float = 0.0, vibrato_depth: float = 0.0) -> np.ndarray:
    """``n`` samples of a periodic tone with the given harmonic amplitudes (random start phase)."""
    amplitudes = np.asarray(amplitudes, dtype=float)[:_MAX_HARMONICS]
    harmonics = np.arange(1, len(amplitudes) + 1)
    amplitudes = np.where(harmonics * freq * (1 + vibrato_depth) < sr / 2, amplitudes, 0.0)
    table = amplitudes @ _SINES[: len(amplitudes)]
    # Phase as a 32-bit fixed-point fraction of a period: integer adds and shifts are ~20x
    # faster than a float modulo, and the top 12 bits index the table.
    if vibrato_hz:
        t = np.arange(n) / sr
        phase = np.cumsum((freq / sr * _ONE_PERIOD) * (1 + vibrato_depth * np.sin(2 * np.pi * vibrato_hz * t)))
        phase = phase.astype(np.int64)
    else:
        phase = np.arange(n, dtype=np.int64)
        phase *= round(freq / sr * _ONE_PERIOD)
    phase += int(rng.integers(_ONE_PERIOD))
    phase >>= _SHIFT
    phase &= _TABLE_SIZE - 1
    return np.take(table, phase)


def envelope(n: int, sr: int, attack_s: float, decay_per_s: float, release_s: float = 0.01) -> np.ndarray:
    """Linear attack, exponential decay, and a linear release over the last ``release_s``."""
    t = np.arange(n) / sr
    env = np.minimum(t / max(attack_s, 1e-4), 1.0) * np.exp(-decay_per_s * t)
    release = min(n, max(int(release_s * sr), 1))
    env[n - release:] *= np.linspace(1.0, 0.0, release)
    return env


def add(out: np.ndarray, start: int, signal: np.ndarray) -> None:
    """Add ``signal`` into ``out`` from sample ``start``, cropping at the end."""
    end = min(len(out), start + len(signal))
    if end > start:
        out[start:end] += signal[: end - start]


@dataclass(frozen=True)
class Groove:
    """What the sources of one track share: tempo and key."""

    bpm: float
    tonic: int  # pitch class 0-11
    minor: bool

    def scale_notes(self, low: int, high: int) -> list[int]:
        steps = _MINOR if self.minor else _MAJOR
        return [m for m in range(low, high + 1) if (m - self.tonic) % 12 in steps]

    @property
    def beat_s(self) -> float:
        return 60.0 / self.bpm


def _notes(out: np.ndarray, sr: int, groove: Groove, rng: np.random.Generator, *, midi: tuple[int, int],
           beats_per_note: float, amplitudes: np.ndarray, attack_s: float, decay: float, voices: int = 1,
           sustain: float = 1.0, vibrato: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    scale = groove.scale_notes(*midi)
    slot_s = groove.beat_s * beats_per_note
    k = 0
    while (start := int(k * slot_s * sr)) < len(out):
        n = max(int(slot_s * sustain * sr), 1)
        for m in rng.choice(scale, size=voices, replace=False):
            note = tone(midi_to_hz(float(m)), n, sr, amplitudes, rng, *vibrato)
            add(out, start, note * envelope(n, sr, attack_s, decay, release_s=0.03))
        k += 1
    return out


def _piano(n: int, sr: int, g: Groove, rng: np.random.Generator) -> np.ndarray:
    amps = 1.0 / np.arange(1, 9) ** 1.5
    return _notes(np.zeros(n), sr, g, rng, midi=(60, 84), beats_per_note=float(rng.choice([0.5, 1.0])),
                  amplitudes=amps, attack_s=0.003, decay=4.0, voices=int(rng.integers(1, 3)), sustain=1.5)


def _strings(n: int, sr: int, g: Groove, rng: np.random.Generator) -> np.ndarray:
    amps = 1.0 / np.arange(1, 13)
    return _notes(np.zeros(n), sr, g, rng, midi=(55, 79), beats_per_note=4.0, amplitudes=amps, attack_s=0.25,
                  decay=0.05, voices=3, vibrato=(5.5, 0.004))


def _bass(n: int, sr: int, g: Groove, rng: np.random.Generator) -> np.ndarray:
    amps = np.array([1.0, 0.5, 0.25, 0.1])
    return _notes(np.zeros(n), sr, g, rng, midi=(28, 43), beats_per_note=float(rng.choice([0.5, 1.0])),
                  amplitudes=amps, attack_s=0.005, decay=2.5, sustain=0.9)


def _drums(n: int, sr: int, g: Groove, rng: np.random.Generator) -> np.ndarray:
    pattern = str(rng.choice(_DRUM_PATTERNS))
    return render_drums(pattern, g.bpm, (n + 1) / sr, sr, rng)[:n]  # +1: int(n / sr * sr) may be n - 1


def vowel_amplitudes(f0: float, vowel: str, sr: int) -> np.ndarray:
    """Harmonic amplitudes of a voiced vowel at ``f0``: a 1/k source shaped by three formants."""
    k = np.arange(1, int(min(4500.0, sr / 2) / f0) + 1)
    formants = np.array(_VOWELS[vowel])
    gain = np.exp(-(((k[:, None] * f0 - formants[None, :]) / 120.0) ** 2)) @ np.array([1.0, 0.6, 0.3])
    return (0.05 + gain) / k


def _vocal(n: int, sr: int, g: Groove, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(n)
    scale = g.scale_notes(55, 74)
    start = 0
    while start < n:
        length = int(g.beat_s * float(rng.choice([1.0, 2.0])) * sr)
        f0 = midi_to_hz(float(rng.choice(scale)))
        amps = vowel_amplitudes(f0, str(rng.choice(list(_VOWELS))), sr)
        note = tone(f0, length, sr, amps, rng, vibrato_hz=float(rng.uniform(4.5, 6.5)), vibrato_depth=0.012)
        add(out, start, note * envelope(length, sr, 0.06, 0.3, release_s=0.06))
        start += length
    return out


def _pad(n: int, sr: int, g: Groove, rng: np.random.Generator) -> np.ndarray:
    # Gaussian noise drawn directly in the frequency domain, only over the pass band
    # (+-2.5 octaves of a Gaussian 0.5 octave wide): one inverse FFT, no forward one.
    centre = rng.uniform(300.0, 1500.0)
    low, high = (int(min(f, sr / 2) * n / sr) for f in (centre / 2**2.5, centre * 2**2.5))
    freqs = np.arange(low, high + 1) * (sr / n)
    band = rng.standard_normal(len(freqs)) + 1j * rng.standard_normal(len(freqs))
    spectrum = np.zeros(n // 2 + 1, dtype=complex)
    spectrum[low:high + 1] = band * np.exp(-0.5 * (np.log2(np.maximum(freqs, 1.0) / centre) / 0.5) ** 2)
    noise = np.fft.irfft(spectrum, n)
    t = np.arange(n) / sr
    swell = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.1, 0.3) * t + rng.uniform(0, 2 * np.pi))
    return noise / max(np.abs(noise).max(), 1e-9) * swell * np.minimum(t / 0.5, 1.0)


RENDERERS: dict[str, Callable[[int, int, Groove, np.random.Generator], np.ndarray]] = {
    "bass": _bass, "drums": _drums, "pad": _pad, "piano": _piano, "strings": _strings, "vocal": _vocal,
}


def render_source(name: str, n: int, sr: int, groove: Groove, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of source ``name`` (one of :data:`SOURCES`), peak-normalised to 1."""
    if name not in RENDERERS:
        raise ValueError(f"unknown source {name!r}; known: {SOURCES}")
    signal = RENDERERS[name](n, sr, groove, rng)
    return signal / max(float(np.abs(signal).max()), 1e-9)


def random_groove(rng: np.random.Generator, bpm_range: tuple[float, float]) -> Groove:
    """A random tempo in ``bpm_range`` and a random major or minor key."""
    return Groove(bpm=float(rng.uniform(*bpm_range)), tonic=int(rng.integers(12)), minor=bool(rng.integers(2)))
