"""The partitioned greedy (GreeDi) and its building blocks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smart_spark.core import hashing
from smart_spark.core.greedy import greedy_select, objective
from smart_spark.core.partitioned import (
    assign_partitions,
    interleave,
    num_partitions,
    part_budgets,
    partition_keys,
    partitioned_greedy_select,
)
from smart_spark.core.stage2_plan import Finish, Method, Round, Source, plan_group, plan_stage2, plan_sweep
from smart_spark.errors import SmartError


def _clustered(n: int, d: int = 16, clusters: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d))
    return (centres[rng.integers(0, clusters, n)] + 0.6 * rng.standard_normal((n, d))).astype(np.float32)


@pytest.mark.parametrize("fn", ["fl", "gc", "logdet"])
def test_small_groups_are_exactly_the_greedy(fn: str) -> None:
    X = _clustered(120, seed=1)
    order, gains = partitioned_greedy_select(X, fn, 40, partition_size=120)
    ref_order, ref_gains = greedy_select(X, fn, 40)
    assert order.tolist() == ref_order.tolist()
    np.testing.assert_array_equal(gains, ref_gains)
    # with ids, the greedy runs on the id-sorted rows and positions map back to the caller's rows
    ids = np.random.default_rng(2).permutation(1000)[:120]
    by_id = np.argsort(ids)
    order, gains = partitioned_greedy_select(X, fn, 40, partition_size=500, ids=ids)
    sorted_order, sorted_gains = greedy_select(X[by_id], fn, 40)
    assert order.tolist() == by_id[sorted_order].tolist()
    np.testing.assert_array_equal(gains, sorted_gains)


@pytest.mark.parametrize(
    "fn,budget,P",
    [("fl", 30, 100), ("gc", 45, 100), ("logdet", 20, 100), ("fl", 40, 80),  # regime A (last: 3 rounds)
     ("fl", 80, 100), ("gc", 80, 100), ("fl", 150, 100), ("logdet", 130, 100)],  # regime B
)
def test_permutation_invariance_and_unique_picks(fn: str, budget: int, P: int) -> None:
    n = 300
    X = _clustered(n, seed=3)
    ids = [f"row-{i:04d}" for i in np.random.default_rng(4).permutation(n)]
    order, gains = partitioned_greedy_select(X, fn, budget, partition_size=P, ids=ids, seed=7)
    assert order.dtype == np.int64 and gains.dtype == np.float64
    assert len(order) == len(gains) == budget == len(set(order.tolist()))
    assert np.isfinite(gains).all()
    perm = np.random.default_rng(5).permutation(n)
    order2, gains2 = partitioned_greedy_select(X[perm], fn, budget, partition_size=P,
                                               ids=[ids[p] for p in perm], seed=7)
    assert [ids[i] for i in order] == [ids[perm[i]] for i in order2]
    np.testing.assert_array_equal(gains, gains2)
    other_seed, _ = partitioned_greedy_select(X, fn, budget, partition_size=P, ids=ids, seed=8)
    assert len(set(other_seed.tolist())) == budget


def test_regime_b_above_p_interleaves_by_gain() -> None:
    X = _clustered(250, seed=6)
    order, gains = partitioned_greedy_select(X, "fl", 120, partition_size=100)  # k = 3, b > P
    assert len(set(order.tolist())) == 120
    assert (np.diff(gains) <= 0).all()


def test_integer_ids_sort_numerically() -> None:
    X = _clustered(50, seed=9)
    ids = np.arange(50)[::-1] * 10  # 490, 480, ..., 0: numeric order is the reverse of the rows
    order, _ = partitioned_greedy_select(X, "logdet", 3, partition_size=50, ids=ids)
    assert order[0] == 49  # all first LogDet gains tie: the smallest id (0, the last row) wins


def test_quality_against_exact_greedy_on_clustered_data() -> None:
    X = _clustered(3000, d=24, clusters=40, seed=10)
    for budget, P in ((300, 500), (100, 1000)):  # regime B (b > P // 2), regime A
        exact = objective(X, "fl", greedy_select(X, "fl", budget)[0])
        order, _ = partitioned_greedy_select(X, "fl", budget, partition_size=P)
        assert objective(X, "fl", order) >= 0.98 * exact


def test_num_partitions() -> None:
    assert [num_partitions(n, 10) for n in (0, 1, 10, 11, 20, 21)] == [0, 1, 1, 2, 2, 3]


@settings(max_examples=50, deadline=None)
@given(n=st.integers(0, 300), k=st.integers(1, 12), seed=st.integers(0, 1000))
def test_assign_partitions_sizes_and_hash_order(n: int, k: int, seed: int) -> None:
    ids = [f"id{i}" for i in range(n)]
    part = assign_partitions(partition_keys(ids, seed), ids, k)
    assert part.dtype == np.int64 and part.shape == (n,)
    sizes = np.bincount(part, minlength=k)
    assert sizes.max() - sizes.min() <= 1
    assert (sizes[:-1] >= sizes[1:]).all()  # the first n % k partitions are the larger ones
    rank = np.empty(n, dtype=np.int64)
    rank[hashing.hash_order(ids, seed, hashing.PARTITION_SALT)] = np.arange(n)
    np.testing.assert_array_equal(part, rank % k)


def test_partition_sizes_fit_p() -> None:
    for n, P in [(1001, 100), (20001, 20000), (59, 7)]:
        ids = list(range(n))
        sizes = np.bincount(assign_partitions(partition_keys(ids, 23), ids, num_partitions(n, P)))
        assert sizes.max() <= P and sizes.max() - sizes.min() <= 1


def _part_budgets_by_units(sizes: list[int], budget: int) -> list[int]:
    n = sum(sizes)
    out = [budget * s // n for s in sizes] if n else [0] * len(sizes)
    left = budget - sum(out)
    p = 0
    while left > 0:
        if out[p] < sizes[p]:
            out[p] += 1
            left -= 1
        p = (p + 1) % len(sizes)
    return out


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(0, 50), min_size=1, max_size=12), frac=st.floats(0, 1))
def test_part_budgets_sum_and_bounds(sizes: list[int], frac: float) -> None:
    budget = int(round(frac * sum(sizes)))
    out = part_budgets(sizes, budget)
    assert out.dtype == np.int64
    assert int(out.sum()) == budget
    assert (out >= 0).all() and (out <= np.array(sizes)).all()
    assert out.tolist() == _part_budgets_by_units(sizes, budget)


def test_part_budgets_example_and_errors() -> None:
    assert part_budgets([4, 4, 3], 5).tolist() == [2, 2, 1]  # floors 1, 1, 1; +1 to parts 0 and 1
    with pytest.raises(SmartError, match=r"^budget 7 is outside 0\.\.6 \(the rows in all partitions\)$"):
        part_budgets([3, 3], 7)


def test_interleave_orders_by_gain_then_part_then_rank() -> None:
    part, rank = interleave([np.array([5.0, 2.0, 2.0]), np.array([5.0, 3.0]), np.array([])])
    assert list(zip(part.tolist(), rank.tolist(), strict=True)) == [(0, 0), (1, 0), (1, 1), (0, 1), (0, 2)]
    part, rank = interleave([])
    assert part.size == rank.size == 0


def test_input_errors() -> None:
    X = _clustered(20, seed=0)
    with pytest.raises(SmartError, match="partition_size"):
        partitioned_greedy_select(X, "fl", 3, partition_size=1)
    with pytest.raises(SmartError, match="'b' appears more than once"):
        ids = ["a", "b", "b"] + [f"x{i}" for i in range(17)]
        partitioned_greedy_select(X, "fl", 3, partition_size=10, ids=ids)
    with pytest.raises(SmartError, match="20 values"):
        partitioned_greedy_select(X, "fl", 3, partition_size=10, ids=list(range(19)))
    with pytest.raises(SmartError, match="budget"):
        partitioned_greedy_select(X, "fl", 21, partition_size=10)
    with pytest.raises(SmartError, match="unknown set function"):
        partitioned_greedy_select(X, "xx", 2, partition_size=10)
    X[13, 2] = np.nan
    with pytest.raises(SmartError, match="row 13"):
        partitioned_greedy_select(X, "fl", 2, partition_size=10)


def test_plan_methods_rounds_and_finishes() -> None:
    P = 100
    assert plan_group(30, 30, partition_size=P).method is Method.WHOLE
    assert plan_group(30, 30, partition_size=P, whole=False).method is Method.EXACT
    assert plan_group(500, 10, partition_size=P, fn="random").method is Method.RANDOM
    assert plan_group(100, 10, partition_size=P).method is Method.EXACT
    shares = plan_group(250, 80, partition_size=P)  # k = 3, b > P // 2
    assert (shares.method, shares.finish) == (Method.SHARES, Finish.REORDER)
    assert shares.rounds == (Round(250, 3, (27, 27, 26)),) and shares.rounds[0].sizes == (84, 83, 83)
    assert plan_group(250, 120, partition_size=P).finish is Finish.INTERLEAVE
    rounds = plan_group(1000, 25, partition_size=P)  # 10 x 25 = 250 > P, then 3 x 25 = 75 <= P
    assert (rounds.method, rounds.finish) == (Method.ROUNDS, Finish.MERGE)
    assert [(r.candidates, r.partitions, r.union) for r in rounds.rounds] == [(1000, 10, 250), (250, 3, 75)]
    with pytest.raises(SmartError, match="budget 31 is outside 0..30"):
        plan_group(30, 31, partition_size=P)


def test_stage2_plan_orders_groups_and_packs_exact_ones_into_buckets() -> None:
    sizes = {("b", "x"): 3000, ("a", None): 2000, ("a", "y"): 2500, ("c", None): 5000, ("d", None): 40}
    budgets = {("b", "x"): 10, ("a", None): 5, ("a", "y"): 2500, ("c", None): 7, ("d", None): 0}
    plan = plan_stage2(budgets, sizes, fn="fl", partition_size=6000, seed=1, bucket_rows=4096)
    assert [(g.index, g.task, g.stratum) for g in plan.groups] == [(0, "a", None), (1, "a", "y"),
                                                                   (2, "b", "x"), (3, "c", None)]
    assert [g.method for g in plan.groups] == [Method.EXACT, Method.WHOLE, Method.EXACT, Method.EXACT]
    assert [g.bucket for g in plan.groups] == [0, None, 1, 2]  # 2000 + 3000 > 4096; 5000 alone
    assert plan.group(2) is plan.groups[2] and plan.only(Method.WHOLE).group(1).budget == 2500
    assert plan.kernel_entries == 2000**2 + 3000**2 + 5000**2  # the whole group: no greedy


def test_kernel_entries_count_every_greedy_of_a_plan() -> None:
    """Partitions' rows squared per round, then the union's (MERGE, REORDER); INTERLEAVE merges none."""
    budgets = {("r", None): 25, ("s", None): 80, ("i", None): 120, ("e", None): 10, ("w", None): 50}
    sizes = {("r", None): 1000, ("s", None): 250, ("i", None): 250, ("e", None): 100, ("w", None): 50}
    plan = plan_stage2(budgets, sizes, fn="fl", partition_size=100, seed=1)
    rounds = 10 * 100**2 + (84**2 + 83**2 + 83**2) + 75**2  # 1000 -> 10 x 100 -> 250 -> 3 parts -> 75
    shares = (84**2 + 83**2 + 83**2) + 80**2
    interleave = 84**2 + 83**2 + 83**2
    assert plan.kernel_entries == rounds + shares + interleave + 100**2
    assert plan_stage2(budgets, sizes, fn="random", partition_size=100, seed=1).kernel_entries == 0


@pytest.mark.parametrize("n,budget,P", [(1000, 25, 100), (300, 40, 80), (777, 400, 90), (250, 80, 100)])
def test_planned_partition_sizes_are_the_hash_partitions(n: int, budget: int, P: int) -> None:
    """The plan's partition sizes (from counts) are those :func:`assign_partitions` makes (from ids)."""
    plan = plan_group(n, budget, partition_size=P)
    ids = np.array([f"id-{i}" for i in range(n)])
    part = assign_partitions(partition_keys(ids, 5), ids, plan.rounds[0].partitions)
    assert tuple(np.bincount(part).tolist()) == plan.rounds[0].sizes


def test_sweep_plan_shares_prefixes_and_selects_large_groups_apart() -> None:
    sizes = {("a", None): 50, ("b", None): 500, ("c", None): 500, ("d", None): 30}
    budgets = [{("a", None): 10, ("b", None): 20, ("c", None): 40, ("d", None): 30},
               {("a", None): 50, ("b", None): 60, ("c", None): 40, ("d", None): 0}]
    sweep = plan_sweep(budgets, sizes, fn="fl", partition_size=100)
    # a: 10 is a prefix of the shared selection, 50 takes it whole; b (> P, two partial budgets): apart;
    # c: one budget, shared; d: whole in the first mixture only.
    assert sweep.shared == {("a", None): 10, ("c", None): 40}
    assert sweep.whole == {("a", None): 50, ("d", None): 30}
    assert sweep.mixtures[0] == ((("a", None), 10, Source.SHARED), (("b", None), 20, Source.APART),
                                 (("c", None), 40, Source.SHARED), (("d", None), 30, Source.WHOLE))
    assert [sweep.apart(m) for m in (0, 1)] == [{("b", None): 20}, {("b", None): 60}]
    assert plan_sweep(budgets, sizes, fn="random", partition_size=100).shared[("b", None)] == 60
