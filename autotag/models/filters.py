"""The learned first-layer filter bank of a model's front-end or a checkpoint, for the report's filter plots.

Conventions
-----------
A front-end *has filters* when its first learned layer convolves the waveform itself:

- a SincNet layer (any module with a ``filters()`` method returning ``(n, 1, taps)`` and a
  ``sample_rate``, :class:`autotag.models.sinc.SincConv`): kind ``"sincnet"``, the band-passes
  the cut-off parameters currently describe, in filter order (initially mel order, so drift
  away from the mel scale shows in the plot);
- a ``torch.nn.Conv1d`` with one input channel and at least :data:`MIN_TAPS` taps applied to
  the waveform (the front-end's ``features`` has a one-sample hop): kind ``"conv1d"``, sorted
  by peak frequency so the bank reads low to high.

:func:`checkpoint_filters` reads the bank of a checkpoint: the model is built from its
``meta.json`` first and the weights are read only when that front-end has a bank.

Log-mel and CQT front-ends (``Conv2d`` on a spectrogram) and the TCN (2-tap causal
convolutions, too short to have a meaningful frequency response) have none.

References
----------
Ravanelli, Bengio, "Speaker recognition from raw waveform with SincNet", IEEE SLT 2018.
Peeters, G. et al., "Deep Learning 101 for Audio-based MIR", ISMIR 2024 tutorial: the FFT
magnitude of each learned SincNet/Conv1d kernel.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from autotag.models import checkpoint

MIN_TAPS = 16
"""Shortest Conv1d kernel treated as a filter bank (a 2-tap kernel has no useful response)."""


@dataclass(frozen=True)
class FilterBank:
    """A learned filter bank: ``weights`` ``(n_filters, taps)`` at ``sample_rate`` Hz."""

    kind: str  # "sincnet" or "conv1d"
    module: str  # dotted name inside the front-end
    weights: np.ndarray
    sample_rate: float


def _on_waveform(frontend: nn.Module) -> bool:
    features = getattr(frontend, "features", None)
    return getattr(features, "hop_length", None) == 1


def _sorted_by_peak(weights: np.ndarray) -> np.ndarray:
    n_fft = max(512, weights.shape[1])
    peaks = np.abs(np.fft.rfft(weights, n=n_fft, axis=1)).argmax(axis=1)
    return weights[np.argsort(peaks, kind="stable")]


@torch.no_grad()
def learned_filters(frontend: nn.Module) -> FilterBank | None:
    """The first waveform filter bank of ``frontend`` (rules in the module docstring), or None."""
    sample_rate = float(getattr(frontend, "sample_rate", 0) or 0)
    for name, module in frontend.named_modules():
        if callable(getattr(module, "filters", None)) and hasattr(module, "sample_rate"):
            bank = module.filters().detach().cpu().numpy()
            weights = bank.reshape(-1, bank.shape[-1]).astype(np.float64)
            return FilterBank("sincnet", name, weights, float(module.sample_rate))
        if isinstance(module, nn.Conv1d):
            if module.in_channels != 1 or module.kernel_size[0] < MIN_TAPS or not _on_waveform(frontend):
                return None  # the first convolution is not a waveform filter bank
            weights = module.weight.detach().cpu().numpy()[:, 0, :].astype(np.float64)
            return FilterBank("conv1d", name, _sorted_by_peak(weights), sample_rate)
    return None


def checkpoint_filters(checkpoint_dir: str | os.PathLike[str] | None) -> FilterBank | None:
    """The learned filter bank of a checkpoint's front-end, or None (no checkpoint, no bank)."""
    if checkpoint_dir is None:
        return None
    model = checkpoint.model_from_meta(checkpoint.read_meta(checkpoint_dir))
    if learned_filters(model.frontend) is None:
        return None  # a log-mel or CQT front-end: no need to read the weights
    model.load_state_dict(checkpoint.weights(checkpoint_dir))
    return learned_filters(model.frontend)
