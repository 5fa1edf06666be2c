"""Sound primitives shared by every synthetic dataset: oscillators, envelopes, drums, mixing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def midi_to_hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


@dataclass(frozen=True)
class Timbre:
    """A harmonic oscillator: amplitudes of harmonics 1..n, envelope and distortion."""

    harmonics: tuple[float, ...]
    attack_s: float = 0.01
    decay_per_s: float = 2.0  # exponential decay rate of the note envelope
    drive: float = 0.0  # tanh distortion amount (0 = clean)
    vibrato_hz: float = 0.0


def render_note(freq: float, duration_s: float, sr: int, timbre: Timbre, rng: np.random.Generator) -> np.ndarray:
    """One note of ``timbre`` at ``freq`` Hz (harmonics above Nyquist are dropped)."""
    n = max(int(duration_s * sr), 1)
    t = np.arange(n) / sr
    phase0 = rng.uniform(0, 2 * np.pi)
    vibrato = 0.004 * np.sin(2 * np.pi * timbre.vibrato_hz * t) if timbre.vibrato_hz else 0.0
    inst_phase = 2 * np.pi * freq * (t + np.cumsum(np.broadcast_to(vibrato, t.shape)) / sr) + phase0
    wave = np.zeros(n)
    for k, amp in enumerate(timbre.harmonics, start=1):
        if amp and freq * k < sr / 2:
            wave += amp * np.sin(k * inst_phase)
    env = np.minimum(t / timbre.attack_s, 1.0) * np.exp(-timbre.decay_per_s * t)
    release = min(n, int(0.01 * sr))
    env[n - release :] *= np.linspace(1, 0, release)
    wave *= env
    if timbre.drive:
        wave = np.tanh(timbre.drive * wave) / np.tanh(timbre.drive)
    return wave


def _kick(sr: int) -> np.ndarray:
    t = np.arange(int(0.18 * sr)) / sr
    freq = 50 + 100 * np.exp(-t * 30)
    return np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t * 18)


def _noise_burst(sr: int, length_s: float, decay: float, highpass: bool, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(length_s * sr)) / sr
    noise = rng.standard_normal(len(t))
    if highpass:
        noise = np.diff(noise, prepend=0.0)
    return 0.5 * noise * np.exp(-t * decay)


def render_drums(pattern: str, bpm: float, duration_s: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A drum loop from a 16-step pattern string over one bar of 4 beats.

    Each step is one character: ``k`` kick, ``s`` snare, ``h`` hat, ``o`` open hat,
    ``x`` kick and hat, ``.`` rest.
    """
    out = np.zeros(int(duration_s * sr))
    if not pattern:
        return out
    step_s = 60.0 / bpm / 4
    sounds = {
        "k": [_kick(sr)],
        "s": [_noise_burst(sr, 0.15, 25, False, rng)],
        "h": [0.6 * _noise_burst(sr, 0.05, 80, True, rng)],
        "o": [0.6 * _noise_burst(sr, 0.2, 15, True, rng)],
        "x": [_kick(sr), 0.6 * _noise_burst(sr, 0.05, 80, True, rng)],
    }
    step = 0
    while (start := int(step * step_s * sr)) < len(out):
        for sound in sounds.get(pattern[step % len(pattern)], []):
            end = min(len(out), start + len(sound))
            out[start:end] += sound[: end - start]
        step += 1
    return out


def finish_mix(mix: np.ndarray, rng: np.random.Generator, snr_db: tuple[float, float] = (10, 30),
               gain_db: tuple[float, float] = (-18, -1)) -> np.ndarray:
    """Normalise, add white noise at a random SNR and apply a random gain."""
    peak = np.abs(mix).max()
    if peak > 0:
        mix = mix / peak
    signal_power = float(np.mean(mix**2)) or 1e-6
    snr = rng.uniform(*snr_db)
    mix = mix + rng.standard_normal(len(mix)) * np.sqrt(signal_power / 10 ** (snr / 10))
    mix = mix / max(np.abs(mix).max(), 1e-9)
    return (mix * 10 ** (rng.uniform(*gain_db) / 20)).astype(np.float32)
