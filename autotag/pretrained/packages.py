"""Where the packages that carry published weights are installed, found without importing them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from autotag.errors import InputError


class PretrainedError(InputError):
    """A weight package or one of its files is missing or not what a converter expects."""


def package_dir(package: str, version: str, reason: str) -> Path:
    """Folder of the installed ``package`` (its ``__init__`` is never run).

    Parameters
    ----------
    package, version
        The distribution and the version the converter reads.
    reason
        Why ``--no-deps`` (what the package declares that autotag does not need).

    Raises
    ------
    PretrainedError
        If the package is not installed.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise PretrainedError(f"{package} is not installed: pip install --no-deps {package}=={version} (only its "
                              f"weight files are read; --no-deps because it declares {reason})")
    return Path(next(iter(spec.submodule_search_locations)))
