"""A padded batch gives each example the output it gets alone (``lengths`` masking, eval mode)."""

import pytest
import torch

from autotag.models import build_model

SMALL = {"cqt_conv2d": {"patch_frames": 96, "patch_hop_frames": 48}}
PAIRS = [(f, "autopool") for f in ["cqt_conv2d", "lms_conv2d", "sincnet", "sincnet_abs", "tcn", "waveform_conv1d"]]
PAIRS += [("cqt_conv2d", "conv_bilstm"), ("lms_conv2d", "conv_bilstm"), ("waveform_conv1d", "conv_bilstm")]


@pytest.mark.parametrize(("frontend", "backend"), PAIRS)
def test_padded_batch_equals_items_alone(frontend, backend):
    torch.manual_seed(0)
    model = build_model(frontend, backend, 5, SMALL.get(frontend)).eval()
    longest = model.frontend.patch_samples
    lengths = torch.tensor([longest, (3 * longest) // 4 + 7, max(longest // 2, model.min_samples)])
    wave = 0.1 * torch.randn(3, longest)
    padded = wave.clone()
    for i, n in enumerate(lengths.tolist()):
        padded[i, n:] = 1.0  # garbage in the padding must not matter
    with torch.no_grad():
        batch = model(padded, lengths)
        for i, n in enumerate(lengths.tolist()):
            alone = model(wave[i : i + 1, :n])[0]
            if model.frame_level:
                frames = int(model.output_lengths(lengths)[i])
                assert alone.shape[0] == frames
                torch.testing.assert_close(batch[i, :frames], alone, atol=1e-5, rtol=1e-4)
            else:
                torch.testing.assert_close(batch[i], alone, atol=1e-5, rtol=1e-4)


def test_without_lengths_padding_changes_the_result():
    """The masking is what makes the difference (guards against a vacuous test)."""
    torch.manual_seed(0)
    model = build_model("lms_conv2d", "autopool", 5).eval()
    wave = 0.1 * torch.randn(1, model.frontend.patch_samples)
    short = wave[:, : model.frontend.patch_samples // 2]
    padded = torch.nn.functional.pad(short, (0, wave.shape[1] - short.shape[1]))
    with torch.no_grad():
        assert not torch.allclose(model(padded), model(short), atol=1e-3)


def test_bad_lengths_are_rejected():
    model = build_model("waveform_conv1d", "autopool", 5).eval()
    wave = torch.zeros(2, 3200)
    with pytest.raises(ValueError, match=r"lengths\[1\] = 100: expected between 1361"):
        model(wave, torch.tensor([3200, 100]))
    with pytest.raises(ValueError, match=r"lengths\[0\] = 4000.*3200 \(the padded length\)"):
        model(wave, torch.tensor([4000, 3200]))
    with pytest.raises(ValueError, match=r"lengths has shape \(3,\), expected \(2,\)"):
        model(wave, torch.tensor([3200, 3200, 3200]))
