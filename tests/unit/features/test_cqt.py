"""ConstantQ against np.abs(librosa.cqt(...)) with the tutorial's chord settings.

Stated tolerances (measured values in brackets): broadband signal, relative Frobenius error
< 2 % (0.6 %) and largest absolute error < 2 % of the largest magnitude (0.9 %); steady tone,
peak-bin magnitude within 0.1 % (< 0.001 %). librosa decimates octave by octave and sparsifies
its kernels; we filter at the full rate, hence the small broadband residue.
"""

import librosa
import numpy as np
import pytest
import torch

from autotag import SAMPLE_RATE
from autotag.features import ConstantQ

SETTINGS = dict(sr=SAMPLE_RATE, hop_length=512, fmin=32.7, n_bins=72, bins_per_octave=12)


def _cqt(y: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return ConstantQ()(torch.from_numpy(y.astype(np.float32))[None])[0].numpy()


def test_broadband_signal_matches_librosa():
    rng = np.random.default_rng(0)
    t = np.arange(5 * SAMPLE_RATE + 123) / SAMPLE_RATE
    y = 0.3 * np.sin(2 * np.pi * 110 * t) + 0.2 * np.sin(2 * np.pi * 440 * t * (1 + 0.1 * t))
    y = (y + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    reference = np.abs(librosa.cqt(y, **SETTINGS))
    ours = _cqt(y)
    assert ours.shape == reference.shape == (72, 1 + len(y) // 512)
    assert np.linalg.norm(ours - reference) < 0.02 * np.linalg.norm(reference)
    assert np.abs(ours - reference).max() < 0.02 * reference.max()


@pytest.mark.parametrize("semitone", [5, 30, 66])
def test_tone_peak_matches_librosa(semitone):
    frequency = 32.7 * 2 ** (semitone / 12)
    y = np.sin(2 * np.pi * frequency * np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE).astype(np.float32)
    reference = np.abs(librosa.cqt(y, **SETTINGS))[:, 60]
    ours = _cqt(y)[:, 60]
    assert ours.argmax() == reference.argmax() == semitone
    assert ours[semitone] == pytest.approx(reference[semitone], rel=1e-3)


def test_time_base():
    feature = ConstantQ()
    assert feature.frame_rate == pytest.approx(22_050 / 512)
    assert feature.samples_for_frames(1024) == 523_776
    assert feature(torch.zeros(2, 5000)).shape == (2, 72, 1 + 5000 // 512)


def test_rejects_bins_above_nyquist():
    with pytest.raises(ValueError, match="Nyquist"):
        ConstantQ(n_bins=12 * 9)
    with pytest.raises(ValueError, match="n_bins=0"):
        ConstantQ(n_bins=0)
