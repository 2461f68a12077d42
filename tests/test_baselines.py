"""Baseline budgets (EPM, EM, fixed group weights): hand-computed cases and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smart_spark.core.baselines import em_budgets, epm_budgets, fixed_group_budgets
from smart_spark.errors import SmartError

FLAN_WEIGHTS = {"flan2021": 0.4, "t0": 0.32, "niv2": 0.2, "cot": 0.05, "dialog": 0.03}


def test_epm_by_hand() -> None:
    assert epm_budgets([50, 30, 20], 10).tolist() == [5, 3, 2]
    # K = 25: weights 25, 25, 20 of 70 -> 3.57, 3.57, 2.86 -> 3, 3, 2 and 2 left -> 4, 4, 2.
    assert epm_budgets([50, 30, 20], 10, cap=25).tolist() == [4, 4, 2]
    # 6 * (100, 2, 1) / 103 = 5.83, 0.12, 0.06 -> 5, 0, 0 and 1 left to the first.
    out = epm_budgets([100, 2, 1], 6)
    assert out.dtype == np.int64 and out.tolist() == [6, 0, 0]
    # K = 1 makes it equal mixing before the true-size cap: 3 each, then 1 and 2 over go to task 0.
    assert epm_budgets([100, 2, 1], 9, cap=1).tolist() == [6, 2, 1]


def test_em_by_hand() -> None:
    # 9 / 3 = 3 each; tasks 1 and 2 hold 2 and 1, so 3 units go back to task 0.
    assert em_budgets([100, 2, 1], 9).tolist() == [6, 2, 1]
    # 10 / 3 -> 3, 3, 3 and 1 to the first.
    assert em_budgets([10, 10, 10], 10).tolist() == [4, 3, 3]


def test_fixed_group_by_hand() -> None:
    sizes = dict.fromkeys(FLAN_WEIGHTS, 1000)
    assert fixed_group_budgets(sizes, FLAN_WEIGHTS, 1000) == {
        "flan2021": 400,
        "t0": 320,
        "niv2": 200,
        "cot": 50,
        "dialog": 30,
    }
    # cot holds 10: its 40 extra go out 1 per pass over flan2021, t0, niv2, dialog -> 10 each.
    sizes["cot"] = 10
    assert fixed_group_budgets(sizes, FLAN_WEIGHTS, 1000) == {
        "flan2021": 410,
        "t0": 330,
        "niv2": 210,
        "cot": 10,
        "dialog": 40,
    }
    # Integer percentages give the same split.
    pct = {"flan2021": 40, "t0": 32, "niv2": 20, "cot": 5, "dialog": 3}
    assert fixed_group_budgets(sizes, pct, 1000) == fixed_group_budgets(sizes, FLAN_WEIGHTS, 1000)


def test_fixed_group_weights_are_taken_at_their_decimal_value() -> None:
    # 10 * (0.1, 0.2, 0.3) / 0.6 = 1.67, 3.33, 5 exactly -> 1, 3, 5 and 1 left to x: 2, 3, 5.
    # (Plain float64 puts 0.3's share at 4.999... and would give 2, 4, 4.)
    sizes = {"x": 100, "y": 100, "z": 100}
    assert fixed_group_budgets(sizes, {"x": 0.1, "y": 0.2, "z": 0.3}, 10) == {"x": 2, "y": 3, "z": 5}


def test_errors() -> None:
    with pytest.raises(SmartError) as err:
        em_budgets([3, 4], 10)
    assert str(err.value) == "the 2 tasks hold 7 instances, fewer than num_instances 10"
    with pytest.raises(SmartError) as err:
        epm_budgets([3, 4], 8, cap=2)
    assert str(err.value) == "the 2 tasks hold 7 instances, fewer than num_instances 8"
    with pytest.raises(SmartError, match="cap K"):
        epm_budgets([3, 4], 2, cap=0)
    with pytest.raises(SmartError, match="> 0"):
        em_budgets([3, 4], 0)
    with pytest.raises(SmartError, match="no tasks"):
        em_budgets([], 1)
    with pytest.raises(SmartError) as err:
        fixed_group_budgets({"a": 5, "b": 5}, {"a": 1.0, "c": 1.0}, 2)
    assert str(err.value) == "weights name groups not in the data: 'c'; groups without a weight: 'b'"
    with pytest.raises(SmartError, match=">= 0"):
        fixed_group_budgets({"a": 5, "b": 5}, {"a": 1.0, "b": -1.0}, 2)
    with pytest.raises(SmartError, match="all 2 weights are 0"):
        fixed_group_budgets({"a": 5, "b": 5}, {"a": 0, "b": 0.0}, 2)
    with pytest.raises(SmartError) as err:
        fixed_group_budgets({"a": 5, "b": 5}, {"a": 1, "b": 1}, 11)
    assert str(err.value) == "the 2 groups hold 10 instances, fewer than num_instances 11"


@st.composite
def sizes_and_total(draw: st.DrawFn) -> tuple[list[int], int]:
    sizes = draw(st.lists(st.integers(1, 10**6), min_size=1, max_size=50))
    return sizes, draw(st.integers(1, sum(sizes)))


@given(sizes_and_total(), st.one_of(st.none(), st.integers(1, 10**6)))
def test_epm_and_em_sum_and_bounds(case: tuple[list[int], int], cap: int | None) -> None:
    sizes, total = case
    for out in (epm_budgets(sizes, total, cap=cap), em_budgets(sizes, total)):
        assert int(out.sum()) == total
        assert np.all(out >= 0) and np.all(out <= np.array(sizes))


@given(sizes_and_total(), st.data())
def test_fixed_group_sum_and_bounds(case: tuple[list[int], int], data: st.DataObject) -> None:
    sizes, total = case
    names = [f"g{i}" for i in range(len(sizes))]
    weights = data.draw(st.lists(st.floats(0.001, 100.0), min_size=len(sizes), max_size=len(sizes)))
    groups = dict(zip(names, sizes, strict=True))
    out = fixed_group_budgets(groups, dict(zip(names, weights, strict=True)), total)
    assert list(out) == names
    assert sum(out.values()) == total
    assert all(0 <= out[g] <= n for g, n in zip(names, sizes, strict=True))
