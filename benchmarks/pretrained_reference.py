"""Write the musicnn parity fixtures by running the ORIGINAL musicnn (TensorFlow) on real recordings.

Runs only inside a throwaway TensorFlow environment, never the project's; the project's tests
read what it writes (``tests/fixtures/pretrained/``) and never import TensorFlow:

    python3 -m venv /tmp/tfenv
    /tmp/tfenv/bin/pip install tensorflow-cpu tf-keras librosa pandas "scikit-learn==1.5.2"
    /tmp/tfenv/bin/pip install --no-deps musicnn==0.1.0 crema==0.2.0 pumpp jams mir_eval \\
        sortedcontainers jsonschema jsonschema-specifications referencing rpds-py attrs
    TF_USE_LEGACY_KERAS=1 /tmp/tfenv/bin/python benchmarks/pretrained_reference.py AUDIO_DIR tests/fixtures/pretrained

``AUDIO_DIR`` holds the CC-licensed example recordings of librosa's example-data repository
(github.com/librosa/data, folder ``audio/``: what ``librosa.ex()`` downloads), named in
:data:`CLIPS`. For each clip, an excerpt is decoded to 22,050 Hz mono with librosa (soxr_hq),
the rate autotag's decoder delivers, and written as 16-bit FLAC; musicnn's own
``extractor.batch_data`` and ``extractor.extractor`` then run on that FLAC, so both sides start
from the same samples and differ only in what comes after (musicnn: librosa.load(sr=16000),
i.e. soxr 22,050 → 16,000; autotag: torchaudio's resampler on the device).

musicnn's extractor rounds the mel power to float16 and computes ``10000 * mel + 1`` in float16
(``extractor.batch_data``), which overflows to ``inf`` wherever the mel power exceeds 6.55 (loud
low bands of real music); the network then sees ``inf``, TensorFlow's ReLU turns the resulting
NaNs into zeros, and every clip gets the same tags. The fixtures therefore also hold the
network's outputs on *finite* inputs: the same log-mel computed in float32
(``np.log10(10000 * mel + 1)``), fed through musicnn's own graph (``models.define_model``,
restored with ``tf.compat.v1.train.Saver`` exactly as ``extractor.extractor`` does).

Written: ``musicnn_reference.npz``, per clip ``<clip>/...``:

- ``patches``: the float32 log-mel patches rounded to float16 (to keep the file small), and
  ``<model>`` for each of :data:`MODELS`, ``MTT_musicnn_penultimate``, ``MTT_vgg_penultimate``
  (flattened ``pool5``): the TF network on exactly those values (model parity);
- ``e2e_<model>``: the TF network on the unrounded float32 patches (the end-to-end reference
  from audio);
- ``extractor_MTT_musicnn``: what ``musicnn.extractor.extractor`` itself returns, and
  ``extractor_infs``: how many ``inf`` its float16 patches hold;

``<clip>.flac`` for the clips in :data:`KEEP_AUDIO`; ``musicnn_reference.json``: sources,
offsets, versions; ``tiny/ckpt.*``: a small TensorFlow checkpoint of known values (float32,
float64, int64, float16; several index blocks) for the checkpoint reader's tests.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

CLIPS = {  # name -> (file in librosa/data audio/, offset s, duration s)
    "brahms": ("Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).hq.ogg", 10.0, 6.2),
    "vibeace": ("Kevin_MacLeod_-_Vibe_Ace.hq.ogg", 20.0, 6.2),
    "trumpet": ("sorohanro_-_solo-trumpet-06.hq.ogg", 0.0, 6.2),
}
KEEP_AUDIO = ("brahms",)
MODELS = ("MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg")
SAMPLE_RATE = 22_050
N_FRAMES = 187


def float32_patches(path: Path) -> np.ndarray:
    """``extractor.batch_data`` with the log-mel in float32 (no float16 overflow)."""
    import librosa
    from musicnn import configuration as config

    audio, sr = librosa.load(path, sr=config.SR)
    mel = librosa.feature.melspectrogram(y=audio, sr=sr, hop_length=config.FFT_HOP, n_fft=config.FFT_SIZE,
                                         n_mels=config.N_MELS).T
    rep = np.log10(10000 * mel.astype(np.float32) + 1)
    return np.stack([rep[t : t + N_FRAMES] for t in range(0, rep.shape[0] - N_FRAMES + 1, N_FRAMES)])


def run_network(model: str, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """musicnn's own graph and checkpoint (as in ``extractor.extractor``): sigmoid outputs and the
    penultimate layer (musicnn: ``penultimate``; vgg: ``pool5``)."""
    import musicnn
    import tensorflow as tf
    from musicnn import configuration as config
    from musicnn import models

    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, N_FRAMES, config.N_MELS])
        is_training = tf.compat.v1.placeholder(tf.bool)
        y, *_, penultimate = models.define_model(x, is_training, model, 50)
        normalized_y = tf.nn.sigmoid(y)
    with tf.compat.v1.Session() as sess:
        tf.compat.v1.train.Saver().restore(sess, str(Path(musicnn.__file__).parent / model) + "/")
        probs, embedding = sess.run([normalized_y, penultimate], feed_dict={x: batch, is_training: False})
    return probs.astype(np.float32), embedding.astype(np.float32)


def tiny_values(i: int) -> dict[str, np.ndarray]:
    """The tensors of :func:`write_tiny_checkpoint`'s variable group ``i`` (recomputed by the tests)."""
    return {f"block_{i:03d}/a_rather_long_variable_name_to_fill_index_blocks/kernel":
            (np.arange(6, dtype=np.float32).reshape(2, 3) + i) / 7,
            f"block_{i:03d}/counts": np.arange(i, i + 4, dtype=np.int64),
            f"block_{i:03d}/scale": np.float64(i) * 0.5 + np.zeros((), np.float64),
            f"block_{i:03d}/half": np.full((3,), i, np.float16)}


def write_tiny_checkpoint(out: Path, groups: int = 150) -> None:
    """A small TF checkpoint (``tiny/ckpt.index`` + data) whose index spans several SSTable blocks."""
    import tensorflow as tf

    values = {k: v for i in range(groups) for k, v in tiny_values(i).items()}
    names = sorted(values)
    (out / "tiny").mkdir(exist_ok=True)
    tf.raw_ops.SaveV2(prefix=str(out / "tiny" / "ckpt"), tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(values[n]) for n in names])


def main(audio_dir: str, out_dir: str) -> None:
    import librosa
    import musicnn
    import soundfile as sf
    import tensorflow as tf
    from musicnn import extractor

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_tiny_checkpoint(out)
    arrays: dict[str, np.ndarray] = {}
    info: dict[str, object] = {"musicnn": musicnn.__file__, "tensorflow": tf.__version__,
                               "librosa": librosa.__version__, "numpy": np.__version__, "clips": {}}
    tmp = out / "_tmp"
    tmp.mkdir(exist_ok=True)
    for name, (file, offset, duration) in CLIPS.items():
        audio, _ = librosa.load(Path(audio_dir) / file, sr=SAMPLE_RATE, mono=True, offset=offset, duration=duration)
        flac = (out if name in KEEP_AUDIO else tmp) / f"{name}.flac"
        sf.write(flac, audio, SAMPLE_RATE, subtype="PCM_16")
        exact = float32_patches(flac)
        rounded = exact.astype(np.float16)
        arrays[f"{name}/patches"] = rounded
        original, _ = extractor.batch_data(str(flac), N_FRAMES, N_FRAMES)
        arrays[f"{name}/extractor_infs"] = np.array(int(np.isinf(original).sum()))
        for model in MODELS:
            probs, embedding = run_network(model, rounded.astype(np.float32))
            arrays[f"{name}/{model}"] = probs
            if model.startswith("MTT"):
                arrays[f"{name}/{model}_penultimate"] = embedding.reshape(len(embedding), -1)
            arrays[f"{name}/e2e_{model}"] = run_network(model, exact)[0]
        began = time.perf_counter()
        taggram, _ = extractor.extractor(str(flac), model="MTT_musicnn", input_length=3, extract_features=False)
        print(f"{name}: extractor {taggram.shape} in {time.perf_counter() - began:.2f} s", file=sys.stderr)
        arrays[f"{name}/extractor_MTT_musicnn"] = taggram.astype(np.float32)
        info["clips"][name] = {"source": f"librosa/data audio/{file}", "offset_s": offset, "duration_s": duration,
                               "flac": f"{name}.flac" if name in KEEP_AUDIO else None,
                               "patches": int(rounded.shape[0])}
        if name not in KEEP_AUDIO:
            flac.unlink()
    tmp.rmdir()
    np.savez_compressed(out / "musicnn_reference.npz", **arrays)
    (out / "musicnn_reference.json").write_text(json.dumps(info, indent=1))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
