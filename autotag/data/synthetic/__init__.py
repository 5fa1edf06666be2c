"""Deterministic, learnable synthetic datasets written as real audio files plus a manifest.

The generator renders notes and drums from a small set of musical primitives
(harmonic oscillators, envelopes, distortion, kick/snare/hat) and mixes them with
noise at a random gain, so that classes differ in timbre, pitch range and rhythm but
are not trivially separable. Each file is written at a sample rate, channel count and
format drawn from the spec, so the sharding stage sees a realistically mixed catalogue.

Kinds (``SyntheticSpec.kind``): ``genre`` (10 classes, multi-class). The tag, chord and
instrument quadrants reuse the same primitives (:func:`render_note`, :func:`render_drums`,
:func:`finish_mix`) and register themselves in :data:`GENERATORS`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from autotag.data import manifest
from autotag.data.synthetic.genre import GENRES, generate_genre
from autotag.data.synthetic.spec import SyntheticSpec, split_for_index

__all__ = ["GENERATORS", "GENRES", "SyntheticSpec", "generate", "split_for_index"]


def corrupt_rows(out_dir: Path, count: int, labels: list[str]) -> list[dict]:
    """Manifest rows pointing at a missing file and at a non-audio file (alternating)."""
    rows = []
    bad_dir = out_dir / "audio" / "_corrupt"
    bad_dir.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        track_id = f"corrupt-{i:05d}"
        path = bad_dir / f"{track_id}.wav"
        if i % 2:
            path.write_bytes(b"this is a text file with a .wav extension, not audio\n" * 10)
        else:
            path.unlink(missing_ok=True)
        rows.append({"track_id": track_id, "audio_path": str(path.resolve()), "duration_s": None,
                     "split": "test", "genre": labels[i % len(labels)]})
    return rows


GENERATORS: dict[str, Callable[[Path, SyntheticSpec], list[dict]]] = {"genre": generate_genre}
LABEL_KEYS: dict[str, str] = {"genre": "genre"}


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
        labels = sorted({r[LABEL_KEYS[spec.kind]] for r in rows})
        rows += corrupt_rows(out_dir, spec.corrupt_tracks, labels)
    manifest.write(manifest.build_table(rows), manifest_path)
    stamp.write_text(repr(spec))
    return manifest_path

