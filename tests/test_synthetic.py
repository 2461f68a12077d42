"""datasets.synthetic: the task-size profiles the scaling benchmark builds its tables from."""

from __future__ import annotations

import numpy as np
import pytest

from smart_spark.datasets.synthetic import bounded_task_sizes, synthetic_table, task_sizes


@pytest.mark.parametrize("rows", [1_000_000, 2_637_598])
def test_bounded_sizes_hit_the_total_and_both_bounds(rows: int) -> None:
    sizes = bounded_task_sizes(rows, 1001, 8, 70_000, seed=0)
    assert sizes.shape == (1001,) and sizes.dtype == np.int64
    assert int(sizes.sum()) == rows and sizes.min() == 8 and sizes.max() == 70_000
    assert 8 < np.median(sizes) < 70_000  # spread between the bounds, not piled on them
    np.testing.assert_array_equal(sizes, bounded_task_sizes(rows, 1001, 8, 70_000, seed=0))


def test_bounded_sizes_refuse_impossible_totals() -> None:
    with pytest.raises(ValueError, match="sum to"):
        bounded_task_sizes(100, 20, 8, 1_000)  # 20 tasks of at least 8 rows need 160
    with pytest.raises(ValueError, match="sum to"):
        bounded_task_sizes(10_000, 5, 1, 100)  # 5 tasks of at most 100 rows hold 500


def test_table_takes_given_sizes() -> None:
    sizes = np.array([3, 1, 6])
    table = synthetic_table(10, 3, dim=4, sizes=sizes)
    tasks = table.column("task").to_pylist()
    assert [tasks.count(f"task_{t:05d}") for t in range(3)] == [3, 1, 6]
    assert int(task_sizes(10, 3).sum()) == 10
