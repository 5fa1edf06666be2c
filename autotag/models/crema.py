"""crema's structured chord model (McFee & Bello) in PyTorch: the ``crema_cqt`` front-end and the
``crema_chord`` back-end.

A layer-for-layer reimplementation of the Keras 2.2.2 model of crema 0.2.0
(``crema/models/chord/model.h5``), laid out so that every Keras weight maps onto one tensor
here (:mod:`autotag.pretrained.crema`). Keras works channels-last on ``(time, bins, harmonics)``;
here the input is ``(B, harmonics, time, bins)`` and the same arithmetic follows:

front-end, on crema's harmonic log-CQT (:class:`autotag.features.cqt.HarmonicLogCQT`):

- ``BatchNorm`` over the 2 harmonic channels;
- ``Conv2d(2 → 1, 5 × 5, 'same')`` → ReLU → ``BatchNorm``;
- ``Conv2d(1 → 72, 1 × 216, 'valid')`` → ReLU → ``BatchNorm``: one 72-d vector per frame,
  ``(B, 72, T)``.

back-end (frame-level, no temporal down-sampling):

- ``Bidirectional(GRU(128))`` → ``BatchNorm`` → ``Bidirectional(GRU(128))``: Keras GRUs with
  ``reset_after=False`` (the reset gate multiplies the previous state *before* the recurrent
  kernel, unlike ``torch.nn.GRU``) and ``hard_sigmoid`` gates (``clip(0.2 x + 0.5, 0, 1)``),
  directions concatenated (forward first) — see :class:`KerasGRU`;
- the structured heads on the 256-d GRU output: ``pitch`` (12, sigmoid), ``root`` (13,
  softmax) and ``bass`` (13, softmax), available from :meth:`CremaChord.structure`;
- ``concat(gru, pitch, root, bass)`` (294) → ``BatchNorm``: the embedding. The model's head is
  crema's ``chord_tag`` layer (170 classes, softmax).

Every ``BatchNorm`` uses Keras' ε = 0.001.

References
----------
B. McFee and J. P. Bello, "Structured training for large-vocabulary chord recognition", ISMIR 2017.
https://github.com/bmcfee/crema (ISC licence, © 2017 Brian McFee).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.nn import functional as F

from autotag.features.cqt import HarmonicLogCQT
from autotag.models.backends import BackEnd
from autotag.models.frontends import FrontEnd
from autotag.models.registry import BACKENDS, FRONTENDS

KERAS_BN_EPS = 1e-3
"""``keras.layers.BatchNormalization``'s default epsilon."""


@FRONTENDS.register("crema_cqt")
class CremaCqt(FrontEnd):
    """crema's harmonic log-CQT and its two convolutions: waveform → ``(B, filters, T)``.

    Input: waveform ``(B, N)`` at 22,050 Hz; crema computes the same CQT at 44,100 Hz with hop
    4,096 (the same 10.77 frames per second; every bin lies below 4.2 kHz). Output frame ``t``
    covers samples ``[t · hop, (t + 1) · hop)`` as crema's decoder reads it (centre offset half a
    hop), and a partial last frame is dropped, as crema does.

    Parameters
    ----------
    hop_length
        CQT hop at 22,050 Hz (2,048, i.e. crema's 4,096 at 44.1 kHz).
    fmin, n_octaves, over_sample, harmonics
        crema's pump: C1 (32.70 Hz), 6 octaves, 3 bins per semitone (216 bins), harmonics 1 and 2.
    top_db
        Floor of the log-amplitude below each harmonic's maximum (librosa's 80 dB).
    patch_frames, patch_hop_frames
        Training patch and hop in frames (256 and 64: 23.8 s and 5.9 s). At inference a track
        that fits in one patch runs as one unpadded pass (:attr:`track_context`), equal to crema.
    smooth_kernel, filters
        crema's ``Conv2D(1, 5 × 5)`` and ``Conv2D(72, 1 × bins)``.
    """

    track_context = True  # the dB reference is the input's maximum, and the BiGRU sees all of it

    def __init__(self, hop_length: int = 2048, fmin: float = 32.70319566257483, n_octaves: int = 6,
                 over_sample: int = 3, harmonics: tuple[int, ...] = (1, 2), top_db: float = 80.0,
                 patch_frames: int = 256, patch_hop_frames: int = 64, smooth_kernel: int = 5, filters: int = 72):
        super().__init__()
        if smooth_kernel % 2 == 0:
            raise ValueError(f"crema_cqt: smooth_kernel={smooth_kernel}, expected an odd width ('same' padding)")
        self.features = HarmonicLogCQT(self.sample_rate, hop_length, fmin, n_octaves, 12 * over_sample,
                                       tuple(harmonics), top_db)
        self.patch_samples = self.features.samples_for_frames(patch_frames)
        self.patch_hop_samples = patch_hop_frames * hop_length
        self.output_hop_samples, self.output_offset_samples = hop_length, hop_length / 2
        channels = len(harmonics)
        self.input_norm = nn.BatchNorm2d(channels, eps=KERAS_BN_EPS)
        self.smooth = nn.Conv2d(channels, 1, smooth_kernel, padding=smooth_kernel // 2)
        self.smooth_norm = nn.BatchNorm2d(1, eps=KERAS_BN_EPS)
        self.bins = nn.Conv2d(1, filters, (1, self.features.n_bins))
        self.bins_norm = nn.BatchNorm2d(filters, eps=KERAS_BN_EPS)
        self.out_channels = filters

    def encoded_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return lengths

    def encode(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, harmonics, T, bins)`` dB → ``(B, filters, T)``."""
        x = self.smooth_norm(F.relu(self.smooth(self.input_norm(features))))
        return self.bins_norm(F.relu(self.bins(x))).squeeze(3)


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Keras 2's ``hard_sigmoid``: ``clip(0.2 x + 0.5, 0, 1)`` (not torch's ``x / 6 + 0.5``)."""
    return (0.2 * x + 0.5).clamp(0.0, 1.0)


class KerasGRU(nn.Module):
    """Bidirectional Keras GRU, ``reset_after=False``, ``hard_sigmoid`` gates, ``tanh`` candidate.

    Per direction, with the gates in Keras' order ``[z, r, h]`` along the kernels' last axis::

        z = hard_sigmoid(x W_z + b_z + h U_z)
        r = hard_sigmoid(x W_r + b_r + h U_r)
        ĥ = tanh(x W_h + b_h + (r ⊙ h) U_h)
        h' = z ⊙ h + (1 − z) ⊙ ĥ

    Both directions run in one batched step (``bmm``); the backward one reads the sequence from
    its end and its outputs are put back in time order; outputs are ``[forward, backward]``.

    Parameters
    ----------
    in_features, units
        Input size and units per direction.
    """

    def __init__(self, in_features: int, units: int):
        super().__init__()
        self.units = units
        self.kernel = nn.Parameter(torch.zeros(2, in_features, 3 * units))  # (direction, in, [z r h])
        self.recurrent_kernel = nn.Parameter(torch.zeros(2, units, 3 * units))
        self.bias = nn.Parameter(torch.zeros(2, 3 * units))
        for weight in (self.kernel, self.recurrent_kernel):
            nn.init.xavier_uniform_(weight)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, T, in)`` → ``(B, T, 2 · units)``. With ``lengths``, the backward direction of
        each example starts at its own last valid frame and outputs past it are zero."""
        batch, steps, _ = x.shape
        u = self.units
        backward = x.flip(1) if lengths is None else _reverse_valid(x, lengths)
        inputs = torch.stack([x, backward])  # (2, B, T, in)
        projected = torch.einsum("dbti,dio->dtbo", inputs, self.kernel) + self.bias[:, None, None, :]
        gates_kernel = self.recurrent_kernel[..., : 2 * u].contiguous()
        candidate_kernel = self.recurrent_kernel[..., 2 * u :].contiguous()
        out = _scan()(projected, gates_kernel, candidate_kernel, u)  # (2, B, T, u)
        forward_out = out[0]
        backward_out = out[1].flip(1) if lengths is None else _reverse_valid(out[1], lengths)
        result = torch.cat([forward_out, backward_out], dim=-1)
        if lengths is not None:
            result = result * (torch.arange(steps, device=x.device)[None, :, None] < lengths[:, None, None])
        return result


def keras_gru_scan(projected: torch.Tensor, gates_kernel: torch.Tensor, candidate_kernel: torch.Tensor,
                   units: int) -> torch.Tensor:
    """The recurrence of :class:`KerasGRU` over ``projected`` ``(directions, T, B, 3 · units)`` (the
    inputs through the kernel, plus the bias): ``(directions, B, T, units)``."""
    h = projected.new_zeros(projected.shape[0], projected.shape[2], units)
    outputs = []
    for t in range(projected.shape[1]):
        step = projected[:, t]
        gates = (0.2 * (step[..., : 2 * units] + torch.bmm(h, gates_kernel)) + 0.5).clamp(0.0, 1.0)  # hard_sigmoid
        z, r = gates[..., :units], gates[..., units:]
        candidate = torch.tanh(step[..., 2 * units :] + torch.bmm(r * h, candidate_kernel))
        h = z * h + (1 - z) * candidate
        outputs.append(h)
    return torch.stack(outputs, dim=2)


_SCRIPTED: list = []


def _scan():
    """:func:`keras_gru_scan` compiled by TorchScript on first use (the per-step interpreter overhead
    dominates this small recurrence: about twice as fast on CPU); autograd works through it.
    torch 2.11 marks ``torch.jit.script`` deprecated (its successor, ``torch.compile``, needs a C
    compiler at run time); where scripting is unavailable the same function runs eagerly."""
    if not _SCRIPTED:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                _SCRIPTED.append(torch.jit.script(keras_gru_scan))
        except (AttributeError, RuntimeError):
            _SCRIPTED.append(keras_gru_scan)
    return _SCRIPTED[0]


def _reverse_valid(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each example's first ``lengths[b]`` steps in reverse order, padding left after them."""
    steps = x.shape[1]
    index = torch.arange(steps, device=x.device)[None, :]
    lengths = lengths.to(x.device)[:, None]
    source = torch.where(index < lengths, lengths - 1 - index, index)
    return x.gather(1, source[..., None].expand_as(x))


@BACKENDS.register("crema_chord")
class CremaChord(BackEnd):
    """crema's recurrent back-end with its structured heads; frame-level.

    Parameters
    ----------
    in_channels, in_frames
        Shape of the front-end output (72 channels for :class:`CremaCqt`; ``in_frames`` unused).
    units
        GRU units per direction (128).
    pitch_classes, root_classes
        Sizes of the structured heads: 12 pitch classes (sigmoid), 13 roots and basses
        (12 + no-chord, softmax).
    """

    frame_level = True

    def __init__(self, in_channels: int, in_frames: int, units: int = 128, pitch_classes: int = 12,
                 root_classes: int = 13):
        super().__init__()
        self.gru1 = KerasGRU(in_channels, units)
        self.gru_norm = nn.BatchNorm1d(2 * units, eps=KERAS_BN_EPS)
        self.gru2 = KerasGRU(2 * units, units)
        self.pitch = nn.Linear(2 * units, pitch_classes)
        self.root = nn.Linear(2 * units, root_classes)
        self.bass = nn.Linear(2 * units, root_classes)
        self.embedding_dim = 2 * units + pitch_classes + 2 * root_classes
        self.structure_norm = nn.BatchNorm1d(self.embedding_dim, eps=KERAS_BN_EPS)

    def recurrent(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, C, T)`` → the second BiGRU's output ``(B, T, 2 · units)``."""
        h = self.gru1(x.transpose(1, 2), lengths)
        h = self.gru_norm(h.transpose(1, 2)).transpose(1, 2)
        return self.gru2(h, lengths)

    def structure(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """crema's auxiliary outputs ``chord_pitch`` (sigmoid), ``chord_root`` and ``chord_bass``
        (softmax), each ``(B, T, ·)``, and the GRU output they read (``recurrent``)."""
        h = self.recurrent(x, lengths)
        return {"recurrent": h, "chord_pitch": torch.sigmoid(self.pitch(h)),
                "chord_root": torch.softmax(self.root(h), dim=-1), "chord_bass": torch.softmax(self.bass(h), dim=-1)}

    def structure_from_embedding(self, embedding: torch.Tensor) -> dict[str, torch.Tensor]:
        """``chord_pitch``, ``chord_root`` and ``chord_bass`` read back from the embedding (``(..., 294)``)
        by undoing the eval-mode ``BatchNorm`` that follows their concatenation, so that inference
        gets them without a second pass (crema's inversions read ``chord_bass``). Eval mode only."""
        norm = self.structure_norm
        x = (embedding - norm.bias) / norm.weight * torch.sqrt(norm.running_var + norm.eps) + norm.running_mean
        start = self.pitch.in_features
        sizes = {"chord_pitch": self.pitch.out_features, "chord_root": self.root.out_features,
                 "chord_bass": self.bass.out_features}
        parts = {}
        for name, size in sizes.items():
            parts[name] = x[..., start : start + size]
            start += size
        return parts

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, C, T)`` → ``(B, T, 294)``: ``BatchNorm(concat(gru, pitch, root, bass))``."""
        parts = self.structure(x, lengths)
        joined = torch.cat([parts["recurrent"], parts["chord_pitch"], parts["chord_root"], parts["chord_bass"]], -1)
        return self.structure_norm(joined.transpose(1, 2)).transpose(1, 2)
