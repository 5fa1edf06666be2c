"""Front-ends, back-ends and the model that composes them, registered by name.

Importing this package registers every built-in component; ``conf/frontend/<name>.yaml``
and ``conf/backend/<name>.yaml`` select them.
"""

from autotag.models import backends, frontends  # noqa: F401  (registration side effect)
from autotag.models.model import AutotagModel, build_model
from autotag.models.registry import BACKENDS, FRONTENDS

__all__ = ["AutotagModel", "BACKENDS", "FRONTENDS", "build_model"]
