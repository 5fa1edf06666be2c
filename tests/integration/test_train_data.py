"""The training data path: every patch once per epoch across workers; transfer with a frozen front-end."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file

from autotag.data import shards
from autotag.errors import InputError
from pipelines import shard, train
from pipelines.common import load_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sharded(ray_session, tmp_path_factory):
    root = tmp_path_factory.mktemp("traindata")
    cfg = load_config([f"paths.root={root}", "dataset.synthetic.tracks_per_class=4", "dataset.synthetic.duration_s=6.0",
                       "dataset.synthetic.corrupt_tracks=0", "shard.tracks_per_shard=7", "runtime.progress_bars=false"])
    shard.run(cfg)
    return cfg


def _record_patch_ids(config):
    import ray.train

    rank = ray.train.get_context().get_world_rank()
    for epoch in range(2):
        seen = [str(i) for batch in ray.train.get_dataset_shard("train").iter_batches(
            batch_size=5, local_shuffle_buffer_size=20, local_shuffle_seed=epoch) for i in batch["patch_id"]]
        Path(config["out"], f"epoch{epoch}-rank{rank}.json").write_text(json.dumps(seen))
        ray.train.report({"epoch": epoch})


def test_patch_cache_estimate_counts_the_patches_of_the_index(sharded):
    task = train.task_for(sharded)
    model = train.build_model("lms_conv2d", "autopool", task.num_outputs)
    frontend = model.frontend
    rows = train.patch_dataset(shards.split_shards(sharded.paths.shards, "train"), task, model, shuffle=False).count()
    assert train.patch_bytes(sharded.paths.shards, ("train",), frontend.patch_samples,
                             frontend.patch_hop_samples) == rows * frontend.patch_samples * 2
    assert train.cache_patches(sharded, model)  # a few MiB: cached
    forced = load_config([*_overrides(sharded), "train.cache_patches=false"])
    assert not train.cache_patches(forced, model)


def test_training_reads_shards_from_a_filesystem_uri(sharded):
    task = train.task_for(sharded)
    model = train.build_model("lms_conv2d", "autopool", task.num_outputs)
    local = shards.split_shards(sharded.paths.shards, "train")
    uris = shards.split_shards(f"file://{sharded.paths.shards}", "train")
    assert uris == [f"file://{path}" for path in local] and len(local) > 1
    rows = train.patch_dataset(uris, task, model, shuffle=False, keep_ids=True).to_pandas()
    assert sorted(rows["patch_id"]) == sorted(train.patch_dataset(local, task, model, shuffle=False,
                                                                  keep_ids=True).to_pandas()["patch_id"])
    frontend = model.frontend
    assert train.patch_bytes(f"file://{sharded.paths.shards}", ("train",), frontend.patch_samples,
                             frontend.patch_hop_samples) == len(rows) * frontend.patch_samples * 2
    with pytest.raises(InputError, match="no test shards"):
        shards.split_shards(f"file://{sharded.paths.root}", "test")


def test_every_patch_is_seen_once_per_epoch_across_two_workers(sharded, tmp_path):
    import ray.train
    from ray.train.torch import TorchTrainer

    task = train.task_for(sharded)
    model = train.build_model("lms_conv2d", "autopool", task.num_outputs)
    files = shards.split_shards(sharded.paths.shards, "train")
    dataset = train.patch_dataset(files, task, model, shuffle=True, keep_ids=True)
    expected = sorted(dataset.to_pandas()["patch_id"])
    TorchTrainer(_record_patch_ids, train_loop_config={"out": str(tmp_path)}, datasets={"train": dataset},
                 scaling_config=ray.train.ScalingConfig(num_workers=2, resources_per_worker={"CPU": 0.5}),
                 run_config=ray.train.RunConfig(name="coverage", storage_path=str(tmp_path / "runs"))).fit()
    for epoch in range(2):
        ranks = [json.loads((tmp_path / f"epoch{epoch}-rank{r}.json").read_text()) for r in range(2)]
        seen = ranks[0] + ranks[1]
        assert len(seen) == len(set(seen)), "a patch was seen twice in one epoch"
        # Ray's equal split may hold back fewer rows than there are workers; nothing else is dropped.
        assert set(seen) <= set(expected) and len(expected) - len(seen) <= 1
        assert abs(len(ranks[0]) - len(ranks[1])) == 0


def _record_continuous_epochs(config):
    import ray.train

    from autotag.train.epoch_stream import EpochStream

    context = ray.train.get_context()
    rank = context.get_world_rank()
    stream = EpochStream(ray.train.get_dataset_shard("train").iter_batches(
        batch_size=5, local_shuffle_buffer_size=20, local_shuffle_seed=rank), config["patches"],
        context.get_world_size())
    epochs = [[str(i) for batch in stream.epoch(e) for i in batch["patch_id"]] for e in range(3)]
    Path(config["out"], f"rank{rank}.json").write_text(json.dumps(epochs))
    ray.train.report({"epochs": 3})


def test_one_stream_over_three_passes_gives_every_patch_three_times_in_epochs_of_equal_shares(sharded, tmp_path):
    import ray.train
    from ray.train.torch import TorchTrainer

    from autotag.train.epoch_stream import worker_share

    task = train.task_for(sharded)
    model = train.build_model("lms_conv2d", "autopool", task.num_outputs)
    files = shards.split_shards(sharded.paths.shards, "train")
    expected = sorted(train.patch_dataset(files, task, model, shuffle=False, keep_ids=True).to_pandas()["patch_id"])
    frontend = model.frontend
    assert train.patch_total(sharded.paths.shards, ("train",), frontend.patch_samples,
                             frontend.patch_hop_samples) == len(expected)
    dataset = train.patch_dataset(files, task, model, shuffle=True, keep_ids=True, epochs=3, seed=1)
    TorchTrainer(_record_continuous_epochs, train_loop_config={"out": str(tmp_path), "patches": len(expected)},
                 datasets={"train": dataset},
                 scaling_config=ray.train.ScalingConfig(num_workers=2, resources_per_worker={"CPU": 0.5}),
                 run_config=ray.train.RunConfig(name="continuous", storage_path=str(tmp_path / "runs"))).fit()
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for epoch in range(3):
        assert [len(r[epoch]) for r in ranks] == [worker_share(len(expected), 2, epoch)] * 2
    seen = sorted(i for r in ranks for epoch in r for i in epoch)
    # three passes over every patch; the equal split may hold back fewer rows than there are workers
    assert len(seen) >= 3 * len(expected) - 1 and set(seen) == set(expected)
    assert all(seen.count(i) <= 3 for i in expected)


def test_streamed_training_from_one_continuous_pass_trains_every_epoch_on_all_patches(sharded):
    result = train.run(load_config([*_overrides(sharded), "run_id=continuous", "train.cache_patches=false",
                                    "train.max_epochs=2"]))
    history = pq.read_table(result["history"]).to_pylist()
    task = train.task_for(sharded)
    frontend = train.build_model("lms_conv2d", "autopool", task.num_outputs).frontend
    patches = train.patch_total(sharded.paths.shards, ("train",), frontend.patch_samples, frontend.patch_hop_samples)
    from autotag.train.epoch_stream import worker_share

    assert [h["train_examples"] for h in history] == [2 * worker_share(patches, 2, e) for e in range(2)]
    assert result["epochs_run"] == 2


def test_the_train_and_valid_executors_share_the_object_store_instead_of_taking_half_each(sharded):
    import ray

    store = ray.cluster_resources()["object_store_memory"]
    config = train.data_config()
    limits = {split: config._get_user_execution_options(split).resource_limits.object_store_memory
              for split in ("train", "valid")}
    assert limits == pytest.approx({split: share * store for split, share in train.DATA_STORE_SHARE.items()})
    assert sum(train.DATA_STORE_SHARE.values()) <= 0.5  # room left for the blocks the workers are reading


def test_fine_tuning_from_a_checkpoint_keeps_the_frozen_front_end(sharded, tmp_path):
    pretrained = train.run(load_config([*_overrides(sharded), "run_id=pretrain"]))
    tuned = train.run(load_config([*_overrides(sharded), "run_id=finetune", "train.lr=0.05",
                                   f"train.init_from={pretrained['best_checkpoint']}", "train.freeze=[frontend]"]))
    before = load_file(str(Path(pretrained["best_checkpoint"]) / "model.safetensors"))
    after = load_file(str(Path(tuned["best_checkpoint"]) / "model.safetensors"))
    frontend = [k for k in before if k.startswith("frontend.")]
    assert frontend and all(torch.equal(before[k], after[k]) for k in frontend)
    assert not torch.equal(before["head.weight"], after["head.weight"])


def _overrides(cfg) -> list[str]:
    return [f"paths.root={cfg.paths.root}", "dataset.synthetic.tracks_per_class=4", "dataset.synthetic.duration_s=6.0",
            "dataset.synthetic.corrupt_tracks=0", "shard.tracks_per_shard=7", "runtime.progress_bars=false",
            "train.max_epochs=1", "train.batch_size=8"]
