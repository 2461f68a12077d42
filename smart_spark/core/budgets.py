"""Stage-1 weights and integer budgets (docs/algorithm.md, stage 1, steps 3-6).

Every array here is in *pick order*: position k is the k-th task the stage-1 greedy picked. Budgets and
sizes are counts of instances (int64); weights are probabilities (float64).

The two integer rules, exactly as the authors' ``budget_split`` and redistribution loop apply them:

- :func:`split_floor_cycle`: ``b_k = floor(total * w_k / sum(w))``, then the units still missing go one
  each to the entries in order, starting again at the first entry, until ``total`` is reached.
- :func:`cap_budgets`: every ``b_k > n_k`` becomes ``n_k``; the excess is handed out in full passes over
  the entries in order, each pass starting at the first entry and giving one unit to every entry still
  below its size, until none is left (the last pass stops part-way).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from smart_spark.errors import SmartError

__all__ = ["cap_budgets", "mixture_budgets", "split_floor_cycle", "taylor_softmax"]


def int_vector(values: ArrayLike, what: str) -> np.ndarray:
    """``values`` as a 1-D int64 array of non-negative integers, or SmartError naming ``what``."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise SmartError(f"{what} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise SmartError(f"{what} must be whole numbers, got {arr.tolist()}")
    elif arr.dtype.kind not in "iub":
        raise SmartError(f"{what} must be integers, got dtype {arr.dtype}")
    out = arr.astype(np.int64)
    if np.any(out < 0):
        raise SmartError(f"{what} must be >= 0, got {out[out < 0].tolist()[:10]}")
    return out


def taylor_softmax(gains: ArrayLike, temperature: float = 1.0) -> np.ndarray:
    """Second-order Taylor softmax of the stage-1 gains.

    ``p_k = (1 + x_k + x_k**2 / 2) / sum_j (1 + x_j + x_j**2 / 2)`` with ``x = gains / temperature``.
    Every term is positive (it equals ((x+1)^2 + 1) / 2), so each p_k > 0.

    Args:
        gains: (m,) marginal gains in pick order.
        temperature: T > 0.

    Returns:
        (m,) float64 probabilities summing to 1; empty for m = 0.
    """
    g = np.asarray(gains, dtype=np.float64)
    if g.ndim != 1:
        raise SmartError(f"gains must be one-dimensional, got shape {g.shape}")
    if not (isinstance(temperature, int | float | np.floating | np.integer) and math.isfinite(temperature)):
        raise SmartError(f"temperature must be a finite number, got {temperature!r}")
    if temperature <= 0:
        raise SmartError(f"temperature must be > 0, got {temperature}")
    if not np.all(np.isfinite(g)):
        bad = np.flatnonzero(~np.isfinite(g))
        raise SmartError(
            f"gains must be finite, got {g[bad].tolist()[:10]} at pick ranks {bad.tolist()[:10]}"
        )
    if g.size == 0:
        return np.zeros(0, dtype=np.float64)
    x = g / float(temperature)
    terms = 1.0 + x + x * x / 2.0
    total = terms.sum()
    if not np.isfinite(total):
        raise SmartError(
            f"Taylor softmax overflows for gains up to {np.abs(g).max()} at temperature {temperature}"
        )
    return terms / total


def split_floor_cycle(total: int, weights: ArrayLike) -> np.ndarray:
    """Split ``total`` units in proportion to ``weights``: floors, then the rest one each in order.

    ``b_k = floor(total * w_k / sum(w))``; the units still missing go one each to the entries with
    w_k > 0 in order, cycling from the first such entry, until the sum is ``total``. Entries with w_k = 0
    get 0 (with all weights positive, as Taylor-softmax weights always are, this is exactly the authors'
    ``budget_split``). Integer weights (int dtypes, or an object array of Python ints of any size) are
    split with exact integer arithmetic; float weights in float64,
    and should round-off ever push the floors' sum above ``total``, units are taken back one each from the
    last entries in order.

    Args:
        total: units to split, >= 0.
        weights: (m,) non-negative weights, not all zero when ``total > 0``.

    Returns:
        (m,) int64 budgets summing to ``total``.
    """
    total = check_total(total, "total")
    w = np.asarray(weights)
    if w.ndim != 1:
        raise SmartError(f"weights must be one-dimensional, got shape {w.shape}")
    m = w.size
    if w.dtype.kind in "iub" or (
        w.dtype == object and all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in w)
    ):
        wi = [int(v) for v in w.tolist()]
        if any(v < 0 for v in wi):
            raise SmartError(f"weights must be >= 0, got {[v for v in wi if v < 0][:10]}")
        wsum = sum(wi)
        if total > 0 and wsum == 0:
            raise SmartError(f"cannot split {total} units: all {m} weights are 0")
        floors = np.array([total * v // wsum if wsum else 0 for v in wi], dtype=np.int64)
        positive = np.array([v > 0 for v in wi], dtype=bool)
    else:
        wf = w.astype(np.float64)
        if not np.all(np.isfinite(wf)):
            raise SmartError(f"weights must be finite, got {wf[~np.isfinite(wf)].tolist()[:10]}")
        if np.any(wf < 0):
            raise SmartError(f"weights must be >= 0, got {wf[wf < 0].tolist()[:10]}")
        wsum = float(wf.sum())
        if total > 0 and wsum == 0:
            raise SmartError(f"cannot split {total} units: all {m} weights are 0")
        if wsum == 0:
            floors = np.zeros(m, dtype=np.int64)
        else:
            floors = np.clip(np.floor(total * wf / wsum), 0, total).astype(np.int64)
        positive = wf > 0
        floors[~positive] = 0
        over = int(floors.sum()) - total
        while over > 0:  # float round-off only: at most a few units
            for k in np.flatnonzero(floors > 0)[::-1]:
                floors[k] -= 1
                over -= 1
                if over == 0:
                    break
    rest = total - int(floors.sum())
    if rest > 0:
        idx = np.flatnonzero(positive)
        q, r = divmod(rest, idx.size)
        floors[idx] += q
        floors[idx[:r]] += 1
    return floors


def check_total(total: object, what: str) -> int:
    if isinstance(total, bool) or not isinstance(total, int | np.integer):
        raise SmartError(f"{what} must be an integer, got {total!r}")
    if total < 0:
        raise SmartError(f"{what} must be >= 0, got {total}")
    return int(total)


def cap_budgets(budgets: ArrayLike, sizes: ArrayLike) -> np.ndarray:
    """Cap each budget at its size and hand the excess back out in passes over the entries in order.

    Equal to this loop (the authors' redistribution)::

        excess = sum(max(0, b_k - n_k)); b_k = min(b_k, n_k)
        while excess > 0:
            for k in range(m):            # every pass starts at the first entry
                if b_k < n_k: b_k += 1; excess -= 1
                if excess == 0: break

    computed in one pass by water-filling: with capacities r_k = n_k - b_k after capping, t full passes
    hand out S(t) = sum_k min(r_k, t) units; take the largest t with S(t) <= excess (found on the sorted
    capacities), give every entry min(r_k, t), then one more unit to each of the first ``excess - S(t)``
    entries in order whose r_k > t.

    Args:
        budgets: (m,) non-negative int budgets in pick order.
        sizes: (m,) non-negative int sizes n_k.

    Returns:
        (m,) int64 budgets, each <= its size, with the same sum as ``budgets``.
    """
    b = int_vector(budgets, "budgets")
    n = int_vector(sizes, "sizes")
    if b.size != n.size:
        raise SmartError(f"budgets and sizes differ in length: {b.size} vs {n.size}")
    need, have = int(b.sum()), int(n.sum())
    if have < need:
        raise SmartError(f"the sizes hold {have} instances in total, fewer than the budgets' total {need}")
    excess = int(np.maximum(b - n, 0).sum())
    out = np.minimum(b, n)
    if excess == 0:
        return out
    cap = n - out  # remaining capacity r_k
    m = cap.size
    s = np.sort(cap)
    before = np.concatenate(([0], np.cumsum(s)[:-1]))  # P_j = sum_{i<j} s_i
    filled_at = before + (m - np.arange(m)) * s  # S(s_j), nondecreasing in j
    j = int(np.searchsorted(filled_at, excess, side="right"))  # first j with S(s_j) > excess
    if j == m:  # excess == sum(cap): everything fills up
        return out + cap
    t = (excess - int(before[j])) // (m - j)  # s_{j-1} <= t < s_j
    give = np.minimum(cap, t)
    left = excess - int(give.sum())
    if left:
        give[np.flatnonzero(cap > t)[:left]] += 1
    return out + give


def mixture_budgets(
    gains: ArrayLike,
    task_sizes: ArrayLike,
    num_instances: int,
    *,
    temperature: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stage-1 weights and integer task budgets (docs/algorithm.md, stage 1, steps 3-6), in pick order.

    Args:
        gains: (m,) stage-1 greedy gains of the picked tasks.
        task_sizes: (m,) instances per picked task.
        num_instances: N', instances in the mixture (> 0).
        temperature: Taylor-softmax temperature T (> 0).

    Returns:
        ``(weights, initial, final)``: (m,) float64 Taylor-softmax probabilities; (m,) int64
        floor-then-cycle split of N' (may exceed sizes); (m,) int64 budgets after capping, each <= its
        task's size, summing to N'.
    """
    num_instances = check_total(num_instances, "num_instances")
    if num_instances == 0:
        raise SmartError("num_instances (N') must be > 0, got 0")
    g = np.asarray(gains, dtype=np.float64)
    sizes = int_vector(task_sizes, "task_sizes")
    if g.ndim != 1 or g.size != sizes.size:
        raise SmartError(f"gains and task_sizes differ in length: {g.size} vs {sizes.size}")
    if g.size == 0:
        raise SmartError("no tasks picked: cannot split num_instances over 0 tasks")
    held = int(sizes.sum())
    if held < num_instances:
        raise SmartError(
            f"the {sizes.size} picked tasks hold {held} instances, fewer than num_instances {num_instances}"
        )
    weights = taylor_softmax(g, temperature)
    initial = split_floor_cycle(num_instances, weights)
    final = cap_budgets(initial, sizes)
    return weights, initial, final
