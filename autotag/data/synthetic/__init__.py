"""Deterministic, learnable synthetic datasets written as real audio files plus a manifest.

The generators render notes and drums from a small set of musical primitives
(harmonic oscillators, envelopes, distortion, kick/snare/hat, filtered noise) and mix
them with noise at a random gain, so that classes differ in timbre, pitch, harmony and
rhythm but are not trivially separable. Each file is written at a sample rate, channel
count and format drawn from the spec, so the sharding stage sees a realistically mixed
catalogue.

Kinds (``SyntheticSpec.kind``), one per quadrant of the tutorial's task table:

- ``genre``: 10 classes, multi-class (:mod:`~autotag.data.synthetic.genre`);
- ``tags``: 10 tags, multi-label mixtures of sources (:mod:`~autotag.data.synthetic.tags`);
- ``chords``: 25 chord classes in time segments, plus ``.lab`` files (:mod:`~autotag.data.synthetic.chords`);
- ``instruments``: 6 instruments entering and leaving (:mod:`~autotag.data.synthetic.instruments`).

:data:`LABEL_KEYS` names each kind's manifest label column and :data:`VOCABULARIES` its
class order. The same spec always gives byte-identical files and labels.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from autotag.data import manifest
from autotag.data.chords import CHORD_LABELS
from autotag.data.synthetic.chords import generate_chords
from autotag.data.synthetic.genre import GENRES, generate_genre
from autotag.data.synthetic.instruments import INSTRUMENTS, generate_instruments
from autotag.data.synthetic.spec import SyntheticSpec, split_for_index, track_count
from autotag.data.synthetic.tags import TAGS, generate_tags

__all__ = ["GENERATORS", "GENRES", "INSTRUMENTS", "LABEL_KEYS", "SyntheticSpec", "TAGS", "VOCABULARIES", "generate",
           "split_for_index", "track_count"]


def corrupt_rows(out_dir: Path, count: int, label_key: str, rows: list[dict]) -> list[dict]:
    """Manifest rows pointing at a missing file and at a non-audio file (alternating).

    Their labels are taken from the real ``rows`` so that they have the kind's label type:
    the sorted distinct values for a string label (genre), else the labels of the first rows.
    """
    values = [row[label_key] for row in rows]
    examples = sorted(set(values)) if values and all(isinstance(v, str) for v in values) else values or [None]
    corrupt = []
    bad_dir = out_dir / "audio" / "_corrupt"
    bad_dir.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        track_id = f"corrupt-{i:05d}"
        path = bad_dir / f"{track_id}.wav"
        if i % 2:
            path.write_bytes(b"this is a text file with a .wav extension, not audio\n" * 10)
        else:
            path.unlink(missing_ok=True)
        corrupt.append({"track_id": track_id, "audio_path": str(path.resolve()), "duration_s": None,
                        "split": "test", label_key: examples[i % len(examples)]})
    return corrupt


GENERATORS: dict[str, Callable[[Path, SyntheticSpec], list[dict]]] = {
    "genre": generate_genre,
    "tags": generate_tags,
    "chords": generate_chords,
    "instruments": generate_instruments,
}
LABEL_KEYS: dict[str, str] = {"genre": "genre", "tags": "tags", "chords": "chords", "instruments": "instruments"}
VOCABULARIES: dict[str, tuple[str, ...]] = {
    "genre": tuple(GENRES),
    "tags": TAGS,
    "chords": CHORD_LABELS,
    "instruments": INSTRUMENTS,
}
"""Class order of each kind's labels (chords: :data:`autotag.data.chords.CHORD_LABELS`)."""


def generate(out_dir: str | Path, spec: SyntheticSpec) -> Path:
    """Render a synthetic dataset under ``out_dir`` and write ``out_dir/manifest.parquet``.

    Idempotent: if the manifest already exists and was made from the same spec, nothing is
    re-rendered.

    Returns
    -------
    Path
        The manifest path.
    """
    if spec.kind not in GENERATORS:
        raise ValueError(f"unknown synthetic dataset kind {spec.kind!r}; known: {sorted(GENERATORS)}")
    out_dir = Path(out_dir)
    manifest_path = out_dir / "manifest.parquet"
    stamp = out_dir / "spec.txt"
    if manifest_path.exists() and stamp.exists() and stamp.read_text() == repr(spec):
        return manifest_path
    rows = GENERATORS[spec.kind](out_dir, spec)
    if spec.corrupt_tracks:
        rows += corrupt_rows(out_dir, spec.corrupt_tracks, LABEL_KEYS[spec.kind], rows)
    manifest.write(manifest.build_table(rows), manifest_path)
    stamp.write_text(repr(spec))
    return manifest_path

