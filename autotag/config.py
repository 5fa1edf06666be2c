"""Typed configuration: the plain dataclasses every stage receives.

Hydra composes YAML from ``conf/``; :func:`from_container` turns the resolved result into
these frozen dataclasses, rejecting unknown keys and wrong types, so a typo in a YAML
file or a ``key=value`` override is an error instead of being ignored.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from autotag.data.synthetic.spec import SyntheticSpec
from autotag.data.tasks import TaskKind
from autotag.errors import ConfigError
from autotag.storage import is_uri

Aggregate = Literal["mean", "max"]
"""How patch probabilities become a track's score."""
InferPipeline = Literal["auto", "fused", "split"]
"""How ``pipelines.infer`` lays out its work: one actor per track does everything (``fused``), or CPU
tasks decode and cut, model actors run models, the driver aggregates (``split``); ``auto``: split when
the actors get GPUs, fused on CPU-only nodes (the faster there, README "Benchmarks")."""
ExportKind = Literal["lab", "jams", "csv"]
"""Per-track files ``pipelines.infer`` can write beside its tables."""
ChordVocabulary = Literal["full", "majmin"]
"""The chord labels ``pipelines.infer`` writes: the model's own vocabulary, or reduced to N + 24 maj/min."""
ShardCodec = Literal["flac", "pcm16"]  # autotag.data.shards.CODECS
Precision = Literal["auto", "fp32", "bf16"]  # auto: bf16 on GPU, fp32 on CPU


def at_least(low: float) -> dict[str, Any]:
    """Field metadata: the value (when not null) must be >= ``low``."""
    return {"at_least": low}


def above(low: float) -> dict[str, Any]:
    """Field metadata: the value (when not null) must be > ``low``."""
    return {"above": low}


def _check_bounds(f: dataclasses.Field, value: Any, where: str) -> None:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if "at_least" in f.metadata and value < f.metadata["at_least"]:
        raise ConfigError(f"{where}: must be at least {f.metadata['at_least']}, got {value!r}")
    if "above" in f.metadata and value <= f.metadata["above"]:
        raise ConfigError(f"{where}: must be greater than {f.metadata['above']}, got {value!r}")


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` when one of ``choices`` is close to ``word``, else ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


@dataclass(frozen=True)
class PathsConfig:
    """Where every artefact goes. Relative paths are made absolute at composition time."""

    root: str
    data: str
    shards: str
    checkpoints: str
    predictions: str
    reports: str


@dataclass(frozen=True)
class PrepareConfig:
    """Build the manifest from a catalogue with an adapter (``autotag.data.adapters.ADAPTERS``).

    ``source`` is the adapter's first argument (a folder or an annotation file); ``options``
    its keyword arguments (e.g. ``audio_root``, ``top_n``, ``split``).
    """

    adapter: str
    source: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetConfig:
    """A manifest (see :mod:`autotag.data.manifest`) and which label column to learn.

    ``synthetic`` set: render the dataset into the manifest's folder first. ``prepare`` set:
    build the manifest with an adapter when it does not exist yet.
    """

    name: str
    manifest: str
    label_key: str
    synthetic: SyntheticSpec | None = None
    prepare: PrepareConfig | None = None


@dataclass(frozen=True)
class TaskConfig:
    """``kind``: multiclass | multilabel | frame_multiclass | frame_multilabel."""

    kind: TaskKind
    threshold: float = field(default=0.5, metadata=at_least(0.0))
    top_k: int = field(default=5, metadata=at_least(1))


@dataclass(frozen=True)
class ComponentConfig:
    """A registered model component and its constructor parameters."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ShardConfig:
    """How ``pipelines.shard`` cuts the manifest (see :mod:`autotag.data.shards`).

    ``tracks_per_shard``: tracks per shard, the unit of work (one Ray task) and of
    resumption. ``max_shard_mb``: byte cap of one tar; a shard that would pass it continues
    in ``<name>-1.tar``, ``-2``, ... (None: no cap). ``max_duration_s``: longer files are
    error rows. ``spool_mb``: FLAC bytes of one track kept in memory before spilling to a
    local temporary file. ``cpus_per_task``: Ray CPUs per shard task. ``codec``: the audio
    members' codec, ``pcm16`` (raw 16-bit samples, nearly free to decode in every training
    epoch) or ``flac`` (fewer bytes on storage, CPU to decode); both read the same.
    """

    tracks_per_shard: int = field(default=256, metadata=at_least(1))
    max_shard_mb: float | None = field(default=256.0, metadata=above(0))
    max_duration_s: float = field(default=3600.0, metadata=above(0))
    spool_mb: float = field(default=32.0, metadata=at_least(0))
    cpus_per_task: float = field(default=1.0, metadata=above(0))
    codec: ShardCodec = "flac"


@dataclass(frozen=True)
class TrainConfig:
    num_workers: int = field(default=2, metadata=at_least(1))
    use_gpu: bool = False
    cpus_per_worker: float | None = field(default=None, metadata=above(0))  # None: what Ray Data leaves
    batch_size: int = field(default=128, metadata=at_least(1))
    lr: float = field(default=0.01, metadata=above(0))
    max_epochs: int = field(default=500, metadata=at_least(1))
    patience: int = field(default=10, metadata=at_least(1))
    seed: int = 42
    shuffle_buffer: int = field(default=2000, metadata=at_least(0))
    prefetch_batches: int = field(default=4, metadata=at_least(0))
    decode_cpus: float | None = field(default=None, metadata=above(0))  # None: Ray Data's default, 1 CPU a task
    cache_patches: bool | None = None  # None: workers keep decoded patches after epoch 1 when they fit
    continuous_stream: bool = True  # streamed epochs come from one pass over the shards listed once per epoch
    precision: Precision = "auto"
    progress_interval_s: float = field(default=10.0, metadata=above(0))  # a progress line while an epoch runs
    checkpoints_to_keep: int = field(default=2, metadata=at_least(1))
    max_failures: int = field(default=2, metadata=at_least(-1))  # -1: retry for ever (Ray Train's rule)
    init_from: str | None = None
    freeze: tuple[str, ...] = ()


@dataclass(frozen=True)
class InferConfig:
    """Inference settings; ``input`` None tags the dataset's manifest (``split`` filters it),
    else a folder, glob, CSV/Parquet list, shard folder or URI (see ``autotag.infer.inputs``).
    ``models`` (name → checkpoint), when set, replaces ``checkpoint``: every model runs on one
    decode of each track and writes run ``<run_id>-<name>``. A run holds one checkpoint's
    predictions: ``overwrite`` drops a run's earlier rows before tagging; ``retry_errors`` tags
    again the tracks whose rows are ``status = 'error'``; a rerun with another checkpoint is
    refused otherwise (:func:`autotag.predictions.check_resume`)."""

    checkpoint: str
    models: dict[str, str] | None = None
    input: str | None = None
    split: str | None = None
    tracks_per_batch: int = field(default=8, metadata=at_least(1))
    patch_batch_size: int = field(default=64, metadata=at_least(1))
    num_actors: int = field(default=1, metadata=at_least(1))
    cpus_per_actor: float = field(default=1.0, metadata=above(0))
    gpus_per_actor: float = field(default=0.0, metadata=at_least(0))
    decode_threads: int | None = field(default=None, metadata=at_least(1))
    pipeline: InferPipeline = "auto"
    decode_cpus: float = field(default=1.0, metadata=above(0))
    decode_tasks: int | None = field(default=None, metadata=at_least(1))
    pieces_per_batch: int = field(default=1, metadata=at_least(1))
    progress_every_s: float = field(default=10.0, metadata=above(0))
    aggregate: Aggregate = "mean"
    rows_per_file: int = field(default=10_000, metadata=at_least(1))
    max_duration_s: float = field(default=3600.0, metadata=above(0))
    chord_switch_penalty: float = field(default=5.0, metadata=at_least(0))
    chord_vocabulary: ChordVocabulary = "full"
    chord_inversions: bool = True
    smooth_frames: int = field(default=1, metadata=at_least(1))
    thresholds: dict[str, float] = field(default_factory=dict)
    top_k: int | None = field(default=None, metadata=at_least(1))
    embeddings: bool = False
    activations: bool = False
    exports: tuple[ExportKind, ...] = ()
    overwrite: bool = False
    retry_errors: bool = False


@dataclass(frozen=True)
class EvaluateConfig:
    """What ``pipelines.evaluate`` scores and shows (see ``conf/evaluate/default.yaml``).

    ``runs``: more run ids to score beside ``run_id`` (e.g. a sweep), all in one report.
    ``report_track``: the track of the tag-o-gram and chord timeline; None: the first evaluated one.
    ``patch_level``: also score every test patch (the tutorial's protocol), from the ``activations``
    table inference writes for track-level models while this is on.
    ``threshold``: multi-label decision threshold; None: each run's own (its ``predicted`` column).
    ``frame_rate``: frames per second of the frame-level chord/instrument scores; None: the
    frame rate inference recorded with the predictions (``autotag.timebase``).
    """

    split: str = "test"
    runs: tuple[str, ...] = ()
    report_track: str | None = None
    patch_level: bool = True
    threshold: float | None = None
    frame_rate: float | None = None


@dataclass(frozen=True)
class SweepConfig:
    """A sweep (``pipelines.sweep``): every combination crossed with every grid point is one trial.

    ``combinations``: mappings of Hydra overrides, a config group (``frontend: tcn``) or a dotted
    key (``frontend.params.patch_hop_samples: 11025``); empty means the base config alone.
    ``grid``: dotted key -> list of values, or None (YAML ``null``, so that an override can
    replace it as a whole). ``max_concurrent_trials`` None: GPUs / workers per
    trial on GPU, 1 on CPU. ``evaluate``: infer and evaluate each trial's best checkpoint on
    ``evaluate.split``.
    """

    name: str = "default"
    combinations: tuple[dict[str, Any], ...] = ()
    grid: dict[str, Any] | None = None
    max_concurrent_trials: int | None = field(default=None, metadata=at_least(1))
    evaluate: bool = True


@dataclass(frozen=True)
class RuntimeConfig:
    """``address``: None starts an embedded local Ray; "auto" joins the cluster this runs on.

    ``s3_endpoint``, ``s3_max_attempts``, ``s3_request_timeout_s``: the object-store settings of
    :mod:`autotag.storage` (an S3-compatible endpoint URL, attempts per request with retries of
    transient failures, seconds before a stalled request fails and is retried); None leaves
    them to the environment (``AWS_ENDPOINT_URL``, ``AWS_MAX_ATTEMPTS``, ...).
    """

    address: str | None = None
    num_cpus: int | None = field(default=None, metadata=at_least(1))
    object_store_mb: int | None = field(default=1024, metadata=at_least(64))
    progress_bars: bool = True
    s3_endpoint: str | None = None
    s3_max_attempts: int | None = field(default=None, metadata=at_least(1))
    s3_request_timeout_s: float | None = field(default=None, metadata=above(0))


@dataclass(frozen=True)
class AutotagConfig:
    run_id: str
    paths: PathsConfig
    dataset: DatasetConfig
    task: TaskConfig
    frontend: ComponentConfig
    backend: ComponentConfig
    shard: ShardConfig
    train: TrainConfig
    infer: InferConfig
    evaluate: EvaluateConfig
    runtime: RuntimeConfig
    sweep: SweepConfig = field(default_factory=SweepConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None:
            if type(None) in options:
                return None
            raise ConfigError(f"{where}: must not be null")
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{where}: {value!r} is not one of {list(choices)}{did_you_mean(str(value), choices)}")
        return value
    if dataclasses.is_dataclass(tp):
        return from_container(tp, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(tp)[:1]
        return tuple(_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool):
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {tp}")


def from_container(cls: type, data: Any, where: str = "config") -> Any:
    """Build dataclass ``cls`` from a plain nested mapping, strictly.

    Raises
    ------
    ConfigError
        Unknown or missing keys, or values of the wrong type; the message gives the dotted key.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}{did_you_mean(unknown[0], fields)}; "
                          f"expected some of {sorted(fields)}")
    kwargs = {}
    for name, f in fields.items():
        key = f"{where}.{name}" if where != "config" else name
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{key}: missing")
            continue
        kwargs[name] = _convert(hints[name], data[name], key)
        _check_bounds(f, kwargs[name], key)
    return cls(**kwargs)


def absolute_paths(paths: dict[str, Any], base: Path) -> dict[str, str]:
    """Make local relative paths absolute against ``base`` (URIs are left alone).

    Raises
    ------
    ConfigError
        A path that is null, empty or not a string (``paths.root=`` must not mean "here").
    """
    for key, value in paths.items():
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"paths.{key}: expected a folder or URI, got {value!r}")
    return {k: v if is_uri(v) or Path(v).is_absolute() else str((base / v).resolve()) for k, v in paths.items()}
