"""The 25-class major/minor/no-chord vocabulary, chord reduction and frame <-> segment mapping.

Vocabulary
----------
Labels are Harte chord symbols spelt with sharps, as mir_eval writes them. The class
order follows madmom's ``majmin`` targets: the 12 major chords from C to B, then the 12
minor chords from C to B, then no-chord::

    index  0..11 : C:maj  C#:maj D:maj  D#:maj E:maj  F:maj  F#:maj G:maj  G#:maj A:maj  A#:maj B:maj
    index 12..23 : C:min  C#:min D:min  D#:min E:min  F:min  F#:min G:min  G#:min A:min  A#:min B:min
    index 24     : N

so ``index = root_pitch_class + 12 * is_minor`` and ``N`` is :data:`NO_CHORD_INDEX` (24).
The tutorial instead sorts the label strings alphabetically (``A#:maj, A#:min, A:maj, ...,
N:-``) and writes no-chord as ``N:-``; :data:`SEED_CHORD_LABELS` gives that order for
comparison with its checkpoints.

Reduction policy
----------------
:func:`reduce_to_majmin` keeps exactly the chords that ``mir_eval.chord.majmin`` (the
MIREX "MajMin" measure) scores, and reduces them the same way: a chord whose pitch classes
0-7 semitones above the root (bass note included) equal those of ``maj`` or ``min`` becomes
``<root>:maj`` / ``<root>:min``, whatever its sevenths, sixths or extensions (``C:7`` ->
``C:maj``, ``A:min7`` -> ``A:min``, ``C:maj6`` -> ``C:maj``) and whatever its inversion
(``Bb:maj/5`` -> ``A#:maj``). Enharmonic roots are respelt with sharps (``Db`` -> ``C#``,
``Cb`` -> ``B``). ``N`` and the tutorial's ``N:-`` become ``N``.

Chords with no major or minor triad -- ``dim``, ``aug``, ``sus2``, ``sus4``, ``hdim7``,
``dim7``, power chords ``C:5``, single notes ``C:1``, chords with the third omitted, and
the unknown chord ``X`` -- become :data:`EXCLUDED` (``X``). MIREX majmin excludes these
reference frames from the score (``mir_eval.chord.majmin`` returns -1 for them), so
mapping them to ``N`` would train the model to answer "no chord" on frames that have a
chord and that evaluation ignores anyway. Frame targets give them
:data:`EXCLUDED_INDEX` (-100, the default ``ignore_index`` of ``torch.nn.CrossEntropyLoss``)
so that training skips them as evaluation does; callers who prefer the other common
convention can pass ``excluded_index=NO_CHORD_INDEX``.

Frames
------
Frame ``i`` is centred at ``i / frame_rate`` seconds (librosa's centred framing, the
tutorial's ``frames_to_time``). A segment ``[start_s, end_s)`` labels the frames whose
centre lies in it (start included, end excluded: the tutorial's strict ``time < t`` left
the frame at t = 0 unlabelled). Frames that no segment covers are ``N`` (the tutorial gave
them class 0).

References
----------
C. Harte et al., "Symbolic representation of musical chords: a proposed syntax for text
annotations", ISMIR 2005. C. Raffel et al., "mir_eval", ISMIR 2014.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import mir_eval
import numpy as np

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
"""Root spellings, by pitch class (sharps only)."""

CHORD_LABELS: tuple[str, ...] = (
    tuple(f"{root}:maj" for root in PITCH_CLASSES) + tuple(f"{root}:min" for root in PITCH_CLASSES) + ("N",)
)
"""The 25 classes, in class-index order (see the module docstring)."""

NO_CHORD = "N"
NO_CHORD_INDEX = 24
EXCLUDED = "X"
EXCLUDED_INDEX = -100
NO_CHORD_ALIASES = frozenset({"N", "N:-"})

SEED_CHORD_LABELS: tuple[str, ...] = tuple(sorted(label if label != "N" else "N:-" for label in CHORD_LABELS))
"""The tutorial's class order: its labels (``N:-`` for no-chord) sorted as strings."""

_MAJ = np.array(mir_eval.chord.QUALITIES["maj"][:8])
_MIN = np.array(mir_eval.chord.QUALITIES["min"][:8])
_INDEX = {label: index for index, label in enumerate(CHORD_LABELS)}


@functools.lru_cache(maxsize=4096)
def reduce_to_majmin(label: str) -> str:
    """Reduce a Harte chord label to the 25-class vocabulary, or to ``X`` if it has none.

    Parameters
    ----------
    label
        A Harte chord symbol (``C:7``, ``Bb:maj/5``, ``A:min7``, ``N``, ``X``), or the
        tutorial's ``N:-``. Surrounding whitespace is ignored.

    Returns
    -------
    str
        One of :data:`CHORD_LABELS`, or :data:`EXCLUDED` for chords that MIREX majmin
        leaves out (see the module docstring).

    Raises
    ------
    ValueError
        ``label`` is not valid Harte syntax (e.g. ``C:foo``, ``c:maj``).

    Examples
    --------
    >>> reduce_to_majmin("Db:7"), reduce_to_majmin("A:min7"), reduce_to_majmin("C:dim")
    ('C#:maj', 'A:min', 'X')
    """
    if not isinstance(label, str):
        raise ValueError(f"chord label {label!r}: expected a string")
    label = label.strip()
    if label in NO_CHORD_ALIASES:
        return NO_CHORD
    try:
        root, semitones, _bass = mir_eval.chord.encode(label, reduce_extended_chords=False)
    except mir_eval.chord.InvalidChordException:
        raise ValueError(
            f"chord label {label!r}: not a valid Harte chord symbol (e.g. 'C:maj', 'A:min7', 'N')") from None
    if root < 0:  # X: unknown chord
        return EXCLUDED
    if np.array_equal(semitones[:8], _MAJ):
        return f"{PITCH_CLASSES[root]}:maj"
    if np.array_equal(semitones[:8], _MIN):
        return f"{PITCH_CLASSES[root]}:min"
    return EXCLUDED


def majmin_projection(vocabulary: Sequence[str]) -> np.ndarray:
    """``(len(vocabulary), 25)`` 0/1 matrix summing a model's chord posteriors into :data:`CHORD_LABELS`.

    Class ``k`` goes to ``reduce_to_majmin(vocabulary[k])``; chords that have no major or minor
    reading (``dim``, ``aug``, ``sus2``, ``sus4``, ``hdim7``, ``dim7``, ``X``: :data:`EXCLUDED`)
    get an all-zero row, so the reduced posteriors, once renormalised, choose among the 25
    classes by the mass of the chords that belong to them.

    Raises
    ------
    ValueError
        For a label that is not Harte syntax.
    """
    projection = np.zeros((len(vocabulary), len(CHORD_LABELS)), dtype=np.float32)
    for k, label in enumerate(vocabulary):
        reduced = reduce_to_majmin(label)
        if reduced != EXCLUDED:
            projection[k, _INDEX[reduced]] = 1.0
    return projection


def chord_index(label: str, excluded_index: int = EXCLUDED_INDEX) -> int:
    """Class index of a chord label after :func:`reduce_to_majmin`.

    ``X`` and every chord outside the vocabulary get ``excluded_index``.
    """
    reduced = reduce_to_majmin(label)
    return _INDEX.get(reduced, excluded_index)


def chord_label(index: int) -> str:
    """The label of a class index (:data:`EXCLUDED_INDEX` gives ``X``)."""
    if index == EXCLUDED_INDEX:
        return EXCLUDED
    if not 0 <= index < len(CHORD_LABELS):
        raise ValueError(f"chord class index {index}: expected 0..{len(CHORD_LABELS) - 1} or {EXCLUDED_INDEX}")
    return CHORD_LABELS[index]


def _segment_fields(segment: Mapping[str, Any] | Sequence[Any]) -> tuple[float, float, str]:
    if isinstance(segment, Mapping):
        return float(segment["start_s"]), float(segment["end_s"]), segment["label"]
    start, end, label = segment
    return float(start), float(end), label


def segments_to_frames(
    segments: Iterable[Mapping[str, Any] | Sequence[Any]],
    num_frames: int,
    frame_rate: float,
    *,
    excluded_index: int = EXCLUDED_INDEX,
) -> np.ndarray:
    """Frame-level class indices from chord segments.

    Parameters
    ----------
    segments
        ``{"start_s", "end_s", "label"}`` mappings (the manifest's struct) or
        ``(start_s, end_s, label)`` tuples, any Harte labels. Later segments win where
        segments overlap.
    num_frames
        Number of frames to label.
    frame_rate
        Frames per second; frame ``i`` is centred at ``i / frame_rate``.
    excluded_index
        Index for chords outside the vocabulary (default :data:`EXCLUDED_INDEX`).

    Returns
    -------
    numpy.ndarray
        ``int64``, shape ``(num_frames,)``; uncovered frames are :data:`NO_CHORD_INDEX`.

    Raises
    ------
    ValueError
        A segment with ``end_s < start_s``, a non-finite time or an invalid label.
    """
    if num_frames < 0 or frame_rate <= 0:
        raise ValueError(f"num_frames={num_frames}, frame_rate={frame_rate}: expected >= 0 and > 0")
    frames = np.full(num_frames, NO_CHORD_INDEX, dtype=np.int64)
    tolerance = 1e-6  # in frames: a boundary computed as k * hop / sr must land on frame k, not k + 1
    for segment in segments:
        start, end, label = _segment_fields(segment)
        if not (np.isfinite(start) and np.isfinite(end)) or end < start:
            raise ValueError(f"chord segment ({start}, {end}, {label!r}): expected finite start_s <= end_s")
        first = max(int(np.ceil(start * frame_rate - tolerance)), 0)
        stop = min(int(np.ceil(end * frame_rate - tolerance)), num_frames)
        if stop > first:
            frames[first:stop] = chord_index(label, excluded_index)
    return frames


def frames_to_segments(
    frames: Sequence[int] | np.ndarray,
    frame_rate: float,
    *,
    duration_s: float | None = None,
    excluded_index: int = EXCLUDED_INDEX,
) -> list[dict[str, Any]]:
    """Merge runs of equal frame classes into ``{"start_s", "end_s", "label"}`` segments.

    The boundary between frames ``i - 1`` and ``i`` is put half-way between their
    centres, at ``(i - 0.5) / frame_rate``; the first segment starts at 0 and the last ends
    at ``duration_s`` (default ``len(frames) / frame_rate``). With these boundaries
    ``segments_to_frames(frames_to_segments(f, r), len(f), r)`` gives ``f`` back.

    Returns
    -------
    list of dict
        Segments in time order, labels from :data:`CHORD_LABELS` (``X`` for
        ``excluded_index``); empty for no frames.
    """
    frames = np.asarray(frames, dtype=np.int64)
    if frames.ndim != 1:
        raise ValueError(f"frames: expected a 1-D array of class indices, got shape {frames.shape}")
    if len(frames) == 0:
        return []
    end_s = len(frames) / frame_rate if duration_s is None else float(duration_s)
    changes = np.flatnonzero(np.diff(frames)) + 1
    starts = np.concatenate([[0], changes])
    stops = np.concatenate([changes, [len(frames)]])
    segments = []
    for first, stop in zip(starts, stops):
        index = int(frames[first])
        segments.append({
            "start_s": 0.0 if first == 0 else float((first - 0.5) / frame_rate),
            "end_s": end_s if stop == len(frames) else float((stop - 0.5) / frame_rate),
            "label": EXCLUDED if index == excluded_index else chord_label(index),
        })
    return segments
