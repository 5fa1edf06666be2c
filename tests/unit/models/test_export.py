"""TorchScript and ONNX exports reproduce the eager model (onnxruntime for ONNX)."""

import numpy as np
import pytest
import torch

from autotag.models import build_model
from autotag.models.export import (
    ExportWrapper,
    example_input,
    export_onnx,
    export_torchscript,
    load_torchscript,
    run_onnx,
)

SMALL = {"cqt_conv2d": {"patch_frames": 96, "patch_hop_frames": 48}}
NATURAL = [("cqt_conv2d", "conv_bilstm"), ("lms_conv2d", "autopool"), ("sincnet", "autopool"),
           ("sincnet_abs", "autopool"), ("tcn", "autopool"), ("waveform_conv1d", "autopool"),
           ("musicnn", "musicnn_pool"), ("musicnn_vgg", "musicnn_flatten")]
NO_SEED_COMPAT = {"musicnn", "musicnn_vgg", "musicnn_pool", "musicnn_flatten"}  # published models: no tutorial quirk
ATOL = 1e-4


def model_for(frontend: str, backend: str, seed_compat: bool = False):
    torch.manual_seed(0)
    params = {**SMALL.get(frontend, {}), **({} if frontend in NO_SEED_COMPAT else {"seed_compat": seed_compat})}
    backend_params = {} if backend in NO_SEED_COMPAT else {"seed_compat": seed_compat}
    return build_model(frontend, backend, 6, params, backend_params).eval()


def eager(model, part: str, x: torch.Tensor, embeddings: bool) -> list[np.ndarray]:
    with torch.no_grad():
        out = ExportWrapper(model, part, embeddings)(x)
    return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]


def check_both_formats(model, tmp_path, part: str, embeddings: bool, x: torch.Tensor) -> None:
    expected = eager(model, part, x, embeddings)
    scripted = load_torchscript(export_torchscript(model, tmp_path / f"{part}.pt", part, embeddings))
    with torch.no_grad():
        got = scripted(x)
    got = [t.numpy() for t in (got if isinstance(got, tuple) else (got,))]
    onnx_out = list(run_onnx(export_onnx(model, tmp_path / f"{part}.onnx", part, embeddings), x, threads=1).values())
    assert len(got) == len(onnx_out) == len(expected)
    for want, traced, ort in zip(expected, got, onnx_out):
        assert traced.shape == ort.shape == want.shape
        np.testing.assert_allclose(traced, want, atol=ATOL, rtol=1e-4)
        np.testing.assert_allclose(ort, want, atol=ATOL, rtol=1e-4)


@pytest.mark.parametrize(("frontend", "backend"), NATURAL)
def test_full_model_with_embeddings_round_trips(frontend, backend, tmp_path):
    model = model_for(frontend, backend)
    x = example_input(model, "full", batch_size=3, seed=1)  # traced with 2: batch is dynamic
    check_both_formats(model, tmp_path, "full", True, x)


@pytest.mark.parametrize(("frontend", "backend"), [("lms_conv2d", "autopool"), ("cqt_conv2d", "conv_bilstm")])
def test_split_features_and_network_round_trip(frontend, backend, tmp_path):
    model = model_for(frontend, backend)
    wave = example_input(model, "full", batch_size=2, seed=2)
    check_both_formats(model, tmp_path, "features", False, wave)
    features = example_input(model, "network", batch_size=2, seed=2)
    check_both_formats(model, tmp_path, "network", False, features)
    # network(features(x)) is the full model
    features_out = run_onnx(export_onnx(model, tmp_path / "f.onnx", "features"), wave, threads=1)["features"]
    composed = run_onnx(export_onnx(model, tmp_path / "n.onnx", "network"), features_out, threads=1)
    np.testing.assert_allclose(composed["logits"], eager(model, "full", wave, False)[0], atol=ATOL, rtol=1e-4)


def test_seed_compat_model_round_trips(tmp_path):
    model = model_for("lms_conv2d", "autopool", seed_compat=True)
    check_both_formats(model, tmp_path, "full", False, example_input(model, "full", batch_size=2, seed=3))


def test_input_length_is_dynamic(tmp_path):
    model = model_for("lms_conv2d", "autopool")
    longer = 0.1 * torch.randn(1, 2 * model.frontend.patch_samples + 500)
    check_both_formats(model, tmp_path, "full", False, longer)


def test_bad_requests_fail_clearly(tmp_path):
    model = model_for("waveform_conv1d", "autopool")
    with pytest.raises(ValueError, match="unknown export part 'encoder'"):
        export_onnx(model, tmp_path / "x.onnx", part="encoder")
    with pytest.raises(ValueError, match="'features' part has no embeddings"):
        export_torchscript(model, tmp_path / "x.pt", part="features", embeddings=True)
    with pytest.raises(ValueError, match="opset 17"):
        export_onnx(model, tmp_path / "x.onnx", opset=16)
    assert model.training is False and not (tmp_path / "x.onnx").exists()
