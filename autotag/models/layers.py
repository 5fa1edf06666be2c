"""Small layers shared by front-ends and back-ends.

Variable-length batches
-----------------------
Every layer here takes an optional ``lengths`` tensor ``(B,)``: the number of valid steps
along the time axis of each example, the rest being padding. Statistics (normalisation,
pooling weights) are then computed over the valid steps only, and :class:`SampleNorm` sets
the padded steps to zero, so the "same"-padded convolutions that follow see the zeros they
would see at the end of an unpadded example. With ``lengths=None`` the layers behave as
plain modules (the training and export path).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def time_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """``(B, steps)`` bool mask, True where ``t < lengths[b]``."""
    return torch.arange(steps, device=lengths.device) < lengths.unsqueeze(1)


def conv_lengths(lengths: torch.Tensor, kernel_size: int, stride: int = 1, pool: int = 1) -> torch.Tensor:
    """Valid output steps of a 'valid' convolution followed by a floor-mode max-pool."""
    return (((lengths - kernel_size) // stride + 1) // pool).clamp(min=0)


class SampleNorm(nn.Module):
    """Normalise each example over all of its non-batch dimensions.

    This is the tutorial's ``LayerNorm(normalized_shape=-1)``: statistics over the whole
    ``(C, T)`` or ``(C, F, T)`` tensor of one example.

    Parameters
    ----------
    channels
        Size of the channel axis (per-channel affine parameters).
    full_shape
        ``seed_compat``: affine parameters of the whole per-example shape, exactly as in the
        tutorial. This ties the model to one input length and dominates some parameter
        counts. ``None`` (our default): per-channel affine parameters along
        ``channel_dim``, so the layer accepts any length.
    channel_dim, time_dim
        Axes of ``x`` holding the channels and the time steps.
    eps
        Added to the variance.
    """

    def __init__(self, channels: int, full_shape: tuple[int, ...] | None = None, channel_dim: int = 1,
                 time_dim: int = -1, eps: float = 1e-5):
        super().__init__()
        self.full = nn.LayerNorm(full_shape, eps=eps) if full_shape else None
        self.channel_dim = channel_dim
        self.time_dim = time_dim
        self.eps = eps
        if self.full is None:
            self.weight = nn.Parameter(torch.ones(channels))
            self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised ``x``; with ``lengths``, statistics over valid steps and padding set to 0.

        Raises
        ------
        ValueError
            With ``full_shape``, if an example's shape differs from it (seed_compat models
            accept exactly one patch length).
        """
        if self.full is not None and tuple(x.shape[1:]) != tuple(self.full.normalized_shape):
            raise ValueError(f"seed_compat LayerNorm expects examples of shape {tuple(self.full.normalized_shape)},"
                             f" got {tuple(x.shape[1:])}: seed_compat fixes the input to one patch length")
        if lengths is None and self.full is not None:
            return self.full(x)
        dims = tuple(range(1, x.ndim))
        mask = None
        if lengths is None and not (torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()):
            # Fused kernels compute the same statistics several times faster than var_mean on CPU
            # (ONNX export keeps var_mean: its shape would be dynamic there). With channels on
            # axis 1, a one-group GroupNorm is exactly this layer, affine step included.
            if self.channel_dim == 1:
                return F.group_norm(x, 1, self.weight, self.bias, self.eps)
            x = F.layer_norm(x, x.shape[1:], eps=self.eps)
            shape = [1] * x.ndim
            shape[self.channel_dim] = -1
            return x * self.weight.view(shape) + self.bias.view(shape)
        if lengths is None:
            var, mean = torch.var_mean(x, dim=dims, keepdim=True, unbiased=False)
        else:
            shape = [1] * x.ndim
            shape[0], shape[self.time_dim] = x.shape[0], x.shape[self.time_dim]
            mask = time_mask(lengths, x.shape[self.time_dim]).view(shape).to(x.dtype)
            count = mask.sum(dim=dims, keepdim=True) * (x[0].numel() // x.shape[self.time_dim])
            mean = (x * mask).sum(dim=dims, keepdim=True) / count
            var = ((x - mean) * mask).pow(2).sum(dim=dims, keepdim=True) / count
        x = (x - mean) * torch.rsqrt(var + self.eps)
        if self.full is not None:
            x = x * self.full.weight + self.full.bias
        else:
            shape = [1] * x.ndim
            shape[self.channel_dim] = -1
            x = x * self.weight.view(shape) + self.bias.view(shape)
        return x if mask is None else x * mask


class BatchNormTime(nn.Module):
    """``BatchNorm1d`` over the channel axis of a ``(B, T, C)`` tensor (the tutorial's ``BatchNorm1dT``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class AutoPoolWeightSplit(nn.Module):
    """Attention pooling over time with channel splitting and a learnable auto-pool α.

    Input ``(B, C, T)``: channels ``[0, C/2)`` are values, ``[C/2, C)`` their attention
    logits. Each value channel ``c`` is averaged over time with weights
    ``softmax_t(α · a[c + C/2, t])``. α = 0 gives the mean, α → ∞ the max of the values at
    the frames where ``a`` is largest. Output ``(B, C/2)``.

    Parameters
    ----------
    alpha
        Initial α (tutorial: 0, an unweighted mean at the start of training).

    References
    ----------
    McFee, Salamon, Bello. "Adaptive pooling operators for weakly labeled sound event
    detection", IEEE/ACM TASLP 2018 (arXiv:1804.10070).
    """

    def __init__(self, alpha: float = 0.0):
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor(float(alpha)))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Pool ``x`` ``(B, C, T)`` over time; with ``lengths``, over the valid steps only."""
        half = x.shape[1] // 2
        values, logits = x[:, :half], x[:, half : 2 * half]
        scores = self.alpha * logits
        if lengths is not None:
            scores = scores.masked_fill(~time_mask(lengths, x.shape[-1]).unsqueeze(1), float("-inf"))
        return (values * torch.softmax(scores, dim=-1)).sum(dim=-1)


class ConvPoolNorm(nn.Module):
    """``conv → [|·|] → MaxPool → SampleNorm → LeakyReLU`` over ``(B, C, T)``, tracking lengths.

    The tutorial's recurring stage (the waveform front-ends and the two Conv1d stages of the
    shared back-end).

    Parameters
    ----------
    conv
        Any module ``(B, C_in, T) → (B, out_channels, T')``.
    out_channels
        Channels ``conv`` produces.
    kernel_size, stride
        How ``conv`` changes the length: ``T' = (T − kernel_size) // stride + 1``
        (a length-preserving causal stack is ``1, 1``).
    pool
        Max-pool size and stride (floor mode).
    norm_shape
        Full ``(out_channels, frames)`` affine shape for ``seed_compat``, else ``None``.
    rectify
        Take ``|·|`` before pooling (SincNet/Abs).
    """

    def __init__(self, conv: nn.Module, out_channels: int, kernel_size: int, stride: int, pool: int,
                 norm_shape: tuple[int, int] | None = None, rectify: bool = False):
        super().__init__()
        self.conv = conv
        self.kernel_size, self.stride, self.pool_size = kernel_size, stride, pool
        self.rectify = rectify
        self.pool = nn.MaxPool1d(pool)
        self.norm = SampleNorm(out_channels, norm_shape)
        self.activation = nn.LeakyReLU()

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Valid output steps for ``lengths`` valid input steps."""
        return conv_lengths(lengths, self.kernel_size, self.stride, self.pool_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        x = self.conv(x)
        if self.rectify:
            x = x.abs()
        x = self.pool(x)
        return self.activation(self.norm(x, None if lengths is None else self.output_lengths(lengths)))


class NormConv(nn.Module):
    """``SampleNorm → conv → LeakyReLU`` for convolutions that keep the time axis (chord model).

    Parameters
    ----------
    norm
        The normalisation (its masking zeroes the padding that the conv then sees).
    conv
        A ``Conv1d``/``Conv2d`` whose output has as many time steps as its input.
    """

    def __init__(self, norm: SampleNorm, conv: nn.Module):
        super().__init__()
        self.norm = norm
        self.conv = conv

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return F.leaky_relu(self.conv(self.norm(x, lengths)), inplace=True)
