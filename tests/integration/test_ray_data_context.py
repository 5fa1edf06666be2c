"""Datasets made under ``whole_cluster_per_operator`` use every CPU from their first task."""

from __future__ import annotations

import time

from pipelines.common import whole_cluster_per_operator

BUSY_S = 1.0


def _busy(row: dict) -> dict:
    started = time.time()
    while time.time() - started < row["seconds"]:
        pass
    return {"started": started}


def _starts(dataset) -> list[float]:
    return sorted(row["started"] for row in dataset.map(_busy, num_cpus=1).take_all())


def test_a_one_operator_dataset_runs_a_task_per_cpu_from_the_start(ray_session):
    import ray.data

    with whole_cluster_per_operator():
        _starts(ray.data.from_items([{"seconds": 0.0}] * 2, override_num_blocks=2))  # two warm workers
        dataset = ray.data.from_items([{"seconds": BUSY_S}] * 4, override_num_blocks=4)
    assert ray.data.DataContext.get_current().op_resource_reservation_enabled  # restored for the others
    starts = _starts(dataset)
    # Two CPUs: the first two tasks run side by side (with Ray Data's reservation the second
    # waits for the first to finish, BUSY_S later), and all four finish in two rounds.
    assert starts[1] - starts[0] < BUSY_S / 2, starts
    assert starts[3] - starts[0] < BUSY_S * 1.5, starts
