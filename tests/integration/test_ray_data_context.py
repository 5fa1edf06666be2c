"""Datasets made under ``whole_cluster_per_operator`` use every CPU from their first task."""

from __future__ import annotations

import time

from pipelines.common import whole_cluster_per_operator


def _busy(row: dict) -> dict:
    started = time.time()
    while time.time() - started < 0.4:
        pass
    return {"started": started}


def test_a_one_operator_dataset_runs_a_task_per_cpu_from_the_start(ray_session):
    import ray.data

    with whole_cluster_per_operator():
        dataset = ray.data.from_items([{"i": i} for i in range(4)], override_num_blocks=4)
    assert ray.data.DataContext.get_current().op_resource_reservation_enabled  # restored for the others
    starts = sorted(row["started"] for row in dataset.map(_busy, num_cpus=1).take_all())
    # Two CPUs: the first two tasks run side by side (with the reservation, the second waited
    # for the first, 0.4 s later), and all four finish in two rounds.
    assert starts[1] - starts[0] < 0.2, starts
    assert starts[3] - starts[0] < 0.8, starts
