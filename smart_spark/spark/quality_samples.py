"""The quality stage's seeded samples: which rows each figure uses, found in one Spark job.

A row is in a sample of ``k`` rows of a population (the rows of a task, the mixture rows of a task,
every row, every mixture row) when its (h, id) is at most the population's ``k``-th smallest, h being
xxhash64(id, seed): the same rows whatever the partitioning. :func:`sample_limits` finds every
population's ``k``-th smallest (h, id) at once: since h is uniform over the 64-bit integers, only the rows
with h below a bound that about ``k + 6 sqrt(k)`` of the population's rows fall under are ranked (one
window over those few small rows, one row per population and ``k`` back to the driver); the rare
population with fewer than ``k`` rows under its bound is ranked whole in a second job.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

#: Populations: the rows of a task, the mixture rows of a task; scope ``all`` has the same two.
ROWS, MIXTURE = 0, 1
#: Rows over the ``k`` wanted that a bound aims to leave under it: ``SIGMAS`` standard deviations and a floor.
SIGMAS, SPARE = 6, 64
LOWEST, HIGHEST = -(1 << 63), (1 << 63) - 1

Limit = tuple[int, str, int]  # (population, scope, k)


def bound(rows: int, k: int) -> int | None:
    """The h under which about ``k + 6 sqrt(k) + 64`` of ``rows`` uniformly hashed rows fall; None when
    that is all of them (no bound)."""
    share = (k + SIGMAS * math.sqrt(k) + SPARE) / rows
    return None if share >= 1 else LOWEST + int(share * (1 << 64))


def sample_limits(rows: DataFrame, wanted: Mapping[tuple[int, str], Iterable[int]],
                  sizes: Mapping[tuple[int, str], int], *, whole_scope: str) -> dict[Limit, tuple[int, str]]:
    """(population, scope, k) -> the population's ``k``-th smallest (h, id), for every ``k`` in
    ``wanted[(population, scope)]`` below the population's size (``sizes``).

    ``rows``: (task, id, h, mix); a scope is a task name or ``whole_scope`` (every row)."""
    todo = {key: sorted(k for k in ks if k < sizes[key]) for key, ks in wanted.items()}
    todo = {key: ks for key, ks in todo.items() if ks}
    found = _ranked(rows, {key: bound(sizes[key], ks[-1]) for key, ks in todo.items()}, todo, whole_scope)
    missing = {key: ks for key, ks in todo.items() if any((*key, k) not in found for k in ks)}
    if missing:  # fewer rows under a bound than wanted (about 1 in 10^9 per population): rank them all
        found.update(_ranked(rows, {key: None for key in missing}, missing, whole_scope))
    return found


def at_most(h: Column, key: Column, last: tuple[Column, Column] | None) -> Column:
    """A boolean column: (h, key) is at most ``last`` (h, id); True where ``last`` is None."""
    if last is None:
        return F.lit(True)
    last_h, last_id = last
    return last_h.isNull() | (h < last_h) | ((h == last_h) & (key <= last_id))


def _ranked(rows: DataFrame, bounds: Mapping[tuple[int, str], int | None],
            wanted: Mapping[tuple[int, str], list[int]], whole_scope: str) -> dict[Limit, tuple[int, str]]:
    """One job: the rows under their populations' bounds, ranked per population; the wanted ranks back."""
    if not bounds:
        return {}
    spark = rows.sparkSession

    def task_bound(key: tuple[int, str]) -> int | None:  # None: not ranked; HIGHEST: every row ranked
        return None if key not in bounds else HIGHEST if bounds[key] is None else bounds[key]

    per_task = spark.createDataFrame(
        [(t, task_bound((ROWS, t)), task_bound((MIXTURE, t)))
         for t in sorted({t for _, t in bounds if t != whole_scope})],
        "task string, rows_bound long, mixture_bound long")

    def under(b: int | None) -> Column:
        return F.lit(True) if b is None else F.col("h") < F.lit(b)

    def under_task(name: str) -> Column:
        return F.col(name).isNotNull() & (F.col("h") <= F.col(name))

    none = F.lit(-1)
    codes = [F.when(under_task("rows_bound"), F.lit(ROWS)).otherwise(none),
             F.when(F.col("mix") & under_task("mixture_bound"), F.lit(MIXTURE)).otherwise(none)]
    if (ROWS, whole_scope) in bounds:
        codes.append(F.when(under(bounds[(ROWS, whole_scope)]), F.lit(2 + ROWS)).otherwise(none))
    if (MIXTURE, whole_scope) in bounds:
        codes.append(F.when(F.col("mix") & under(bounds[(MIXTURE, whole_scope)]), F.lit(2 + MIXTURE))
                     .otherwise(none))
    ks = sorted({k for v in wanted.values() for k in v})
    order = Window.partitionBy("population", "scope").orderBy("h", "id")
    candidates = (rows.select("task", "id", "h", "mix").join(F.broadcast(per_task), "task", "left")
                  .withColumn("code", F.explode(F.array_remove(F.array(*codes), -1)))
                  .select(F.col("code").bitwiseAND(1).alias("population"),
                          F.when(F.col("code") >= 2, F.lit(whole_scope)).otherwise(F.col("task"))
                          .alias("scope"),
                          "h", "id"))
    found = (candidates.withColumn("rank", F.row_number().over(order)).where(F.col("rank").isin(ks))
             .select("population", "scope", "rank", "h", "id").collect())
    out = {}
    for r in found:
        if r["rank"] in wanted.get((r["population"], r["scope"]), ()):
            out[(r["population"], r["scope"], r["rank"])] = (r["h"], r["id"])
    return out
