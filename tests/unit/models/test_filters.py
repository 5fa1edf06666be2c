"""Learned filter banks are found in waveform front-ends only, with the weights the model uses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autotag.models import build_model
from autotag.models.filters import MIN_TAPS, learned_filters

SMALL = {"waveform_conv1d": {"channels": 6, "kernel_size": 31}, "sincnet": {"num_filters": 6, "kernel_size": 31},
         "sincnet_abs": {"num_filters": 6, "kernel_size": 31}, "tcn": {}, "lms_conv2d": {}}


@pytest.mark.parametrize(("frontend", "kind"), [("waveform_conv1d", "conv1d"), ("sincnet", "sincnet"),
                                                ("sincnet_abs", "sincnet"), ("tcn", None), ("lms_conv2d", None)])
def test_kind_of_filter_bank(frontend, kind):
    model = build_model(frontend, "autopool", 3, SMALL[frontend])
    bank = learned_filters(model.frontend)
    assert (bank.kind if bank else None) == kind
    if bank is not None:
        assert bank.weights.shape == (6, 31) and bank.sample_rate == 22_050 and bank.module == "block.conv"


def test_sincnet_weights_are_the_current_band_passes():
    model = build_model("sincnet", "autopool", 3, SMALL["sincnet"])
    with torch.no_grad():
        model.frontend.block.conv.low_hz.add_(100.0)  # "training" moved the bands
        expected = model.frontend.block.conv.filters()[:, 0, :].numpy()
    np.testing.assert_allclose(learned_filters(model.frontend).weights, expected, rtol=1e-6)


def test_conv1d_weights_are_sorted_by_peak_frequency():
    torch.manual_seed(0)
    model = build_model("waveform_conv1d", "autopool", 3, SMALL["waveform_conv1d"])
    weights = model.frontend.block.conv.weight[:, 0, :].detach().numpy().astype(np.float64)
    bank = learned_filters(model.frontend).weights
    peaks = np.abs(np.fft.rfft(bank, n=512, axis=1)).argmax(1)
    assert (np.diff(peaks) >= 0).all()
    assert sorted(map(tuple, bank)) == sorted(map(tuple, weights))  # a permutation of the rows


def test_short_kernels_are_not_filter_banks():
    model = build_model("waveform_conv1d", "autopool", 3, {"channels": 4, "kernel_size": MIN_TAPS - 1})
    assert learned_filters(model.frontend) is None
