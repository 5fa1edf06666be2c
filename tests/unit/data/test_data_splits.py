"""Split strategies: the tutorial's index modulo, explicit lists, artist-disjoint."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from autotag.data import splits


def test_index_modulo_keeps_the_tutorials_training_set_and_carves_test_from_valid():
    result = splits.index_modulo(25)
    assert [i for i, s in enumerate(result) if s == "train"] == [i for i in range(25) if i % 5 != 0]
    assert [i for i, s in enumerate(result) if s == "valid"] == [0, 10, 20]
    assert [i for i, s in enumerate(result) if s == "test"] == [5, 15]
    assert splits.index_modulo(25) == result  # deterministic


def test_index_modulo_small_inputs_still_have_a_test_split():
    assert splits.index_modulo(4) == ["valid", "train", "train", "test"]
    assert splits.index_modulo(3) == ["valid", "train", "test"]
    with pytest.warns(UserWarning, match="cannot fill"):
        assert splits.index_modulo(2) == ["valid", "test"]
    assert splits.index_modulo(0) == []
    with pytest.raises(ValueError, match="modulo"):
        splits.index_modulo(10, modulo=1)


def test_from_lists_reads_files_and_matches_across_extensions(tmp_path):
    train = tmp_path / "train_filtered.txt"
    train.write_text("blues/blues.00001.wav\n\n# a comment\nblues/blues.00002.wav\n")
    lists = splits.from_lists(train, ["./blues/blues.00003.wav"], ["blues-blues-00004"], unlisted="drop")
    keys = [("blues-blues-00001", "blues/blues.00001.au"), ("blues-blues-00002", "blues/blues.00002.wav"),
            ("blues-blues-00003", "blues/blues.00003.wav"), ("blues-blues-00004", "blues/blues.00004.wav"),
            ("blues-blues-00005", "blues/blues.00005.wav")]
    assert splits.resolve(lists, keys) == ["train", "train", "valid", "test", None]


def test_from_lists_errors():
    with pytest.raises(ValueError, match="listed in both 'train' and 'test'"):
        splits.from_lists(["a.wav"], [], ["a"])
    with pytest.raises(ValueError, match="unlisted="):
        splits.from_lists(["a"], unlisted="ignore")
    with pytest.raises(ValueError, match="not a file"):
        splits.from_lists("no/such/file.txt")
    with pytest.raises(ValueError, match="'b' is in none of the split lists"):
        splits.resolve(splits.from_lists(["a"]), [("a",), ("b",)])
    assert splits.resolve(splits.from_lists(["a"], unlisted="test"), [("a",), ("b",)]) == ["train", "test"]


def _artists(n_artists: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [f"artist{int(a)}" for a in rng.integers(0, n_artists, size=200)]


def test_artist_disjoint_is_disjoint_deterministic_and_order_free():
    artists = _artists(30)
    result = splits.artist_disjoint(artists, seed=7)
    by_split = {s: {a for a, r in zip(artists, result) if r == s} for s in splits.SPLITS}
    assert all(by_split.values())
    assert not (by_split["train"] & by_split["valid"] or by_split["train"] & by_split["test"]
                or by_split["valid"] & by_split["test"])
    assert splits.artist_disjoint(artists, seed=7) == result
    assert 0.05 <= result.count("test") / len(result) <= 0.3
    order = np.random.default_rng(1).permutation(len(artists))
    shuffled = splits.artist_disjoint([artists[i] for i in order], seed=7)
    assert [shuffled[list(order).index(i)] for i in range(len(artists))] == result
    assert splits.artist_disjoint(artists, seed=8) != result


def test_artist_disjoint_edge_cases():
    assert sorted(splits.artist_disjoint(["a", "b", "c"])) == ["test", "train", "valid"]
    with pytest.raises(ValueError, match="2 distinct artist"):
        splits.artist_disjoint(["a", "b", "a"])
    with pytest.raises(ValueError, match="fractions"):
        splits.artist_disjoint(["a", "b", "c"], fractions=(0.5, 0.5, 0.5))
    with pytest.warns(UserWarning, match="no artist"):
        result = splits.artist_disjoint(["a", "a", None, "", "b"])
    assert len(result) == 5 and result[0] == result[1]


def test_resolve_strategies_and_errors():
    keys = [(f"t{i}",) for i in range(10)]
    assert splits.resolve("test", keys) == ["test"] * 10
    assert splits.resolve("index_modulo", keys) == splits.index_modulo(10)
    assert splits.resolve({"t0": "valid", "t1": "test"}, keys[:2]) == ["valid", "test"]
    artists = ["a", "b", "c", "d", "e"] * 2
    assert splits.resolve(splits.ArtistSplit(seed=3), keys, artists) == splits.artist_disjoint(artists, 3)
    with pytest.raises(ValueError, match="needs artist names"):
        splits.resolve("artist_disjoint", keys)
    with pytest.raises(ValueError, match="expected 'index_modulo'"):
        splits.resolve("random", keys)
    with pytest.raises(ValueError, match=r"split names \['dev'\]"):
        splits.resolve({"t0": "dev"}, keys[:1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        splits.resolve("index_modulo", keys)
