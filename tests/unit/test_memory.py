"""Heap settings of the decode/model workers: freed buffers are reused, not faulted in anew."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from autotag import memory

ROOT = Path(__file__).resolve().parents[2]
FORWARDS = """
import resource, torch
torch.set_num_threads(1)
from autotag.features.logmel import LogMel
from autotag.memory import reuse_freed_memory
assert reuse_freed_memory()
model, x = LogMel(), torch.randn(19, 64512)  # one batch of 3-s patches: ~40 MB of buffers per call
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
with torch.no_grad():
    before = faults()
    model(x)
    first = faults() - before
    for _ in range(4):
        model(x)
    before = faults()
    for _ in range(10):
        model(x)
print(first, (faults() - before) / 10)
"""


@pytest.mark.skipif(memory._glibc() is None, reason="glibc only")
def test_reused_heap_serves_each_call_without_new_pages():
    # The first call faults in every page of its buffers (~6,600 here); once they are freed into
    # the kept heap, later calls find them there and fault in at most a few percent of that.
    # (glibc's defaults are no fixed baseline: they faulted 1,350 to 5,900 pages per later call,
    # depending on the history of its moving mmap threshold.)
    out = subprocess.run([sys.executable, "-c", FORWARDS], cwd=ROOT, capture_output=True, text=True, check=True)
    first, later = (float(v) for v in out.stdout.split()[-2:])
    assert first > 1_000, first  # the buffers are really that large: the measure can tell
    assert later < first / 20, (later, first)


def test_is_a_no_op_where_the_c_library_has_no_settings(monkeypatch):
    monkeypatch.setattr(memory, "_glibc", lambda: None)
    assert memory.reuse_freed_memory() is False
