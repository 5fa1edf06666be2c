"""The octave-wise decimated constant-Q (crema's front-end) against the full-rate one, and the
harmonic log-CQT's layout, frame count and dB scaling (pumpp's ``HCQTMag(log=True)``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autotag.features.cqt import ConstantQ, HarmonicLogCQT, amplitude_to_db, halfband_filter, halve

C1 = 32.70319566257483


def test_halving_equals_the_strided_low_pass():
    torch.manual_seed(0)
    wave = torch.randn(2, 1001)
    lowpass = torch.from_numpy(halfband_filter()).float()
    expected = F.conv1d(wave.unsqueeze(1), lowpass.view(1, 1, -1), stride=2, padding=31).squeeze(1)
    assert halve(wave, lowpass).shape == (2, 501)
    torch.testing.assert_close(halve(wave, lowpass), expected, atol=1e-6, rtol=1e-5)
    assert lowpass.sum() == pytest.approx(1.0)


def test_decimated_octaves_match_the_full_rate_transform():
    full = ConstantQ(22_050, 2048, C1, 252, 36)
    fast = ConstantQ(22_050, 2048, C1, 252, 36, decimate=True)
    assert fast.levels == [6, 5, 4, 3, 2, 1, 0]  # the top octave (2.1-4.2 kHz) stays at 22,050 Hz
    assert {o.weight.shape[-1] for o in fast.octaves} == {549}  # every octave's filters: 549 taps
    torch.manual_seed(0)
    noise = torch.randn(2, 22_050 * 5)
    tone = torch.sin(2 * np.pi * 440 * torch.arange(22_050 * 3) / 22_050)[None]
    with torch.no_grad():
        a, b = full(noise), fast(noise)
        ta, tb = full(tone), fast(tone)
    assert a.shape == b.shape == (2, 252, 54)
    assert float((a - b).norm() / a.norm()) < 0.006  # measured 0.0047
    assert float((a - b).abs().max() / a.abs().max()) < 0.015  # measured 0.0135
    peak = int(ta[0, :, 20].argmax())
    assert peak == 135 and float(tb[0, peak, 20]) == pytest.approx(float(ta[0, peak, 20]), rel=1e-3)


def test_harmonics_share_bins_and_take_their_own_reference():
    features = HarmonicLogCQT()
    torch.manual_seed(0)
    wave = 0.1 * torch.randn(1, 22_050 * 3 + 1000)
    with torch.no_grad():
        db = features(wave)
        magnitude = features.cqt(wave)[:, :, : 22_050 * 3 // 2048 + 0]
    assert db.shape == (1, 2, (22_050 * 3 + 1000) // 2048, 216)  # N // hop frames, (harmonics, time, bins)
    assert features.offsets == [0, 36]
    for h, offset in enumerate(features.offsets):
        assert float(db[0, h].max()) == 0.0 and float(db[0, h].min()) >= -80.0
        own = magnitude[0, offset : offset + 216]
        expected = amplitude_to_db(own.T[None], own.max())
        torch.testing.assert_close(db[0, h, : magnitude.shape[2]], expected[0], atol=1e-3, rtol=1e-4)
    with pytest.raises(ValueError, match="powers of two"):
        HarmonicLogCQT(harmonics=(1, 3))
