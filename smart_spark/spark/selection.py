"""Stage 2 in Spark: execute the stage-2 plan on each (task, stratum) group's rows, distributed.

The driver builds the plan (:func:`smart_spark.core.stage2_plan.plan_stage2`, one entry per group, from counts
alone) and never sees an instance. This module only moves rows: it joins each row to its group's plan entry,
assigns partitions, groups rows, and calls the ``smart_spark.udfs.select`` functions (the numpy core) that run
each greedy for the picks the plan gives. By method:

- ``whole``: every row, ranked by id, no gain;
- ``random``: the b rows first in the seeded hash order of their ids;
- ``exact``: one greedy per group; small groups are packed into buckets of whole groups, one
  ``applyInPandas`` call per bucket;
- ``rounds`` / ``shares`` (groups larger than P): per planned round, rows go to the round's k partitions by
  the rank of their seeded id hash (rank mod k, as :func:`smart_spark.core.partitioned.assign_partitions`),
  each partition picks its planned count, and the picks are the next round's rows or go to the group's
  finish: ``merge`` and ``reorder`` (one call on the union, at most P rows) or ``interleave`` (a sort by
  gain, as :func:`smart_spark.core.partitioned.interleave`).

No greedy ever holds a kernel over more than P rows.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from smart_spark.core.hashing import PARTITION_SALT, RANDOM_SALT
from smart_spark.core.stage2_plan import (
    Finish,
    Group,
    GroupPlan,
    Method,
    Source,
    Stage2Plan,
    plan_stage2,
    plan_sweep,
)
from smart_spark.spark.parallelism import TASKS_PER_SLOT, task_slots
from smart_spark.udfs import select as udf

log = logging.getLogger(__name__)

_PLAN_SCHEMA = "group_id int, task string, stratum string, budget int, method string, bucket int"


def _num_partitions(spark: SparkSession, groups: int) -> int:
    """Spark partitions for the per-group work: four per task slot of the cluster, at most one per group.

    Set explicitly (``repartition(k, "group_id")``, which the windows and ``applyInPandas`` below reuse):
    with ``spark.sql.shuffle.partitions`` (200 by default) the union of the stage-2 branches ran 400 tasks,
    each starting a Python worker, and AQE does not coalesce them; on 2 cores that cost more than the greedy.
    """
    return max(1, min(TASKS_PER_SLOT * task_slots(spark), groups))


def _hash(seed: int, salt: str) -> Column:
    """The seeded id hash of ``smart_spark.core.hashing.hash_key``."""
    return F.sha2(F.concat(F.lit(f"{seed}:{salt}:"), F.col("id")), 256)


def _rank_by(order: list[Column]) -> Column:
    """0-based rank of each row within its group by ``order``."""
    return F.row_number().over(Window.partitionBy("group_id").orderBy(*order)) - 1


def _no_gain() -> Column:
    return F.lit(None).cast("double").alias("gain")


def _in(groups: list[GroupPlan]) -> Column:
    return F.col("group_id").isin([g.index for g in groups])


def select_instances(spark: SparkSession, rows: DataFrame, budgets: Mapping[Group, int],
                     sizes: Mapping[Group, int], *, fn: str, partition_size: int, seed: int,
                     gc_lambda: float = 0.4, logdet_lambda: float = 1.0, device: str = "cpu") -> DataFrame:
    """Selected rows as (task, stratum, id, selection_rank, selection_gain).

    ``rows`` has ``task``, ``stratum``, ``id`` and ``embedding`` (array<float>; unused for ``whole``
    and ``random`` groups). ``budgets`` and ``sizes`` are keyed by (task, stratum). ``device``: where the
    tasks run FL (``smart_spark.udfs.select.fl_device``: ``auto`` uses a task's assigned GPU).
    """
    plan = plan_stage2(budgets, sizes, fn=fn, partition_size=partition_size, seed=seed,
                       gc_lambda=gc_lambda, logdet_lambda=logdet_lambda)
    greedy = plan.of(Method.EXACT, Method.ROUNDS, Method.SHARES)
    log.info("select: %s groups, %s of them (%s rows) by greedy: %.3g kernel entries",
             f"{len(plan.groups):,}", f"{len(greedy):,}", f"{sum(g.size for g in greedy):,}",
             plan.kernel_entries)
    plan_df = spark.createDataFrame(
        [(g.index, g.task, g.stratum, g.budget, g.method.value, g.bucket) for g in plan.groups], _PLAN_SCHEMA)
    joined = rows.join(
        F.broadcast(plan_df.withColumnsRenamed({"task": "plan_task", "stratum": "plan_stratum"})),
        (rows["task"] == F.col("plan_task")) & rows["stratum"].eqNullSafe(F.col("plan_stratum")),
    ).select("group_id", "id", "embedding", "budget", "method", "bucket")

    def rows_of(*methods: Method) -> DataFrame:
        return joined.where(F.col("method").isin([m.value for m in methods]))

    results: list[DataFrame] = []
    if whole := plan.of(Method.WHOLE):
        by_group = rows_of(Method.WHOLE).repartition(_num_partitions(spark, len(whole)), "group_id")
        results.append(by_group.select("group_id", "id", _rank_by([F.col("id")]).cast("int").alias("rank"),
                                       _no_gain()))
    if random := plan.of(Method.RANDOM):
        by_group = rows_of(Method.RANDOM).repartition(_num_partitions(spark, len(random)), "group_id")
        ranked = by_group.withColumn("rank", _rank_by([_hash(seed, RANDOM_SALT), F.col("id")]).cast("int"))
        results.append(ranked.where(F.col("rank") < F.col("budget"))
                       .select("group_id", "id", "rank", _no_gain()))
    if exact := plan.of(Method.EXACT):
        buckets = _num_partitions(spark, len({g.bucket for g in exact}))
        greedy = udf.bind(udf.greedy_on_groups, plan=plan.only(Method.EXACT), device=device)
        results.append(rows_of(Method.EXACT).select("bucket", "group_id", "id", "embedding")
                       .repartition(buckets, "bucket").groupBy("bucket")
                       .applyInPandas(greedy, udf.RESULT_SCHEMA))
    cached: list[DataFrame] = []
    if plan.of(Method.ROUNDS, Method.SHARES):
        large, cached = _partitioned_groups(spark, rows_of(Method.ROUNDS, Method.SHARES), plan, device=device)
        results.extend(large)

    if not results:
        selected = spark.createDataFrame([], udf.RESULT_SCHEMA)
    else:
        columns = ["group_id", "id", "rank", "gain"]
        selected = functools.reduce(DataFrame.unionByName, [r.select(*columns) for r in results])
    selected = selected.join(F.broadcast(plan_df.select("group_id", "task", "stratum")), "group_id").select(
        "task", "stratum", "id", F.col("rank").alias("selection_rank"),
        F.col("gain").alias("selection_gain")).persist()
    selected.count()  # materialise once, so the intermediate rounds can be dropped
    for frame in cached:
        frame.unpersist()
    return selected


def _partitioned_groups(spark: SparkSession, rows: DataFrame, plan: Stage2Plan, *,
                        device: str) -> tuple[list[DataFrame], list[DataFrame]]:
    """The ``rounds`` and ``shares`` groups, round by round as planned: (results, cached frames)."""
    large = plan.only(Method.ROUNDS, Method.SHARES)
    by_group = _num_partitions(spark, len(large.groups))
    rank = _rank_by([_hash(plan.seed, PARTITION_SALT), F.col("id")])
    results: list[DataFrame] = []
    cached: list[DataFrame] = []
    current = rows.select("group_id", "id", "embedding")
    for step in range(large.rounds):
        active = [g for g in large.groups if len(g.rounds) > step]
        k = F.create_map(*[x for g in active for x in (F.lit(g.index), F.lit(g.rounds[step].partitions))])
        by_part = _num_partitions(spark, sum(g.rounds[step].partitions for g in active))
        local = (current.repartition(by_group, "group_id")
                 .withColumn("partition", (rank % k[F.col("group_id")]).cast("int"))
                 .repartition(by_part, "group_id", "partition").groupBy("group_id", "partition")
                 .applyInPandas(udf.bind(udf.local_greedy, plan=large, step=step, device=device),
                                udf.LOCAL_SCHEMA)
                 .persist())
        cached.append(local)
        local = local.repartition(by_group, "group_id")
        done = [g for g in active if len(g.rounds) == step + 1]
        if merge := [g for g in done if g.finish is Finish.MERGE]:
            results.append(local.where(_in(merge)).groupBy("group_id").applyInPandas(
                udf.bind(udf.merge_on_union, plan=large, device=device), udf.RESULT_SCHEMA))
        if reorder := [g for g in done if g.finish is Finish.REORDER]:
            results.append(local.where(_in(reorder)).select("group_id", "id", "embedding").groupBy("group_id")
                           .applyInPandas(udf.bind(udf.greedy_on_groups, plan=large, device=device),
                                          udf.RESULT_SCHEMA))
        if interleave := [g for g in done if g.finish is Finish.INTERLEAVE]:
            order = [F.col("local_gain").desc(), F.col("partition"), F.col("local_rank")]
            results.append(local.where(_in(interleave)).select(
                "group_id", "id", _rank_by(order).cast("int").alias("rank"),
                F.col("local_gain").alias("gain")))
        current = local.where(_in([g for g in active if len(g.rounds) > step + 1])).select(
            "group_id", "id", "embedding")
    return results, cached


def select_sweep(spark: SparkSession, rows: DataFrame, budgets_list: list[Mapping[Group, int]],
                 sizes: Mapping[Group, int], *, fn: str, partition_size: int, seed: int,
                 gc_lambda: float = 0.4, logdet_lambda: float = 1.0, device: str = "cpu") -> list[DataFrame]:
    """Selections for several budget maps (a sweep), each greedy ordering computed once.

    The core's :func:`~smart_spark.core.stage2_plan.plan_sweep` says which selections to run (one shared,
    one of whole groups, one per mixture for the groups selected apart) and where each mixture takes each
    group from; this joins the prefixes out. Returns one frame per budget map, as :func:`select_instances`.
    """
    kwargs = dict(fn=fn, partition_size=partition_size, seed=seed, gc_lambda=gc_lambda,
                  logdet_lambda=logdet_lambda, device=device)
    if len(budgets_list) == 1:
        return [select_instances(spark, rows, budgets_list[0], sizes, **kwargs)]
    sweep = plan_sweep(budgets_list, sizes, fn=fn, partition_size=partition_size)
    shared = select_instances(spark, rows, sweep.shared, sizes, **kwargs)
    whole = select_instances(spark, rows, sweep.whole, sizes, **kwargs)
    schema = "task string, stratum string, budget int, source string"
    out = []
    for m, mixture in enumerate(sweep.mixtures):
        own = select_instances(spark, rows, sweep.apart(m), sizes, **kwargs)
        plan = spark.createDataFrame([(g[0], g[1], b, source.value) for g, b, source in mixture], schema)
        parts = []
        for source, frame in ((Source.SHARED, shared), (Source.WHOLE, whole), (Source.APART, own)):
            wanted = plan.where(F.col("source") == source.value).withColumnsRenamed(
                {"task": "plan_task", "stratum": "plan_stratum"})
            on = (frame["task"] == F.col("plan_task")) & frame["stratum"].eqNullSafe(F.col("plan_stratum"))
            parts.append(frame.join(F.broadcast(wanted), on).where(F.col("selection_rank") < F.col("budget"))
                         .select("task", "stratum", "id", "selection_rank", "selection_gain"))
        out.append(functools.reduce(DataFrame.unionByName, parts))
    return out
