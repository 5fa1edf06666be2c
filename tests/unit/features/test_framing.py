"""Waveform framing against librosa.util.frame."""

import librosa
import numpy as np
import pytest
import torch

from autotag.features import Frames, Waveform


@pytest.mark.parametrize("length", [3200, 3201, 10_000, 22_050])
def test_frames_equal_librosa(length):
    y = np.random.default_rng(length).standard_normal(length).astype(np.float32)
    reference = librosa.util.frame(y, frame_length=3200, hop_length=1000, axis=0)
    frames = Frames(3200, 1000)(torch.from_numpy(y))
    assert frames.shape == reference.shape
    assert np.array_equal(frames.numpy(), reference)


def test_pad_end_covers_every_sample():
    framing = Frames(4, 3, pad_end=True)
    frames = framing(torch.arange(1.0, 12.0).unsqueeze(0))  # 11 samples: starts 0, 3, 6, then 9 padded
    assert frames.shape == (1, 4, 4)
    assert frames[0, -1].tolist() == [10.0, 11.0, 0.0, 0.0]
    assert framing.valid_samples(11).tolist() == [4, 4, 4, 2]
    assert Frames(4, 3).num_frames(11) == 3
    assert Frames(4, 3, pad_end=True).num_frames(2) == 1


def test_too_short_without_padding_raises():
    with pytest.raises(ValueError, match="expected at least 3200"):
        Frames(3200, 1000)(torch.zeros(1, 3199))


def test_waveform_feature_adds_channel_axis():
    feature = Waveform()
    assert feature(torch.zeros(2, 3200)).shape == (2, 1, 3200)
    assert feature.num_frames(3200) == feature.samples_for_frames(3200) == 3200
