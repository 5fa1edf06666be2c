"""Our musicnn against the original TensorFlow musicnn, on real recordings.

Reference outputs (``tests/fixtures/pretrained/musicnn_reference.npz``) come from musicnn 0.1.0's
own graph and checkpoint run under TensorFlow 2.21 (``benchmarks/pretrained_reference.py``) on
excerpts of three CC-licensed recordings of librosa's example-data repository (Brahms' Hungarian
Dance No. 5, Kevin MacLeod's "Vibe Ace", Mihai Sorohan's solo trumpet).

- Model parity: the same log-mel patches into both networks; tag probabilities within 1e-4.
- Features: our 16 kHz log-mel against librosa's (musicnn's recipe), on the same 16 kHz samples.
- End to end, from the 22,050 Hz FLAC: musicnn resamples with soxr (librosa.load), we with
  torchaudio; the difference is measured and bounded, not zero. With soxr in our place the
  whole chain matches within 1e-4: the difference is the resampler's.
"""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from autotag.features.musicnn_mel import MusicnnMel
from autotag.models import checkpoint
from autotag.pretrained.musicnn import convert, read_labels
from tests.pretrained_fixtures import FIXTURES, reference, require_musicnn

CLIPS = ("brahms", "vibeace", "trumpet")
MODELS = ("MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = require_musicnn()
    out = tmp_path_factory.mktemp("musicnn")
    return {name: checkpoint.load(convert(name, out / name, folder))[0] for name in MODELS}


def patch_outputs(model, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and embedding for musicnn-layout patches ``(P, 187, 96)``."""
    with torch.no_grad():
        embedding = model.backend(model.frontend.encode(torch.from_numpy(patches.astype(np.float32)).transpose(1, 2)))
        return model.probabilities(model.head(embedding)).numpy(), embedding.numpy()


@pytest.mark.parametrize("clip", CLIPS)
@pytest.mark.parametrize("name", MODELS)
def test_same_patches_give_the_same_tags(models, name, clip):
    ref = reference()
    probs, embedding = patch_outputs(models[name], ref[f"{clip}/patches"])
    assert np.abs(probs - ref[f"{clip}/{name}"]).max() <= 1e-4
    if name.startswith("MTT"):  # musicnn's penultimate layer; vgg's pool5, flattened
        assert np.abs(embedding - ref[f"{clip}/{name}_penultimate"]).max() <= 1e-4


def test_top_tags_of_the_string_orchestra(models):
    folder = require_musicnn()
    labels = read_labels(folder / "configuration.py", "MTT_LABELS")
    probs, _ = patch_outputs(models["MTT_musicnn"], reference()["brahms/patches"])
    top = [labels[i] for i in np.argsort(probs.mean(0))[::-1][:3]]
    assert top[0] == "classical" and set(top) <= {"classical", "strings", "violin", "classic", "cello"}, top


def test_log_mel_matches_librosa_on_the_same_16k_samples():
    audio, _ = sf.read(FIXTURES / "brahms.flac", dtype="float32")
    features = MusicnnMel()
    wave16k = features.resample(torch.from_numpy(audio)[None])[0].numpy()
    mel = librosa.feature.melspectrogram(y=wave16k, sr=16_000, hop_length=256, n_fft=512, n_mels=96)
    want = np.log10(10_000 * mel + 1)
    got = features.log_mel(torch.from_numpy(wave16k)[None])[0].numpy()
    assert got.shape == want.shape == (96, 1 + len(wave16k) // 256)
    assert np.abs(got - want).max() < 2e-3


def test_extractor_float16_reproduces_musicnns_overflow():
    audio, _ = sf.read(FIXTURES / "brahms.flac", dtype="float32")
    wave = torch.from_numpy(audio)[None]
    exact, emulated = MusicnnMel()(wave), MusicnnMel(extractor_float16=True)(wave)
    assert torch.isfinite(exact).all()
    assert int(torch.isinf(emulated).sum()) > 0 and int(reference()["brahms/extractor_infs"]) > 0
    finite = torch.isfinite(emulated)
    assert (emulated[finite] - exact[finite]).abs().max() < 5e-3  # float16 rounding of values up to ~4.8


def test_musicnn_extractor_itself_gives_every_clip_the_same_tags():
    """Why our front-end takes the log in float32: the extractor's float16 overflow makes its output constant."""
    ref = reference()
    first = ref["brahms/extractor_MTT_musicnn"][0]
    for clip in CLIPS:
        np.testing.assert_allclose(ref[f"{clip}/extractor_MTT_musicnn"], np.broadcast_to(first, (len(
            ref[f"{clip}/extractor_MTT_musicnn"]), 50)), atol=1e-6)
    assert np.abs(ref["brahms/MTT_musicnn"] - ref["vibeace/MTT_musicnn"]).max() > 0.1  # finite inputs differ


@pytest.mark.parametrize("name", MODELS)
def test_end_to_end_from_audio(models, name):
    """The inference path (``embed_patches``: musicnn's whole-span framing) and stacked patches
    (``forward``, what training sees) against musicnn's output from the same 22,050 Hz file."""
    audio, _ = sf.read(FIXTURES / "brahms.flac", dtype="float32")
    model = models[name]
    ref = reference()[f"brahms/e2e_{name}"]
    starts = [k * model.frontend.patch_hop_samples for k in range(len(ref))]
    track = torch.from_numpy(audio)
    with torch.no_grad():
        inference = model.probabilities(model.head(model.embed_patches(track, starts, model.frontend.patch_samples)))
        stacked = model.probabilities(model(torch.stack([track[s : s + model.frontend.patch_samples] for s in starts])))
    inference_diff, stacked_diff = np.abs(inference.numpy() - ref).max(), np.abs(stacked.numpy() - ref).max()
    print(f"{name} end-to-end max |p_ours - p_musicnn|: inference {inference_diff:.4f}, stacked {stacked_diff:.4f}")
    assert inference_diff < 0.01 and stacked_diff < 0.05
    assert np.argmax(inference.numpy().mean(0)) == np.argmax(ref.mean(0))


@pytest.mark.parametrize("name", MODELS)
def test_with_musicnns_resampler_the_whole_chain_matches(models, name):
    """soxr (librosa.load's resampler) instead of torchaudio, and whole-track framing as musicnn
    frames: our log-mel + network then give musicnn's end-to-end output, so the end-to-end
    difference above is the resampler's alone."""
    audio, _ = sf.read(FIXTURES / "brahms.flac", dtype="float32")
    model = models[name]
    ref = reference()[f"brahms/e2e_{name}"]
    wave16k = librosa.resample(audio, orig_sr=22_050, target_sr=16_000, res_type="soxr_hq")
    with torch.no_grad():
        mel = model.frontend.features.log_mel(torch.from_numpy(wave16k)[None])[0]
        patches = torch.stack([mel[:, k * 187 : (k + 1) * 187] for k in range(len(ref))])
        probs = model.probabilities(model.head(model.backend(model.frontend.encode(patches)))).numpy()
    assert np.abs(probs - ref).max() <= 1e-4
