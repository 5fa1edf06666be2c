"""Run these small-tensor tests on one intra-op thread.

On the shared 2-core test machines, torch's thread pool spends far longer synchronising
than computing on tensors this small (a TCN forward: 1.2 s with 2 busy threads, 0.03 s
with one). The previous setting is restored after each test.
"""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
