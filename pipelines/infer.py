"""Stage 3 — infer: tag a catalogue with a checkpoint, into Parquet tables.

    python -m pipelines.infer [infer.checkpoint=/path/best] [infer.input=/music] [infer.num_actors=4]

The input is the dataset's manifest (``infer.split`` filters it) or ``infer.input``: a
folder (recursive), a glob, a CSV/Parquet list with ``audio_path``, WebDataset shards, or a
pyarrow-filesystem URI. Ray Data streams tracks through a pool of actors
(``ActorPoolStrategy``), each loading the checkpoint once; the driver writes the tables of
``autotag.predictions`` under ``paths.predictions`` part by part. Re-running the same
``run_id`` skips tracks already written, so an interrupted run resumes and every track
appears exactly once.

Exit codes: 0 when the run wrote a ``tracks`` row for every input, files that could not be
decoded included (they are ``error`` rows; a one-line summary ``N ok, M errors (see ...)``
ends the log); 2 with one line for a bad setting or input (a missing or unreadable
``infer.input``, a missing checkpoint); anything else (a Ray failure) is a crash with its
traceback. A re-run of a finished run writes nothing and exits as the run did.

Several models in one pass over the audio (each file decoded once, every model run on it)::

    python -m pipelines.infer run_id=cat26 \
        'infer.models={genre: ckpt/genre/best, tags: ckpt/tags/best, chords: ckpt/chords/best}'

Each model then writes its own run, ``<run_id>-<name>`` (``cat26-genre``, ``cat26-tags``,
``cat26-chords``), so every run holds one task and ``pipelines.evaluate`` scores it as usual.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from autotag import predictions
from autotag.config import AutotagConfig, ConfigError
from autotag.data import manifest, shards
from autotag.data.tasks import Task
from autotag.infer import inputs
from autotag.infer.batch import BatchPredictor, RowBuffer, check_model_names, model_batch
from autotag.infer.exports import export_run
from autotag.infer.predictor import TrackPredictor, output_labels
from autotag.infer.rows import output_tables
from autotag.infer.split import PieceModels, TrackAssembler, decode_pieces
from autotag.models import checkpoint
from autotag.predictions import PredictionWriter, main_table
from autotag.progress import Progress
from pipelines.common import cli, init_ray, whole_cluster_per_operator

log = logging.getLogger("autotag.infer")


def pending_tracks(cfg: AutotagConfig, done: set[str]) -> pa.Table:
    """``track_id``/``audio_path`` rows to tag: the input minus tracks already written."""
    if cfg.infer.input is None:
        table = manifest.read(cfg.dataset.manifest)
        if cfg.infer.split is not None:
            table = table.filter(pc.equal(table.column("split"), cfg.infer.split))
        table = table.select(["track_id", "audio_path"])
    else:
        table = inputs.track_rows(cfg.infer.input)
    if done:
        table = table.filter(pc.invert(pc.is_in(table.column("track_id"), value_set=pa.array(sorted(done)))))
    return table


SHARD_TRACKS = pa.schema([("track_id", pa.string()), ("audio_path", pa.string()), ("shard_audio", pa.binary()),
                          ("shard_codec", pa.string())])


def _from_shards(batch: dict, done: frozenset[str]) -> pa.Table:
    """WebDataset rows → track rows carrying their audio member's bytes and codec
    (``shard_audio``, ``shard_codec``: FLAC or pcm16 shards, :data:`autotag.data.shards.CODECS`;
    a sample with neither gets None, an error row later); already-written tracks dropped."""
    keep = [i for i, meta in enumerate(batch["json"]) if meta["track_id"] not in done]
    members = [shards.audio_member(batch, i) for i in keep]
    return pa.table({"track_id": [batch["json"][i]["track_id"] for i in keep],
                     "audio_path": [batch["json"][i].get("source", "") for i in keep],
                     "shard_audio": [data for _, data in members],
                     "shard_codec": [codec for codec, _ in members]},
                    schema=SHARD_TRACKS)  # typed: a batch may hold no audio member at all


def list_sources(cfg: AutotagConfig, done: set[str]) -> list[str] | pa.Table:
    """What to tag, found before Ray starts: shard files (their tracks are read by Ray), or the
    ``track_id``/``audio_path`` rows still to tag.

    Raises
    ------
    InputError
        No such input, or an input that holds nothing to tag.
    """
    if cfg.infer.input is not None and inputs.kind_of(cfg.infer.input) == "shards":
        return inputs.shard_files(cfg.infer.input)
    return pending_tracks(cfg, done)


def source_dataset(cfg: AutotagConfig, sources: list[str] | pa.Table, done: set[str]):
    """The Ray Dataset of tracks to tag, and how many there are (None when unknown up front)."""
    import ray.data

    if isinstance(sources, list):
        rows = ray.data.read_webdataset(sources, decoder=True).map_batches(
            _from_shards, batch_format="numpy", fn_kwargs={"done": frozenset(done)})
        return rows, None
    with whole_cluster_per_operator():  # the actor pool does all the work
        rows = ray.data.from_arrow(sources).repartition(source_blocks(sources.num_rows, cfg))
    return rows, sources.num_rows


def source_blocks(tracks: int, cfg: AutotagConfig) -> int:
    """Blocks of the track list: four actor batches each on a catalogue, but at least four per
    actor (and at most one per batch), so that no actor is left with a last big block while
    the others idle (with 16 blocks for 15 actors the run took twice as long as its work)."""
    per_batch = max(cfg.infer.tracks_per_batch, 1)
    wanted = max(math.ceil(tracks / (4 * per_batch)), 4 * cfg.infer.num_actors)
    return max(1, min(wanted, math.ceil(tracks / per_batch)))


def actor_cpus(cfg: AutotagConfig) -> float:
    """CPUs per predictor actor: as configured, but leaving at least one CPU of the cluster to the
    tasks that feed the pool (a pool holding every CPU stalls Ray Data silently)."""
    import ray

    total = ray.cluster_resources().get("CPU", 1.0)
    wanted = cfg.infer.cpus_per_actor
    if cfg.infer.num_actors * wanted > total - 1.0:
        fitted = max(0.25, (total - 1.0) / cfg.infer.num_actors)
        if fitted < wanted:
            log.warning("infer: %d actors x %.2f CPU would leave no CPU for reading on this %.0f-CPU cluster; "
                        "using %.2f CPU per actor", cfg.infer.num_actors, wanted, total, fitted)
            return fitted
    return wanted


def decode_threads(cfg: AutotagConfig) -> int:
    """Tracks an actor decodes ahead in threads: as configured, else one per whole CPU it holds."""
    wanted = cfg.infer.decode_threads
    return max(1, int(cfg.infer.cpus_per_actor) if wanted is None else wanted)


def predictor_kwargs(cfg: AutotagConfig, checkpoints: dict[str, str]) -> dict[str, Any]:
    return {"checkpoints": checkpoints, "patch_batch_size": cfg.infer.patch_batch_size,
            "aggregate": cfg.infer.aggregate, "max_duration_s": cfg.infer.max_duration_s,
            "device": "cuda" if cfg.infer.gpus_per_actor > 0 else "cpu",
            "num_threads": max(1, int(cfg.infer.cpus_per_actor)), "decode_threads": decode_threads(cfg),
            "chord_switch_penalty": cfg.infer.chord_switch_penalty, "chord_vocabulary": cfg.infer.chord_vocabulary,
            "chord_inversions": cfg.infer.chord_inversions,
            "smooth_frames": cfg.infer.smooth_frames,
            "embeddings": cfg.infer.embeddings, "activations": cfg.infer.activations,
            "patch_activations": cfg.evaluate.patch_level}


@dataclass
class ModelRun:
    """One model of this inference pass and the run (tables folder) it writes."""

    name: str
    run_id: str
    checkpoint: str
    task: Task
    model: str
    writer: PredictionWriter
    done: set[str]
    counts: dict[str, int] = field(default_factory=lambda: {"ok": 0, "error": 0})

    @property
    def main_table(self) -> str:
        return main_table(self.task)


def writes_activations(cfg: AutotagConfig, task: Task) -> bool:
    """Whether a model's run gets the ``activations`` table: with ``infer.activations``, or for a
    track-level model (genre, tags) when ``evaluate.patch_level`` asks for patch-level scores
    (evaluation reads them, and the tag-o-gram, from that table instead of running the model)."""
    return cfg.infer.activations or (cfg.evaluate.patch_level and not task.frame_level)


def prepare_run(cfg: AutotagConfig, run_id: str, checkpoint_dir: str) -> str:
    """Make ``run_id`` ready for ``checkpoint_dir`` before Ray starts; returns the checkpoint's
    fingerprint.

    ``infer.overwrite`` drops the run's earlier predictions; otherwise a run made by another
    checkpoint is refused (:class:`autotag.predictions.RunMismatchError`), and with
    ``infer.retry_errors`` its error rows are dropped so that those tracks are tagged again.
    """
    fingerprint = predictions.fingerprint(checkpoint_dir)
    root = cfg.paths.predictions
    if cfg.infer.overwrite:
        for removed in predictions.drop_run(root, run_id):
            log.info("infer.overwrite: removed %s", removed)
        return fingerprint
    try:
        predictions.check_resume(root, run_id, checkpoint_dir, fingerprint)
    except predictions.RunMismatchError as exc:
        raise ConfigError(str(exc)) from None
    if cfg.infer.retry_errors:
        dropped = predictions.drop_error_rows(root, run_id)
        log.info("infer.retry_errors: %d track(s) of run %s with errors are tagged again", dropped, run_id)
    return fingerprint


def model_runs(cfg: AutotagConfig) -> list[ModelRun]:
    """``infer.checkpoint`` written as run ``run_id``; or, with ``infer.models`` (name →
    checkpoint), every model in one pass over the audio, each written as run ``<run_id>-<name>``."""
    checkpoints = dict(cfg.infer.models or {}) or {"model": cfg.infer.checkpoint}
    check_model_names(checkpoints)
    if cfg.infer.models:
        log.info("infer.models names %d model(s): infer.checkpoint (%s) is not used", len(checkpoints),
                 cfg.infer.checkpoint)
    runs = []
    for name, path in checkpoints.items():
        try:
            meta = checkpoint.read_meta(path)
        except checkpoint.CheckpointError as exc:
            raise ConfigError(f"infer.{'models.' + name if cfg.infer.models else 'checkpoint'}: {exc}") from None
        task = Task.from_dict(meta["task"])
        run_id = f"{cfg.run_id}-{name}" if cfg.infer.models else cfg.run_id
        fingerprint = prepare_run(cfg, run_id, path)
        extra = tuple(table for table, on in (("embeddings", cfg.infer.embeddings),
                                              ("activations", writes_activations(cfg, task))) if on)
        writer = PredictionWriter(cfg.paths.predictions, run_id, {
            "labels": output_labels(task, cfg.infer.chord_vocabulary), "task": task.to_dict(), "model": meta["model"],
            "checkpoint": path, "fingerprint": fingerprint, "config": cfg.to_dict(),
            "timebase": checkpoint.timebase(checkpoint.model_from_meta(meta))}, tables=(main_table(task), *extra))
        runs.append(ModelRun(name, run_id, str(path), task, f"{meta['model']['frontend']}+{meta['model']['backend']}",
                             writer, writer.done_track_ids()))
    return runs


def run(cfg: AutotagConfig) -> dict[str, Any]:
    """Tag the catalogue; returns row counts and where the tables are."""
    start = time.perf_counter()
    inputs.check_source(cfg.infer.input, cfg.dataset.manifest)  # one clear line, before Ray starts
    runs = model_runs(cfg)
    done = set.intersection(*(r.done for r in runs))  # a track is pending while any model lacks it
    sources = list_sources(cfg, done)
    init_ray(cfg)
    dataset, total = source_dataset(cfg, sources, done)
    log.info("%s tracks to tag (%d already done) with %s", "?" if total is None else total, len(done),
             ", ".join(f"{r.name}={r.checkpoint}" for r in runs))
    counts = {"ok": 0, "error": 0}
    if total != 0:
        pipeline = pipeline_of(cfg)
        log.info("infer pipeline: %s%s", pipeline, " (infer.pipeline=auto)" if cfg.infer.pipeline == "auto" else "")
        batches = (split_batches if pipeline == "split" else fused_batches)(cfg, dataset, runs)
        write_all(batches, runs, cfg, counts, total)
    summary: dict[str, Any] = {"run_id": cfg.run_id, "tracks_ok": counts["ok"], "tracks_error": counts["error"],
                               "tracks_skipped": len(done), "exports": {}, "runs": {}}
    for r in runs:
        exported = export_run(cfg.paths.predictions, r.run_id, cfg.infer.exports, top_k=cfg.task.top_k) \
            if cfg.infer.exports else {}
        summary["runs"][r.name] = {"run_id": r.run_id, "checkpoint": r.checkpoint, "tracks_ok": r.counts["ok"],
                                   "tracks_error": r.counts["error"], "tracks_dir": str(r.writer.dirs["tracks"]),
                                   f"{r.main_table}_dir": str(r.writer.dirs[r.main_table]), "exports": exported}
    for r in runs:  # the whole run, earlier attempts included: a re-run of a finished run says the same
        written = r.writer.status_counts()
        summary["runs"][r.name].update({"run_ok": written["ok"], "run_error": written["error"]})
        log.info("%s: %d ok, %d errors (see %s)", r.run_id, written["ok"], written["error"], r.writer.dirs["tracks"])
    if not cfg.infer.models:  # one model: its run is the run
        summary.update({k: v for k, v in summary["runs"]["model"].items() if k not in ("run_id", "checkpoint")})
    summary["seconds"] = round(time.perf_counter() - start, 1)
    return summary


def pipeline_of(cfg: AutotagConfig) -> str:
    """``infer.pipeline``, with ``auto`` resolved: split when the actors get GPUs, else fused (on CPU-only
    nodes the fused actors are the faster, README "Benchmarks")."""
    if cfg.infer.pipeline != "auto":
        return cfg.infer.pipeline
    return "split" if cfg.infer.gpus_per_actor > 0 else "fused"


def fused_batches(cfg: AutotagConfig, dataset, runs: list[ModelRun]) -> Iterator[dict[str, np.ndarray]]:
    """Rows of tagged tracks from an actor pool of :class:`BatchPredictor` (each decodes, runs, aggregates)."""
    import ray.data

    predicted = dataset.map_batches(
        BatchPredictor, batch_size=cfg.infer.tracks_per_batch, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=cfg.infer.num_actors),
        num_cpus=actor_cpus(cfg), num_gpus=cfg.infer.gpus_per_actor,
        fn_constructor_kwargs=predictor_kwargs(cfg, {r.name: r.checkpoint for r in runs}))
    yield from predicted.iter_batches(batch_size=None, batch_format="numpy")


def split_batches(cfg: AutotagConfig, dataset, runs: list[ModelRun]) -> Iterator[dict[str, np.ndarray]]:
    """The same rows from the split pipeline (:mod:`autotag.infer.split`): decode tasks of
    ``infer.decode_cpus`` CPUs (``infer.decode_tasks`` at a time, or as many as fit), an actor pool
    that only runs the models, the finish on the driver."""
    import ray.data

    options = predictor_kwargs(cfg, {r.name: r.checkpoint for r in runs})
    checkpoints = options.pop("checkpoints")
    options.pop("decode_threads")
    local = {name: TrackPredictor(path, **{**options, "device": "cpu", "num_threads": None})
             for name, path in checkpoints.items()}  # the driver's: cut geometry and finish
    pieces = dataset.map_batches(
        decode_pieces, batch_size=cfg.infer.tracks_per_batch, batch_format="numpy", num_cpus=cfg.infer.decode_cpus,
        compute=ray.data.TaskPoolStrategy(size=cfg.infer.decode_tasks) if cfg.infer.decode_tasks else None,
        fn_kwargs={"cutters": {name: p.cutter for name, p in local.items()},
                   "max_duration_s": cfg.infer.max_duration_s})
    outputs = pieces.map_batches(
        PieceModels, batch_size=cfg.infer.pieces_per_batch, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=cfg.infer.num_actors),
        num_cpus=actor_cpus(cfg), num_gpus=cfg.infer.gpus_per_actor,
        fn_constructor_kwargs={"checkpoints": checkpoints, **options})
    assembler = TrackAssembler(local)
    for batch in outputs.iter_batches(batch_size=None, batch_format="numpy"):
        rows = assembler.add(batch)
        if rows is not None:
            yield rows
    if assembler.pending:
        raise RuntimeError(f"infer: {assembler.pending} track(s) lack pieces after the last batch")


def write_all(batches: Iterable[dict[str, np.ndarray]], runs: list[ModelRun], cfg: AutotagConfig,
              counts: dict[str, int], total: int | None) -> None:
    """Write tagged rows ``infer.rows_per_file`` at a time (the rest at the end), logging a progress
    line at most every ``infer.progress_every_s`` seconds and after the last rows."""
    progress = Progress("tracks", total)
    buffer = RowBuffer()
    audio_s, failed, last_line = 0.0, 0, time.perf_counter()
    for batch in batches:
        buffer.add(batch)
        progress.advance(len(batch["track_id"]))
        audio_s += float(np.nansum(batch["duration_s"]))
        failed += int(sum((np.asarray(batch[f"{r.name}.status"]) != "ok") for r in runs).astype(bool).sum())
        while len(buffer) >= cfg.infer.rows_per_file:
            _write_batch(buffer.take(cfg.infer.rows_per_file), runs, cfg, counts)
        if time.perf_counter() - last_line >= cfg.infer.progress_every_s:
            last_line = time.perf_counter()
            _log_progress(progress, audio_s, failed)
    if len(buffer):
        _write_batch(buffer.take(len(buffer)), runs, cfg, counts)
    _log_progress(progress, audio_s, failed)


def _log_progress(progress: Progress, audio_s: float, failed: int) -> None:
    log.info("tagged %s, %.0f audio s/s (%d with errors)", progress.status(), progress.per_second(audio_s), failed)


def _write_batch(batch: dict, runs: list[ModelRun], cfg: AutotagConfig, counts: dict[str, int]) -> None:
    """Write one part per model run (tracks it already has skipped) and count the tracks: a
    track is ``ok`` when every model tagged it."""
    failed = np.zeros(len(batch["track_id"]), dtype=bool)
    for r in runs:
        rows = model_batch(batch, r.name, skip=r.done)
        if len(rows["track_id"]):
            r.writer.write(output_tables(rows, r.run_id, r.task, r.model, r.checkpoint,
                                         dict(cfg.infer.thresholds), cfg.infer.top_k))
        for track_id, status, error in zip(rows["track_id"], rows["status"], rows["error"]):
            r.counts[status] += 1
            if status == "error":
                log.warning("%scould not tag %s: %s", f"{r.name}: " if cfg.infer.models else "", track_id, error)
        failed |= np.asarray(batch[f"{r.name}.status"]) != "ok"
    counts["error"] += int(failed.sum())
    counts["ok"] += int((~failed).sum())


def preflight(cfg: AutotagConfig) -> None:
    """Before Ray starts: every checkpoint is readable (the input is listed by :func:`run`, also
    before Ray starts)."""
    for path in (cfg.infer.models or {"model": cfg.infer.checkpoint}).values():
        checkpoint.read_meta(path)


def summary(result: dict[str, Any]) -> str:
    """Where each model's tables are (the counts were logged as the run's last line)."""
    return "\n".join(f"{name}: run {r['run_id']} -> " + ", ".join(str(v) for k, v in r.items() if k.endswith("_dir"))
                     for name, r in result["runs"].items())


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    return cli(run, argv=argv, prog=prog, doc=__doc__, sections=("run_id", "infer", "task", "paths", "runtime"),
               preflight=preflight, summary=summary)


if __name__ == "__main__":
    raise SystemExit(main())
