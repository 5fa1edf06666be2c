"""The one model class: front-end → back-end → head.

Input: waveform ``(B, N)`` float32 at ``frontend.sample_rate`` (22,050 Hz).

- Track-level back-ends (``autopool``): ``embed`` gives ``(B, D)``, ``forward`` gives logits
  ``(B, num_outputs)``.
- Frame-level back-ends (``conv_bilstm``): ``embed`` gives ``(B, T, D)``, ``forward`` gives
  logits ``(B, T, num_outputs)``; ``model.frame_level`` is True, frame ``t`` is centred at
  ``model.frontend.frame_times(T)[t]`` seconds and ``model.frame_rate`` frames come per second.

Padded batches: pass ``lengths`` (valid samples per example, ``(B,)`` int64) to ``forward``
or ``embed``. Normalisation and pooling statistics then cover each example's own samples
only and the padding is zeroed, so in eval mode every example gets the output it would get
alone (frame-level outputs: the first ``model.output_lengths(lengths)[b]`` frames; the rest
is padding to crop). In training mode BatchNorm's batch statistics still include padded
frames; training uses whole patches, so this does not arise there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from autotag.data.tasks import check_task_kind
from autotag.models.backends import BackEnd
from autotag.models.frontends import FrontEnd
from autotag.models.heads import Head
from autotag.models.registry import BACKENDS, FRONTENDS


class AutotagModel(nn.Module):
    """Front-end + back-end + :class:`~autotag.models.heads.Head`.

    Parameters
    ----------
    frontend, backend
        Built components (see :func:`build_model`).
    num_outputs
        Classes or tags.
    task
        One of :data:`autotag.data.tasks.TASK_KINDS`; ``None``: ``"multiclass"`` for a
        track-level back-end, ``"frame_multiclass"`` for a frame-level one.

    Raises
    ------
    ValueError
        If the task kind is unknown or its level (track / frame) differs from the back-end's.
    """

    def __init__(self, frontend: FrontEnd, backend: BackEnd, num_outputs: int, task: str | None = None):
        super().__init__()
        kind = check_task_kind(task or ("frame_multiclass" if backend.frame_level else "multiclass"))
        if kind.startswith("frame_") != backend.frame_level:
            level = "frame" if backend.frame_level else "track"
            raise ValueError(f"task kind {kind!r} does not fit back-end {type(backend).__name__}, "
                             f"which gives {level}-level outputs")
        self.frontend = frontend
        self.backend = backend
        self.head = Head(backend.embedding_dim, num_outputs, kind, leaky_logits=backend.leaky_logits)

    @property
    def task(self) -> str:
        """The task kind the head is read for."""
        return self.head.kind

    @property
    def frame_level(self) -> bool:
        """Whether logits and embeddings keep the time axis ``(B, T, ·)``."""
        return self.backend.frame_level

    @property
    def frame_rate(self) -> float:
        """Output frames per second of a frame-level model (the front-end's)."""
        return self.frontend.frame_rate

    @property
    def min_samples(self) -> int:
        """Shortest input that yields one output (found by bisection; lengths grow with samples)."""
        low, high = 1, max(self.frontend.patch_samples, 1)
        while not self._long_enough(high):
            high *= 2
        while low < high:
            middle = (low + high) // 2
            low, high = (low, middle) if self._long_enough(middle) else (middle + 1, high)
        return low

    def _long_enough(self, num_samples: int) -> bool:
        return self.frontend.output_frames(num_samples) >= self.backend.min_input_frames

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Valid output frames of a frame-level model for ``lengths`` valid samples."""
        return self.backend.output_lengths(self.frontend.output_lengths(lengths))

    def embed(self, wave: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The penultimate layer: ``(B, embedding_dim)`` or, frame-level, ``(B, T, embedding_dim)``.

        Raises
        ------
        ValueError
            If ``wave`` is not ``(batch, samples)``, or ``lengths`` does not fit it.
        """
        if wave.ndim != 2:
            raise ValueError(f"expected a waveform batch (batch, samples), got shape {tuple(wave.shape)}")
        if lengths is None:
            return self.backend(self.frontend(wave))
        lengths = self._check_lengths(wave, lengths)
        wave = wave * (torch.arange(wave.shape[1], device=wave.device) < lengths.unsqueeze(1))
        return self.backend(self.frontend(wave, lengths), self.frontend.output_lengths(lengths))

    def embed_patches(self, track: torch.Tensor, starts: Sequence[int], patch_samples: int) -> torch.Tensor:
        """:meth:`embed` of the patches ``track[s : s + patch_samples]`` for each ``s`` of ``starts``
        (``track`` 1-D). Features that overlapping patches can share (the log-mel's frames) are
        computed once for all of them (``patch_features``); other front-ends see the stacked patches."""
        return self.embed_inputs(self.patch_inputs(track, starts, patch_samples))

    def patch_inputs(self, track: torch.Tensor, starts: Sequence[int], patch_samples: int) -> torch.Tensor:
        """What :meth:`embed_inputs` takes for the patches of ``track`` at ``starts``: their shared
        features (``patch_features``) or the stacked patches. Inputs of several tracks concatenate
        along the first axis into one forward pass (the split pipeline's model actors)."""
        features = getattr(self.frontend, "features", None)
        if hasattr(features, "patch_features"):
            return features.patch_features(track, starts, patch_samples)
        return torch.stack([track[s : s + patch_samples] for s in starts])

    def embed_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """:meth:`embed` of :meth:`patch_inputs` (of one track, or of several concatenated)."""
        if hasattr(getattr(self.frontend, "features", None), "patch_features"):
            return self.backend(self.frontend.encode(inputs))
        return self.embed(inputs)

    def _check_lengths(self, wave: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        lengths = torch.as_tensor(lengths, device=wave.device).long()
        if lengths.shape != (wave.shape[0],):
            raise ValueError(f"lengths has shape {tuple(lengths.shape)}, expected ({wave.shape[0]},)")
        shortest = self.min_samples
        for i, n in enumerate(lengths.tolist()):
            if not shortest <= n <= wave.shape[1]:
                raise ValueError(f"lengths[{i}] = {n}: expected between {shortest} (one output) and "
                                 f"{wave.shape[1]} (the padded length)")
        return lengths

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, num_outputs)`` or, frame-level, ``(B, T, num_outputs)``."""
        return self.head(self.embed(wave, lengths))

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Softmax or sigmoid of ``logits`` according to the task kind."""
        return self.head.probabilities(logits)


def build_model(frontend: str, backend: str, num_outputs: int, frontend_params: Mapping[str, Any] | None = None,
                backend_params: Mapping[str, Any] | None = None, task: str | None = None) -> AutotagModel:
    """Compose a registered front-end and back-end; shapes between them are inferred.

    Parameters
    ----------
    frontend, backend
        Registered names (``conf/frontend/<name>.yaml``, ``conf/backend/<name>.yaml``).
    num_outputs
        Classes or tags.
    frontend_params, backend_params
        Constructor parameters (the YAML ``params``); missing ones take their defaults.
    task
        Task kind for the head (see :class:`AutotagModel`).

    Raises
    ------
    KeyError
        Unknown component name (the message lists the known ones).
    TypeError
        A parameter the component does not accept.
    ValueError
        Components whose shapes do not fit together, or a task kind that does not fit.
    """
    front = FRONTENDS.build(frontend, frontend_params)
    back = BACKENDS.build(backend, backend_params, in_channels=front.out_channels, in_frames=front.output_frames())
    return AutotagModel(front, back, num_outputs, task)


def compatible_pairs(frontend_params: Mapping[str, Mapping[str, Any]] | None = None,
                     backend_params: Mapping[str, Mapping[str, Any]] | None = None) -> list[tuple[str, str]]:
    """Every ``(front-end, back-end)`` pair whose shapes fit, with default (or given) parameters."""
    pairs = []
    for front in FRONTENDS.names():
        for back in BACKENDS.names():
            try:
                build_model(front, back, 2, (frontend_params or {}).get(front), (backend_params or {}).get(back))
            except ValueError:
                continue
            pairs.append((front, back))
    return pairs
