"""Heap settings of the decode/model workers: freed buffers are reused, not faulted in anew."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from autotag import memory

ROOT = Path(__file__).resolve().parents[2]
FORWARDS = """
import resource, sys, torch
torch.set_num_threads(1)
from autotag.features.logmel import LogMel
from autotag.memory import reuse_freed_memory
if sys.argv[1] == "reuse":
    assert reuse_freed_memory()
model, x = LogMel(), torch.randn(19, 64512)  # one batch of 3-s patches: ~40 MB of buffers per call
with torch.no_grad():
    for _ in range(5):
        model(x)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        model(x)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


def page_faults_per_call(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", FORWARDS, mode], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(memory._glibc() is None, reason="glibc only")
def test_reused_heap_serves_each_call_without_new_pages():
    # ~10,000 pages of buffers per call: glibc's defaults fault thousands of them in again on
    # every call (5,700 here); reused, at most a few percent of that.
    default, reused = page_faults_per_call("default"), page_faults_per_call("reuse")
    if default < 1_000:
        pytest.skip(f"this C library's defaults already reuse the heap ({default:.0f} faults per call)")
    assert reused < default / 10, (reused, default)


def test_is_a_no_op_where_the_c_library_has_no_settings(monkeypatch):
    monkeypatch.setattr(memory, "_glibc", lambda: None)
    assert memory.reuse_freed_memory() is False
