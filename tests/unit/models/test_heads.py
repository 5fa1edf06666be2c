"""Heads for the four task kinds, and the seed_compat LeakyReLU on the chord logits."""

import pytest
import torch

from autotag.models import TASK_KINDS, Head, build_model

LOGITS = torch.tensor([[2.0, -1.0, 0.5], [-3.0, 0.0, 4.0]])


def test_multiclass_head_reads_logits_with_softmax():
    head = Head(4, 3, "multiclass")
    torch.testing.assert_close(head.probabilities(LOGITS).sum(-1), torch.ones(2))
    assert head.predict(LOGITS).tolist() == [[True, False, False], [False, False, True]]
    assert not head.frame_level and not head.multilabel


def test_multilabel_head_reads_logits_with_sigmoid():
    head = Head(4, 3, "multilabel")
    torch.testing.assert_close(head.probabilities(LOGITS), torch.sigmoid(LOGITS))
    assert head.predict(LOGITS, threshold=0.5).tolist() == [[True, False, True], [False, True, True]]


@pytest.mark.parametrize("kind", ["frame_multiclass", "frame_multilabel"])
def test_frame_heads_keep_the_time_axis(kind):
    head = Head(16, 5, kind)
    logits = head(torch.randn(2, 30, 16))
    assert logits.shape == (2, 30, 5) and head.frame_level
    assert head.predict(logits).shape == (2, 30, 5)
    if kind == "frame_multiclass":
        assert (head.predict(logits).sum(-1) == 1).all()


def test_task_kind_must_fit_the_back_end():
    assert TASK_KINDS == ("multiclass", "multilabel", "frame_multiclass", "frame_multilabel")
    assert build_model("lms_conv2d", "autopool", 50, task="multilabel").task == "multilabel"
    assert build_model("cqt_conv2d", "conv_bilstm", 8, task="frame_multilabel").frame_level
    with pytest.raises(ValueError, match="'frame_multilabel' does not fit back-end AutoPoolBackend"):
        build_model("lms_conv2d", "autopool", 10, task="frame_multilabel")
    with pytest.raises(ValueError, match="'multiclass' does not fit back-end ConvBiLstmBackend"):
        build_model("cqt_conv2d", "conv_bilstm", 25, task="multiclass")
    with pytest.raises(ValueError, match="unknown task kind 'segment'"):
        Head(4, 3, "segment")


def test_seed_compat_applies_leaky_relu_to_chord_logits():
    fixed = build_model("cqt_conv2d", "conv_bilstm", 25, None, {"seed_compat": False})
    quirky = build_model("cqt_conv2d", "conv_bilstm", 25, None, {"seed_compat": True})
    quirky.head.load_state_dict(fixed.head.state_dict())
    assert quirky.head.leaky_logits and not fixed.head.leaky_logits
    embedding = torch.randn(1, 64, 16)
    torch.testing.assert_close(quirky.head(embedding), torch.nn.functional.leaky_relu(fixed.head(embedding)))
