from __future__ import annotations

import numpy as np
import pytest

from autotag.data.patches import cut_patches, patch_counts, patch_starts


def test_patches_follow_the_tutorial_count_and_content():
    y = np.arange(100, dtype=np.float32)
    patches = cut_patches(y, 30, 20)
    # floor((T - L) / S + 1) = floor(70 / 20 + 1) = 4, tail dropped
    assert patches.shape == (4, 30)
    np.testing.assert_array_equal(patches[2], y[40:70])


def test_short_signal_gets_one_zero_padded_patch():
    patches = cut_patches(np.ones(10, np.float32), 30, 20)
    assert patches.shape == (1, 30) and patches[0, :10].sum() == 10 and patches[0, 10:].sum() == 0


def test_invalid_sizes():
    with pytest.raises(ValueError):
        patch_starts(100, 0, 10)


def test_patch_counts_equal_the_number_of_patch_starts():
    lengths = np.arange(0, 3_000, 7)
    expected = [len(patch_starts(int(n), 256, 96)) for n in lengths]
    assert patch_counts(lengths, 256, 96).tolist() == expected
    with pytest.raises(ValueError, match="positive"):
        patch_counts(lengths, 256, 0)
