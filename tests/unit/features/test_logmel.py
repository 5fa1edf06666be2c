"""LogMel against librosa.feature.melspectrogram (the tutorial's LMS settings)."""

import librosa
import numpy as np
import pytest
import torch

from autotag import SAMPLE_RATE
from autotag.features import LogMel


@pytest.fixture(scope="module")
def signal() -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(3 * SAMPLE_RATE + 77) / SAMPLE_RATE
    y = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 3000 * t * (1 + t / 3))
    return (y + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


def test_mel_power_matches_librosa(signal):
    """Mel power within 1e-5 of librosa's peak value (measured: 1.5e-6)."""
    reference = librosa.feature.melspectrogram(y=signal, sr=SAMPLE_RATE, n_fft=2048, hop_length=1024, n_mels=128)
    feature = LogMel()
    with torch.no_grad():
        power = feature.power_spectrogram(torch.from_numpy(signal)[None])
        mel = torch.matmul(feature.filterbank, power)[0].numpy()
    assert mel.shape == reference.shape == (128, 1 + len(signal) // 1024)
    assert np.abs(mel - reference).max() <= 1e-5 * reference.max()


def test_log_compression_matches_tutorial(signal):
    """log(1 + 10000 · mel) within 1e-3 absolute (measured: 9e-5 on values up to 17)."""
    reference = np.log1p(10_000 * librosa.feature.melspectrogram(
        y=signal, sr=SAMPLE_RATE, n_fft=2048, hop_length=1024, n_mels=128))
    with torch.no_grad():
        logmel = LogMel()(torch.from_numpy(np.stack([signal, signal])))
    assert logmel.shape == (2, *reference.shape)
    np.testing.assert_allclose(logmel[1].numpy(), reference, atol=1e-3, rtol=0)


def test_time_base():
    feature = LogMel()
    assert feature.frame_rate == pytest.approx(22_050 / 1024)
    assert feature.num_frames(64_512) == 64
    assert feature.samples_for_frames(64) == 64_512
    assert feature(torch.zeros(1, feature.samples_for_frames(64))).shape == (1, 128, 64)
    assert torch.equal(feature.num_frames(torch.tensor([1023, 1024])), torch.tensor([1, 2]))


def test_rejects_bad_settings():
    with pytest.raises(ValueError, match="hop_length=0"):
        LogMel(hop_length=0)


@pytest.mark.parametrize("n_fft, hop, patch_frames, patch_hop_frames", [
    (2048, 1024, 64, 32),   # the tutorial's patches at inference: 50 % overlap
    (2048, 1024, 64, 64),   # back to back
    (1024, 256, 40, 7),     # two padded frames at each end, odd hop
    (2048, 768, 20, 10),    # half a window is not a whole number of hops: plain forward
])
def test_patch_features_equal_forward_on_each_patch(n_fft, hop, patch_frames, patch_hop_frames):
    torch.manual_seed(0)
    mel = LogMel(n_fft=n_fft, hop_length=hop, n_mels=64)
    track = torch.randn(SAMPLE_RATE * 6) * 0.1
    patch = mel.samples_for_frames(patch_frames)
    for starts in (list(range(0, len(track) - patch + 1, patch_hop_frames * hop)), [0], [hop * 3, hop * 5]):
        expected = mel(torch.stack([track[s : s + patch] for s in starts]))
        got = mel.patch_features(track, starts, patch)
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    off_grid = [5, hop + 5]  # not on the hop grid: falls back to forward, same numbers
    torch.testing.assert_close(mel.patch_features(track, off_grid, patch),
                               mel(torch.stack([track[s : s + patch] for s in off_grid])))
