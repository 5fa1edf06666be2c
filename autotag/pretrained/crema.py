"""Convert crema's published chord model (Keras HDF5) into an autotag checkpoint.

crema 0.2.0 (``pip install --no-deps crema==0.2.0``: its declared dependencies, Keras/TensorFlow
and pumpp, are not needed) ships ``crema/models/chord/model.h5`` (Keras 2.2.2: the
``model_config`` attribute and the ``model_weights`` group), read here with ``h5py`` alone. Its
feature and decoding settings live in ``pump.pkl``, a pickle of pumpp objects that is never
loaded here: they were read once in a throwaway environment and are written down below
(:data:`PUMP`, :data:`CHORD_CLASSES`, :data:`SELF_LOOP`).

The weights are © 2017 Brian McFee. PyPI's metadata for crema 0.2.0 declares the ISC licence; the
``LICENSE.md`` inside the wheel is the BSD 2-Clause licence. Both permit redistribution with the
copyright notice; :data:`CREMA_LICENSE` (both texts) travels in every converted ``meta.json``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autotag.models import checkpoint
from autotag.pretrained import packages
from autotag.pretrained.packages import PretrainedError

CREMA_VERSION = "0.2.0"
NAME = "crema-chord"
"""The model name of ``autotag pretrained``."""

ROOTS = ("A#", "A", "B", "C#", "C", "D#", "D", "E", "F#", "F", "G#", "G")
QUALITIES = ("7", "aug", "dim", "dim7", "hdim7", "maj", "maj6", "maj7", "min", "min6", "min7", "minmaj7", "sus2",
             "sus4")
CHORD_CLASSES = tuple(f"{root}:{quality}" for root in ROOTS for quality in QUALITIES) + ("N", "X")
"""pumpp's ``ChordTagTransformer(vocab='3567s')`` classes in the order of its ``LabelEncoder``
(sorted strings): 12 roots × 14 qualities, then no-chord and unknown; 170 Harte labels."""

SELF_LOOP = 0.957154635467057
"""``pump['chord_tag'].transition``'s diagonal: ``transition_loop(170, p_self)``, off-diagonal
``(1 − p_self) / 169``; no ``p_init`` / ``p_state`` (uniform)."""

SWITCH_PENALTY = math.log(SELF_LOOP) - math.log((1 - SELF_LOOP) / (len(CHORD_CLASSES) - 1))
"""The Viterbi cost of a chord change equal to crema's decoding (8.2363 in log-probability):
librosa's ``viterbi_discriminative`` with that transition matrix and uniform marginals
maximises the same path score as :func:`autotag.infer.segments.viterbi` with this penalty."""

PUMP: dict[str, Any] = {"feature": "pumpp.feature.HCQTMag", "sr": 44_100, "hop_length": 4096,
                        "fmin": 32.70319566257483, "n_octaves": 6, "over_sample": 3, "harmonics": [1, 2],
                        "log": "librosa.amplitude_to_db(|C|, ref=np.max) per harmonic (amin 1e-5, top_db 80)",
                        "conv": "tf (frames, bins, harmonics)", "dtype": "float32"}
"""crema's ``pump.pkl`` (read once with pumpp 0.6.0 and scikit-learn 1.5.2), as plain values."""

FRONTEND_PARAMS: dict[str, Any] = {"hop_length": 2048, "fmin": PUMP["fmin"], "n_octaves": 6, "over_sample": 3,
                                   "harmonics": [1, 2], "top_db": 80.0, "patch_frames": 256,
                                   "patch_hop_frames": 64, "smooth_kernel": 5, "filters": 72}
BACKEND_PARAMS: dict[str, Any] = {"units": 128, "pitch_classes": 12, "root_classes": 13}

# Keras layer → (our module, kind); the Keras names are those of model.h5.
LAYERS: dict[str, tuple[str, str]] = {
    "batch_normalization_1": ("frontend.input_norm", "bn"),
    "conv2d_1": ("frontend.smooth", "conv2d"), "batch_normalization_2": ("frontend.smooth_norm", "bn"),
    "conv2d_2": ("frontend.bins", "conv2d"), "batch_normalization_3": ("frontend.bins_norm", "bn"),
    "bidirectional_1": ("backend.gru1", "bigru"), "batch_normalization_4": ("backend.gru_norm", "bn"),
    "bidirectional_2": ("backend.gru2", "bigru"),
    "chord_pitch": ("backend.pitch", "dense"), "chord_root": ("backend.root", "dense"),
    "chord_bass": ("backend.bass", "dense"),
    "batch_normalization_5": ("backend.structure_norm", "bn"), "chord_tag": ("head", "dense"),
}
BN_NAMES = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}
GRU_NAMES = {"kernel": "kernel", "recurrent_kernel": "recurrent_kernel", "bias": "bias"}

CREMA_LICENSE = (
    "crema 0.2.0, Copyright (c) 2017, Brian McFee. PyPI metadata: License: ISC (ISC License (ISCL)). The "
    "wheel's LICENSE.md: BSD 2-Clause License. Copyright (c) 2017, Brian McFee. All rights reserved. "
    "Redistribution and use in source and binary forms, with or without modification, are permitted provided "
    "that the following conditions are met: * Redistributions of source code must retain the above copyright "
    "notice, this list of conditions and the following disclaimer. * Redistributions in binary form must "
    "reproduce the above copyright notice, this list of conditions and the following disclaimer in the "
    "documentation and/or other materials provided with the distribution. THIS SOFTWARE IS PROVIDED BY THE "
    "COPYRIGHT HOLDERS AND CONTRIBUTORS \"AS IS\" AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT "
    "LIMITED TO, THE IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE DISCLAIMED. "
    "IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL, "
    "SPECIAL, EXEMPLARY, OR CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS "
    "OR SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY OF "
    "LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY "
    "WAY OUT OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE."
)


def package_dir() -> Path:
    """Folder of the installed ``crema`` package (found without importing it: crema imports keras).

    Raises
    ------
    PretrainedError
        If crema is not installed.
    """
    return packages.package_dir("crema", CREMA_VERSION, "keras/tensorflow and pumpp")


def read_weights(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of a Keras 2 HDF5 file's ``model_weights`` group, keyed ``<layer>/<weight>``
    (e.g. ``bidirectional_1/forward_gru_1/kernel``; the ``:0`` suffix and the repeated layer
    folder dropped). ``h5py`` reads the file; nothing is unpickled or executed.

    Raises
    ------
    PretrainedError
        If the file is missing, not HDF5, or has no ``model_weights`` group.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise PretrainedError(f"{path}: no such file (is crema {CREMA_VERSION} installed?)")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise PretrainedError(f"{path}: not an HDF5 file ({exc})") from None
    with handle:
        if "model_weights" not in handle:
            raise PretrainedError(f"{path}: no model_weights group (expected a Keras 2 model file)")
        weights = {}
        for layer, group in handle["model_weights"].items():
            for raw in group.attrs.get("weight_names", []):
                name = raw.decode() if isinstance(raw, bytes) else str(raw)
                short = name.split(":")[0].split("/")
                weights[f"{layer}/{'/'.join(short[1:])}"] = np.asarray(group[name])
        return weights


def model_config(path: str | Path) -> dict[str, Any]:
    """The ``model_config`` JSON attribute of a Keras HDF5 file (layer classes and settings)."""
    import h5py

    with h5py.File(path, "r") as handle:
        raw = handle.attrs["model_config"]
    return json.loads(raw.decode() if isinstance(raw, bytes) else raw)


def check_config(config: dict[str, Any], path: Path) -> None:
    """Refuse a model whose Keras settings differ from what :mod:`autotag.models.crema` computes.

    Raises
    ------
    PretrainedError
        For a GRU with ``reset_after``, gates other than ``hard_sigmoid``, a merge mode other than
        ``concat``, or a BatchNorm ε other than 0.001.
    """
    for layer in config["config"]["layers"]:
        settings = layer["config"]
        if layer["class_name"] == "Bidirectional":
            gru = settings["layer"]["config"]
            found = (settings.get("merge_mode"), gru.get("reset_after", False), gru.get("recurrent_activation"),
                     gru.get("activation"))
            if found != ("concat", False, "hard_sigmoid", "tanh"):
                raise PretrainedError(f"{path}: {layer['name']} has (merge_mode, reset_after, recurrent_activation, "
                                      f"activation) = {found}, expected ('concat', False, 'hard_sigmoid', 'tanh')")
        if layer["class_name"] == "BatchNormalization" and settings.get("epsilon") != 1e-3:
            raise PretrainedError(f"{path}: {layer['name']} epsilon {settings.get('epsilon')}, expected 0.001")


def convert_weights(weights: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """crema's Keras weights → the ``state_dict`` of our model.

    Conv2D kernels ``(kh, kw, in, out)`` become ``(out, in, kh, kw)`` (Keras' ``(time, bins)`` is
    our ``(time, bins)``, its channels-last input our channels-first); dense kernels are
    transposed; each Bidirectional GRU's forward and backward kernels stack into direction 0
    and 1 of :class:`autotag.models.crema.KerasGRU`, gate order ``[z, r, h]`` kept.

    Raises
    ------
    PretrainedError
        If a weight is missing.
    """
    state: dict[str, np.ndarray] = {}
    try:
        for layer, (module, kind) in LAYERS.items():
            if kind == "bn":
                for keras, ours in BN_NAMES.items():
                    state[f"{module}.{ours}"] = weights[f"{layer}/{keras}"]
            elif kind == "bigru":
                index = layer.rsplit("_", 1)[1]
                for keras, ours in GRU_NAMES.items():
                    state[f"{module}.{ours}"] = np.stack([weights[f"{layer}/{d}_gru_{index}/{keras}"]
                                                          for d in ("forward", "backward")])
            else:
                kernel = weights[f"{layer}/kernel"]
                state[f"{module}.weight"] = kernel.transpose(3, 2, 0, 1) if kind == "conv2d" else kernel.T
                state[f"{module}.bias"] = weights[f"{layer}/bias"]
    except KeyError as missing:
        raise PretrainedError(f"crema model.h5 has no weight {missing}") from None
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items()}


def model_meta(source: str | None = None) -> dict[str, Any]:
    """``meta.json`` contents for the converted crema chord model."""
    return {
        "model": {"frontend": "crema_cqt", "backend": "crema_chord", "frontend_params": dict(FRONTEND_PARAMS),
                  "backend_params": dict(BACKEND_PARAMS)},
        "task": {"kind": "frame_multiclass", "label_key": "chords", "vocabulary": list(CHORD_CLASSES)},
        "decoding": {"chord_switch_penalty": SWITCH_PENALTY, "self_loop": SELF_LOOP},
        "config": {"features": {"crema_pump": PUMP, "sample_rate": 22_050, "hop_length": 2048,
                                "note": "the same CQT bins and frame rate as crema's 44.1 kHz / hop 4096, computed "
                                        "at 22,050 Hz (every bin is below 4.2 kHz)"}},
        "pretrained": {"source": f"crema {CREMA_VERSION} (PyPI), crema/models/chord/model.h5", "package": "crema",
                       "version": CREMA_VERSION, "model": NAME, "checkpoint_files": source,
                       "authors": "Brian McFee, Juan Pablo Bello", "url": "https://github.com/bmcfee/crema",
                       "licence": "ISC (PyPI metadata); BSD-2-Clause (LICENSE.md in the wheel)",
                       "licence_text": CREMA_LICENSE,
                       "published_scores": {"tracks": 244, "majmin": 0.7855, "root": 0.8029, "mirex": 0.7806,
                                            "sevenths": 0.6749}},
    }


def convert(out: str | Path, crema_dir: str | Path | None = None) -> Path:
    """Write crema's chord model as an autotag checkpoint in ``out``.

    Parameters
    ----------
    out
        The checkpoint folder to write (``model.safetensors`` + ``meta.json``).
    crema_dir
        The crema package folder; default: the installed package.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    PretrainedError
        crema not installed, or its model file missing or not as expected.
    """
    root = Path(crema_dir) if crema_dir is not None else package_dir()
    path = root / "models" / "chord" / "model.h5"
    weights = read_weights(path)
    check_config(model_config(path), path)
    state = convert_weights(weights)
    meta = model_meta(str(path))
    model = checkpoint.model_from_meta(meta)
    ours = model.state_dict()
    shapes = {k: (tuple(v.shape), tuple(ours[k].shape)) for k, v in state.items()
              if k in ours and tuple(ours[k].shape) != tuple(v.shape)}
    missing = sorted(k for k in ours if k not in state and not k.endswith("num_batches_tracked"))
    if shapes or missing:
        raise PretrainedError(f"{path}: weights that do not fit crema's architecture: shapes {shapes}, "
                              f"missing {missing}")
    model.load_state_dict(state, strict=False)
    return checkpoint.save(out, model, meta)
