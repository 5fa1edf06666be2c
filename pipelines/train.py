"""Stage 2 — train: Ray Train ``TorchTrainer`` (DDP) streaming patches from the shards.

    python -m pipelines.train [frontend=...] [backend=...] [train.num_workers=N] [train.use_gpu=true]

Patches are cut from the decoded shards by Ray Data and streamed to the workers; when the
decoded train and valid patches fit in a share of the cluster's memory (``train.cache_patches``,
auto by default) each worker keeps its share after the first epoch and later epochs shuffle it
in memory, else every epoch streams and decodes the shards again.

Writes Ray Train's run folder under ``paths.checkpoints/<run_id>/`` (a checkpoint every
epoch; re-running the same run_id resumes from the latest), then publishes the best
checkpoint (lowest validation loss) to ``paths.checkpoints/<run_id>/best`` and the metrics
history to ``.../history.parquet``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from autotag import SAMPLE_RATE, layout
from autotag.config import AutotagConfig
from autotag.data import manifest, shards
from autotag.data.patches import patch_counts
from autotag.data.tasks import Task, vocabulary_for
from autotag.models import build_model, checkpoint
from autotag.storage import atomic_write_table, filesystem_and_path, filesystem_of, join, storage_root
from autotag.train.loop import train_loop_per_worker
from autotag.train.patch_rows import shard_batch_to_patches
from pipelines.common import cli, init_ray

log = logging.getLogger("autotag.train")


def patch_dataset(files: list[str], task: Task, model, shuffle: bool, keep_ids: bool = False, *, epochs: int = 1,
                  seed: int = 0, decode_cpus: float | None = None):
    """Shards → decoded, patched rows (with frame targets for frame-level tasks) as a streaming Ray Dataset.

    Rows are ``audio`` and ``target`` (plus ``patch_id`` with ``keep_ids``). ``epochs`` > 1 lists
    the shards once per epoch back to back (each pass in its own seeded order with ``shuffle``),
    so that one iteration streams every epoch with no executor start between them
    (:mod:`autotag.train.epoch_stream`). ``decode_cpus``: Ray CPUs per decode task (Ray's default: 1).
    """
    import numpy as np
    import ray.data

    frontend = model.frontend
    frame_times = None
    if task.frame_level:
        frames = frontend.output_frames(frontend.patch_samples)
        frame_times = [float(t) for t in frontend.frame_times(frames)]
    if epochs > 1:
        rng = np.random.default_rng(seed)
        files = [f for _ in range(epochs) for f in (rng.permutation(files).tolist() if shuffle else files)]
        shuffle = False
    ds = ray.data.read_webdataset(files, decoder=True, shuffle="files" if shuffle else None,
                                  filesystem=filesystem_of(files))
    cpus = {} if decode_cpus is None else {"num_cpus": decode_cpus}
    ds = ds.map_batches(shard_batch_to_patches, batch_size=8, batch_format="numpy", **cpus,
                          fn_kwargs={"task": task.to_dict(), "patch_samples": frontend.patch_samples,
                                     "hop_samples": frontend.patch_hop_samples,
                                     "frame_times": frame_times})
    return ds if keep_ids else ds.drop_columns(["patch_id"])


CACHE_SHARE = 0.3
"""Auto-caching keeps the decoded patches of train and valid only when they fill at most this
share of the cluster's memory (Ray's ``memory`` resource)."""


def patch_total(shards_dir: str | Path, splits: tuple[str, ...], patch_samples: int, hop_samples: int) -> int | None:
    """How many patches the shard index's tracks of ``splits`` cut into (None without an index)."""
    filesystem, index = filesystem_and_path(join(shards_dir, "index.parquet"))
    if filesystem.get_file_info(index).type != pafs.FileType.File:
        return None
    table = pq.read_table(index, columns=["split", "duration_s"], filesystem=filesystem).to_pandas()
    samples = (table.loc[table["split"].isin(splits), "duration_s"] * SAMPLE_RATE).round().to_numpy()
    return int(patch_counts(samples, patch_samples, hop_samples).sum())


def patch_bytes(shards_dir: str | Path, splits: tuple[str, ...], patch_samples: int, hop_samples: int) -> int | None:
    """Bytes of the patches the shard index's tracks of ``splits`` cut into, as the workers hold
    them (16-bit samples, :mod:`autotag.train.patch_rows`; None without an index)."""
    total = patch_total(shards_dir, splits, patch_samples, hop_samples)
    return None if total is None else total * patch_samples * 2


def cache_patches(cfg: AutotagConfig, model) -> bool:
    """Whether each worker keeps its patches in memory after the first epoch (see
    :mod:`autotag.train.patch_cache`) instead of decoding the shards again every epoch.

    ``train.cache_patches``: true or false as set; null (default) caches when the decoded
    train and valid patches fit in :data:`CACHE_SHARE` of the cluster's memory. A catalogue
    that does not fit streams from the shards, decoding every epoch.
    """
    import ray

    if cfg.train.cache_patches is not None:
        return cfg.train.cache_patches
    frontend = model.frontend
    needed = patch_bytes(cfg.paths.shards, ("train", "valid"), frontend.patch_samples, frontend.patch_hop_samples)
    memory = ray.cluster_resources().get("memory", 0.0)
    fits = needed is not None and needed <= CACHE_SHARE * memory
    log.info("decoded patches: %s MiB, cluster memory %.0f MiB: %s", "?" if needed is None else f"{needed / 2**20:.0f}",
             memory / 2**20, "workers keep them after the first epoch" if fits else "streamed and decoded every epoch")
    return fits


def continuous_patches(cfg: AutotagConfig, model, cache: bool) -> int | None:
    """Train patches per epoch when the workers stream every epoch from one pass over the shards
    listed once per epoch (``train.continuous_stream``, the shards not cached, an index to count
    the patches), else None: each epoch starts a new stream."""
    if cache or not cfg.train.continuous_stream:
        return None
    frontend = model.frontend
    return patch_total(cfg.paths.shards, ("train",), frontend.patch_samples, frontend.patch_hop_samples)


DATA_STORE_SHARE = {"train": 0.35, "valid": 0.1}
"""Shares of the cluster's object store that the Ray Data executors of the train and valid
datasets may fill. Left alone, each takes half of it, so with the train stream running ahead
while validation runs the two together can fill the store: Ray then spills blocks to disk and
reads them back. The rest is for the blocks the workers are reading (their shuffle buffers
hold copies: :mod:`autotag.train.shuffle_buffer`) and everything else."""


def data_config():
    """Ray Train's dataset options: the session's Ray Data options, with :data:`DATA_STORE_SHARE`
    of the object store for each dataset."""
    import ray
    from ray.data import DataContext, ExecutionOptions
    from ray.train import DataConfig

    store = ray.cluster_resources().get("object_store_memory", 0.0)
    if store <= 0:  # not known: Ray Data's own limits
        return DataConfig()
    current = DataContext.get_current().execution_options
    return DataConfig(execution_options={
        split: ExecutionOptions(resource_limits=current.resource_limits.copy(object_store_memory=share * store),
                                preserve_order=current.preserve_order, verbose_progress=current.verbose_progress)
        for split, share in DATA_STORE_SHARE.items()})


def worker_cpus(cfg: AutotagConfig) -> float:
    """CPUs per training worker: the configured value, or a share that leaves one CPU per node
    for Ray Data (reading and decoding shards); workers that hold every CPU starve it silently."""
    import ray

    if cfg.train.cpus_per_worker is not None:
        return cfg.train.cpus_per_worker
    node_cpus = [n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n.get("Alive")] or [1.0]
    spare = (sum(node_cpus) - len(node_cpus)) / cfg.train.num_workers
    return max(0.25, min(spare, max(node_cpus) - 1.0, 8.0))


def task_for(cfg: AutotagConfig) -> Task:
    """The task bound to the dataset's label column and vocabulary."""
    labels = manifest.label_vocabulary(manifest.read(cfg.dataset.manifest), cfg.dataset.label_key)
    return Task(cfg.task.kind, cfg.dataset.label_key, vocabulary_for(cfg.task.kind, cfg.dataset.label_key, labels),
                cfg.task.threshold)


def loop_config(cfg: AutotagConfig, task: Task, cpus_per_worker: float, cache: bool = False,
                progress=None, patches_per_epoch: int | None = None) -> dict[str, Any]:
    """Everything a worker needs, as plain data (no OmegaConf objects cross process lines), and
    ``progress``, the queue rank 0 puts its epoch lines on (None: they go to the worker's log).
    ``patches_per_epoch``: set when the train dataset streams every epoch in one pass."""
    return {"progress": progress, "model": {"frontend": cfg.frontend.name, "frontend_params": dict(cfg.frontend.params),
                      "backend": cfg.backend.name, "backend_params": dict(cfg.backend.params)},
            "task": task.to_dict(), "config": cfg.to_dict(),
            "train": {**dataclasses.asdict(cfg.train), "cpus_per_worker": cpus_per_worker, "cache_patches": cache,
                      "patches_per_epoch": patches_per_epoch}}


def build_trainer(cfg: AutotagConfig, callbacks: tuple = (), progress=None):
    """The ``TorchTrainer`` for ``cfg``: datasets, scaling, checkpointing, failure handling.

    ``callbacks`` are Ray Train callbacks (the sweep passes ``TuneReportCallback``);
    ``progress`` a queue for the epoch lines (see :func:`epoch_lines`).
    """
    import ray.train
    from ray.train.torch import TorchTrainer

    task = task_for(cfg)
    cpus = worker_cpus(cfg)
    model = build_model(cfg.frontend.name, cfg.backend.name, task.num_outputs, cfg.frontend.params,
                        cfg.backend.params, task=task.kind)
    cache = cache_patches(cfg, model)
    one_stream = continuous_patches(cfg, model, cache)
    datasets = {split: patch_dataset(shards.split_shards(cfg.paths.shards, split), task, model,
                                     shuffle=split == "train", decode_cpus=cfg.train.decode_cpus,
                                     epochs=cfg.train.max_epochs if split == "train" and one_stream else 1,
                                     seed=cfg.train.seed)
                for split in ("train", "valid")}
    resources = {"CPU": cpus, **({"GPU": 1} if cfg.train.use_gpu else {})}
    log.info("training %s on %d worker(s) with %s each", cfg.run_id, cfg.train.num_workers, resources)
    storage_path, storage_filesystem = storage_root(cfg.paths.checkpoints)
    return TorchTrainer(
        train_loop_per_worker, train_loop_config=loop_config(cfg, task, cpus, cache, progress, one_stream),
        datasets=datasets, dataset_config=data_config(),
        scaling_config=ray.train.ScalingConfig(num_workers=cfg.train.num_workers, use_gpu=cfg.train.use_gpu,
                                               resources_per_worker=resources),
        run_config=ray.train.RunConfig(
            name=cfg.run_id, storage_path=storage_path, storage_filesystem=storage_filesystem,
            callbacks=list(callbacks),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=cfg.train.checkpoints_to_keep,
                                                         checkpoint_score_attribute="val_loss",
                                                         checkpoint_score_order="min"),
            failure_config=ray.train.FailureConfig(max_failures=cfg.train.max_failures),
            # Ray Train's own INFO lines (each report, each checkpoint) stay in Ray's log files.
            logging_config=ray.train.LoggingConfig(log_level="WARNING")))


@contextmanager
def epoch_lines() -> Iterator[Any]:
    """A queue that rank 0 puts one line per epoch on, printed here as they come.

    Workers' output stays in Ray's log files (``log_to_driver=False``), so the console shows
    each epoch once, from the driver, whatever the number of workers.
    """
    from ray.util.queue import Empty, Queue

    queue = Queue(actor_options={"num_cpus": 0})
    finished = threading.Event()

    def show() -> None:
        while True:
            try:
                log.info(queue.get(timeout=0.5))
            except Empty:
                if finished.is_set():
                    return
            except Exception:  # noqa: BLE001 - the queue's actor is gone: nothing more to show
                return

    printer = threading.Thread(target=show, name="epoch-lines", daemon=True)
    printer.start()
    try:
        yield queue
    finally:
        finished.set()
        printer.join(timeout=5)
        queue.shutdown()


def run(cfg: AutotagConfig) -> dict[str, Any]:
    """Train; returns the best epoch's metrics and where the best checkpoint was published."""
    start = time.perf_counter()
    init_ray(cfg)
    with epoch_lines() as progress:
        result = build_trainer(cfg, progress=progress).fit()
    return publish_best(cfg, result, time.perf_counter() - start)


def publish_best(cfg: AutotagConfig, result, seconds: float) -> dict[str, Any]:
    """Copy the lowest-val_loss checkpoint to ``<run>/best`` and write the metrics history."""
    best, best_metrics = min(result.best_checkpoints, key=lambda item: item[1]["val_loss"])
    with best.as_directory() as local:  # Ray Train's storage may be an object store: a local copy
        target = checkpoint.publish(local, layout.best_checkpoint(cfg.paths.checkpoints, cfg.run_id))
    with result.checkpoint.as_directory() as local:
        history = checkpoint.read_meta(local)["history"]
    history_path = atomic_write_table(pa.Table.from_pylist(history), layout.history_path(cfg.paths.checkpoints,
                                                                                          cfg.run_id))
    log.info("best epoch %d (val_loss %.4f) published to %s", best_metrics["epoch"], best_metrics["val_loss"], target)
    return {"run_id": cfg.run_id, "best_checkpoint": str(target), "best_epoch": best_metrics["epoch"],
            "best_val_loss": best_metrics["val_loss"], "best_val_accuracy": best_metrics["val_accuracy"],
            "epochs_run": len(history), "history": str(history_path),
            "seconds": round(seconds, 1)}


def preflight(cfg: AutotagConfig) -> None:
    """Before Ray starts: the shards of both splits and the checkpoint to start from exist."""
    for split in ("train", "valid"):
        shards.split_shards(cfg.paths.shards, split)
    if cfg.train.init_from is not None:
        checkpoint.read_meta(cfg.train.init_from)


def summary(result: dict[str, Any]) -> str:
    return (f"trained {result['run_id']}: {result['epochs_run']} epochs in {result['seconds']:.0f} s, best epoch "
            f"{result['best_epoch']} (val_loss {result['best_val_loss']:.4f}, val_accuracy "
            f"{result['best_val_accuracy']:.3f}) -> {result['best_checkpoint']}")


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    return cli(run, argv=argv, prog=prog, doc=__doc__,
               sections=("run_id", "dataset", "task", "frontend", "backend", "train", "paths", "runtime"),
               preflight=preflight, summary=summary)


if __name__ == "__main__":
    raise SystemExit(main())
