"""Config composition, Ray start-up and the command-line shell shared by every stage."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from autotag import storage
from autotag.config import AutotagConfig, ConfigError, RuntimeConfig, absolute_paths, did_you_mean, from_container
from autotag.errors import UserError

SOURCE_ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("autotag")


def conf_dir() -> Path:
    """The ``conf/`` tree: inside the installed package (a wheel ships it as ``pipelines/conf``),
    else the checkout's top-level ``conf/``."""
    installed = Path(__file__).resolve().parent / "conf"
    return installed if (installed / "config.yaml").is_file() else SOURCE_ROOT / "conf"


def running_from_checkout() -> bool:
    """Whether ``pipelines`` is imported from a source tree (``conf/`` beside it) rather than a wheel."""
    return conf_dir() == SOURCE_ROOT / "conf"


def load_config(overrides: Sequence[str] = (), config_name: str = "config",
                base_dir: Path | None = None) -> AutotagConfig:
    """Compose ``conf/<config_name>.yaml`` with ``key=value`` overrides into typed config.

    Raises
    ------
    ConfigError
        Unknown groups/keys, bad values, or a value that does not match the schema; the
        message is one line and names the key (with the closest known key when one is close).
    """
    base = base_dir or Path.cwd()
    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(conf_dir())):
            cfg = compose(config_name=config_name, overrides=list(overrides))
        root = absolute_paths({"root": cfg.paths.root}, base)["root"]
        # Anchor the root before resolving, so every path interpolated from it is absolute.
        cfg.paths.root = root
        container = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(_one_line(exc, config_name)) from None
    container["paths"] = absolute_paths(container["paths"], base)
    return from_container(AutotagConfig, container)


def _one_line(exc: Exception, config_name: str) -> str:
    """Hydra's multi-line messages as one line, with the key or option that was probably meant."""
    text = str(exc)
    key = re.search(r"Could not override '([^']+)'", text)
    if key:
        return f"{key.group(1)}: no such key{did_you_mean(key.group(1), known_keys(config_name))}"
    option = re.search(r"Could not find '([^'/]+)/([^']+)'", text)
    if option:
        group, name = option.groups()
        choices = sorted(p.stem for p in (conf_dir() / group).glob("*.yaml"))
        return f"{group}={name}: no such option{did_you_mean(name, choices)} (options: {', '.join(choices)})"
    return "invalid configuration: " + " ".join(text.split())


def known_keys(config_name: str = "config") -> list[str]:
    """Every dotted key of the composed default configuration."""
    with initialize_config_dir(version_base="1.3", config_dir=str(conf_dir())):
        cfg = OmegaConf.to_container(compose(config_name=config_name), resolve=False)

    def walk(node: Any, prefix: str) -> Iterator[str]:
        if isinstance(node, dict):
            for name, value in node.items():
                yield from walk(value, f"{prefix}{name}.")
        yield prefix.rstrip(".")

    return [k for k in walk(cfg, "") if k]


def quiet_ray_driver() -> None:
    """Ray's INFO chatter in this process goes to Ray's own log files, not the console.

    Workers' output already stays in ``<ray temp>/session_*/logs`` (``log_to_driver=False``);
    this silences the driver-side INFO lines of Ray core and Ray Data (execution plans, progress
    logged because stdout is not a terminal) and the notice that token authentication is on,
    which is how autotag always runs Ray. Warnings of Ray and Ray Data still show.
    """
    logging.getLogger("ray").setLevel(logging.WARNING)
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    logging.getLogger("ray.experimental.tqdm_ray").setLevel(logging.ERROR)
    import ray.data  # configures the ``ray.data`` logger: its session-file handler keeps every INFO line
    from ray._private.log import PlainRayHandler

    for handler in logging.getLogger("ray.data").handlers:
        if isinstance(handler, PlainRayHandler):  # the console one
            handler.setLevel(logging.WARNING)
    ray.data.DataContext.get_current().print_on_execution_start = False


def use_object_store_settings(runtime: RuntimeConfig) -> dict[str, str]:
    """Put the ``runtime.s3_*`` settings that are set into this process's environment, where
    :mod:`autotag.storage` reads them; returns them, for Ray workers' ``env_vars``."""
    env = storage.object_store_env(runtime.s3_endpoint, runtime.s3_max_attempts, runtime.s3_request_timeout_s)
    os.environ.update(env)
    return env


def init_ray(cfg: AutotagConfig) -> None:
    """Start embedded Ray (``runtime.address`` null) or join a cluster; idempotent. Workers get
    the ``runtime.s3_*`` object-store settings in their environment."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    quiet_ray_driver()
    runtime = cfg.runtime
    store = use_object_store_settings(runtime)
    if runtime.address is None:
        # Workers of a checkout import autotag/pipelines from it; an installed autotag needs nothing.
        env_vars = {**store, **({"PYTHONPATH": str(SOURCE_ROOT)} if running_from_checkout() else {})}
        env = {"env_vars": env_vars} if env_vars else None
        ray.init(
            address="local",  # a new embedded instance, even if another Ray runs on this machine
            num_cpus=runtime.num_cpus,
            object_store_memory=runtime.object_store_mb * 1024**2 if runtime.object_store_mb else None,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
            runtime_env=env,
        )
    else:
        ray.init(address=runtime.address, log_to_driver=False, logging_level=logging.WARNING,
                 runtime_env={"env_vars": store} if store else None)
    quiet_ray_driver()  # ray.init configures its loggers again
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = runtime.progress_bars


@contextmanager
def whole_cluster_per_operator() -> Iterator[None]:
    """Datasets made inside take the cluster's resources as they need them.

    Ray Data reserves part of the cluster per operator by default; a pipeline whose work sits
    in one operator (the shard writer, the infer actor pool) then runs at half the cluster
    until that operator's budget grows: on 2 CPUs, one shard at a time for the first two
    seconds of a five-second run. A dataset keeps the context it was made under, so make it
    inside this block; the setting is restored on exit.
    """
    import ray.data

    context = ray.data.DataContext.get_current()
    reserving, context.op_resource_reservation_enabled = context.op_resource_reservation_enabled, False
    try:
        yield
    finally:
        context.op_resource_reservation_enabled = reserving


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes, not the stream it was when the
    console was set up: that one may be closed since (a test's captured stderr, a redirect)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def setup_console(verbose: bool = False) -> None:
    """autotag's progress lines on stderr: a clock and the message; warnings say so."""

    class Console(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            text = super().format(record)
            return text if record.levelno < logging.WARNING else text.replace(" ", f" {record.levelname.lower()}: ", 1)

    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not getattr(h, "autotag_console", False)]  # once per process
    handler = _StderrHandler()
    handler.setFormatter(Console("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    handler.autotag_console = True
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("autotag").setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("hydra", "matplotlib", "PIL", "numba", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


USAGE = """usage: {prog} [--print-config] [--json[=FILE]] [-v] [key=value ...]

{doc}

options:
  --print-config   print the resolved configuration and exit
  --json           print the result as JSON on stdout instead of the summary
  --json=FILE      also write the result as JSON to FILE
  -v, --verbose    debug messages of autotag
  key=value        Hydra overrides, e.g. paths.root=/data/autotag infer.num_actors=4
                   (groups: {groups})

keys and their defaults ({config}.yaml):
{keys}"""


def stage_help(prog: str, doc: str, config_name: str, sections: Sequence[str]) -> str:
    """``--help``: what the stage does and every key of its config sections with its default."""
    with initialize_config_dir(version_base="1.3", config_dir=str(conf_dir())):
        cfg = compose(config_name=config_name)
    shown = OmegaConf.create({s: cfg[s] for s in sections if s in cfg} if sections else cfg)
    keys = "\n".join(f"  {line}" for line in OmegaConf.to_yaml(shown).splitlines())
    groups = ", ".join(sorted(p.name for p in conf_dir().iterdir() if p.is_dir()))
    return USAGE.format(prog=prog, doc=doc.strip(), groups=groups, config=config_name, keys=keys)


def cli(run: Callable[[AutotagConfig], dict[str, Any]], config_name: str = "config",
        argv: Sequence[str] | None = None, *, prog: str | None = None, doc: str = "",
        sections: Sequence[str] = (), preflight: Callable[[AutotagConfig], None] | None = None,
        summary: Callable[[dict[str, Any]], str] | None = None) -> int:
    """``<stage> [--print-config] [--json[=FILE]] key=value ...`` around ``run(cfg) -> dict``.

    Exit codes: 0 the stage ran (its error rows included); 2 a :class:`UserError` (bad
    config, missing path or checkpoint, empty input), reported in one line, before Ray starts
    wherever ``preflight`` can see it; 1 anything else (a bug or a failure of Ray), with its
    traceback. ``summary`` turns the result into the lines a person reads at the end.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    module = getattr(run, "__module__", None) or "__main__"
    prog = prog or f"python -m {module if module != '__main__' else 'pipelines.' + Path(sys.argv[0]).stem}"
    if any(a in ("-h", "--help") for a in args):
        print(stage_help(prog, doc, config_name, sections))
        return 0
    verbose = any(a in ("-v", "--verbose") for a in args)
    show = "--print-config" in args
    as_json = any(a == "--json" for a in args)
    json_files = [a.split("=", 1)[1] for a in args if a.startswith("--json=")]
    unknown = [a for a in args if a.startswith("-") and a not in ("-v", "--verbose", "--print-config", "--json")
               and not a.startswith("--json=")]
    if unknown:
        print(f"error: unknown option {unknown[0]} (see {prog} --help)", file=sys.stderr)
        return 2
    overrides = [a for a in args if not a.startswith("-")]
    setup_console(verbose)
    try:
        cfg = load_config(overrides, config_name)
        if show:
            print(OmegaConf.to_yaml(OmegaConf.create(cfg.to_dict())))
            return 0
        use_object_store_settings(cfg.runtime)  # before the first read: preflight may list a bucket
        if preflight is not None:
            preflight(cfg)
        result = run(cfg)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        failure = storage.object_store_failure(exc)
        if failure is None:
            raise
        print(f"error: {failure}", file=sys.stderr)  # the store failed past its retries: no traceback
        return 1
    text = json.dumps(result, indent=2, default=str)
    for path in json_files:
        Path(path).write_text(text + "\n")
    if as_json:
        print(text)
    elif summary is not None:
        print(summary(result))
    return 0
