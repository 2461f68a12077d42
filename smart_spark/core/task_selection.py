"""Stage-1 task selection (docs/algorithm.md, stage 1, steps 1-2): which M' tasks, in which order.

The result does not depend on the order of the caller's rows: the tasks are sorted by name before the
greedy runs (so a tie goes to the smallest task name, and the greedy sees the same matrix however the
rows arrived), and ``random`` orders tasks by a seeded hash of their names.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from smart_spark.core.greedy import greedy_select
from smart_spark.core.hashing import RANDOM_SALT, hash_order
from smart_spark.errors import SmartError

__all__ = ["TASK_FNS", "select_tasks"]

TASK_FNS = ("gc", "fl", "logdet", "random")


def select_tasks(
    means: ArrayLike,
    fn: str,
    num_tasks: int | None,
    *,
    names: Sequence[str] | np.ndarray,
    seed: int = 23,
    gc_lambda: float = 0.4,
    logdet_lambda: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Pick M' tasks from their mean embeddings.

    Args:
        means: (M, d) per-task mean embeddings, rows in any order (normalised inside the greedy).
        fn: ``gc``, ``fl``, ``logdet`` (greedy over the task kernel) or ``random``.
        num_tasks: M', 1 <= M' <= M; None keeps all M tasks (still in greedy order).
        names: (M,) distinct task names, row-aligned with ``means``.
        seed: seed of the ``random`` order (``hash_order(names, seed, RANDOM_SALT)``).
        gc_lambda, logdet_lambda: the set functions' lambdas.

    Returns:
        ``(order, gains)``: (M',) int64 row positions into the caller's arrays in pick order, and (M',)
        float64 marginal gains (all 1.0 for ``random``).
    """
    if fn not in TASK_FNS:
        raise SmartError(f"task_fn must be one of {', '.join(TASK_FNS)}, got {fn!r}")
    X = np.asarray(means)
    if X.ndim != 2:
        raise SmartError(f"task means must be a 2-D (tasks, dim) array, got shape {X.shape}")
    task_names = [str(n) for n in (names.tolist() if isinstance(names, np.ndarray) else names)]
    m = X.shape[0]
    if len(task_names) != m:
        raise SmartError(f"{m} task means but {len(task_names)} task names")
    if len(set(task_names)) != m:
        seen: set[str] = set()
        dupes = sorted({n for n in task_names if n in seen or seen.add(n)})
        raise SmartError(f"task names must be distinct; repeated: {', '.join(map(repr, dupes[:10]))}")
    k = m if num_tasks is None else num_tasks
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise SmartError(f"num_tasks must be an integer, got {num_tasks!r}")
    if k < 1 or k > m:
        raise SmartError(f"num_tasks must be between 1 and the {m} tasks in the input, got {k}")
    k = int(k)

    if fn == "random":
        order = hash_order(task_names, seed, RANDOM_SALT)[:k]
        return order.astype(np.int64), np.ones(k, dtype=np.float64)

    if not np.issubdtype(X.dtype, np.number) or X.dtype.kind == "c":
        raise SmartError(f"task means must be real numbers, got dtype {X.dtype}")
    finite = np.all(np.isfinite(X), axis=1)
    if not finite.all():
        bad = [task_names[i] for i in np.flatnonzero(~finite)[:10]]
        raise SmartError(f"task mean embeddings are not finite for tasks: {', '.join(map(repr, bad))}")
    zero = ~np.any(X != 0, axis=1)
    if zero.any():
        bad = [task_names[i] for i in np.flatnonzero(zero)[:10]]
        raise SmartError(
            f"task mean embeddings are all zero (cannot normalise) for tasks: {', '.join(map(repr, bad))}"
        )

    by_name = np.array(sorted(range(m), key=task_names.__getitem__), dtype=np.int64)
    picks, gains = greedy_select(X[by_name], fn, k, gc_lambda=gc_lambda, logdet_lambda=logdet_lambda)
    return by_name[np.asarray(picks, dtype=np.int64)], np.asarray(gains, dtype=np.float64)
