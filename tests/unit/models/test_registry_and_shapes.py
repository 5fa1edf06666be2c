"""Every allowed front-end × back-end pair builds and gives the documented shapes."""

import pickle

import pytest
import torch

from autotag.models import BACKENDS, FRONTENDS, build_model, compatible_pairs

FRONTEND_NAMES = ["cqt_conv2d", "crema_cqt", "lms_conv2d", "musicnn", "musicnn_vgg", "sincnet", "sincnet_abs", "tcn",
                  "waveform_conv1d"]
BACKEND_NAMES = ["autopool", "conv_bilstm", "crema_chord", "musicnn_flatten", "musicnn_pool"]
EMBEDDING = {"autopool": 64, "musicnn_pool": 200}
FRAME_EMBEDDING = {"conv_bilstm": 16, "crema_chord": 294}
# musicnn's VGG leaves 2 frames per 3-s patch: too few for autopool's two conv + pool stages.
PAIRS = [(f, b) for f in FRONTEND_NAMES for b in BACKEND_NAMES if (f, b) != ("musicnn_vgg", "autopool")]
# Shorter CQT patches keep the test fast; the layers are the same.
SMALL = {"cqt_conv2d": {"patch_frames": 96, "patch_hop_frames": 48}, "crema_cqt": {"patch_frames": 32}}


def test_registries_hold_the_zoo():
    assert FRONTENDS.names() == FRONTEND_NAMES
    assert BACKENDS.names() == BACKEND_NAMES
    assert compatible_pairs(SMALL) == PAIRS


@pytest.mark.parametrize(("frontend", "backend"), PAIRS)
def test_output_shapes(frontend, backend):
    torch.manual_seed(0)
    model = build_model(frontend, backend, 7, SMALL.get(frontend)).eval()
    frames = model.frontend.output_frames()
    wave = 0.1 * torch.randn(2, model.frontend.patch_samples)
    with torch.no_grad():
        logits, embedding = model(wave), model.embed(wave)
    if backend in FRAME_EMBEDDING:
        assert model.frame_level and model.task == "frame_multiclass"
        assert logits.shape == (2, frames, 7)
        assert embedding.shape == (2, frames, FRAME_EMBEDDING[backend])
    else:
        assert not model.frame_level and model.task == "multiclass"
        assert logits.shape == (2, 7)
        assert embedding.shape == (2, EMBEDDING.get(backend, model.frontend.out_channels * frames))
    assert torch.allclose(model.head(embedding), logits)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize(("frontend", "frames", "patch", "hop", "rate"), [
    ("lms_conv2d", 60, 64_512, 32_768, 22_050 / 1024),
    ("waveform_conv1d", 65, 3200, 1000, 22_050 / 45),
    ("sincnet_abs", 983, 3200, 1000, 22_050 / 3),
    ("tcn", 1066, 3200, 1000, 22_050 / 3),
    ("cqt_conv2d", 1024, 523_776, 65_536, 22_050 / 512),
    ("musicnn", 187, 65_620, 65_974, 16_000 / 256),  # 187 frames at 16 kHz after resampling, 3 s hop
    ("musicnn_vgg", 2, 65_620, 65_974, 16_000 / 256 / 64),
    ("crema_cqt", 256, 524_288, 131_072, 22_050 / 2048),  # crema's 44.1 kHz hop 4096: the same 10.77 frames/s
])
def test_time_base_per_recipe(frontend, frames, patch, hop, rate):
    front = FRONTENDS.build(frontend)
    assert (front.patch_samples, front.patch_hop_samples, front.sample_rate) == (patch, hop, 22_050)
    assert front.output_frames() == frames
    assert front.frame_rate == pytest.approx(rate)


def test_frame_times_of_chord_model():
    model = build_model("cqt_conv2d", "conv_bilstm", 25)
    assert model.frame_rate == pytest.approx(43.066, abs=1e-3)
    assert model.frontend.frame_times(3).tolist() == pytest.approx([0.0, 512 / 22_050, 1024 / 22_050])


def test_unknown_names_and_parameters_fail_loudly():
    with pytest.raises(KeyError, match="known: .*lms_conv2d"):
        build_model("mel", "autopool", 10)
    with pytest.raises(TypeError, match="unknown parameter.*'kernal_size'"):
        build_model("sincnet", "autopool", 10, {"kernal_size": 101})
    with pytest.raises(TypeError, match="unknown parameter.*'hiden'"):
        build_model("lms_conv2d", "autopool", 10, None, {"hiden": 64})


def test_incompatible_shapes_fail_with_reason():
    with pytest.raises(ValueError, match="needs at least 25 input frames.*gives 16"):
        build_model("lms_conv2d", "autopool", 10, {"patch_frames": 20})
    assert ("lms_conv2d", "autopool") not in compatible_pairs({"lms_conv2d": {"patch_frames": 20}})
    with pytest.raises(ValueError, match="leave no rows"):
        build_model("cqt_conv2d", "conv_bilstm", 25, {"freq_layers": 5})


def test_seed_compat_model_rejects_other_lengths():
    model = build_model("waveform_conv1d", "autopool", 10, {"seed_compat": True}, {"seed_compat": True})
    with pytest.raises(ValueError, match=r"seed_compat fixes the input to one patch length"):
        model(torch.zeros(1, 4000))


def test_default_model_accepts_longer_input():
    model = build_model("waveform_conv1d", "autopool", 10).eval()
    assert model(torch.zeros(1, 3 * model.frontend.patch_samples)).shape == (1, 10)
    with pytest.raises(ValueError, match="expected a waveform batch"):
        model(torch.zeros(1, 1, 3200))


@pytest.mark.parametrize("frontend", FRONTEND_NAMES)
def test_models_pickle_and_reload_from_state_dict(frontend):
    """Ray pickles models; checkpoints hold learned weights only (derived DSP buffers are rebuilt)."""
    backend = {"cqt_conv2d": "conv_bilstm", "musicnn_vgg": "musicnn_flatten"}.get(frontend, "autopool")
    torch.manual_seed(0)
    model = build_model(frontend, backend, 4, SMALL.get(frontend)).eval()
    state = model.state_dict()
    assert not any(key.endswith(("window", "filterbank", "phase")) or ".octaves." in key for key in state)
    fresh = build_model(frontend, backend, 4, SMALL.get(frontend)).eval()
    fresh.load_state_dict(state, strict=True)
    wave = 0.1 * torch.randn(1, model.frontend.patch_samples)
    with torch.no_grad():
        expected = model(wave)
        torch.testing.assert_close(fresh(wave), expected)
        torch.testing.assert_close(pickle.loads(pickle.dumps(model))(wave), expected)
