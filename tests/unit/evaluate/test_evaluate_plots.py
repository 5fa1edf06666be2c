"""Figures: each function returns a decodable PNG; bad shapes raise."""

from __future__ import annotations

import io

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from autotag.evaluate import plots


def decode(png: bytes) -> np.ndarray:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return matplotlib.image.imread(io.BytesIO(png), format="png")


def test_every_figure_is_a_png():
    rng = np.random.default_rng(0)
    images = [
        plots.confusion_matrix(rng.integers(0, 9, (4, 4)), ["a", "b", "c", "d"]),
        plots.confusion_matrix(np.zeros((2, 2)), ["a", "b"], normalize=True),  # empty rows stay 0
        plots.tag_o_gram(rng.random((9, 5)), list("vwxyz"), frame_rate=1 / 3),
        plots.chord_timeline(np.array([[0, 2], [2, 4.0]]), ["C:maj", "N"], np.array([[0, 4.0]]), ["C:maj"]),
        plots.filter_responses(rng.standard_normal((8, 1, 31)), sample_rate=22050),
        plots.training_curves(pd.DataFrame({"epoch": [0, 1, 2], "train_loss": [1.0, 0.7, 0.5],
                                            "val_loss": [1.1, 0.9, 1.0], "val_auc": [0.6, 0.7, 0.68]})),
        plots.training_curves(pd.DataFrame({"epoch": [0], "train_loss": [1.0], "val_loss": [1.0]})),
    ]
    for png in images:
        height, width = decode(png).shape[:2]
        assert height > 100 and width > 100


@pytest.mark.parametrize(("call", "match"), [
    (lambda: plots.confusion_matrix(np.ones((2, 3)), ["a", "b"]), r"expected shape \(2, 2\)"),
    (lambda: plots.tag_o_gram(np.ones((3, 2)), ["a", "b", "c"]), "expected 3 columns"),
    (lambda: plots.tag_o_gram(np.ones(3), ["a"]), "non-empty 2-D"),
    (lambda: plots.chord_timeline(np.ones((2, 2)), ["C:maj"], np.ones((1, 2)), ["N"]), "reference: expected"),
    (lambda: plots.filter_responses(np.ones((4, 2, 8)), 22050), "weights: expected a non-empty 2-D"),
    (lambda: plots.filter_responses(np.ones((4, 8)), 0), "sample_rate = 0"),
    (lambda: plots.training_curves(pd.DataFrame({"epoch": [0], "loss": [1.0]})),
     r"missing column\(s\) \['train_loss', 'val_loss'\]"),
])
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
