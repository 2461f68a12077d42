"""Spark side of stage 1: embedding checks, per-task mean embeddings, group sizes and the tasks' families.

Only M rows (one per task) and the (task, stratum) counts ever reach the driver.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from smart_spark.errors import SmartError
from smart_spark.udfs.task_sums import (
    CHECKS_SCHEMA,
    SCALE,
    combine_partition_sums,
    embedding_checks,
    partial_task_sums,
    task_sums_schema,
)

log = logging.getLogger(__name__)


def validate_embeddings(df: DataFrame, col: str = "embedding", *, flag: str = "--embedding-col") -> int:
    """Check every row's embedding (not null, finite, not all zero, one dimension); return the dimension.

    Raises :class:`SmartError` naming the problem, how many rows have it and the smallest such id.
    """
    # One vectorised pass over Arrow batches (smart_spark.udfs.task_sums.embedding_checks), one row per
    # partition: Spark SQL's higher-order functions (exists/forall) over every element are interpreted,
    # ~10x slower.
    partials = df.select(F.col("id"), F.col(col)).mapInArrow(
        functools.partial(embedding_checks, embedding_col=col, id_col="id"), CHECKS_SCHEMA
    ).collect()
    stats: dict = {"min_dim": None, "max_dim": None}
    problems = {"null": "null", "NaN or infinite": "nan", "all-zero": "zero"}
    for name, key in problems.items():
        stats[name] = sum(int(r[key]) for r in partials)
        found = [r[key + "_id"] for r in partials if r[key + "_id"] is not None]
        stats[name + "_id"] = min(found) if found else None
    dims = [(r["min_dim"], r["max_dim"]) for r in partials if r["min_dim"] is not None]
    if dims:
        stats["min_dim"], stats["max_dim"] = min(d[0] for d in dims), max(d[1] for d in dims)
    for name in problems:
        if stats[name]:
            raise SmartError(
                f"{flag} has {stats[name]} {name} embedding(s), e.g. id {stats[name + '_id']!r}"
            )
    if stats["min_dim"] != stats["max_dim"]:
        raise SmartError(
            f"{flag} has embeddings of mixed dimension ({stats['min_dim']} to {stats['max_dim']})"
        )
    return int(stats["max_dim"])


def task_means(df: DataFrame, col: str = "embedding") -> pd.DataFrame:
    """Per-task unweighted mean of the L2-normalised embeddings, sorted by task name.

    Returns a pandas frame with ``task`` (str), ``n`` (int rows) and ``mean`` ((d,) float64 arrays).
    Partial sums are exact fixed-point integers, so the result does not depend on the partitioning.
    """
    partial = df.select("task", col).mapInArrow(
        functools.partial(partial_task_sums, embedding_col=col, task_col="task"), task_sums_schema()
    )
    # All partial rows of a task in one partition, combined there in numpy (one call per partition, not
    # one per task); M rows reach the driver and are sorted there (Python's str order is Spark's
    # UTF8_BINARY order).
    summed = partial.repartition("task").mapInArrow(combine_partition_sums, task_sums_schema())
    rows = sorted(summed.collect(), key=lambda r: r["task"])
    return pd.DataFrame(
        {
            "task": [r["task"] for r in rows],
            "n": [int(r["n"]) for r in rows],
            "mean": [np.asarray(r["s"], dtype=np.float64) / SCALE / r["n"] for r in rows],
        }
    )


def group_sizes(df: DataFrame) -> dict[tuple[str, str | None], int]:
    """Rows per (task, stratum) group (stratum None without strata)."""
    rows = df.groupBy("task", "stratum").count().collect()
    return {(r["task"], r["stratum"]): int(r["count"]) for r in rows}


def group_of_tasks(df: DataFrame, group_col: str) -> dict[str, str]:
    """Task -> its ``--group-col`` value (M rows); a task with several values is an error naming it."""
    if group_col not in df.columns:
        raise SmartError(f"--group-col {group_col!r} is not a column of the input")
    rows = (df.groupBy("task").agg(F.min(F.col(group_col).cast("string")).alias("g"),
                                   F.countDistinct(F.col(group_col)).alias("k"),
                                   F.sum(F.col(group_col).isNull().cast("long")).alias("nulls"))
            .collect())
    for r in rows:
        if r["k"] != 1 or r["nulls"]:
            raise SmartError(f"--group-col {group_col!r} must hold one non-null value per task; task "
                             f"{r['task']!r} has {r['k']} value(s) and {r['nulls']} null(s)")
    return {r["task"]: r["g"] for r in rows}


def families_of(prepared: DataFrame, group_col: str | None, *, required: bool) -> dict[str, str] | None:
    """Task -> its ``--group-col`` value (M rows to the driver), or None without ``group_col``.

    ``required`` (``--strategy fixed``): one value per task or an error; otherwise the values serve the
    report's view by family only, and a column that is not one value per task gives None (the report
    then falls back to task-name prefixes) with a warning.
    """
    if not group_col:
        return None
    try:
        return group_of_tasks(prepared, group_col)
    except SmartError as exc:
        if required:
            raise
        log.warning("report families by task-name prefix instead: %s", exc)
        return None
