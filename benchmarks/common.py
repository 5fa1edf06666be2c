"""What every benchmark shares: a sharded synthetic data set, process sampling, Markdown tables."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from autotag.config import AutotagConfig
from pipelines import shard
from pipelines.common import init_ray, load_config

DEFAULT_ROOT = "outputs/bench"
# The synthetic genre set at its default size: 400 tracks of 10 s, 4,000 s of audio.
DATA = ["dataset.synthetic.tracks_per_class=40", "dataset.synthetic.duration_s=10.0", "runtime.progress_bars=false"]


def prepare(root: str | Path, overrides: Sequence[str] = ()) -> tuple[AutotagConfig, list[str]]:
    """Compose the benchmark config under ``root``, start Ray and shard the data set once."""
    overrides = [*DATA, f"paths.root={Path(root).resolve()}", *overrides]
    cfg = load_config(overrides)
    init_ray(cfg)
    if not (Path(cfg.paths.shards) / "index.parquet").exists():
        shard.run(cfg)
    return cfg, overrides


def machine() -> str:
    """CPU model, cores and load average: the numbers mean little without them."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores ({model}), load average {load}"


def descendants(root: int) -> list[int]:
    """Pids of every process below ``root`` (an embedded Ray's raylet and workers are children)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier}
        found += sorted(frontier)
    return found


def process_title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def peak_rss_mib(pid: int) -> float | None:
    """``VmHWM`` (peak resident set size so far) of ``pid`` in MiB, or None once it has exited."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def spilled_mib() -> float:
    """MiB the connected Ray cluster has spilled from its object store to disk so far: a
    benchmark that spills measures the disk, not the code."""
    import re

    from ray._private.internal_api import memory_summary

    found = re.search(r"Spilled (\d+) MiB", memory_summary(stats_only=True))
    return float(found.group(1)) if found else 0.0


class PeakRss:
    """Samples, in a thread, the peak RSS of this process's descendants whose title matches."""

    def __init__(self, match: Callable[[str], bool], interval_s: float = 0.5):
        self.match, self.interval_s = match, interval_s
        self.peaks: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            for pid in descendants(os.getpid()):
                if self.match(process_title(pid)) and (rss := peak_rss_mib(pid)) is not None:
                    self.peaks[pid] = max(rss, self.peaks.get(pid, 0.0))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def table(rows: Sequence[Mapping[str, Any]], columns: Mapping[str, str], title: str) -> str:
    """A Markdown table of ``rows``: ``columns`` maps each key to its header; floats get 1–2 decimals."""
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"
        return "—" if value is None else str(value)

    lines = [f"### {title}", "", "| " + " | ".join(columns.values()) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(key)) for key in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self.start
