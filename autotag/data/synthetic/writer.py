"""Writing one synthetic track: sample rate, channels and format drawn from the spec."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from autotag.data.synthetic.spec import SyntheticSpec


def draw_format(spec: SyntheticSpec, rng: np.random.Generator) -> tuple[int, int, str]:
    """``(sample_rate, channels, format)`` of one file, drawn in this order from ``rng``."""
    sr = int(rng.choice(spec.sample_rates))
    channels = int(rng.choice(spec.channels))
    fmt = str(rng.choice(spec.formats))
    return sr, channels, fmt


def write_track(
    path_stem: Path,
    spec: SyntheticSpec,
    rng: np.random.Generator,
    render: Callable[[int], np.ndarray],
) -> Path:
    """Draw the file format, render mono audio at its rate and write it as 16-bit PCM.

    Parameters
    ----------
    path_stem
        Output path without extension (folders are created).
    spec
        The dataset spec (sample rates, channel counts and formats to draw from).
    rng
        The track's generator; the format is drawn before ``render`` is called.
    render
        ``render(sample_rate) -> mono float waveform``.

    Returns
    -------
    Path
        The written file. Extra channels are slightly attenuated, delayed copies.
    """
    sr, channels, fmt = draw_format(spec, rng)
    audio = render(sr)
    if channels > 1:
        audio = np.stack([audio] + [np.roll(audio, 7 * c) * 0.9 for c in range(1, channels)], axis=1)
    path = path_stem.with_name(f"{path_stem.name}.{fmt}")
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, sr, format=fmt.upper(), subtype="PCM_16")
    return path
