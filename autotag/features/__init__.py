"""Input representations as torch modules, computed on the model's device.

Each feature module knows its own time base (``sample_rate``, ``hop_length``,
``frame_rate``) and how many frames a given number of samples yields, so patch sizes
and segment times are derived from it instead of from tables kept elsewhere.
"""

from autotag.features.logmel import LogMel

__all__ = ["LogMel"]
