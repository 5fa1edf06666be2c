"""Report figures as PNG bytes: confusion matrix, tag-o-gram, chord timeline, filters, curves.

Every function builds a :class:`matplotlib.figure.Figure` on the Agg canvas directly (no
``pyplot`` state, so it is safe in worker threads and never opens a window), renders it to PNG
and returns the bytes; nothing is written to disk. Inputs are validated with errors that name
the argument and the expected shape.

References
----------
Peeters, G. et al., "Deep Learning 101 for Audio-based MIR", ISMIR 2024 tutorial: the
tag-o-gram (``F_tag_o_gram``, inferno colour map, one row per tag) and the learned-filter plots
(magnitude of the FFT of each SincNet/Conv1d kernel), drawn here as one image per filter bank.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _matrix(values: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"{name}: expected a non-empty 2-D array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: expected finite values")
    return array


def confusion_matrix(matrix: np.ndarray, labels: Sequence[str], normalize: bool = True,
                     title: str = "Confusion matrix") -> bytes:
    """Heat map of a confusion matrix (rows = true class, columns = predicted), counts annotated.

    With ``normalize`` the colours show each row divided by its total (recall per class); a row
    with no example stays 0.
    """
    counts = _matrix(matrix, "matrix")
    if counts.shape != (len(labels), len(labels)):
        raise ValueError(f"matrix: expected shape ({len(labels)}, {len(labels)}) for {len(labels)} labels, "
                         f"got {counts.shape}")
    totals = counts.sum(axis=1, keepdims=True)
    shown = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0) if normalize else counts
    size = 2.5 + 0.45 * len(labels)
    fig = Figure(figsize=(size + 1.5, size))
    ax = fig.add_subplot()
    image = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xlabel="predicted", ylabel="true",
           title=title)
    ax.set_xticklabels(labels, rotation=60, ha="right")
    ax.set_yticklabels(labels)
    if len(labels) <= 30:
        for (i, j), value in np.ndenumerate(counts):
            ax.text(j, i, f"{value:g}", ha="center", va="center", fontsize=7,
                    color="white" if shown[i, j] > 0.6 * (shown.max() or 1) else "black")
    fig.colorbar(image, ax=ax, label="fraction of true class" if normalize else "count")
    fig.tight_layout()
    return _png(fig)


def tag_o_gram(scores: np.ndarray, tags: Sequence[str], frame_rate: float | None = None,
               title: str = "Tag-o-gram") -> bytes:
    """Tag probabilities over time: ``scores`` is ``(n_frames, n_tags)``, drawn tags x time.

    ``frame_rate`` (frames or patches per second) labels the x-axis in seconds; without it the
    axis counts frames.
    """
    values = _matrix(scores, "scores")
    if values.shape[1] != len(tags):
        raise ValueError(f"scores: expected {len(tags)} columns (one per tag), got {values.shape[1]}")
    fig = Figure(figsize=(12, 2 + 0.18 * len(tags)))
    ax = fig.add_subplot()
    extent = None
    if frame_rate:
        extent = (0, values.shape[0] / frame_rate, len(tags) - 0.5, -0.5)
    image = ax.imshow(values.T, aspect="auto", interpolation="nearest", cmap="inferno", extent=extent)
    ax.set_yticks(range(len(tags)))
    ax.set_yticklabels(tags, fontsize=7)
    ax.set(xlabel="time (s)" if frame_rate else "frame", title=title)
    fig.colorbar(image, ax=ax, label="score")
    fig.tight_layout()
    return _png(fig)


def chord_timeline(ref_intervals: np.ndarray, ref_labels: Sequence[str], est_intervals: np.ndarray,
                   est_labels: Sequence[str], title: str = "Chords: reference vs estimate") -> bytes:
    """Reference and estimated chord segments on one chord axis (y = chord, x = seconds)."""
    ref_iv, est_iv = np.asarray(ref_intervals, float), np.asarray(est_intervals, float)
    for name, iv, labels in (("reference", ref_iv, ref_labels), ("estimate", est_iv, est_labels)):
        if iv.ndim != 2 or iv.shape[1] != 2 or len(iv) != len(labels):
            raise ValueError(f"{name}: expected (n, 2) intervals and n labels, got {iv.shape} and "
                             f"{len(labels)}")
    vocabulary = sorted(set(ref_labels) | set(est_labels))
    row = {label: i for i, label in enumerate(vocabulary)}
    fig = Figure(figsize=(12, 2 + 0.22 * len(vocabulary)))
    ax = fig.add_subplot()
    for iv, labels, style in ((ref_iv, ref_labels, dict(color="tab:blue", lw=7, alpha=0.6)),
                              (est_iv, est_labels, dict(color="tab:red", lw=2.5))):
        for (start, end), label in zip(iv, labels):
            ax.plot([start, end], [row[label]] * 2, solid_capstyle="butt", **style)
    ax.plot([], [], color="tab:blue", lw=7, alpha=0.6, label="reference")
    ax.plot([], [], color="tab:red", lw=2.5, label="estimate")
    ax.set_yticks(range(len(vocabulary)))
    ax.set_yticklabels(vocabulary, fontsize=7)
    ax.set(xlabel="time (s)", title=title, ylim=(-0.5, len(vocabulary) - 0.5))
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def filter_responses(weights: np.ndarray, sample_rate: float, title: str = "Learned filters",
                     n_fft: int | None = None) -> bytes:
    """Magnitude responses of a 1-D filter bank ``(n_filters, kernel)`` (or ``(n, 1, kernel)``).

    Left: ``|rfft(kernel)|`` in dB per filter (rows sorted as given, each normalised to its
    peak). Right: each filter's peak frequency against its index, which shows whether a learned
    bank stays mel-like (the tutorial's SincNet observation).
    """
    bank = np.asarray(weights, dtype=np.float64)
    if bank.ndim == 3 and bank.shape[1] == 1:
        bank = bank[:, 0, :]
    bank = _matrix(bank, "weights")
    if not sample_rate > 0:
        raise ValueError(f"sample_rate = {sample_rate!r}: expected a positive number of Hz")
    n_fft = max(n_fft or 0, 512, bank.shape[1])
    magnitude = np.abs(np.fft.rfft(bank, n=n_fft, axis=1))
    peak = magnitude.max(axis=1, keepdims=True)
    db = 20 * np.log10(np.maximum(magnitude / np.where(peak > 0, peak, 1), 1e-4))
    freqs = np.fft.rfftfreq(n_fft, d=1 / sample_rate)
    fig = Figure(figsize=(12, 5))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1]})
    image = left.imshow(db, aspect="auto", origin="lower", cmap="viridis", vmin=-60, vmax=0,
                        extent=(0, freqs[-1], -0.5, len(bank) - 0.5), interpolation="nearest")
    left.set(xlabel="frequency (Hz)", ylabel="filter index", title=f"{title}: |FFT| (dB re peak)")
    fig.colorbar(image, ax=left, label="dB")
    right.plot(freqs[magnitude.argmax(axis=1)], np.arange(len(bank)), ".", ms=4)
    right.set(xlabel="peak frequency (Hz)", ylabel="filter index", title="peak per filter",
              ylim=(-0.5, len(bank) - 0.5))
    fig.tight_layout()
    return _png(fig)


def training_curves(history: pd.DataFrame, title: str = "Training curves") -> bytes:
    """Losses per epoch (and any other numeric columns in a second panel), best epoch marked.

    ``history`` needs ``epoch``, ``train_loss`` and ``val_loss``; the best epoch is the one with
    the lowest ``val_loss`` (the checkpoint kept).
    """
    missing = {"epoch", "train_loss", "val_loss"} - set(history.columns)
    if missing:
        raise ValueError(f"history: missing column(s) {sorted(missing)}; "
                         "expected epoch, train_loss, val_loss")
    if history.empty:
        raise ValueError("history: no epoch to plot")
    history = history.sort_values("epoch")
    extra = [c for c in history.columns if c not in ("epoch", "train_loss", "val_loss")
             and pd.api.types.is_numeric_dtype(history[c])]
    fig = Figure(figsize=(12 if extra else 7, 4))
    axes = fig.subplots(1, 2 if extra else 1, squeeze=False)[0]
    for column in ("train_loss", "val_loss"):
        axes[0].plot(history["epoch"], history[column], marker="o", ms=3, label=column)
    if history["val_loss"].notna().any():
        best = history.loc[history["val_loss"].idxmin()]
        axes[0].axvline(best["epoch"], color="gray", ls="--", lw=1,
                        label=f"best epoch {best['epoch']:g} (val_loss {best['val_loss']:.3f})")
    axes[0].set(xlabel="epoch", ylabel="loss", title=title)
    axes[0].legend(fontsize=8)
    for column in extra:
        axes[1].plot(history["epoch"], history[column], marker="o", ms=3, label=column)
    if extra:
        axes[1].set(xlabel="epoch", title="metrics")
        axes[1].legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def curves_across_runs(histories: Mapping[str, pd.DataFrame], column: str = "val_loss",
                       title: str = "Validation loss across runs") -> bytes:
    """One line per run of ``column`` against ``epoch`` (e.g. the runs of a sweep).

    Raises
    ------
    ValueError
        No run given, or a run whose history lacks ``epoch`` or ``column``.
    """
    if not histories:
        raise ValueError("histories: expected at least one run")
    fig = Figure(figsize=(8, 4))
    ax = fig.add_subplot()
    for run_id, history in histories.items():
        missing = {"epoch", column} - set(history.columns)
        if missing:
            raise ValueError(f"history of run {run_id!r}: missing column(s) {sorted(missing)}")
        ordered = history.sort_values("epoch")
        ax.plot(ordered["epoch"], ordered[column], marker="o", ms=3, label=run_id)
    ax.set(xlabel="epoch", ylabel=column, title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)
