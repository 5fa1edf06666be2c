"""The one model class: front-end → back-end → linear head."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from autotag.models.registry import BACKENDS, FRONTENDS


class AutotagModel(nn.Module):
    """Waveform patches ``(B, N)`` at ``frontend.sample_rate`` → logits ``(B, num_outputs)``."""

    def __init__(self, frontend: nn.Module, backend: nn.Module, num_outputs: int):
        super().__init__()
        self.frontend = frontend
        self.backend = backend
        self.head = nn.Linear(backend.embedding_dim, num_outputs)

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        """The penultimate layer: ``(B, backend.embedding_dim)``."""
        return self.backend(self.frontend(wave))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(wave))


def build_model(frontend: str, backend: str, num_outputs: int, frontend_params: Mapping[str, Any] | None = None,
                backend_params: Mapping[str, Any] | None = None) -> AutotagModel:
    """Compose a registered front-end and back-end; shapes between them are inferred.

    Raises
    ------
    KeyError
        Unknown component name (the message lists the known ones).
    TypeError
        A parameter the component does not accept.
    """
    front = FRONTENDS.build(frontend, frontend_params)
    back = BACKENDS.build(backend, backend_params, in_channels=front.out_channels, in_frames=front.output_frames())
    return AutotagModel(front, back, num_outputs)
