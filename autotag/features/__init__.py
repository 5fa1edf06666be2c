"""Input representations as torch modules, computed on the model's device.

Each feature module knows its own time base (``sample_rate``, ``hop_length``,
``frame_rate``) and how many frames a given number of samples yields (``num_frames``,
``samples_for_frames``), so patch sizes and segment times are derived from it instead of
from tables kept elsewhere. ``tests/unit/features`` checks each against librosa.
"""

from autotag.features.cqt import ConstantQ, HarmonicLogCQT
from autotag.features.framing import Frames, Waveform
from autotag.features.logmel import LogMel

__all__ = ["ConstantQ", "HarmonicLogCQT", "Frames", "LogMel", "Waveform"]
