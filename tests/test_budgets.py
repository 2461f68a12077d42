"""Stage-1 weights and integer budgets: hand-computed cases and properties."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smart_spark.core.budgets import cap_budgets, mixture_budgets, split_floor_cycle, taylor_softmax
from smart_spark.errors import SmartError


def literal_cap(budgets: list[int], sizes: list[int]) -> list[int]:
    """The unit-at-a-time loop of docs/algorithm.md (stage 1, step 6): each pass restarts at task 0."""
    b = list(budgets)
    excess = 0
    for k, n in enumerate(sizes):
        if b[k] > n:
            excess += b[k] - n
            b[k] = n
    while excess > 0:
        for k, n in enumerate(sizes):
            if b[k] < n:
                b[k] += 1
                excess -= 1
                if excess == 0:
                    break
    return b


# ---------------------------------------------------------------- taylor_softmax


def test_taylor_softmax_by_hand() -> None:
    # 1 + g + g^2/2 for g = 0, 1, 2 is 1, 2.5, 5; the sum is 8.5.
    np.testing.assert_allclose(taylor_softmax([0.0, 1.0, 2.0]), [1 / 8.5, 2.5 / 8.5, 5 / 8.5], rtol=1e-15)
    # T = 2 halves the gains: x = 1, 0 -> 2.5, 1.
    np.testing.assert_allclose(taylor_softmax([2.0, 0.0], temperature=2.0), [2.5 / 3.5, 1 / 3.5])
    # A negative gain still has a positive term: 1 - 1 + 1/2 = 0.5.
    np.testing.assert_allclose(taylor_softmax([-1.0, 0.0]), [0.5 / 1.5, 1 / 1.5])
    out = taylor_softmax([3.0])
    assert out.dtype == np.float64 and out.tolist() == [1.0]
    assert taylor_softmax([]).shape == (0,)


@pytest.mark.parametrize("temperature", [0, -1.0, float("nan"), float("inf")])
def test_taylor_softmax_rejects_bad_temperature(temperature: float) -> None:
    with pytest.raises(SmartError, match="temperature"):
        taylor_softmax([1.0, 2.0], temperature=temperature)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_taylor_softmax_rejects_non_finite_gains(bad: float) -> None:
    with pytest.raises(SmartError, match="finite"):
        taylor_softmax([1.0, bad])


@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=50),
    st.floats(0.01, 100.0),
)
def test_taylor_softmax_is_a_distribution(gains: list[float], temperature: float) -> None:
    p = taylor_softmax(gains, temperature)
    assert p.shape == (len(gains),)
    assert np.all(p > 0)
    assert abs(p.sum() - 1.0) < 1e-12


# ---------------------------------------------------------------- split_floor_cycle


def test_split_floor_cycle_by_hand() -> None:
    # 10 over 3 equal weights: floors 3, 3, 3; the 1 left goes to the first.
    assert split_floor_cycle(10, [1, 1, 1]).tolist() == [4, 3, 3]
    # 7 * (.5, .3, .2) = 3.5, 2.1, 1.4 -> 3, 2, 1; the 1 left goes to the first.
    assert split_floor_cycle(7, [0.5, 0.3, 0.2]).tolist() == [4, 2, 1]
    # Integer weights, exact: 4 * (0, 2, 1) / 3 -> 0, 2, 1; the 1 left skips the zero weight.
    assert split_floor_cycle(4, [0, 2, 1]).tolist() == [0, 3, 1]
    # Nothing to split.
    assert split_floor_cycle(0, [0, 0]).tolist() == [0, 0]
    out = split_floor_cycle(5, np.array([2.0, 1.0]))
    assert out.dtype == np.int64 and out.tolist() == [4, 1]  # 3.33 -> 3, 1.67 -> 1, +1 to the first


def test_split_floor_cycle_big_integers_are_exact() -> None:
    # Object arrays of Python ints do not overflow int64: 10^30 and 3 * 10^30 split 8 as 2, 6.
    w = np.array([10**30, 3 * 10**30], dtype=object)
    assert split_floor_cycle(8, w).tolist() == [2, 6]


def test_split_floor_cycle_errors() -> None:
    with pytest.raises(SmartError, match="all 2 weights are 0"):
        split_floor_cycle(3, [0, 0])
    with pytest.raises(SmartError, match=">= 0"):
        split_floor_cycle(3, [1, -1])
    with pytest.raises(SmartError, match=">= 0"):
        split_floor_cycle(-1, [1.0])
    with pytest.raises(SmartError, match="finite"):
        split_floor_cycle(3, [1.0, float("nan")])


def exact_split(total: int, weights: list[int]) -> list[int]:
    """Reference: exact rational floors, then one each over the positive weights in order."""
    wsum = sum(weights)
    out = [int(Fraction(total * w, wsum)) for w in weights]
    pos = [k for k, w in enumerate(weights) if w > 0]
    i = 0
    while sum(out) < total:
        out[pos[i % len(pos)]] += 1
        i += 1
    return out


@given(st.integers(0, 10**7), st.lists(st.integers(0, 10**6), min_size=1, max_size=40))
def test_split_floor_cycle_integer_weights_match_exact_reference(total: int, weights: list[int]) -> None:
    if sum(weights) == 0:
        weights = [*weights[:-1], 1]
    assert split_floor_cycle(total, weights).tolist() == exact_split(total, weights)


@given(
    st.integers(0, 10**8),
    st.lists(st.floats(0.0, 1e6, allow_nan=False, allow_subnormal=False), min_size=1, max_size=40),
)
def test_split_floor_cycle_float_weights_sum_and_closeness(total: int, weights: list[float]) -> None:
    w = np.array(weights, dtype=np.float64)
    if w.sum() == 0:
        w[-1] = 1.0
    b = split_floor_cycle(total, w)
    assert int(b.sum()) == total
    assert np.all(b >= 0)
    assert np.all(b[w == 0] == 0)
    q = total * w / w.sum()
    assert np.all(b <= q + 1 + 1e-6 * (1 + q))
    assert np.all(b >= q - 1 - 1e-6 * (1 + q))


def test_split_floor_cycle_softmax_weights_reach_total() -> None:
    # Normalised float weights whose floors sit right at integer boundaries.
    w = taylor_softmax(np.zeros(10))  # ten times 0.1 (in float)
    assert split_floor_cycle(10, w).tolist() == [1] * 10
    w = taylor_softmax(np.zeros(3))
    assert split_floor_cycle(30, w).tolist() == [10, 10, 10]


# ---------------------------------------------------------------- cap_budgets


def test_cap_budgets_by_hand() -> None:
    # Capped: 4, 5, 1, 0 with 6 excess; room 0, 1, 4, 5.
    # Pass 1 gives tasks 1, 2, 3 one each (3 left), pass 2 tasks 2, 3 (1 left), pass 3 task 2.
    assert cap_budgets([10, 5, 1, 0], [4, 6, 5, 5]).tolist() == [4, 6, 4, 2]
    assert literal_cap([10, 5, 1, 0], [4, 6, 5, 5]) == [4, 6, 4, 2]
    # No excess: unchanged.
    assert cap_budgets([1, 2, 3], [1, 2, 3]).tolist() == [1, 2, 3]
    # Excess equal to all the room left: everything fills up.
    assert cap_budgets([9, 0, 0], [3, 2, 4]).tolist() == [3, 2, 4]
    # 5 excess over room 0, 3, 3: passes give 1+1, 1+1, then the last partial pass only the first.
    assert cap_budgets([5, 0, 0], [0, 3, 3]).tolist() == [0, 3, 2] == literal_cap([5, 0, 0], [0, 3, 3])
    # Tasks already at their size are skipped: room 0, 1, 0, 4 and 4 excess -> 1 + 1, then 2 to the last.
    assert cap_budgets([6, 2, 1, 0], [2, 3, 1, 4]).tolist() == [2, 3, 1, 3]
    assert cap_budgets([], []).tolist() == []


def test_cap_budgets_errors_name_both_totals() -> None:
    with pytest.raises(SmartError) as err:
        cap_budgets([5, 5], [3, 4])
    assert str(err.value) == "the sizes hold 7 instances in total, fewer than the budgets' total 10"
    with pytest.raises(SmartError, match="differ in length"):
        cap_budgets([1, 2], [3])
    with pytest.raises(SmartError, match=">= 0"):
        cap_budgets([-1, 2], [3, 3])


@st.composite
def budgets_and_sizes(draw: st.DrawFn, scales: tuple[int, ...] = (3, 20, 500)) -> tuple[list[int], list[int]]:
    """Budgets (some above their sizes) and sizes with sum(budgets) <= sum(sizes)."""
    m = draw(st.integers(1, 30))
    big = draw(st.sampled_from(scales))
    sizes = draw(st.lists(st.integers(0, big), min_size=m, max_size=m))
    budgets = draw(st.lists(st.integers(0, 3 * big), min_size=m, max_size=m))
    # Shrink budgets until they fit in total, keeping their shape.
    while sum(budgets) > sum(sizes):
        k = max(range(m), key=budgets.__getitem__)
        budgets[k] -= max(1, (sum(budgets) - sum(sizes)) // 2)
        budgets[k] = max(budgets[k], 0)
    return budgets, sizes


@settings(max_examples=300)
@given(budgets_and_sizes())
def test_cap_budgets_equals_literal_loop(case: tuple[list[int], list[int]]) -> None:
    budgets, sizes = case  # the loop costs passes x tasks, so sizes stay small here
    out = cap_budgets(budgets, sizes)
    assert out.tolist() == literal_cap(budgets, sizes)
    assert int(out.sum()) == sum(budgets)
    assert np.all(out <= np.array(sizes))


@given(budgets_and_sizes(scales=(10**6, 10**9)))
def test_cap_budgets_sum_and_bounds_at_scale(case: tuple[list[int], list[int]]) -> None:
    budgets, sizes = case
    out = cap_budgets(budgets, sizes)
    assert int(out.sum()) == sum(budgets)
    assert np.all(out <= np.array(sizes)) and np.all(out >= 0)
    # Uncapped tasks never lose budget.
    assert np.all(out >= np.minimum(budgets, sizes))


# ---------------------------------------------------------------- mixture_budgets


def test_mixture_budgets_by_hand() -> None:
    # Terms 1 + g + g^2/2: 5, 1, 1 -> weights 5/7, 1/7, 1/7.
    # 10 * w = 7.14, 1.43, 1.43 -> 7, 1, 1 and 1 more to the first: 8, 1, 1.
    # Cap at 5: 3 excess; pass 1 gives tasks 1 and 2 one each, pass 2 task 1: 5, 3, 2.
    weights, initial, final = mixture_budgets([2.0, 0.0, 0.0], [5, 10, 10], 10)
    np.testing.assert_allclose(weights, [5 / 7, 1 / 7, 1 / 7])
    assert initial.tolist() == [8, 1, 1]
    assert final.tolist() == [5, 3, 2]
    assert weights.dtype == np.float64 and initial.dtype == np.int64 and final.dtype == np.int64


def test_mixture_budgets_temperature() -> None:
    # T = 2: x = 1, 0 -> 2.5, 1 -> 10 * (5/7, 2/7) = 7.14, 2.86 -> 7, 2, +1 to the first.
    _, initial, final = mixture_budgets([2.0, 0.0], [100, 100], 10, temperature=2.0)
    assert initial.tolist() == [8, 2] == final.tolist()


def test_mixture_budgets_too_few_instances_names_both_numbers() -> None:
    with pytest.raises(SmartError) as err:
        mixture_budgets([1.0, 0.5], [3, 4], 10)
    assert str(err.value) == "the 2 picked tasks hold 7 instances, fewer than num_instances 10"


def test_mixture_budgets_errors() -> None:
    with pytest.raises(SmartError, match="> 0"):
        mixture_budgets([1.0], [3], 0)
    with pytest.raises(SmartError, match=">= 0"):
        mixture_budgets([1.0], [3], -5)
    with pytest.raises(SmartError, match="differ in length"):
        mixture_budgets([1.0, 2.0], [3], 2)
    with pytest.raises(SmartError, match="0 tasks"):
        mixture_budgets([], [], 2)
    with pytest.raises(SmartError, match="temperature"):
        mixture_budgets([1.0], [3], 2, temperature=0.0)


@st.composite
def stage1_case(draw: st.DrawFn) -> tuple[list[float], list[int], int]:
    m = draw(st.integers(1, 40))
    gains = draw(st.lists(st.floats(-50, 2000, allow_nan=False), min_size=m, max_size=m))
    sizes = draw(st.lists(st.integers(1, 10**5), min_size=m, max_size=m))
    n = draw(st.integers(1, sum(sizes)))
    return gains, sizes, n


@given(stage1_case())
def test_mixture_budgets_properties(case: tuple[list[float], list[int], int]) -> None:
    gains, sizes, n = case
    weights, initial, final = mixture_budgets(gains, sizes, n)
    assert abs(weights.sum() - 1) < 1e-12
    assert int(initial.sum()) == n and int(final.sum()) == n
    assert np.all(final <= np.array(sizes)) and np.all(final >= 0)
    assert final.tolist() == literal_cap(initial.tolist(), sizes)
