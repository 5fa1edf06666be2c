"""SincNet: mel-spaced initial cut-offs, constraints and filter shape."""

import numpy as np
import pytest
import torch

from autotag.models import build_model
from autotag.models.sinc import SincConv


def expected_initial_bands(sr: float = 22_050, n: int = 80, min_low: float = 50, min_band: float = 50):
    """Independent computation from the recipe: mel-spaced edges from 30 Hz to sr/2 − 100 Hz."""
    to_mel = lambda hz: 2595 * np.log10(1 + hz / 700)  # noqa: E731
    to_hz = lambda mel: 700 * (10 ** (mel / 2595) - 1)  # noqa: E731
    edges = to_hz(np.linspace(to_mel(30.0), to_mel(sr / 2 - (min_low + min_band)), n + 1))
    low = min_low + edges[:-1]
    high = np.minimum(low + min_band + np.diff(edges), sr / 2)
    return low, high


def test_initial_cutoffs_are_mel_spaced():
    low, high = (t.detach().numpy() for t in SincConv().cutoff_frequencies())
    expected_low, expected_high = expected_initial_bands()
    np.testing.assert_allclose(low, expected_low, rtol=1e-5)
    np.testing.assert_allclose(high, expected_high, rtol=1e-5)
    assert (low[0], high[0]) == pytest.approx((80.0, 155.7), abs=0.05)
    assert (low[-1], high[-1]) == pytest.approx((10_579.7, 11_025.0), abs=0.05)
    assert np.all(np.diff(low) > 0)


def test_constraints_hold_for_any_parameter_values():
    sinc = SincConv()
    with torch.no_grad():
        sinc.low_hz.normal_(0, 5_000)
        sinc.band_hz.normal_(0, 5_000)
    low, high = sinc.cutoff_frequencies()
    assert (low >= 50).all()
    assert (high <= 11_025).all()
    assert ((high - low)[high < 11_025] >= 50 - 1e-3).all()


def test_filters_are_symmetric_band_passes():
    sinc = SincConv()
    filters = sinc.filters().detach()[:, 0].numpy()
    assert filters.shape == (80, 251)
    assert np.array_equal(filters, filters[:, ::-1])
    np.testing.assert_allclose(filters[:, 125], 1.0)  # centre tap 2·band / (2·band)
    low, high = (t.detach().numpy() for t in sinc.cutoff_frequencies())
    response = np.abs(np.fft.rfft(filters, 1 << 15, axis=1))
    freqs = np.fft.rfftfreq(1 << 15, 1 / 22_050)
    peaks = freqs[response.argmax(axis=1)]
    wide = slice(10, None)  # the lowest bands are narrower than the 251-tap resolution (~88 Hz)
    assert np.all((peaks[wide] >= low[wide]) & (peaks[wide] <= high[wide]))


def test_even_kernel_is_made_odd_and_parameters_are_few():
    assert SincConv(kernel_size=250).kernel_size == 251
    model = build_model("sincnet_abs", "autopool", 10)
    assert sum(p.numel() for p in model.frontend.block.conv.parameters()) == 160
    assert model.frontend.block.rectify and not build_model("sincnet", "autopool", 10).frontend.block.rectify


def test_cutoffs_are_learned():
    torch.manual_seed(0)
    model = build_model("sincnet_abs", "autopool", 10)
    model(0.1 * torch.randn(4, 3200)).logsumexp(-1).sum().backward()
    sinc = model.frontend.block.conv
    assert sinc.low_hz.grad is not None and sinc.low_hz.grad.abs().sum() > 0
    assert sinc.band_hz.grad is not None and sinc.band_hz.grad.abs().sum() > 0
