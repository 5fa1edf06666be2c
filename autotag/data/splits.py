"""Train/valid/test split strategies shared by every adapter.

Three strategies, each deterministic:

- :func:`index_modulo` -- the tutorial's split by entry index (``idx % 5 == 0`` held out),
  with the held-out fifth cut in two so that a test split exists (the tutorial evaluates
  on its validation set);
- :func:`from_lists` -- explicit lists of tracks per split, e.g. the fault-filtered GTZAN
  split (``blues/blues.00012.wav`` per line);
- :func:`artist_disjoint` -- a seeded split in which no artist appears in two splits.

Adapters take a ``split`` argument that :func:`resolve` turns into one split name per row:
``"index_modulo"`` (default), ``"artist_disjoint"``, ``"train"``/``"valid"``/``"test"`` (all
rows to one split), an :class:`ArtistSplit`, a :class:`SplitLists` or a plain
``{key: split}`` mapping.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autotag.data.audio import AUDIO_EXTENSIONS
from autotag.data.manifest import SPLITS


def normalize_key(key: str) -> str:
    """How split-list entries and row paths are compared: ``./`` prefix and audio extension dropped.

    So ``blues/blues.00012.wav`` in a list matches ``blues/blues.00012.au`` on disk.
    """
    key = key.strip().replace("\\", "/")
    while key.startswith("./"):
        key = key[2:]
    suffix = Path(key).suffix.lower()
    return key[: -len(suffix)] if suffix in AUDIO_EXTENSIONS else key


def index_modulo(n: int, modulo: int = 5, held_out: int = 0) -> list[str]:
    """The tutorial's split by entry index, with a test split carved out of its validation set.

    Entry ``i`` is held out when ``i % modulo == held_out`` (the tutorial's ``idx % 5 == 0``)
    and goes to train otherwise, so the training set is exactly the tutorial's. Held-out
    entries alternate between ``valid`` and ``test`` (the ``k``-th held-out entry, counting
    from 0, is ``valid`` when ``k`` is even), so valid and test each get about 10 % and
    together are the tutorial's validation set.

    When that leaves no test entry (``n <= modulo``), the last training entry becomes
    ``test``; with ``n < 3`` a split stays empty and a warning says so.

    Parameters
    ----------
    n
        Number of entries, in file order.
    modulo, held_out
        Entry ``i`` is held out when ``i % modulo == held_out``.

    Returns
    -------
    list of str
        One of ``train``/``valid``/``test`` per entry.
    """
    if modulo < 2 or not 0 <= held_out < modulo:
        raise ValueError(f"index_modulo: modulo={modulo}, held_out={held_out}; "
                         "expected modulo >= 2 and 0 <= held_out < modulo")
    splits = []
    for i in range(n):
        if i % modulo != held_out:
            splits.append("train")
        else:
            splits.append("valid" if (i // modulo) % 2 == 0 else "test")
    if "test" not in splits:
        train = [i for i, s in enumerate(splits) if s == "train"]
        if train:
            splits[train[-1]] = "test"
    if n and len(set(splits)) < 3:
        warnings.warn(f"index_modulo: {n} entries cannot fill train, valid and test; got {sorted(set(splits))}",
                      stacklevel=2)
    return splits


@dataclass(frozen=True)
class SplitLists:
    """An explicit split: normalised track key -> split, plus what to do with unlisted tracks.

    ``unlisted`` is ``"error"`` (raise), ``"drop"`` (leave the track out of the manifest, as the
    fault-filtered GTZAN split leaves out its faulty clips) or a split name.
    """

    assignment: Mapping[str, str]
    unlisted: str = "error"

    def lookup(self, keys: Sequence[str]) -> str | None:
        """The split of the first of ``keys`` (track id, relative path, ...) that is listed."""
        for key in keys:
            split = self.assignment.get(normalize_key(key))
            if split is not None:
                return split
        return None


def _read_list(items: str | Path | Iterable[str]) -> list[str]:
    if isinstance(items, Path) or (isinstance(items, str) and Path(items).is_file()):
        lines = Path(items).read_text().splitlines()
    elif isinstance(items, str):
        raise ValueError(f"split list {items!r}: not a file; pass a path or a list of track keys")
    else:
        lines = list(items)
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def from_lists(
    train: str | Path | Iterable[str] = (),
    valid: str | Path | Iterable[str] = (),
    test: str | Path | Iterable[str] = (),
    *,
    unlisted: str = "error",
) -> SplitLists:
    """An explicit split from lists of track keys, or from text files with one key per line.

    A key is a track id or a path relative to the dataset root, with or without its audio
    extension (``blues/blues.00012.wav``); blank lines and ``#`` comments are skipped.

    Raises
    ------
    ValueError
        A key listed in two splits, or ``unlisted`` not ``error``/``drop``/a split name.
    """
    if unlisted not in ("error", "drop", *SPLITS):
        raise ValueError(f"unlisted={unlisted!r}: expected 'error', 'drop' or one of {SPLITS}")
    assignment: dict[str, str] = {}
    for split, items in (("train", train), ("valid", valid), ("test", test)):
        for key in _read_list(items):
            key = normalize_key(key)
            if assignment.get(key, split) != split:
                raise ValueError(f"split lists: {key!r} is listed in both {assignment[key]!r} and {split!r}")
            assignment[key] = split
    return SplitLists(assignment, unlisted)


@dataclass(frozen=True)
class ArtistSplit:
    """Parameters of :func:`artist_disjoint`, for an adapter's ``split`` argument."""

    seed: int = 0
    fractions: tuple[float, float, float] = field(default=(0.8, 0.1, 0.1))


def artist_disjoint(
    artists: Sequence[str | None],
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> list[str]:
    """A seeded split in which all tracks of an artist share one split.

    The distinct artists are sorted, shuffled with ``seed``, then dealt out: to ``test``
    until it holds at least ``fractions[2]`` of the tracks, then to ``valid`` until it holds
    ``fractions[1]``, then the rest to ``train``. Each of test and valid gets at least one
    artist and train keeps at least one. The result depends on the set of (artist, track
    count) pairs, not on row order. A missing artist (``None`` or empty) counts as an
    artist of its own, per track, with a warning.

    Parameters
    ----------
    artists
        The artist of each track.
    seed
        Shuffling seed.
    fractions
        Target fractions of tracks for (train, valid, test); they must sum to 1.

    Returns
    -------
    list of str
        The split of each track.

    Raises
    ------
    ValueError
        Fewer than 3 distinct artists, or fractions that are negative or do not sum to 1.
    """
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"artist_disjoint: fractions {fractions}: expected three non-negative numbers summing to 1")
    keys = [a if a else f"\0track-{i}" for i, a in enumerate(artists)]
    if any(not a for a in artists):
        missing = sum(1 for a in artists if not a)
        warnings.warn(f"artist_disjoint: {missing} track(s) have no artist; each is treated as its own artist",
                      stacklevel=2)
    counts: dict[str, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    if len(counts) < 3:
        raise ValueError(f"artist_disjoint: {len(counts)} distinct artist(s); need at least 3 for train/valid/test")
    order = sorted(counts)
    order = [order[i] for i in np.random.default_rng(seed).permutation(len(order))]
    assignment: dict[str, str] = {}
    position = 0
    for reserve, (split, fraction) in ((2, ("test", fractions[2])), (1, ("valid", fractions[1]))):
        taken = 0  # ``reserve`` artists stay for the splits dealt later
        while position < len(order) - reserve and (taken == 0 or taken < fraction * len(keys)):
            assignment[order[position]] = split
            taken += counts[order[position]]
            position += 1
    for artist in order[position:]:
        assignment[artist] = "train"
    return [assignment[key] for key in keys]


SplitSpec = str | SplitLists | ArtistSplit | Mapping[str, str]


def resolve(
    split: SplitSpec,
    keys: Sequence[Sequence[str]],
    artists: Sequence[str | None] | None = None,
    *,
    source: str = "dataset",
) -> list[str | None]:
    """One split per row (``None``: drop the row) from an adapter's ``split`` argument.

    Parameters
    ----------
    split
        See the module docstring.
    keys
        Per row, the keys an explicit list may use for it: the track id first, then paths
        relative to the dataset root.
    artists
        Per row, the artist (needed by the artist-disjoint strategy).
    source
        Names the dataset in error messages.

    Raises
    ------
    ValueError
        An unknown strategy, a row missing from an explicit split with ``unlisted="error"``,
        or an artist-disjoint split of a dataset without artists.
    """
    if isinstance(split, str) and split in SPLITS:
        return [split] * len(keys)
    if split == "index_modulo":
        return list(index_modulo(len(keys)))
    if split == "artist_disjoint" or isinstance(split, ArtistSplit):
        params = split if isinstance(split, ArtistSplit) else ArtistSplit()
        if artists is None:
            raise ValueError(f"{source}: split 'artist_disjoint' needs artist names, and this source has none")
        return list(artist_disjoint(artists, params.seed, params.fractions))
    if isinstance(split, Mapping) and not isinstance(split, SplitLists):
        split = SplitLists({normalize_key(k): v for k, v in split.items()})
    if isinstance(split, SplitLists):
        return _resolve_lists(split, keys, source)
    raise ValueError(f"{source}: split {split!r}: expected 'index_modulo', 'artist_disjoint', one of {SPLITS}, "
                     "an ArtistSplit, a SplitLists (splits.from_lists) or a {key: split} mapping")


def _resolve_lists(lists: SplitLists, keys: Sequence[Sequence[str]], source: str) -> list[str | None]:
    bad = sorted({s for s in lists.assignment.values() if s not in SPLITS})
    if bad:
        raise ValueError(f"{source}: split names {bad} not in {SPLITS}")
    out: list[str | None] = []
    for row_keys in keys:
        split = lists.lookup(row_keys)
        if split is None:
            if lists.unlisted == "error":
                raise ValueError(f"{source}: track {row_keys[0]!r} is in none of the split lists "
                                 "(pass unlisted='drop' or a split name to from_lists to allow this)")
            split = None if lists.unlisted == "drop" else lists.unlisted
        out.append(split)
    return out
