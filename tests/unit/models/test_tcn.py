"""The TCN is causal: future samples never change past outputs."""

import pickle

import pytest
import torch

from autotag.models import build_model
from autotag.models.tcn import TemporalConvNet


def test_changing_future_samples_leaves_past_outputs_unchanged():
    torch.manual_seed(0)
    tcn = TemporalConvNet(1, [4, 8, 16, 32], kernel_size=2, dropout=0.2).eval()
    x = torch.randn(2, 1, 500)
    changed = x.clone()
    changed[..., 300:] = torch.randn(2, 1, 200)
    with torch.no_grad():
        before, after = tcn(x), tcn(changed)
    assert before.shape == (2, 32, 500)
    assert torch.equal(before[..., :300], after[..., :300])
    assert not torch.allclose(before[..., 300:], after[..., 300:])


def test_receptive_field_is_bounded():
    """Dilations 1, 2, 4, 8 with two k=2 convolutions each: an impulse reaches at most 31 outputs."""
    torch.manual_seed(0)
    tcn = TemporalConvNet(1, [4, 8, 16, 32]).eval()
    assert tcn.receptive_field == 31
    x = torch.randn(1, 1, 200)
    changed = x.clone()
    changed[..., 100] += 1.0
    with torch.no_grad():
        moved = (tcn(changed) - tcn(x)).abs().amax(dim=1)[0] > 0
    moved_at = moved.nonzero().flatten().tolist()
    assert moved_at[0] == 100  # never before the impulse
    assert moved_at[-1] <= 130  # nor past the receptive field (ReLUs may silence some in between)


def test_tcn_front_end_uses_weight_norm_and_dropout():
    tcn = build_model("tcn", "autopool", 10).frontend.block.conv
    conv = tcn.levels[3].conv2
    assert conv.weight_g.shape == (32, 1, 1) and conv.weight_v.shape == (32, 32, 2)
    torch.testing.assert_close(conv.weight().norm(dim=(1, 2)), conv.weight_g.flatten())
    assert conv.weight().std().item() == pytest.approx(0.01, rel=0.3)  # N(0, 0.01) initialisation
    assert [level.conv1.dilation for level in tcn.levels] == [1, 2, 4, 8]
    assert all(level.dropout.p == 0.2 for level in tcn.levels)


def test_tcn_model_pickles():
    """Ray ships models between processes by pickling them."""
    model = build_model("tcn", "autopool", 10).eval()
    copy = pickle.loads(pickle.dumps(model))
    wave = torch.randn(1, 3200)
    with torch.no_grad():
        torch.testing.assert_close(copy(wave), model(wave))
