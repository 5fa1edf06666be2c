"""Export a model to TorchScript and ONNX, with the feature computation inside or split out.

Three parts can be exported (``part=``):

- ``"full"``: waveform ``(B, N)`` → logits (and embeddings); one self-contained graph;
- ``"network"``: the front-end's features → logits (and embeddings); the features
  (log-mel, constant-Q, or the waveform as ``(B, 1, N)``) are computed outside, for instance
  by the ``"features"`` export, by ``model.frontend.features`` or by another DSP library;
- ``"features"``: waveform → features, so that ``network(features(x)) == full(x)``.

With ``embeddings=True`` the graph returns ``(logits, embeddings)``, the embeddings being the
penultimate layer (:meth:`autotag.models.AutotagModel.embed`).

Both formats come from tracing the eval-mode model on an example batch (one patch per
example by default). Batch size and input length are dynamic axes; a ``seed_compat`` model
still accepts exactly one patch length. The ONNX export uses the TorchScript-based exporter
(``dynamo=False``, opset 17: it needs ``onnx`` only, not ``onnxscript``); the log-mel STFT maps
onto the ONNX ``STFT`` operator, the constant-Q transform onto ``Conv``. torch 2.11 marks both
TorchScript and the TorchScript-based ONNX exporter as deprecated (in favour of
``torch.export``); they still work, and we silence those two notices here rather than in every
caller. Padded batches
(``lengths``) are an eager-mode feature and are not exported. ``tests/unit/models/test_export.py``
checks that each export reproduces the eager outputs (TorchScript and onnxruntime).
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from autotag.models.model import AutotagModel

EXPORT_PARTS = ("full", "network", "features")
ONNX_OPSET = 17
_DEPRECATION_NOTICES = r".*(torch\.jit\.|legacy TorchScript-based ONNX export|feature will be removed).*"


def _quiet_export_warnings() -> None:
    """Inside ``warnings.catch_warnings()``: hide tracer and exporter deprecation notices."""
    warnings.simplefilter("ignore", torch.jit.TracerWarning)
    warnings.filterwarnings("ignore", message=_DEPRECATION_NOTICES, category=DeprecationWarning)


class ExportWrapper(nn.Module):
    """The traced view of an :class:`AutotagModel` for one export part.

    Parameters
    ----------
    model
        The model (should be in eval mode).
    part
        One of :data:`EXPORT_PARTS`.
    embeddings
        Also return the embeddings (not for ``"features"``).

    Raises
    ------
    ValueError
        For an unknown part, or embeddings requested from the features part.
    """

    def __init__(self, model: AutotagModel, part: str = "full", embeddings: bool = False):
        super().__init__()
        if part not in EXPORT_PARTS:
            raise ValueError(f"unknown export part {part!r}; known: {list(EXPORT_PARTS)}")
        if part == "features" and embeddings:
            raise ValueError("the 'features' part has no embeddings; export 'network' or 'full' for them")
        self.model, self.part, self.embeddings = model, part, embeddings

    @property
    def input_name(self) -> str:
        return "features" if self.part == "network" else "waveform"

    @property
    def output_names(self) -> list[str]:
        if self.part == "features":
            return ["features"]
        return ["logits", "embeddings"] if self.embeddings else ["logits"]

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        frontend = self.model.frontend
        if self.part == "features":
            return frontend.features(x)
        features = frontend.features(x) if self.part == "full" else x
        embedding = self.model.backend(frontend.encode(features))
        logits = self.model.head(embedding)
        return (logits, embedding) if self.embeddings else logits


def example_input(model: AutotagModel, part: str = "full", batch_size: int = 2, seed: int = 0) -> torch.Tensor:
    """A random input for ``part``: one patch per example (or the features of one)."""
    generator = torch.Generator().manual_seed(seed)
    wave = 0.1 * torch.randn(batch_size, model.frontend.patch_samples, generator=generator)
    if part != "network":
        return wave
    with torch.no_grad():
        return model.frontend.features(wave)


def _prepare(model: AutotagModel, part: str, embeddings: bool,
             example: torch.Tensor | None) -> tuple[ExportWrapper, torch.Tensor]:
    wrapper = ExportWrapper(copy.deepcopy(model).cpu().eval(), part, embeddings)
    return wrapper, example_input(model, part) if example is None else example.cpu()


def export_torchscript(model: AutotagModel, path: str | Path, part: str = "full", embeddings: bool = False,
                       example: torch.Tensor | None = None) -> Path:
    """Trace ``part`` of ``model`` and save it; load it back with :func:`load_torchscript`.

    Parameters
    ----------
    model
        The model; it is copied, so its mode and device do not change.
    path
        Output file (``.pt``).
    part
        One of :data:`EXPORT_PARTS`.
    embeddings
        Also return the embeddings.
    example
        Input to trace with (default: :func:`example_input`).

    Returns
    -------
    Path
        ``path``.
    """
    wrapper, example = _prepare(model, part, embeddings, example)
    with torch.no_grad(), warnings.catch_warnings():
        _quiet_export_warnings()
        traced = torch.jit.trace(wrapper, example, check_trace=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    traced.save(str(path))
    return path


def load_torchscript(path: str | Path, device: str | torch.device = "cpu") -> torch.jit.ScriptModule:
    """Load a graph saved by :func:`export_torchscript` (no ``autotag`` code needed to run it)."""
    with warnings.catch_warnings():
        _quiet_export_warnings()
        return torch.jit.load(str(path), map_location=device)


def export_onnx(model: AutotagModel, path: str | Path, part: str = "full", embeddings: bool = False,
                example: torch.Tensor | None = None, opset: int = ONNX_OPSET) -> Path:
    """Export ``part`` of ``model`` to ONNX with dynamic batch and time axes.

    Inputs are named ``waveform`` or ``features``; outputs ``logits`` (and ``embeddings``) or
    ``features``. Parameters are those of :func:`export_torchscript`, plus ``opset`` (≥ 17,
    the first with ``STFT``).

    Raises
    ------
    ValueError
        If ``opset`` is below 17.
    ImportError
        If the ``onnx`` package is missing (``pip install autotag[dev]``).
    """
    if opset < ONNX_OPSET:
        raise ValueError(f"opset={opset}: the log-mel STFT needs ONNX opset {ONNX_OPSET} or later")
    try:
        import onnx  # noqa: F401  (the TorchScript-based exporter needs it)
    except ImportError as error:
        raise ImportError("ONNX export needs the 'onnx' package (pip install 'autotag[dev]')") from error
    wrapper, example = _prepare(model, part, embeddings, example)
    time_axis = example.ndim - 1
    axes = {wrapper.input_name: {0: "batch", time_axis: "time"}}
    for name in wrapper.output_names:
        axes[name] = {0: "batch", 1: "frames"} if model.frame_level and name != "features" else {0: "batch"}
    if part == "features":
        axes["features"] = {0: "batch", 2: "frames"}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        _quiet_export_warnings()
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx\..*")
        torch.onnx.export(wrapper, (example,), str(path), dynamo=False, opset_version=opset,
                          input_names=[wrapper.input_name], output_names=wrapper.output_names, dynamic_axes=axes)
    return path


def run_onnx(path: str | Path, x: np.ndarray | torch.Tensor, threads: int | None = None) -> dict[str, np.ndarray]:
    """Run an exported graph with onnxruntime on the CPU; outputs by name.

    ``threads`` caps onnxruntime's intra-op threads (default: its own choice, one per core).

    Raises
    ------
    ImportError
        If ``onnxruntime`` is missing (``pip install autotag[dev]``).
    """
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError("running ONNX graphs needs 'onnxruntime' (pip install 'autotag[dev]')") from error
    options = onnxruntime.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    array = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    outputs = session.run(None, {session.get_inputs()[0].name: array.astype(np.float32)})
    return {meta.name: value for meta, value in zip(session.get_outputs(), outputs)}
