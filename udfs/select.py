"""``applyInPandas`` functions of stage 2: the greedy on one group, partition or union of picks.

Each call sees at most P rows (the partition size), sorts them by id (so ties go to the smallest id)
and calls the numpy core. Input frames carry ``id``, ``embedding`` and the budget columns named below;
outputs carry ``rank`` (0-based pick order) and ``gain`` (the greedy's marginal gain).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from smart_spark.core.greedy import greedy_select, objective
from smart_spark.core.partitioned import part_budgets


def fl_device(device: str, fn: str = "fl") -> str:
    """Where this Spark task runs the greedy of ``fn``, for the job's ``--device``: ``cpu`` for GC, LogDet
    and ``--device cpu``; for FL with ``auto``: the task's assigned GPU (``spark.task.resource.gpu.amount``),
    else ``cpu``; with ``cuda`` / ``cuda:N``: that GPU (an error without CUDA). torch is imported only
    when a GPU may be used."""
    if fn != "fl" or device == "cpu":
        return "cpu"
    if device == "auto":
        from pyspark import TaskContext

        ctx = TaskContext.get()
        gpus = ctx.resources().get("gpu") if ctx is not None else None
        if gpus is None or not gpus.addresses:
            return "cpu"
    from smart_spark.embed.encoder import resolve_device

    return resolve_device(device)


def frame_fn(func: Callable[..., pd.DataFrame], **kwargs: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """``func`` with ``kwargs`` bound, as a plain ``pd.DataFrame -> pd.DataFrame`` function for
    ``applyInPandas`` (a ``functools.partial`` keeps the keyword parameters in its signature, so pyspark
    cannot read its type hints and warns on every call)."""

    def apply(pdf: pd.DataFrame) -> pd.DataFrame:
        return func(pdf, **kwargs)

    apply.__name__ = apply.__qualname__ = getattr(func, "__name__", "apply")
    return apply


def _matrix(pdf: pd.DataFrame) -> np.ndarray:
    """(n, d) float32 embeddings of the frame's rows."""
    return np.stack(pdf["embedding"].to_numpy()).astype(np.float32, copy=False)


def _picks(pdf: pd.DataFrame, order: np.ndarray, gains: np.ndarray, keep: list[str]) -> pd.DataFrame:
    out = pdf.iloc[order][keep].reset_index(drop=True)
    out["rank"] = np.arange(len(order), dtype=np.int32)
    out["gain"] = np.asarray(gains, dtype=np.float64)
    return out


def greedy_on_group(pdf: pd.DataFrame, *, fn: str, gc_lambda: float, logdet_lambda: float,
                    keep: list[str], device: str = "cpu") -> pd.DataFrame:
    """Exact greedy over the frame's rows for ``budget`` (a column, constant per group) picks."""
    pdf = pdf.sort_values("id", kind="stable").reset_index(drop=True)
    budget = int(pdf["budget"].iloc[0])
    order, gains = greedy_select(_matrix(pdf), fn, min(budget, len(pdf)), gc_lambda=gc_lambda,
                                 logdet_lambda=logdet_lambda, device=fl_device(device, fn))
    return _picks(pdf, order, gains, keep)


def greedy_on_groups(pdf: pd.DataFrame, *, fn: str, gc_lambda: float, logdet_lambda: float,
                     keep: list[str], device: str = "cpu") -> pd.DataFrame:
    """:func:`greedy_on_group` for every group ``g`` of the frame (a bucket of small groups), concatenated.

    One ``applyInPandas`` call per bucket instead of per group: thousands of small groups each paid
    the per-call conversion and scheduling overhead.
    """
    outs = [greedy_on_group(sub, fn=fn, gc_lambda=gc_lambda, logdet_lambda=logdet_lambda, keep=keep,
                            device=device) for _, sub in pdf.groupby("g", sort=True)]
    return pd.concat(outs, ignore_index=True) if outs else pdf[keep].assign(rank=np.int32(0), gain=0.0)


def greedy_on_partition(pdf: pd.DataFrame, *, fn: str, gc_lambda: float, logdet_lambda: float,
                        keep: list[str], device: str = "cpu") -> pd.DataFrame:
    """Local greedy on one partition of a large group.

    Columns ``budget`` (the group's b), ``k`` (partitions), ``n`` (rows being partitioned), ``part``
    and ``regime`` (``A``: min(b, size) picks; ``B``: the partition's proportional share of b).
    """
    pdf = pdf.sort_values("id", kind="stable").reset_index(drop=True)
    budget, k, n, part = (int(pdf[c].iloc[0]) for c in ("budget", "k", "n", "part"))
    if pdf["regime"].iloc[0] == "A":
        local = min(budget, len(pdf))
    else:
        sizes = np.full(k, n // k, dtype=np.int64)
        sizes[: n % k] += 1
        local = int(part_budgets(sizes, budget)[part])
    order, gains = greedy_select(_matrix(pdf), fn, local, gc_lambda=gc_lambda, logdet_lambda=logdet_lambda,
                                 device=fl_device(device, fn))
    return _picks(pdf, order, gains, keep)


def merge_union(pdf: pd.DataFrame, *, fn: str, gc_lambda: float, logdet_lambda: float,
                keep: list[str], device: str = "cpu") -> pd.DataFrame:
    """Final step of regime A on the union U of the local picks (|U| <= P).

    Greedy on U for ``budget`` picks; returned unless some partition's local solution (columns ``part``,
    ``lrank``, ``lgain``) has a strictly larger objective on U (ties between those: lower part).
    """
    pdf = pdf.sort_values("id", kind="stable").reset_index(drop=True)
    X = _matrix(pdf)
    budget = int(pdf["budget"].iloc[0])
    order, gains = greedy_select(X, fn, budget, gc_lambda=gc_lambda, logdet_lambda=logdet_lambda,
                                 device=fl_device(device, fn))
    best = objective(X, fn, order, gc_lambda=gc_lambda, logdet_lambda=logdet_lambda)
    for part in sorted(pdf["part"].unique()):
        rows = pdf.index[pdf["part"] == part].to_numpy()
        local_order = rows[np.argsort(pdf.loc[rows, "lrank"].to_numpy(), kind="stable")]
        value = objective(X, fn, local_order, gc_lambda=gc_lambda, logdet_lambda=logdet_lambda)
        if value > best:
            best, order, gains = value, local_order, pdf.loc[local_order, "lgain"].to_numpy()
    return _picks(pdf, order, gains, keep)
