"""Write the crema parity fixtures by running the ORIGINAL crema 0.2.0 (Keras/TensorFlow) on real recordings.

Runs only inside the throwaway TensorFlow environment of :mod:`benchmarks.pretrained_reference`
(its docstring has the recipe), never the project's; the project's tests read what it writes
(``tests/fixtures/pretrained/crema_reference.*``) and never import TensorFlow:

    TF_USE_LEGACY_KERAS=1 /tmp/tfenv/bin/python benchmarks/crema_reference.py AUDIO_DIR tests/fixtures/pretrained

The clips and their excerpts are :data:`benchmarks.pretrained_reference.CLIPS` (librosa's example
recordings), decoded to 22,050 Hz mono 16-bit FLAC exactly as for musicnn, so crema and autotag start
from the same samples: crema's pump loads that FLAC with ``librosa.load(sr=44100)`` (soxr_hq
up-sampling) and computes its harmonic CQT there; autotag computes its CQT at 22,050 Hz.

Written: ``crema_reference.npz``, per clip ``<clip>/...``:

- ``cqt``: crema's model input (pumpp ``HCQTMag``, dB, ``(frames, 216, 2)``) rounded to float16
  (to keep the file small), and ``chord_tag``, ``chord_pitch``, ``chord_root``, ``chord_bass``:
  crema's Keras model on exactly those values (model parity);
- ``e2e_chord_tag``: for the clips whose audio is kept (:data:`KEEP_AUDIO`: ``brahms.flac``),
  crema's model on its unrounded CQT, i.e. ``ChordModel.outputs(filename)``;

``crema_reference.json``: per clip ``chord_tag_decode``, crema's decoding
(``pump['chord_tag'].inverse``: Viterbi, 170 classes) of the stored ``chord_tag``, and for the
kept clips ``e2e_decode`` (the same of ``e2e_chord_tag``) and ``predict`` (``ChordModel.predict``,
with its bass inversions), each as ``[start, end, label, confidence]``; versions and sources.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from benchmarks.pretrained_reference import CLIPS, KEEP_AUDIO, SAMPLE_RATE

OUTPUTS = ("chord_tag", "chord_pitch", "chord_root", "chord_bass")


def import_crema():
    """crema 0.2.0 imports ``keras``; under TF ≥ 2.16 that must be the legacy ``tf_keras``."""
    import tf_keras

    sys.modules.setdefault("keras", tf_keras)
    sys.modules.setdefault("keras.models", tf_keras.models)
    sys.modules.setdefault("keras.layers", tf_keras.layers)
    sys.modules.setdefault("keras.backend", tf_keras.backend)
    import crema.analyze
    import crema.models.chord

    return crema


def intervals(annotation) -> list[list]:
    return [[round(float(obs.time), 6), round(float(obs.time + obs.duration), 6), str(obs.value),
             round(float(obs.confidence), 6)] for obs in annotation.data]


def main(audio_dir: str, out_dir: str) -> None:
    import librosa
    import soundfile as sf
    import tensorflow as tf

    crema = import_crema()
    model = crema.models.chord.ChordModel()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    info: dict[str, object] = {"crema": crema.__file__, "crema_version": crema.version.version,
                               "tensorflow": tf.__version__, "librosa": librosa.__version__,
                               "numpy": np.__version__, "outputs": list(model.model.output_names), "clips": {}}
    tmp = out / "_crema_tmp"
    tmp.mkdir(exist_ok=True)
    for name, (file, offset, duration) in CLIPS.items():
        audio, _ = librosa.load(Path(audio_dir) / file, sr=SAMPLE_RATE, mono=True, offset=offset, duration=duration)
        flac = tmp / f"{name}.flac"
        sf.write(flac, audio, SAMPLE_RATE, subtype="PCM_16")
        cqt = model.pump.transform(audio_f=str(flac))["cqt/mag"][0].astype(np.float32)
        rounded = cqt.astype(np.float16)
        posteriors = model.model.predict(rounded.astype(np.float32)[None], verbose=0)
        for key, value in zip(model.model.output_names, posteriors):
            arrays[f"{name}/{key}"] = value[0].astype(np.float32)
        arrays[f"{name}/cqt"] = rounded
        entry = {"source": f"librosa/data audio/{file}", "offset_s": offset, "duration_s": duration,
                 "frames": int(cqt.shape[0]),
                 "chord_tag_decode": intervals(model.pump["chord_tag"].inverse(arrays[f"{name}/chord_tag"]))}
        if name in KEEP_AUDIO:
            outputs = model.outputs(filename=str(flac))
            arrays[f"{name}/e2e_chord_tag"] = outputs["chord_tag"].astype(np.float32)
            entry["e2e_decode"] = intervals(model.pump["chord_tag"].inverse(outputs["chord_tag"]))
            entry["predict"] = intervals(model.predict(filename=str(flac), outputs=outputs))
        info["clips"][name] = entry
        print(f"{name}: {cqt.shape[0]} frames, {len(entry['chord_tag_decode'])} segments", file=sys.stderr)
        flac.unlink()
    tmp.rmdir()
    np.savez_compressed(out / "crema_reference.npz", **arrays)
    (out / "crema_reference.json").write_text(json.dumps(info, indent=1))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
