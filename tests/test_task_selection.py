"""Stage-1 task selection: hand-computed picks, seeded random picks, independence of row order."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smart_spark.core.task_selection import select_tasks
from smart_spark.errors import SmartError


def test_fl_by_hand_ties_go_to_the_smallest_name() -> None:
    # Sorted by name: t0 = e1 (row 2), t1 = e2 (row 1), t2 = e1 (row 0).
    # First FL gains: t0 covers t0, t2 -> 2; t1 -> 1; t2 -> 2. The tie goes to t0 (row 2).
    # Then t1 adds 1, t2 adds 0; last t2 with 0.
    means = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    order, gains = select_tasks(means, "fl", None, names=["t2", "t1", "t0"])
    assert order.tolist() == [2, 1, 0]
    np.testing.assert_allclose(gains, [2.0, 1.0, 0.0], atol=1e-6)
    assert order.dtype == np.int64 and gains.dtype == np.float64


def test_identical_tasks_come_in_name_order() -> None:
    means = np.ones((4, 3), dtype=np.float32)
    names = ["d", "b", "a", "c"]
    for fn in ("gc", "fl", "logdet"):
        order, _ = select_tasks(means, fn, 4, names=names)
        assert [names[i] for i in order] == ["a", "b", "c", "d"], fn


def test_scale_of_a_mean_does_not_matter() -> None:
    # Rows are normalised inside: scaling one task's mean changes nothing.
    rng = np.random.default_rng(0)
    means = rng.normal(size=(8, 5)).astype(np.float32)
    names = [f"task{i}" for i in range(8)]
    scaled = means.copy()
    scaled[3] *= 7.0
    for fn in ("gc", "fl", "logdet"):
        a = select_tasks(means, fn, 5, names=names)
        b = select_tasks(scaled, fn, 5, names=names)
        assert a[0].tolist() == b[0].tolist()
        np.testing.assert_allclose(a[1], b[1], rtol=1e-5, atol=1e-5)


def hashed(names: list[str], seed: int) -> list[str]:
    """Expected random order: by hex SHA-256 of "seed:random:name" (the Spark side's sha2)."""
    return sorted(names, key=lambda n: (hashlib.sha256(f"{seed}:random:{n}".encode()).hexdigest(), n))


def test_random_is_the_seeded_hash_order() -> None:
    names = [f"task{i}" for i in range(12)]
    means = np.zeros((12, 4))  # ignored (even all-zero means are fine for random)
    order, gains = select_tasks(means, "random", 5, names=names, seed=7)
    assert [names[i] for i in order] == hashed(names, 7)[:5]
    assert gains.tolist() == [1.0] * 5 and gains.dtype == np.float64
    again, _ = select_tasks(means, "random", 5, names=names, seed=7)
    assert again.tolist() == order.tolist()
    for seed in range(5):  # every seed gives its own hash order (five different ones)
        assert [names[i] for i in select_tasks(means, "random", 5, names=names, seed=seed)[0]] == \
            hashed(names, seed)[:5]
    assert len({tuple(hashed(names, seed)[:5]) for seed in range(5)}) == 5


@settings(max_examples=40, deadline=None)
@given(
    st.integers(2, 12),
    st.integers(0, 2**32 - 1),
    st.sampled_from(["gc", "fl", "logdet", "random"]),
    st.integers(0, 1000),
)
def test_independent_of_row_order(m: int, data_seed: int, fn: str, seed: int) -> None:
    rng = np.random.default_rng(data_seed)
    means = rng.normal(size=(m, 6)).astype(np.float32)
    names = [f"t{v}" for v in rng.choice(10_000, size=m, replace=False)]
    k = int(rng.integers(1, m + 1))
    order, gains = select_tasks(means, fn, k, names=names, seed=seed)
    perm = rng.permutation(m)
    p_order, p_gains = select_tasks(means[perm], fn, k, names=[names[i] for i in perm], seed=seed)
    assert [names[i] for i in order] == [names[perm[i]] for i in p_order]
    assert gains.tolist() == p_gains.tolist()  # the greedy sees the same name-sorted matrix
    assert len(set(order.tolist())) == k


def test_errors() -> None:
    means = np.eye(3, dtype=np.float32)
    names = ["a", "b", "c"]
    with pytest.raises(SmartError) as err:
        select_tasks(means, "gc", 4, names=names)
    assert str(err.value) == "num_tasks must be between 1 and the 3 tasks in the input, got 4"
    with pytest.raises(SmartError) as err:
        select_tasks(means, "random", 0, names=names)
    assert str(err.value) == "num_tasks must be between 1 and the 3 tasks in the input, got 0"
    with pytest.raises(SmartError, match="task_fn must be one of"):
        select_tasks(means, "kmeans", 2, names=names)
    zero = means.copy()
    zero[1] = 0
    with pytest.raises(SmartError, match="'b'"):
        select_tasks(zero, "fl", 2, names=names)
    nan = means.copy()
    nan[2, 0] = np.nan
    with pytest.raises(SmartError, match="'c'"):
        select_tasks(nan, "gc", 2, names=names)
    with pytest.raises(SmartError, match="repeated: 'a'"):
        select_tasks(means, "gc", 2, names=["a", "b", "a"])
    with pytest.raises(SmartError, match="3 task means but 2"):
        select_tasks(means, "gc", 2, names=["a", "b"])
    with pytest.raises(SmartError, match="2-D"):
        select_tasks(means[0], "gc", 1, names=["a"])
