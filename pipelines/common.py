"""Config composition, Ray start-up and the command-line shell shared by every stage."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from autotag.config import AutotagConfig, ConfigError, absolute_paths, from_container

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
log = logging.getLogger("autotag")


def load_config(overrides: Sequence[str] = (), config_name: str = "config",
                base_dir: Path | None = None) -> AutotagConfig:
    """Compose ``conf/<config_name>.yaml`` with ``key=value`` overrides into typed config.

    Raises
    ------
    ConfigError
        Unknown groups/keys, bad values, or a value that does not match the schema.
    """
    base = base_dir or Path.cwd()
    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
            cfg = compose(config_name=config_name, overrides=list(overrides))
        # Anchor the root before resolving, so every path interpolated from it is absolute.
        cfg.paths.root = absolute_paths({"root": cfg.paths.root}, base)["root"]
        container = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"invalid configuration: {exc}") from None
    container["paths"] = absolute_paths(container["paths"], base)
    return from_container(AutotagConfig, container)


def init_ray(cfg: AutotagConfig) -> None:
    """Start embedded Ray (``runtime.address`` null) or join a cluster; idempotent."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    runtime = cfg.runtime
    if runtime.address is None:
        ray.init(
            address="local",  # a new embedded instance, even if another Ray runs on this machine
            num_cpus=runtime.num_cpus,
            object_store_memory=runtime.object_store_mb * 1024**2 if runtime.object_store_mb else None,
            include_dashboard=False,
            log_to_driver=True,
            # Workers must import autotag/pipelines from this checkout.
            runtime_env={"env_vars": {"PYTHONPATH": str(CONF_DIR.parent)}},
        )
    else:
        ray.init(address=runtime.address)
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


def cli(run: Callable[[AutotagConfig], dict[str, Any]], config_name: str = "config",
        argv: Sequence[str] | None = None) -> int:
    """``python -m pipelines.<stage> [--print-config] key=value ...``; prints the result as JSON."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print(f"usage: python -m pipelines.<stage> [--print-config] [key=value ...]\n"
              f"config: {CONF_DIR / (config_name + '.yaml')}; groups: "
              f"{', '.join(sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir()))}")
        return 0
    show = "--print-config" in args
    overrides = [a for a in args if a != "--print-config"]
    try:
        cfg = load_config(overrides, config_name)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if show:
        print(OmegaConf.to_yaml(OmegaConf.create(cfg.to_dict())))
        return 0
    try:
        result = run(cfg)
    except ConfigError as exc:  # a mistake found once the stage looks at its inputs (before Ray starts)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, default=str))
    return 0
