"""Budgets of the baseline mixtures (docs/algorithm.md, baselines); the sampling happens elsewhere.

All three use the stage-1 integer rules of :mod:`smart_spark.core.budgets`: a floor-then-cycle split of N'
in the order given, then capping at the true sizes with the excess handed out in passes in that order.
Callers pass tasks in a fixed order (the job uses task names sorted), which decides where the leftover
units go.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction

import numpy as np
from numpy.typing import ArrayLike

from smart_spark.core.budgets import cap_budgets, check_total, int_vector, split_floor_cycle
from smart_spark.errors import SmartError

__all__ = ["em_budgets", "epm_budgets", "fixed_group_budgets"]


def _exact_weights(values: list[object]) -> np.ndarray:
    """Weights as exact integers (object array) scaled from their decimal text: 0.4/0.32/... -> 40/32/....

    The split then floors exact fractions, so "40 % of 1000" is 400, not 399 from float round-off.
    """
    fracs = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
            raise SmartError(f"group weights must be numbers, got {v!r}")
        if not math.isfinite(v) or v < 0:
            raise SmartError(f"group weights must be finite and >= 0, got {v!r}")
        fracs.append(Fraction(int(v)) if isinstance(v, int | np.integer) else Fraction(repr(float(v))))
    scale = math.lcm(*(f.denominator for f in fracs)) if fracs else 1
    return np.array([int(f * scale) for f in fracs], dtype=object)


def _check_feasible(sizes: np.ndarray, num_instances: object, what: str) -> int:
    n = check_total(num_instances, "num_instances")
    if n == 0:
        raise SmartError("num_instances (N') must be > 0, got 0")
    if sizes.size == 0:
        raise SmartError(f"no {what}: cannot split num_instances {n}")
    held = int(sizes.sum())
    if held < n:
        raise SmartError(f"the {sizes.size} {what} hold {held} instances, fewer than num_instances {n}")
    return n


def epm_budgets(sizes: ArrayLike, num_instances: int, *, cap: int | None = None) -> np.ndarray:
    """Examples-proportional mixing: budgets in proportion to task sizes, optionally capped at K (T5).

    Args:
        sizes: (M,) instances per task.
        num_instances: N' (> 0, <= sum(sizes)).
        cap: K; each size is replaced by min(n_t, K) before normalising. None: no cap.

    Returns:
        (M,) int64 budgets summing to N', each <= its true size.
    """
    n = int_vector(sizes, "task sizes")
    total = _check_feasible(n, num_instances, "tasks")
    weights = n
    if cap is not None:
        if isinstance(cap, bool) or not isinstance(cap, int | np.integer) or cap < 1:
            raise SmartError(f"examples-proportional cap K must be an integer >= 1, got {cap!r}")
        weights = np.minimum(n, int(cap))
    return cap_budgets(split_floor_cycle(total, weights), n)


def em_budgets(sizes: ArrayLike, num_instances: int) -> np.ndarray:
    """Equal mixing: N'/M' per task (floor, then one each in order), capped and redistributed.

    Args:
        sizes: (M,) instances per task.
        num_instances: N' (> 0, <= sum(sizes)).

    Returns:
        (M,) int64 budgets summing to N', each <= its size.
    """
    n = int_vector(sizes, "task sizes")
    total = _check_feasible(n, num_instances, "tasks")
    return cap_budgets(split_floor_cycle(total, np.ones(n.size, dtype=np.int64)), n)


def fixed_group_budgets(
    group_sizes: Mapping[str, int], weights: Mapping[str, float], num_instances: int
) -> dict[str, int]:
    """Fixed weights per group value (e.g. FLAN's submixtures 40/32/20/5/3 %).

    Args:
        group_sizes: group value -> rows in that group.
        weights: group value -> weight (>= 0, any scale; floats are taken at their decimal value, so
            0.4 is exactly 2/5); its order is the cycling order. Must name exactly the groups of
            ``group_sizes``.
        num_instances: N' (> 0, <= total rows).

    Returns:
        group value -> budget, in ``weights`` order, summing to N', each <= the group's rows.
    """
    unknown = sorted(set(weights) - set(group_sizes), key=str)
    missing = sorted(set(group_sizes) - set(weights), key=str)
    if unknown or missing:
        parts = []
        if unknown:
            parts.append(f"weights name groups not in the data: {', '.join(map(repr, unknown))}")
        if missing:
            parts.append(f"groups without a weight: {', '.join(map(repr, missing))}")
        raise SmartError("; ".join(parts))
    names = list(weights)
    sizes = int_vector([group_sizes[g] for g in names], "group sizes")
    total = _check_feasible(sizes, num_instances, "groups")
    budgets = cap_budgets(split_floor_cycle(total, _exact_weights([weights[g] for g in names])), sizes)
    return dict(zip(names, budgets.tolist(), strict=True))
