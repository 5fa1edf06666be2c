"""The per-worker training loop run by Ray Train's ``TorchTrainer`` (DDP across workers).

Each worker streams its split of the ``train`` and ``valid`` patch datasets (kept in its
memory after the first epoch with ``train.cache_patches``: :mod:`autotag.train.patch_cache`), trains with
Adam, all-reduces the validation loss so that every rank takes the same early-stopping
decision, and reports a checkpoint every epoch. On a restart (worker failure or a re-run
of the same run name) it resumes from the latest checkpoint: weights, optimizer, epoch,
early-stopping state and metrics history.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from autotag.data.tasks import Task
from autotag.memory import reuse_freed_memory
from autotag.models import checkpoint
from autotag.train import losses
from autotag.train.background import in_background
from autotag.train.early_stopping import EarlyStopping
from autotag.train.epoch_progress import with_progress
from autotag.train.epoch_stream import EpochStream, worker_share
from autotag.train.patch_cache import PatchCache
from autotag.train.patch_rows import waveform
from autotag.train.shuffle_buffer import ShuffleBuffer
from autotag.train.transfer import freeze, initialise_from

log = logging.getLogger("autotag.train")


def _all_reduce(values: list[float], device: torch.device) -> list[float]:
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor)
    return tensor.tolist()


def uses_bf16(precision: str, device: torch.device) -> bool:
    """Whether ``train.precision`` asks for bf16 autocast on ``device`` (``auto``: on GPU only)."""
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"train.precision {precision!r}; expected auto, fp32 or bf16")
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def _autocast(device: torch.device, enabled: bool):
    """bf16 autocast on ``device`` (CUDA or CPU); weights, gradients and Adam stay float32."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if enabled else nullcontext()


class _Counted:
    """An iterable of batches that counts how many it gave."""

    def __init__(self, batches):
        self.batches, self.count = batches, 0

    def __iter__(self):
        for batch in self.batches:
            self.count += 1
            yield batch


def _float_audio(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {**batch, "audio": waveform(batch["audio"])}


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


def run_epoch(model, batches, task: Task, device, optimizer=None, amp: bool = False) -> dict[str, float]:
    """One pass over ``batches``; trains when ``optimizer`` is given; ``amp``: bf16 autocast
    around forward and loss. Returns global sums."""
    model.train(optimizer is not None)
    loss_sum, correct, count, decisions = 0.0, 0.0, 0, 0.0
    grad = torch.enable_grad() if optimizer is not None else torch.no_grad()
    with grad:
        for batch in batches:
            audio, target = waveform(batch["audio"].to(device)), batch["target"].to(device)
            with _autocast(device, amp):
                logits = model(audio)
                loss = losses.loss(task, logits, target)
            logits = logits.float()
            if optimizer is not None:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            hits, decided = losses.correct(task, logits.detach(), target)
            loss_sum += float(loss.detach()) * len(audio)
            correct += float(hits)
            decisions += float(decided)
            count += len(audio)
    loss_sum, correct, count, decisions = _all_reduce([loss_sum, correct, count, decisions], device)
    return {"loss": loss_sum / max(count, 1), "accuracy": correct / max(decisions, 1), "examples": count}


def _console(progress) -> Callable[[str], None]:
    """Where rank 0's epoch lines go: the driver's console through ``progress`` (a
    ``ray.util.queue.Queue`` the train stage reads), else this worker's log in Ray's log files."""
    if progress is None:
        return log.info

    def say(line: str) -> None:
        try:
            progress.put(line, timeout=5)
        except Exception:  # noqa: BLE001 - a console that went away must not stop training
            log.info(line)

    return say


def _restore(model, optimizer, stopper_patience: int,
             say: Callable[[str], None]) -> tuple[int, EarlyStopping, list[dict]]:
    import ray.train

    resumed = ray.train.get_checkpoint()
    if resumed is None:
        return 0, EarlyStopping(stopper_patience), []
    with resumed.as_directory() as directory:
        restored, _, meta = checkpoint.load(directory)
        _unwrap(model).load_state_dict(restored.state_dict())
        if (state := checkpoint.load_optimizer_state(directory)) is not None:
            optimizer.load_state_dict(state)
    say(f"resuming after epoch {meta['epoch']}")
    return meta["epoch"] + 1, EarlyStopping.from_state(meta["early_stopping"]), meta["history"]


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Ray Train entry point; ``config`` holds plain data only (see ``pipelines/train.py``)."""
    import ray.train
    from ray.train.torch import get_device, prepare_model

    hp = config["train"]
    context = ray.train.get_context()
    rank = context.get_world_rank()
    say = _console(config.get("progress")) if rank == 0 else (lambda line: None)
    torch.manual_seed(hp["seed"])
    np.random.seed(hp["seed"] + rank)
    torch.set_num_threads(max(1, int(round(hp["cpus_per_worker"]))))
    reuse_freed_memory()  # each batch's buffers reuse the last one's pages (autotag.memory)
    task = Task.from_dict(config["task"])
    model = checkpoint.model_from_meta(config)
    if hp.get("init_from"):
        initialise_from(model, hp["init_from"])
    freeze(model, hp.get("freeze") or ())
    model = prepare_model(model)
    device = get_device()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=hp["lr"])
    start_epoch, stopper, history = _restore(model, optimizer, hp["patience"], say)
    amp = uses_bf16(hp["precision"], device)
    shards = {split: ray.train.get_dataset_shard(split) for split in ("train", "valid")}
    caches = {split: PatchCache() for split in shards} if hp.get("cache_patches") else {}

    def stream(split: str, seed: int | None, keep_int16: bool = False):
        """``split``'s batches, shuffled through the worker's buffer when ``seed`` is given,
        prepared in a thread beside the training step; on CPU already float32 there (on a GPU
        the 16-bit rows cross to the device and become float32 on it), unless ``keep_int16``."""
        batches = shards[split].iter_torch_batches(batch_size=hp["batch_size"], drop_last=False, device="cpu",
                                                   prefetch_batches=hp["prefetch_batches"])
        if seed is not None and hp["shuffle_buffer"] > 0:
            batches = ShuffleBuffer(hp["shuffle_buffer"], hp["batch_size"], seed).shuffle(batches)
        to_float = None if keep_int16 or device.type != "cpu" else _float_audio
        return in_background(batches, depth=2, prepare=to_float)

    # One iteration of a train dataset that lists the shards once per epoch (pipelines.train.patch_dataset).
    continuous = (EpochStream(stream("train", hp["seed"] + rank), hp["patches_per_epoch"], context.get_world_size())
                  if hp.get("patches_per_epoch") else None)

    def batches(split: str, seed: int | None, epoch: int):
        """This worker's batches of ``split``: from its patch cache once filled, else streamed."""
        if split == "train" and continuous is not None:
            return continuous.epoch(epoch)
        cache = caches.get(split)
        if cache is not None and cache.ready:
            return cache.batches(hp["batch_size"], seed)
        if cache is None:
            return stream(split, seed)
        return cache.recording(stream(split, seed, keep_int16=True))  # the cache keeps half the bytes

    def train_batches_known(epoch: int, last: int | None) -> int | None:
        """Batches of this worker's train epoch, when known before it runs (else the last epoch's)."""
        if continuous is not None:
            return -(-worker_share(hp["patches_per_epoch"], context.get_world_size(), epoch) // hp["batch_size"])
        if "train" in caches and caches["train"].ready:
            return -(-len(caches["train"]) // hp["batch_size"])
        return last

    last_batches = None
    for epoch in range(start_epoch, hp["max_epochs"]):
        if stopper.should_stop:
            break
        began = time.perf_counter()
        counted = _Counted(batches("train", hp["seed"] + 1000 * epoch + rank, epoch))
        shown = with_progress(counted, say, epoch, train_batches_known(epoch, last_batches), hp["progress_interval_s"])
        train = run_epoch(model, shown, task, device, optimizer, amp)
        last_batches = counted.count
        train_seconds = time.perf_counter() - began
        valid = run_epoch(model, batches("valid", None, epoch), task, device, None, amp)
        improved = stopper.update(valid["loss"], epoch)
        metrics = {"epoch": epoch, "train_loss": train["loss"], "train_accuracy": train["accuracy"],
                   "val_loss": valid["loss"], "val_accuracy": valid["accuracy"], "improved": improved,
                   "epoch_seconds": time.perf_counter() - began,
                   "samples_per_s": train["examples"] / max(train_seconds, 1e-9),
                   "train_examples": train["examples"], "val_examples": valid["examples"]}
        history.append(metrics)
        meta = {**{k: config[k] for k in ("model", "task", "config")}, "epoch": epoch,
                "early_stopping": stopper.state_dict(), "history": history, "metrics": metrics}
        with tempfile.TemporaryDirectory() as directory:
            report = None
            if rank == 0:
                checkpoint.save(directory, _unwrap(model), meta, optimizer)
                report = ray.train.Checkpoint.from_directory(directory)
            ray.train.report(metrics, checkpoint=report)
        say(f"epoch {epoch:3d}  train_loss {train['loss']:.4f}  train_acc {train['accuracy']:.3f}  "
            f"val_loss {valid['loss']:.4f}  val_acc {valid['accuracy']:.3f}  "
            f"{metrics['samples_per_s']:.0f} patches/s  {metrics['epoch_seconds']:.1f} s{'  *' if improved else ''}")
        if stopper.should_stop:
            say(f"early stopping: no val_loss improvement for {stopper.patience} epochs "
                f"(best {stopper.best:.4f} at epoch {stopper.best_epoch})")
