"""Front-ends, back-ends and the model that composes them, registered by name.

Importing this package registers every built-in component; ``conf/frontend/<name>.yaml``
and ``conf/backend/<name>.yaml`` select them (``frontend=<name> backend=<name>``).

Front-ends: ``lms_conv2d``, ``waveform_conv1d``, ``tcn``, ``sincnet``, ``sincnet_abs``,
``cqt_conv2d``, ``musicnn``, ``crema_cqt``. Back-ends: ``autopool`` (track-level), ``conv_bilstm`` (frame-level),
``musicnn_pool`` (track-level; with ``musicnn``, the pretrained musicnn taggers of
:mod:`autotag.pretrained.musicnn`), ``crema_chord`` (frame-level; with ``crema_cqt``, crema's
chord model, :mod:`autotag.pretrained.crema`). Every
front-end pairs with every back-end (:func:`compatible_pairs` lists them for given
parameters). ``seed_compat`` (every component, default off) restores the tutorial's
full-shape LayerNorm affine parameters and, for ``conv_bilstm``, its LeakyReLU on the logits;
with it the parameter counts equal the tutorial's (``tests/unit/models/test_param_counts.py``).
"""

from autotag.models import backends, crema, frontends, musicnn  # noqa: F401  (registration side effect)
from autotag.models.heads import TASK_KINDS, Head
from autotag.models.model import AutotagModel, build_model, compatible_pairs
from autotag.models.registry import BACKENDS, FRONTENDS

__all__ = ["AutotagModel", "BACKENDS", "FRONTENDS", "Head", "TASK_KINDS", "build_model", "compatible_pairs"]
