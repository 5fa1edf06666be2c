"""Check that every heavy native dependency loads: ``python -m autotag.install_check``.

``make install`` ends with it. A wheel whose shared library does not load against its
neighbours (torchaudio 2.11.1 beside torch 2.11.0 fails with ``undefined symbol``) then stops
the install with one line naming the package, its version and the loader's message, instead
of a traceback at the first import of a later command.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys

NATIVE = ("torch", "torchaudio", "soundfile", "soxr", "av", "pyarrow", "ray")
"""Import names of the dependencies that carry compiled libraries, in load order."""

DISTRIBUTIONS = {"av": "av", "soundfile": "soundfile", "soxr": "soxr"}


def check(modules: tuple[str, ...] = NATIVE) -> list[str]:
    """Import each module and exercise its library; return one line per failure."""
    failures = []
    for name in modules:
        try:
            version = importlib.metadata.version(DISTRIBUTIONS.get(name, name))
        except importlib.metadata.PackageNotFoundError:
            failures.append(f"{name}: not installed")
            continue
        try:
            _exercise(importlib.import_module(name), name)
        except Exception as exc:  # noqa: BLE001 - any loader failure is reported the same way
            message = " ".join(str(exc).split())
            failures.append(f"{name} {version} does not load: {type(exc).__name__}: {message}")
    return failures


def _exercise(module, name: str) -> None:
    """Touch the compiled part, not only the Python wrapper (torchaudio loads its .so lazily)."""
    if name == "torchaudio":
        import torch

        if not module._extension._IS_TORCHAUDIO_EXT_AVAILABLE:
            raise ImportError("its compiled extension (_torchaudio) is missing")
        module.functional.resample(torch.zeros(1, 64), 2, 1)
    elif name == "soundfile":
        module.available_formats()
    elif name == "soxr":
        import numpy as np

        module.resample(np.zeros(64, dtype="float32"), 2, 1)
    elif name == "av":
        module.codec.Codec("flac", "r")


def main() -> int:
    failures = check()
    for line in failures:
        print(f"install check: {line}", file=sys.stderr)
    if failures:
        return 1
    versions = ", ".join(f"{m} {importlib.metadata.version(DISTRIBUTIONS.get(m, m))}" for m in NATIVE)
    print(f"install check: {versions} load")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
