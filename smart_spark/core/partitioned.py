"""The partitioned greedy (GreeDi, docs/algorithm.md): the numpy reference for the Spark job.

No greedy ever sees more than P (``partition_size``) rows. Rows are worked on in id order, so ties go to
the smallest id and the selected ids do not depend on the input row order. For n <= P this is exactly
:func:`smart_spark.core.greedy.greedy_select` on the id-sorted rows. For n > P, with k = ceil(n / P)
partitions made by :func:`assign_partitions` from seeded id hashes:

- Regime A, budget <= P // 2 (GreeDi rounds): every partition picks min(b, size); the union U of the
  picks is re-partitioned the same way while |U| > P; once |U| <= P the greedy on U picks b, and that is
  the answer unless a partition's own solution scores strictly higher on U (ties: lower partition).
- Regime B, budget > P // 2: partition p picks its :func:`part_budgets` share; when b <= P one greedy on
  the union (b rows) re-orders it, else :func:`interleave` merges the local orderings by gain.

The building blocks are public so that the Spark job (``spark.selection``) computes the same thing.
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
from smart_spark.errors import SmartError


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


def num_partitions(n: int, partition_size: int) -> int:
    """ceil(n / P): the number of partitions for n rows."""
    return -(-int(n) // int(partition_size))


def part_budgets(sizes: Sequence[int] | np.ndarray, budget: int) -> np.ndarray:
    """(k,) int64 budgets of partitions with ``sizes`` (k,) summing to ``budget``, none above its size.

    Proportional floor-then-cycle: b_p = floor(budget * size_p / n) with n = sum(sizes), then the
    remaining units one each to the partitions in partition order, cycling, skipping full ones.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    n = int(sizes.sum())
    if (sizes < 0).any():
        raise SmartError("partition sizes must be non-negative")
    if not 0 <= budget <= n:
        raise SmartError(f"budget {budget} is outside 0..{n} (the rows in all partitions)")
    if n == 0:
        return np.zeros(sizes.size, dtype=np.int64)
    out = np.array([budget * int(s) // n for s in sizes], dtype=np.int64)
    left = budget - int(out.sum())
    while left > 0:  # one pass suffices in practice (left < partitions with room); cycle to be safe
        room = np.flatnonzero(out < sizes)[:left]
        out[room] += 1
        left -= room.size
    return out


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

    def greedy(rows: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray]:
        order, gains = greedy_unit(Xs[rows], fn, b, gc_lambda=gc_lambda, logdet_lambda=logdet_lambda)
        return rows[order], gains

    def value(ground: np.ndarray, picks: np.ndarray) -> float:
        local = np.searchsorted(ground, np.sort(picks))
        return objective_unit(Xs[ground], fn, local, gc_lambda=gc_lambda, logdet_lambda=logdet_lambda)

    if n <= P:
        order, gains = greedy(np.arange(n, dtype=np.int64), budget)
        return by_id[order], gains

    keys = partition_keys(ids_sorted, seed)

    def split(rows: np.ndarray) -> list[np.ndarray]:
        """Partitions of the id-sorted ``rows``, each id-sorted."""
        k = num_partitions(rows.size, P)
        part = assign_partitions(keys[rows], ids_sorted[rows], k)
        return [rows[part == p] for p in range(k)]

    if budget <= P // 2:  # regime A: GreeDi rounds
        cand = np.arange(n, dtype=np.int64)
        while True:
            locals_ = [greedy(rows, min(budget, rows.size)) for rows in split(cand)]
            union = np.sort(np.concatenate([order for order, _ in locals_]))
            if union.size <= P:
                break
            assert union.size < cand.size, "GreeDi round made no progress"
            cand = union
        order, gains = greedy(union, budget)
        best = value(union, order)
        for local_order, local_gains in locals_:
            if local_order.size == budget:
                v = value(union, local_order)
                if v > best:
                    best, order, gains = v, local_order, local_gains
        return by_id[order], gains

    parts = split(np.arange(n, dtype=np.int64))  # regime B: one round, proportional budgets
    shares = part_budgets([rows.size for rows in parts], budget)
    locals_ = [greedy(rows, int(b)) for rows, b in zip(parts, shares, strict=True)]
    if budget <= P:
        union = np.sort(np.concatenate([order for order, _ in locals_]))
        order, gains = greedy(union, budget)
        return by_id[order], gains
    part, rank = interleave([g for _, g in locals_])
    offsets = np.cumsum([0] + [o.size for o, _ in locals_])
    flat_order = np.concatenate([o for o, _ in locals_])
    flat_gains = np.concatenate([g for _, g in locals_])
    pick = offsets[part] + rank
    return by_id[flat_order[pick]], flat_gains[pick]
