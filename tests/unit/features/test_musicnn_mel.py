"""musicnn's 16 kHz log-mel: time base, resampling lengths, and patch framing (no weights needed)."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from autotag.features.musicnn_mel import MusicnnMel


@pytest.mark.parametrize("samples", [1, 441, 1000, 65_620, 65_621, 100_003])
def test_lengths_are_what_torchaudio_and_the_framing_give(samples):
    features = MusicnnMel()
    wave = torch.zeros(1, samples)
    assert features.resample(wave).shape[1] == features.resampled_length(samples)
    assert features(wave).shape == (1, 96, features.num_frames(samples))


def test_187_frames_need_65620_samples_at_22050():
    features = MusicnnMel()
    assert features.samples_for_frames(187) == 65_620
    assert features.num_frames(65_620) == 187 and features.num_frames(65_619) == 186
    assert features.frame_rate == 62.5 and features.input_hop_samples == pytest.approx(352.8)


def test_patches_are_cut_from_one_framing_of_their_span():
    rng = np.random.default_rng(0)
    track = torch.from_numpy(0.1 * rng.standard_normal(22_050 * 12).astype(np.float32))
    features = MusicnnMel()
    patch = features.samples_for_frames(187)
    starts = [k * 65_974 for k in range(3)]  # the musicnn front-end's 3-s hop
    got = features.patch_features(track, starts, patch)
    whole = features.log_mel(features.resample(track[None]))[0]  # the whole track, framed once
    assert got.shape == (3, 96, 187)
    for k in range(3):  # 65,974 samples at 22,050 Hz = 187.0 frames at 16 kHz
        torch.testing.assert_close(got[k], whole[:, 187 * k : 187 * (k + 1)], atol=1e-4, rtol=0)


def test_one_patch_is_forward_and_off_grid_patches_past_the_end_fall_back():
    rng = np.random.default_rng(1)
    features = MusicnnMel()
    track = torch.from_numpy(0.1 * rng.standard_normal(65_620).astype(np.float32))
    torch.testing.assert_close(features.patch_features(track, [0], 65_620), features(track[None]))
    # 66,150 samples = 187.5 frames: the second patch would start at frame 188 and end past the span
    track = torch.from_numpy(0.1 * rng.standard_normal(66_150 + 65_620).astype(np.float32))
    stacked = features(torch.stack([track[:65_620], track[66_150:]]))
    torch.testing.assert_close(features.patch_features(track, [0, 66_150], 65_620), stacked)


def test_log_mel_is_librosas_recipe_in_float32():
    rng = np.random.default_rng(2)
    wave = (0.3 * rng.standard_normal(16_000)).astype(np.float32)
    mel = librosa.feature.melspectrogram(y=wave, sr=16_000, hop_length=256, n_fft=512, n_mels=96)
    got = MusicnnMel().log_mel(torch.from_numpy(wave)[None])[0].numpy()
    np.testing.assert_allclose(got, np.log10(10_000 * mel + 1), atol=1e-4)
