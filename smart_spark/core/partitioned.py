"""The partitioned greedy (GreeDi, docs/algorithm.md): the numpy reference for the Spark job.

A group's plan (:func:`smart_spark.core.stage2_plan.plan_group`: method, rounds, each partition's picks,
the finish) is built from counts alone; this module holds the steps that need rows and executes the plan
in process. The Spark job (``smart_spark.spark.selection``) executes the same plan with the same steps:

- :func:`partition_keys` and :func:`assign_partitions`: which partition a row falls in (Spark computes the
  same rank of (hash, id) with a window);
- :func:`merge_union`: the last step of regime A (ROUNDS) on the union of the picks;
- :func:`interleave`: the last step of regime B (SHARES) when b > P (Spark sorts by the same key).

No greedy ever sees more than P (``partition_size``) rows. Rows are worked on in id order, so ties go to
the smallest id and the selected ids do not depend on the input row order. For n <= P this is exactly
:func:`smart_spark.core.greedy.greedy_select` on the id-sorted rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from smart_spark.core import hashing
from smart_spark.core.greedy import (
    check_budget,
    check_fn,
    check_lambdas,
    greedy_unit,
    normalize_rows,
    objective_unit,
)
from smart_spark.core.stage2_plan import Finish, Method, num_partitions, part_budgets, plan_group
from smart_spark.errors import SmartError

__all__ = ["assign_partitions", "interleave", "merge_union", "num_partitions", "part_budgets",
           "partition_keys", "partitioned_greedy_select"]


def partition_keys(ids: Sequence[object] | np.ndarray, seed: int) -> np.ndarray:
    """(n,) hex SHA-256 keys of ``str(id)`` with the partition salt (``hashing.PARTITION_SALT``)."""
    return hashing.hash_keys([str(i) for i in ids], seed, hashing.PARTITION_SALT)


def assign_partitions(keys: np.ndarray, ids: Sequence[object] | np.ndarray, k: int) -> np.ndarray:
    """(n,) int64 partition of every row: its rank by (key, str(id)) ascending, modulo ``k``.

    Partition p gets ceil((n - p) / k) rows: sizes differ by at most one, the first n % k are larger.
    """
    if k < 1:
        raise SmartError(f"number of partitions must be at least 1, got {k}")
    keys = np.asarray(keys)
    str_ids = np.array([str(i) for i in ids], dtype=str)
    if keys.shape != str_ids.shape:
        raise SmartError(f"{keys.size} partition keys for {str_ids.size} ids")
    by_rank = np.lexsort((str_ids, keys)) if keys.size else np.zeros(0, dtype=np.int64)
    rank = np.empty(keys.size, dtype=np.int64)
    rank[by_rank] = np.arange(keys.size, dtype=np.int64)
    return rank % k


def interleave(gains: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Merge local orderings by gain: all picks sorted by (gain descending, partition, local rank).

    ``gains[p]`` is partition p's (b_p,) local gains in pick order. Returns (part, rank): two (sum b_p,)
    int64 arrays naming each merged pick by its partition and its 0-based local rank.
    """
    part = np.concatenate([np.full(len(g), p, dtype=np.int64) for p, g in enumerate(gains)] or [[]])
    rank = np.concatenate([np.arange(len(g), dtype=np.int64) for g in gains] or [[]])
    flat = np.concatenate([np.asarray(g, dtype=np.float64) for g in gains] or [[]])
    merged = np.lexsort((rank, part, -flat))
    return part.astype(np.int64)[merged], rank.astype(np.int64)[merged]


def merge_union(
    Xn: np.ndarray, fn: str, budget: int, local_orders: Sequence[np.ndarray],
    local_gains: Sequence[np.ndarray], *, gc_lambda: float, logdet_lambda: float, device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Last step of regime A (ROUNDS) on the union U of the last round's picks.

    Greedy on U for ``budget`` picks, returned unless some partition's own solution has a strictly larger
    objective on U (ties between those: the lower partition). ``Xn``: (|U|, d) unit rows of U in id order;
    ``local_orders[p]``: partition p's picks as positions into U, in pick order; ``local_gains[p]`` their
    gains. Returns (order, gains): (budget,) int64 positions into U, (budget,) float64 gains.
    """
    order, gains = greedy_unit(Xn, fn, budget, gc_lambda=gc_lambda, logdet_lambda=logdet_lambda,
                               device=device)

    def value(picks: np.ndarray) -> float:
        return objective_unit(Xn, fn, np.sort(picks), gc_lambda=gc_lambda, logdet_lambda=logdet_lambda)

    best = value(order)
    for local_order, local_gains_p in zip(local_orders, local_gains, strict=True):
        local_order = np.asarray(local_order, dtype=np.int64)
        if local_order.size == budget:
            v = value(local_order)
            if v > best:
                best, order, gains = v, local_order, np.asarray(local_gains_p, dtype=np.float64)
    return order, gains


def _sorted_ids(ids: Sequence[object] | np.ndarray | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(by_id, ids_sorted): the stable argsort of ``ids`` and the ids in that order; validates them."""
    if ids is None:
        return np.arange(n, dtype=np.int64), np.arange(n, dtype=np.int64)
    arr = np.asarray(ids)
    if arr.ndim != 1 or arr.size != n:
        raise SmartError(f"ids must be a 1-D sequence of {n} values (one per row), got shape {arr.shape}")
    try:
        by_id = np.argsort(arr, kind="stable")
    except TypeError as err:
        raise SmartError(f"ids must all be integers or all be strings: {err}") from err
    ids_sorted = arr[by_id]
    same = np.flatnonzero(ids_sorted[1:] == ids_sorted[:-1])
    if same.size:
        dup = ids_sorted[same[0]]
        dup = dup.item() if isinstance(dup, np.generic) else dup
        raise SmartError(f"ids must be unique: {dup!r} appears more than once")
    return by_id, ids_sorted


def partitioned_greedy_select(
    X: np.ndarray,
    fn: str,
    budget: int,
    *,
    partition_size: int,
    seed: int = 23,
    ids: Sequence[object] | np.ndarray | None = None,
    gc_lambda: float = 0.4,
    logdet_lambda: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Partitioned greedy (GreeDi) over the rows of ``X`` (n, d); see the module docstring.

    Args:
        X: (n, d) embeddings (rows normalised here). fn: ``"fl"``, ``"gc"`` or ``"logdet"``.
        budget: picks, 0..n. partition_size: P >= 2, the most rows one greedy holds.
        seed: seeds the id hashes that make the partitions. ids: (n,) unique ids (ints or strings);
            default the positions 0..n-1.

    Returns:
        (order, gains): (budget,) int64 positions into ``X`` in pick order, (budget,) float64 gains
        (relative to the ground set of the greedy that produced them: the union, or a partition).
    """
    fn = check_fn(fn)
    gc_lambda, logdet_lambda = check_lambdas(gc_lambda, logdet_lambda)
    if isinstance(partition_size, (bool, np.bool_)) or not isinstance(partition_size, (int, np.integer)):
        raise SmartError(f"partition_size must be an integer, got {partition_size!r}")
    if partition_size < 2:
        raise SmartError(f"partition_size must be at least 2, got {partition_size}")
    Xn = normalize_rows(X)
    n = Xn.shape[0]
    budget = check_budget(budget, n)
    by_id, ids_sorted = _sorted_ids(ids, n)
    Xs = Xn[by_id]
    P = int(partition_size)

    plan = plan_group(n, budget, partition_size=P, fn=fn, whole=False)

    def greedy(rows: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray]:
        order, gains = greedy_unit(Xs[rows], fn, b, gc_lambda=gc_lambda, logdet_lambda=logdet_lambda)
        return rows[order], gains

    if plan.method is Method.EXACT:
        order, gains = greedy(np.arange(n, dtype=np.int64), budget)
        return by_id[order], gains

    keys = partition_keys(ids_sorted, seed)
    candidates = np.arange(n, dtype=np.int64)  # id-sorted rows of the current round
    for step in plan.rounds:
        part = assign_partitions(keys[candidates], ids_sorted[candidates], step.partitions)
        locals_ = [greedy(candidates[part == p], b) for p, b in enumerate(step.picks)]
        candidates = np.sort(np.concatenate([order for order, _ in locals_]))  # the union

    if plan.finish is Finish.MERGE:
        order, gains = merge_union(Xs[candidates], fn, budget,
                                   [np.searchsorted(candidates, order) for order, _ in locals_],
                                   [gains for _, gains in locals_],
                                   gc_lambda=gc_lambda, logdet_lambda=logdet_lambda)
        return by_id[candidates[order]], gains
    if plan.finish is Finish.REORDER:
        order, gains = greedy(candidates, budget)
        return by_id[order], gains
    part, rank = interleave([g for _, g in locals_])  # Finish.INTERLEAVE
    offsets = np.cumsum([0] + [o.size for o, _ in locals_])
    flat_order = np.concatenate([o for o, _ in locals_])
    flat_gains = np.concatenate([g for _, g in locals_])
    pick = offsets[part] + rank
    return by_id[flat_order[pick]], flat_gains[pick]
