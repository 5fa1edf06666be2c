"""Ray nodes as process trees: start ``ray start --block`` in its own session, stop exactly it.

``ray stop`` stops every Ray on the machine (other sessions', CI's embedded instances); these
helpers stop only the processes a test started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def short_temp_dir() -> Path:
    """A Ray ``--temp-dir`` short enough for its AF_UNIX socket paths (at most 107 bytes),
    which pytest's deep ``tmp_path`` folders can exceed. The caller removes it."""
    return Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from field 3 on: [state, ppid, pgrp, session, ..., starttime at 19, ...]."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_time(pid: int) -> str | None:
    """Tells a pid apart from a later process that reuses it."""
    return stat[19] if (stat := _stat(pid)) else None


def process_tree(root: int) -> dict[int, str]:
    """``{pid: start time}`` of ``root``, its descendants and the rest of its session.

    ``root`` leads a session of its own (``start_new_session``): Ray's workers move to process
    groups of their own but stay in it, even once orphaned, while job drivers stay descendants.
    """
    children: dict[int, list[int]] = {}
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))):
            children.setdefault(int(stat[1]), []).append(int(entry.name))
            if stat[3] == str(root):
                found[int(entry.name)] = stat[19]
    todo = [root]
    while todo:
        pid = todo.pop()
        if (started := _start_time(pid)) is not None:
            found[pid] = started
            todo.extend(children.get(pid, []))
    return found


def kill_tree(tree: dict[int, str]) -> None:
    """SIGKILL every process of a snapshot that is still the same process."""
    for pid, started in tree.items():
        if _start_time(pid) == started:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class Node:
    """One ``ray start --block`` (head or worker node), its output in ``ray-start-<name>.log``."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path):
        self.log = log_dir / f"ray-start-{name}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([str(BIN / "ray"), "start", "--block", *args], env=env, cwd=REPO,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self) -> None:
        """Lose the node: SIGKILL its raylet, agents and workers at once, as if the machine died."""
        kill_tree(process_tree(self.proc.pid))
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM (``ray start --block`` then stops its processes); SIGKILL what is left after 5 s."""
        tree = process_tree(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        kill_tree({**tree, **process_tree(self.proc.pid)})
        self.proc.wait(timeout=30)
