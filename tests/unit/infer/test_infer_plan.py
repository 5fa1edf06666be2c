"""How the infer stage splits a catalogue among its actors, how many tracks each decodes ahead, and
which pipeline (fused or split) it runs."""

from __future__ import annotations

import math

import pytest

from autotag.config import ConfigError
from pipelines.common import load_config
from pipelines.infer import decode_threads, pipeline_of, source_blocks


@pytest.mark.parametrize("tracks, actors", [(500, 15), (500, 4), (7, 3), (1_000_000, 8), (1, 1)])
def test_blocks_keep_every_actor_busy_to_the_end(tracks, actors, tmp_path):
    cfg = load_config([f"paths.root={tmp_path}", f"infer.num_actors={actors}", "infer.tracks_per_batch=8"])
    blocks = source_blocks(tracks, cfg)
    assert 1 <= blocks <= math.ceil(tracks / 8)  # never a block smaller than one actor call
    if tracks >= 8 * 4 * actors:
        assert blocks >= 4 * actors  # the last round is at most a quarter of an actor's share
    if tracks >= 1_000_000:
        assert blocks == math.ceil(tracks / 32)  # a catalogue: four actor calls per block


@pytest.mark.parametrize("cpus, configured, expected", [(1.0, None, 1), (3.75, None, 3), (0.5, None, 1),
                                                        (4.0, 2, 2)])
def test_decode_threads_default_to_the_actors_whole_cpus(cpus, configured, expected, tmp_path):
    overrides = [f"paths.root={tmp_path}", f"infer.cpus_per_actor={cpus}"]
    if configured is not None:
        overrides.append(f"infer.decode_threads={configured}")
    assert decode_threads(load_config(overrides)) == expected


@pytest.mark.parametrize("pipeline, gpus, expected", [("auto", 0.0, "fused"), ("auto", 0.25, "split"),
                                                      ("split", 0.0, "split"), ("fused", 1.0, "fused")])
def test_auto_splits_on_gpus_only(pipeline, gpus, expected, tmp_path):
    cfg = load_config([f"paths.root={tmp_path}", f"infer.pipeline={pipeline}", f"infer.gpus_per_actor={gpus}"])
    assert pipeline_of(cfg) == expected


def test_an_unknown_pipeline_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"infer.pipeline.*'fussed'.*auto.*fused.*split"):
        load_config([f"paths.root={tmp_path}", "infer.pipeline=fussed"])
