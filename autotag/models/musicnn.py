"""musicnn (Pons & Serra) in PyTorch: the ``musicnn`` front-end and the ``musicnn_pool`` back-end.

A layer-for-layer reimplementation of ``build_musicnn`` in musicnn 0.1.0's ``models.py``
(the ``MTT_musicnn`` / ``MSD_musicnn`` configuration: ``num_filt_frontend=1.6``,
``num_filt_midend=64``, ``num_units_backend=200``), laid out so that every TensorFlow
variable maps onto one tensor here (:mod:`autotag.pretrained.musicnn`):

front-end (``frontend(..., type='7774timbraltemporal')``), on the log-mel seen as an image
``(B, 1, time, mel)``:

- ``BatchNorm`` over the single input channel;
- timbral: time padded by 3 on each side, ``Conv2d(1 → 204, (7, 38))`` and
  ``Conv2d(1 → 204, (7, 67))`` ('valid', ReLU) → ``BatchNorm`` → max over the mel axis;
- temporal: ``Conv2d(1 → 51, (k, 1))`` for k = 128, 64, 32 with TensorFlow's 'same' padding
  (``(k − 1) // 2`` frames before, the rest after) → ReLU → ``BatchNorm`` → max over mel;
- the five maps concatenated along the channels: ``(B, 561, T)``.

back-end (``midend`` + ``backend(..., type='globalpool_dense')``):

- three ``Conv1d(→ 64, 7, padding 3)`` → ReLU → ``BatchNorm``, the second and third with a
  residual connection;
- the front-end and the three mid-end maps concatenated (dense connection): 753 channels;
- max and mean over time, interleaved per channel (``[max_0, mean_0, max_1, …]``, the order
  of TensorFlow's ``concat(axis=2)`` + ``flatten``): 1,506 features;
- ``BatchNorm → Dropout(0.5) → Linear(1506 → 200) → ReLU → BatchNorm → Dropout(0.5)``: the
  200-d embedding (musicnn's ``penultimate``). The model's head is the last dense layer (50
  tags, sigmoid).

Every ``BatchNorm`` uses TensorFlow's ε = 0.001. 792,079 parameters and statistics, as in
the TensorFlow checkpoints.

References
----------
J. Pons and X. Serra, "musicnn: pre-trained convolutional neural networks for music audio
tagging", ISMIR late-breaking/demo, 2019. https://github.com/jordipons/musicnn (ISC licence).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from autotag.features.musicnn_mel import MusicnnMel
from autotag.models.backends import BackEnd
from autotag.models.frontends import FrontEnd
from autotag.models.layers import time_mask
from autotag.models.registry import BACKENDS, FRONTENDS

TF_BN_EPS = 1e-3
"""``tf.compat.v1.layers.batch_normalization``'s default epsilon."""


def relu_norm_after_max(x: torch.Tensor, conv: nn.Conv2d, norm: nn.BatchNorm2d,
                        pool: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``pool(norm(relu(conv(x))))`` for a max-type ``pool``, in eval mode, with the ReLU and the BatchNorm after it.

    musicnn normalises *after* the ReLU and then takes a maximum (over the mel axis, or a
    max-pool), so the two per-element passes over the largest maps of the network can move
    behind the reduction: with frozen statistics the BatchNorm is ``s · v + c`` per channel, and
    ``max(s · relu(z) + c) = s · relu(max z) + c`` where ``s ≥ 0``, ``s · relu(min z) + c`` where
    ``s < 0``. Convolving with the weights of the negative-``s`` channels negated turns that
    ``min`` into a ``max`` too (``min z = −max(−z)``), so one convolution and one max serve every
    channel. The same numbers as the plain order up to float rounding (the sign flips are exact).
    """
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    shift = norm.bias - norm.running_mean * scale
    sign = torch.where(scale < 0, -1.0, 1.0).to(scale)
    z = F.conv2d(x, conv.weight * sign.view(-1, 1, 1, 1), conv.bias * sign, conv.stride, conv.padding)
    pooled = pool(z)
    per_channel = (1, -1) + (1,) * (pooled.dim() - 2)
    return scale.view(per_channel) * F.relu(sign.view(per_channel) * pooled) + shift.view(per_channel)


class MelMaxBlock(nn.Module):
    """``pad(time) → Conv2d(1 → filters, (time_kernel, mel_kernel)) → ReLU → BatchNorm → max over mel``.

    ``(B, 1, T, mels)`` → ``(B, filters, T)``. ``pad_before`` / ``pad_after``: frames of zeros
    added on the time axis (3 / 3 for the timbral 7-frame kernels, TensorFlow's 'same' for the
    temporal ones); the mel axis is not padded when ``mel_kernel`` > 1 ('valid', as in musicnn's
    timbral block) and needs none for ``mel_kernel`` = 1.
    """

    def __init__(self, filters: int, time_kernel: int, mel_kernel: int, pad_before: int, pad_after: int):
        super().__init__()
        self.pad = (0, 0, pad_before, pad_after)
        self.conv = nn.Conv2d(1, filters, (time_kernel, mel_kernel))
        self.norm = nn.BatchNorm2d(filters, eps=TF_BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, self.pad)
        if not self.training:
            return relu_norm_after_max(x, self.conv, self.norm, lambda z: z.amax(dim=3))
        return self.norm(F.relu(self.conv(x))).amax(dim=3)


def same_padding(kernel: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding for stride 1: ``(k − 1) // 2`` before, the rest after."""
    return (kernel - 1) // 2, kernel // 2


def _musicnn_input(frontend: FrontEnd, n_fft: int, hop_length: int, n_mels: int, patch_frames: int,
                   patch_hop_frames: int, extractor_float16: bool) -> None:
    """What both musicnn front-ends (musicnn and its VGG baseline) set up alike: the 16 kHz log-mel,
    the patch length and hop in input samples, and the batch norm over the 1-channel input."""
    frontend.features = MusicnnMel(frontend.sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels,
                                   extractor_float16=extractor_float16)
    frontend.patch_samples = frontend.features.samples_for_frames(patch_frames)
    frontend.patch_hop_samples = round(patch_hop_frames * frontend.features.input_hop_samples)
    frontend.input_norm = nn.BatchNorm2d(1, eps=TF_BN_EPS)


@FRONTENDS.register("musicnn")
class Musicnn(FrontEnd):
    """musicnn's musically motivated front-end (timbral + temporal convolutions) on its own log-mel.

    Input: waveform ``(B, N)`` at 22,050 Hz, resampled to 16 kHz inside
    :class:`autotag.features.musicnn_mel.MusicnnMel`. Output: ``(B, 561, T)`` with ``T`` the
    log-mel frames (62.5 per second), no temporal down-sampling.

    Parameters
    ----------
    n_fft, hop_length, n_mels
        musicnn's log-mel at 16 kHz (512, 256, 96).
    patch_frames, patch_hop_frames
        Patch length and hop in log-mel frames: 187 and 187 (3 s, no overlap, the defaults of
        ``musicnn.extractor``).
    timbral_filters, temporal_filters
        Filters per timbral / temporal convolution (``int(1.6 · 128)`` = 204, ``int(1.6 · 32)``
        = 51).
    timbral_mel_fractions
        Mel extent of the timbral kernels as fractions of ``n_mels`` (0.4, 0.7: 38 and 67 bands).
    temporal_kernels
        Time extent of the temporal kernels in frames (128, 64, 32).
    extractor_float16
        Reproduce ``musicnn.extractor``'s float16 log-mel arithmetic, overflow included (see
        :mod:`autotag.features.musicnn_mel`); off by default.
    """

    def __init__(self, n_fft: int = 512, hop_length: int = 256, n_mels: int = 96, patch_frames: int = 187,
                 patch_hop_frames: int = 187, timbral_filters: int = 204, temporal_filters: int = 51,
                 timbral_mel_fractions: tuple[float, ...] = (0.4, 0.7),
                 temporal_kernels: tuple[int, ...] = (128, 64, 32),
                 extractor_float16: bool = False):
        super().__init__()
        _musicnn_input(self, n_fft, hop_length, n_mels, patch_frames, patch_hop_frames, extractor_float16)
        self.output_hop_samples = self.features.input_hop_samples  # type: ignore[assignment]  (352.8: not whole)
        self.output_offset_samples = 0.0
        self.timbral = nn.ModuleList(MelMaxBlock(timbral_filters, 7, int(fraction * n_mels), 3, 3)
                                     for fraction in timbral_mel_fractions)
        self.temporal = nn.ModuleList(MelMaxBlock(temporal_filters, k, 1, *same_padding(k)) for k in temporal_kernels)
        self.out_channels = timbral_filters * len(self.timbral) + temporal_filters * len(self.temporal)

    def encoded_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return lengths

    def encode(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, n_mels, T)`` log-mel → ``(B, 561, T)``."""
        x = self.input_norm(features.transpose(1, 2).unsqueeze(1))  # (B, 1, T, mels): musicnn's image layout
        return torch.cat([block(x) for block in (*self.timbral, *self.temporal)], dim=1)


class MidEndConv(nn.Module):
    """``Conv1d(k, padding (k − 1) // 2) → ReLU → BatchNorm`` along time (musicnn's mid-end layer)."""

    def __init__(self, in_channels: int, channels: int, kernel: int = 7):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, channels, kernel, padding=kernel // 2)
        self.norm = nn.BatchNorm1d(channels, eps=TF_BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(F.relu(self.conv(x)))


@BACKENDS.register("musicnn_pool")
class MusicnnPool(BackEnd):
    """musicnn's mid-end (dense residual Conv1d stack) and global mean/max-pool back-end, track-level.

    Parameters
    ----------
    in_channels, in_frames
        Shape of the front-end output (561 channels for :class:`Musicnn`; ``in_frames`` unused).
    midend_filters, midend_layers, midend_kernel
        The mid-end convolutions (64, 3, 7); every layer after the first is residual.
    units
        Width of the penultimate dense layer, the embedding (200).
    dropout
        Before each dense layer (0.5; inactive in eval mode).
    """

    def __init__(self, in_channels: int, in_frames: int, midend_filters: int = 64, midend_layers: int = 3,
                 midend_kernel: int = 7, units: int = 200, dropout: float = 0.5):
        super().__init__()
        if midend_kernel % 2 == 0:
            raise ValueError(f"musicnn_pool back-end: midend_kernel={midend_kernel}, expected an odd width")
        self.midend = nn.ModuleList(MidEndConv(in_channels if i == 0 else midend_filters, midend_filters,
                                               midend_kernel) for i in range(midend_layers))
        pooled = 2 * (in_channels + midend_layers * midend_filters)
        self.pool_norm = nn.BatchNorm1d(pooled, eps=TF_BN_EPS)
        self.dense = nn.Linear(pooled, units)
        self.dense_norm = nn.BatchNorm1d(units, eps=TF_BN_EPS)
        self.dropout = nn.Dropout(dropout)
        self.embedding_dim = units

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, C, T)`` → ``(B, units)``; ``lengths``: frames pooled per example.

        Only the pooling is masked: the convolutions (here and in the front-end, after its input
        BatchNorm) still see the padded frames, so unlike the tutorial's components a padded
        batch does not give each example exactly its output alone. Inference never pads musicnn
        patches: every patch is 3 s, and a shorter track is zero-padded to one patch by the
        predictor (musicnn's own ``extractor`` gives no patch at all for it)."""
        maps = [x]
        for i, layer in enumerate(self.midend):
            out = layer(maps[-1])
            maps.append(out if i == 0 else out + maps[-1])
        features = torch.cat(maps, dim=1)  # (B, 753, T)
        if lengths is None:
            maximum, mean = features.amax(dim=2), features.mean(dim=2)
        else:
            mask = time_mask(lengths.to(features.device), features.shape[2]).unsqueeze(1)
            maximum = features.masked_fill(~mask, float("-inf")).amax(dim=2)
            mean = (features * mask).sum(dim=2) / lengths.to(features).unsqueeze(1)
        pooled = torch.stack([maximum, mean], dim=2).flatten(1)  # TF order: max_0, mean_0, max_1, ...
        hidden = F.relu(self.dense(self.dropout(self.pool_norm(pooled))))
        return self.dropout(self.dense_norm(hidden))


class VggBlock(nn.Module):
    """``[Dropout →] Conv2d(3 × 3, 'same') → ReLU → BatchNorm → MaxPool(pool, stride)`` (musicnn's ``vgg``)."""

    def __init__(self, in_channels: int, channels: int, pool: tuple[int, int], stride: tuple[int, int],
                 dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.conv = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.norm = nn.BatchNorm2d(channels, eps=TF_BN_EPS)
        self.pool = nn.MaxPool2d(pool, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return relu_norm_after_max(x, self.conv, self.norm, self.pool)
        return self.pool(self.norm(F.relu(self.conv(self.dropout(x)))))


VGG_POOLS = (((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4)))
"""(pool size, stride) of the five blocks of musicnn's ``vgg``, as (time, mel)."""


@FRONTENDS.register("musicnn_vgg")
class MusicnnVgg(FrontEnd):
    """musicnn's VGG-like baseline (``MTT_vgg`` / ``MSD_vgg``): five 3 × 3 conv blocks on its log-mel.

    ``BatchNorm`` over the input, then five :class:`VggBlock` (128 filters; pools (4, 1)/2,
    (2, 2)/2 × 3, (4, 4)/4 over (time, mel); dropout 0.25 before blocks 2–5). A 187-frame patch
    leaves ``(B, 128, 2, 1)``; the mel axis (1 row) is folded away: output ``(B, 128, 2)``.
    The VGG models only take 3-s patches (``musicnn.extractor`` refuses other lengths), so
    pair it with ``musicnn_flatten``.

    Parameters
    ----------
    n_fft, hop_length, n_mels, patch_frames, patch_hop_frames, extractor_float16
        As for :class:`Musicnn`.
    filters
        Filters per convolution (128).
    dropout
        Before blocks 2–5 (0.25; inactive in eval mode).
    """

    def __init__(self, n_fft: int = 512, hop_length: int = 256, n_mels: int = 96, patch_frames: int = 187,
                 patch_hop_frames: int = 187, filters: int = 128, dropout: float = 0.25,
                 extractor_float16: bool = False):
        super().__init__()
        _musicnn_input(self, n_fft, hop_length, n_mels, patch_frames, patch_hop_frames, extractor_float16)
        self.blocks = nn.ModuleList(VggBlock(1 if i == 0 else filters, filters, pool, stride, dropout if i else 0.0)
                                    for i, (pool, stride) in enumerate(VGG_POOLS))
        frames, rows = patch_frames, n_mels
        for (pool_t, pool_m), (stride_t, stride_m) in VGG_POOLS:
            frames, rows = (frames - pool_t) // stride_t + 1, (rows - pool_m) // stride_m + 1
        if frames < 1 or rows != 1:
            raise ValueError(f"musicnn_vgg: {patch_frames} frames × {n_mels} bands leave {frames} × {rows} after the "
                             "five pools; expected at least 1 frame and exactly 1 band (musicnn: 187 × 96)")
        self.out_channels = filters
        self.output_hop_samples = self.features.input_hop_samples * 64  # type: ignore[assignment]  (time stride 2⁴·4)
        self.output_offset_samples = 0.0

    def encoded_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for (pool_t, _), (stride_t, _) in VGG_POOLS:
            lengths = ((lengths - pool_t) // stride_t + 1).clamp(min=0)
        return lengths

    def encode(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, n_mels, T)`` log-mel → ``(B, filters, T')``."""
        x = self.input_norm(features.transpose(1, 2).unsqueeze(1))  # (B, 1, T, mels)
        for block in self.blocks:
            x = block(x)
        return x.squeeze(3)


@BACKENDS.register("musicnn_flatten")
class MusicnnFlatten(BackEnd):
    """musicnn's VGG back-end: flatten ``(C, T)`` in TensorFlow's order (time-major), then dropout.

    The embedding is the flattened last pool (musicnn's ``pool5``, 256 values for a 3-s patch);
    the model's head is the VGG's single dense layer. Fixed input length: ``in_frames``.

    Parameters
    ----------
    in_channels, in_frames
        Shape of the front-end output for one patch (128 × 2 for :class:`MusicnnVgg`).
    dropout
        Before the head (0.5; inactive in eval mode).
    """

    def __init__(self, in_channels: int, in_frames: int, dropout: float = 0.5):
        super().__init__()
        self.in_frames = in_frames
        self.min_input_frames = in_frames
        self.embedding_dim = in_channels * in_frames
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, C, T)`` → ``(B, T · C)``, ``[t0 c0, t0 c1, …]`` (TF's NHWC flatten).

        Raises
        ------
        ValueError
            If ``T`` differs from ``in_frames`` (the dense layer fixes the patch length).
        """
        if x.shape[2] != self.in_frames:
            raise ValueError(f"musicnn_flatten back-end: {x.shape[2]} frames, expected {self.in_frames} (the VGG "
                             "models take 3-s patches only)")
        return self.dropout(x.transpose(1, 2).flatten(1))
