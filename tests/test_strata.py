"""Splitting a task's budget over its strata: hand-computed cases and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smart_spark.core.strata import FLAN_HIERARCHY, split_strata
from smart_spark.errors import SmartError

FLAN_COUNTS = {"zs_opt": 10, "zs_noopt": 30, "fs_opt": 20, "fs_noopt": 40}


def test_proportional_flat_by_hand() -> None:
    # Sorted order a, b, c: 5 * (6, 3, 1) / 10 = 3, 1.5, 0.5 -> 3, 1, 0; the 1 left goes to a.
    assert split_strata(5, {"b": 3, "a": 6, "c": 1}) == {"a": 4, "b": 1, "c": 0}
    # The whole task: every stratum in full.
    assert split_strata(10, {"b": 3, "a": 6, "c": 1}) == {"a": 6, "b": 3, "c": 1}
    # An empty stratum gets 0 and takes no part in the cycling: the 1 left goes to b, not a.
    assert split_strata(1, {"a": 0, "b": 1, "c": 1}) == {"a": 0, "b": 1, "c": 0}
    assert split_strata(0, {"a": 2}) == {"a": 0}
    assert split_strata(0, {}) == {}


def test_equal_by_hand() -> None:
    # 9 over three: 3, 3, 3; a holds 1, so 2 go back out: b and c one each.
    assert split_strata(9, {"a": 1, "b": 10, "c": 10}, "equal") == {"a": 1, "b": 4, "c": 4}
    # The empty stratum is not a share: 3 over b, c -> 1, 1, +1 to b.
    assert split_strata(3, {"a": 0, "b": 5, "c": 5}, "equal") == {"a": 0, "b": 2, "c": 1}


def test_flan_by_hand() -> None:
    # zs 40 vs fs 60: 10 -> 4, 6; zs 4 over (10, 30) -> 1, 3; fs 6 over (20, 40) -> 2, 4.
    assert split_strata(10, FLAN_COUNTS, "flan") == {"zs_opt": 1, "zs_noopt": 3, "fs_opt": 2, "fs_noopt": 4}
    # 7 -> 2.8, 4.2 -> 2, 4 and +1 to zs (first): 3, 4.
    # zs 3 over (10, 30) -> 0.75, 2.25 -> 0, 2, +1 to zs_opt; fs 4 over (20, 40) -> 1.33, 2.67 -> 1, 2,
    # +1 to fs_opt.
    assert split_strata(7, FLAN_COUNTS, "flan") == {"zs_opt": 1, "zs_noopt": 2, "fs_opt": 2, "fs_noopt": 2}
    # The flat split of the same task differs (order fs_noopt, fs_opt, zs_noopt, zs_opt):
    # 7 * (40, 20, 30, 10) / 100 = 2.8, 1.4, 2.1, 0.7 -> 2, 1, 2, 0 and 2 left -> fs_noopt, fs_opt.
    assert split_strata(7, FLAN_COUNTS) == {"fs_noopt": 3, "fs_opt": 2, "zs_noopt": 2, "zs_opt": 0}


def test_flan_zero_shot_only_and_few_shot_only() -> None:
    # No few-shot rows: the whole budget is zero-shot; 4 over (3, 2) -> 2.4, 1.6 -> 2, 1, +1 to zs_opt.
    assert split_strata(4, {"zs_opt": 3, "zs_noopt": 2}, "flan") == {"zs_opt": 3, "zs_noopt": 1}
    # No zero-shot rows (crashes the published scripts): the whole budget is few-shot.
    assert split_strata(5, {"fs_opt": 0, "fs_noopt": 7}, "flan") == {"fs_opt": 0, "fs_noopt": 5}
    assert split_strata(3, {"fs_opt": 2, "fs_noopt": 2, "zs_opt": 0}, "flan") == {
        "zs_opt": 0,
        "fs_opt": 2,
        "fs_noopt": 1,
    }


def test_flan_rejects_unknown_template_types() -> None:
    with pytest.raises(SmartError) as err:
        split_strata(1, {"zs_opt": 1, "cot": 2, "zero": 3}, "flan")
    assert str(err.value) == ("unknown FLAN template types: 'cot', 'zero'; expected 'zs_opt', 'zs_noopt', "
                              "'fs_opt', 'fs_noopt'")


def test_hierarchy_preset_equals_flan() -> None:
    custom = {"zs": ["zs_opt", "zs_noopt"], "fs": ["fs_opt", "fs_noopt"]}
    for budget in range(0, 101, 7):
        flan = split_strata(budget, FLAN_COUNTS, "flan")
        assert split_strata(budget, FLAN_COUNTS, hierarchy=custom) == flan
    assert split_strata(10, FLAN_COUNTS, hierarchy=FLAN_HIERARCHY) == split_strata(10, FLAN_COUNTS, "flan")


def test_hierarchy_nested_and_ordered() -> None:
    counts = {"a": 1, "b": 1, "c": 2, "d": 2}
    # Top: x (a, b) = 2 vs y = {c, d} = 4; 3 -> 1, 2; x 1 over (1, 1) -> 0.5, 0.5 -> +1 to a;
    # y 2 over (2, 2) -> 1, 1.
    assert split_strata(3, counts, hierarchy={"x": ["a", "b"], "y": {"p": ["c"], "q": ["d"]}}) == {
        "a": 1,
        "b": 0,
        "c": 1,
        "d": 1,
    }
    # A list is a flat split in the order given: 1 over (b, a) goes to b.
    assert split_strata(1, {"a": 1, "b": 1}, hierarchy=["b", "a"]) == {"b": 1, "a": 0}
    # Equal at every level: 4 -> 2, 2 over x (2 rows), y (4 rows); then 1, 1 and 1, 1.
    assert split_strata(4, counts, "equal", hierarchy={"x": ["a", "b"], "y": ["c", "d"]}) == {
        "a": 1,
        "b": 1,
        "c": 1,
        "d": 1,
    }


def test_errors() -> None:
    with pytest.raises(SmartError) as err:
        split_strata(11, {"a": 4, "b": 6})
    assert str(err.value) == "stratum budget 11 is outside 0..10, the rows its strata hold ({'a': 4, 'b': 6})"
    with pytest.raises(SmartError, match="strata must be one of"):
        split_strata(1, {"a": 1}, "even")
    with pytest.raises(SmartError, match="more than once"):
        split_strata(1, {"a": 1}, hierarchy={"x": ["a"], "y": ["a"]})
    with pytest.raises(SmartError, match="empty"):
        split_strata(1, {"a": 1}, hierarchy={"x": ["a"], "y": []})
    with pytest.raises(SmartError, match="unknown strata: 'b'"):
        split_strata(1, {"a": 1, "b": 1}, hierarchy=["a"])
    with pytest.raises(SmartError, match="not both"):
        split_strata(1, {"zs_opt": 1}, "flan", hierarchy=FLAN_HIERARCHY)
    with pytest.raises(SmartError, match=">= 0"):
        split_strata(1, {"a": -1, "b": 3})


counts_strategy = st.dictionaries(
    st.sampled_from(["zs_opt", "zs_noopt", "fs_opt", "fs_noopt"]), st.integers(0, 10_000), min_size=1
)


@st.composite
def budget_and_counts(draw: st.DrawFn) -> tuple[int, dict[str, int]]:
    counts = draw(counts_strategy)
    return draw(st.integers(0, sum(counts.values()))), counts


@given(budget_and_counts(), st.sampled_from(["proportional", "equal", "flan"]))
def test_split_sums_and_bounds(case: tuple[int, dict[str, int]], mode: str) -> None:
    budget, counts = case
    out = split_strata(budget, counts, mode)
    assert set(out) == set(counts)
    assert sum(out.values()) == budget
    for name, value in out.items():
        assert 0 <= value <= counts[name]
        if counts[name] == 0:
            assert value == 0


@given(budget_and_counts())
def test_flan_halves_follow_their_counts(case: tuple[int, dict[str, int]]) -> None:
    budget, counts = case
    out = split_strata(budget, counts, "flan")
    zs_rows = counts.get("zs_opt", 0) + counts.get("zs_noopt", 0)
    total = sum(counts.values())
    zs = out.get("zs_opt", 0) + out.get("zs_noopt", 0)
    if total:
        assert abs(zs - budget * zs_rows / total) < 1  # floor-then-cycle is within one unit
    if zs_rows == 0 or zs_rows == total:  # zero-shot only or few-shot only: all in the present half
        assert zs == (budget if zs_rows else 0)


@given(
    st.dictionaries(st.text(min_size=1, max_size=4), st.integers(0, 1000), min_size=1, max_size=8),
    st.data(),
)
def test_proportional_flat_is_within_one_of_exact(counts: dict[str, int], data: st.DataObject) -> None:
    total = sum(counts.values())
    budget = data.draw(st.integers(0, total))
    out = split_strata(budget, counts)
    assert list(out) == sorted(counts)
    for name, value in out.items():
        assert abs(value - budget * counts[name] / total if total else value) <= 1
