"""autotag: distributed music auto-tagging on Ray.

The package is the library (pure numpy/torch/pyarrow code, importable without a
running Ray cluster); ``pipelines/`` wires it into Ray Data, Ray Train and Ray Tune.
"""

__version__ = "0.1.0"

SAMPLE_RATE = 22_050
"""Sample rate (Hz) of every waveform inside autotag: shards, models and inference."""
