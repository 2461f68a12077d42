"""Stage 2 in Spark: pick each (task, stratum) group's budgeted instances, distributed.

Per group with budget b and size n (the numpy reference is ``smart_spark.core.partitioned``):

- ``whole``: b == n, every row, ranked by id, no gain;
- ``random``: the b rows first in the seeded hash order of their ids;
- ``exact``: n <= P, the exact greedy; small groups share one ``applyInPandas`` call (a bucket);
- ``A`` (n > P, b <= P // 2): GreeDi rounds. Rows go to k = ceil(n / P) partitions by the rank of their
  seeded id hash (rank mod k); each partition picks min(b, size); the union is re-partitioned the same
  way until it fits in P, then merged (greedy on the union, kept unless a partition's own solution
  scores higher on the union);
- ``B`` (n > P, b > P // 2): each partition picks its proportional share of b; the union (b rows) is
  re-ordered by one greedy when b <= P, else the local orderings are interleaved by gain.

No Python worker ever holds more than P rows; the driver sees one plan row per group, never instances.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from smart_spark.core.hashing import PARTITION_SALT, RANDOM_SALT
from udfs import select as udf

Group = tuple[str, "str | None"]
RESULT_COLUMNS = ["g", "id", "rank", "gain"]
_RESULT_SCHEMA = "g int, id string, rank int, gain double"
_BUCKET_ROWS = 4096  # exact groups are packed into buckets of about this many rows, one call each
_CARRY_SCHEMA = ("g int, id string, embedding array<float>, budget int, regime string, part int, "
                 "rank int, gain double")


def plan_groups(budgets: Mapping[Group, int], sizes: Mapping[Group, int], *, fn: str,
                partition_size: int) -> list[dict]:
    """One plan row per group with a positive budget: g (index), task, stratum, budget, n, kind."""
    plan = []
    for g, key in enumerate(sorted((k for k, b in budgets.items() if b > 0),
                                   key=lambda k: (k[0], k[1] or ""))):
        b, n = int(budgets[key]), int(sizes[key])
        if b > n:
            raise ValueError(f"group {key} has budget {b} above its size {n}")
        if b == n:
            kind = "whole"
        elif fn == "random":
            kind = "random"
        elif n <= partition_size:
            kind = "exact"
        else:
            kind = "A" if b <= partition_size // 2 else "B"
        plan.append({"g": g, "task": key[0], "stratum": key[1], "budget": b, "n": n, "kind": kind})
    return plan


def _num_partitions(spark: SparkSession, groups: int) -> int:
    """Spark partitions for the per-group work: four per task slot of the cluster, at most one per group.

    Set explicitly (``repartition(k, "g")``, which the windows and ``applyInPandas`` below reuse): with
    ``spark.sql.shuffle.partitions`` (200 by default) the union of the stage-2 branches ran 400 tasks, each
    starting a Python worker, and AQE does not coalesce them; on 2 cores that cost more than the greedy.
    """
    try:
        slots = int(spark.sparkContext.defaultParallelism)
    except Exception:  # Spark Connect has no SparkContext
        slots = int(spark.conf.get("spark.sql.shuffle.partitions", "200") or 200) // 4
    return max(1, min(4 * max(1, slots), groups))


def _buckets(plan: list[dict]) -> dict[int, int]:
    """Bucket of every ``exact`` group: consecutive groups (in g order) packed up to ``_BUCKET_ROWS`` rows;
    a larger group is a bucket of its own. One ``applyInPandas`` call runs a whole bucket."""
    out: dict[int, int] = {}
    bucket, fill = -1, _BUCKET_ROWS
    for p in plan:
        if p["kind"] != "exact":
            continue
        if fill + p["n"] > _BUCKET_ROWS:
            bucket, fill = bucket + 1, 0
        out[p["g"]] = bucket
        fill += p["n"]
    return out


def _hash(seed: int, salt: str) -> Column:
    return F.sha2(F.concat(F.lit(f"{seed}:{salt}:"), F.col("id")), 256)


def _rank_by(order: list[Column]) -> Column:
    return F.row_number().over(Window.partitionBy("g").orderBy(*order)) - 1


def _partitioned(rows: DataFrame, *, partition_size: int, seed: int) -> DataFrame:
    """Add n (rows of the group now), k = ceil(n / P) and part = rank of (hash, id) mod k."""
    n = F.count(F.lit(1)).over(Window.partitionBy("g"))
    rank = _rank_by([_hash(seed, PARTITION_SALT), F.col("id")])
    return (rows.withColumn("n", n)
            .withColumn("k", F.ceil(F.col("n") / F.lit(partition_size)).cast("int"))
            .withColumn("part", (rank % F.col("k")).cast("int")))


def select_instances(spark: SparkSession, rows: DataFrame, budgets: Mapping[Group, int],
                     sizes: Mapping[Group, int], *, fn: str, partition_size: int, seed: int,
                     gc_lambda: float = 0.4, logdet_lambda: float = 1.0, device: str = "cpu") -> DataFrame:
    """Selected rows as (task, stratum, id, selection_rank, selection_gain).

    ``rows`` has ``task``, ``stratum``, ``id`` and ``embedding`` (array<float>; unused for ``whole``
    and ``random`` groups). ``budgets`` and ``sizes`` are keyed by (task, stratum). ``device``: where the
    tasks run FL (``udfs.select.fl_device``: ``auto`` uses a task's assigned GPU).
    """
    plan = plan_groups(budgets, sizes, fn=fn, partition_size=partition_size)
    buckets = _buckets(plan)
    plan_df = spark.createDataFrame(
        [{**p, "bucket": buckets.get(p["g"])} for p in plan],
        "g int, task string, stratum string, budget int, n int, kind string, bucket int",
    )
    joined = rows.join(
        F.broadcast(plan_df.withColumnsRenamed({"task": "p_task", "stratum": "p_stratum", "n": "size"})),
        (rows["task"] == F.col("p_task")) & rows["stratum"].eqNullSafe(F.col("p_stratum")),
    ).select("g", "id", "embedding", "budget", "kind", "bucket")
    kwargs = {"fn": fn, "gc_lambda": gc_lambda, "logdet_lambda": logdet_lambda, "device": device}
    kinds = {p["kind"] for p in plan}
    results: list[DataFrame] = []
    count = {kind: sum(1 for p in plan if p["kind"] == kind) for kind in kinds}

    if "whole" in kinds:
        whole = joined.where("kind = 'whole'").repartition(_num_partitions(spark, count["whole"]), "g")
        results.append(whole.select("g", "id", _rank_by([F.col("id")]).cast("int").alias("rank"),
                                    F.lit(None).cast("double").alias("gain")))
    if "random" in kinds:
        ranked = joined.where("kind = 'random'").repartition(
            _num_partitions(spark, count["random"]), "g").withColumn(
            "rank", _rank_by([_hash(seed, RANDOM_SALT), F.col("id")]).cast("int"))
        results.append(ranked.where(F.col("rank") < F.col("budget"))
                        .select("g", "id", "rank", F.lit(None).cast("double").alias("gain")))
    if "exact" in kinds:
        exact = (joined.where("kind = 'exact'").select("bucket", "g", "id", "embedding", "budget")
                 .repartition(_num_partitions(spark, len(set(buckets.values()))), "bucket"))
        results.append(exact.groupBy("bucket").applyInPandas(
            udf.frame_fn(udf.greedy_on_groups, keep=["g", "id"], **kwargs), _RESULT_SCHEMA))
    cached: list[DataFrame] = []
    if kinds & {"A", "B"}:
        large, cached = _large_groups(joined.where(F.col("kind").isin("A", "B")), plan,
                                      partition_size=partition_size, seed=seed, kwargs=kwargs,
                                      spark=spark)
        results.extend(large)

    if not results:
        selected = spark.createDataFrame([], _RESULT_SCHEMA)
    else:
        selected = functools.reduce(DataFrame.unionByName, [r.select(*RESULT_COLUMNS) for r in results])
    selected = selected.join(F.broadcast(plan_df.select("g", "task", "stratum")), "g").select(
        "task", "stratum", "id", F.col("rank").alias("selection_rank"),
        F.col("gain").alias("selection_gain")).persist()
    selected.count()  # materialise once, so the intermediate rounds can be dropped
    for frame in cached:
        frame.unpersist()
    return selected


def _large_groups(rows: DataFrame, plan: list[dict], *, partition_size: int, seed: int,
                  kwargs: dict, spark: SparkSession) -> tuple[list[DataFrame], list[DataFrame]]:
    """Regimes A and B for groups larger than P (see the module docstring): (results, cached frames)."""
    large = [p for p in plan if p["kind"] in ("A", "B")]
    by_group = _num_partitions(spark, len(large))
    by_part = _num_partitions(spark, sum(-(-p["n"] // partition_size) for p in large))
    regime = F.create_map(*[x for p in large for x in (F.lit(p["g"]), F.lit(p["kind"]))])
    keep = ["g", "id", "embedding", "budget", "regime", "part"]
    local_fn = udf.frame_fn(udf.greedy_on_partition, keep=keep, **kwargs)
    group_fn = udf.frame_fn(udf.greedy_on_group, keep=["g", "id"], **kwargs)
    merge_fn = udf.frame_fn(udf.merge_union, keep=["g", "id"], **kwargs)
    results: list[DataFrame] = []
    cached: list[DataFrame] = []

    current = rows.select("g", "id", "embedding", "budget").withColumn("regime", regime[F.col("g")])
    while True:  # regime A at least halves the candidates each round; regime B takes one round
        parts = _partitioned(current.repartition(by_group, "g"), partition_size=partition_size, seed=seed)
        local = (parts.repartition(by_part, "g", "part").groupBy("g", "part")
                 .applyInPandas(local_fn, _CARRY_SCHEMA).persist())
        cached.append(local)
        local = local.repartition(by_group, "g").withColumn(
            "u", F.count(F.lit(1)).over(Window.partitionBy("g")))
        b_rows = local.where("regime = 'B'")
        results.append(b_rows.where(F.col("budget") <= partition_size)
                       .select("g", "id", "embedding", "budget").groupBy("g").applyInPandas(
                           group_fn, _RESULT_SCHEMA))
        results.append(b_rows.where(F.col("budget") > partition_size).withColumn(
            "rank", _rank_by([F.col("gain").desc(), F.col("part"), F.col("rank")]).cast("int"))
            .select("g", "id", "rank", "gain"))
        a_rows = local.where("regime = 'A'")
        results.append(
            a_rows.where(F.col("u") <= partition_size)
            .select("g", "id", "embedding", "budget", "part", F.col("rank").alias("lrank"),
                    F.col("gain").alias("lgain"))
            .groupBy("g").applyInPandas(merge_fn, _RESULT_SCHEMA))
        current = a_rows.where(F.col("u") > partition_size).select(*keep[:-1])
        if current.isEmpty():
            return results, cached


def select_sweep(spark: SparkSession, rows: DataFrame, budgets_list: list[Mapping[Group, int]],
                 sizes: Mapping[Group, int], *, fn: str, partition_size: int, seed: int,
                 gc_lambda: float = 0.4, logdet_lambda: float = 1.0, device: str = "cpu") -> list[DataFrame]:
    """Selections for several budget maps (a sweep), each greedy ordering computed once.

    Greedy and random orderings are prefixes (docs/algorithm.md, stage 2), so one run to the largest budget
    below a group's size serves every mixture that does not take the group whole. Groups larger than P
    with several such budgets are the exception (the partitioned greedy is not nested): each budget
    gets its own selection there. Returns one frame per budget map, as :func:`select_instances`.
    """
    kwargs = dict(fn=fn, partition_size=partition_size, seed=seed, gc_lambda=gc_lambda,
                  logdet_lambda=logdet_lambda, device=device)
    if len(budgets_list) == 1:
        return [select_instances(spark, rows, budgets_list[0], sizes, **kwargs)]
    groups = {g for budgets in budgets_list for g, b in budgets.items() if b > 0}
    partial = {g: sorted({b.get(g, 0) for b in budgets_list} - {0, sizes[g]}) for g in groups}
    apart = {g for g, bs in partial.items()
             if len(bs) > 1 and sizes[g] > partition_size and fn != "random"}
    shared = select_instances(spark, rows, {g: bs[-1] for g, bs in partial.items() if bs and g not in apart},
                              sizes, **kwargs)
    taken_whole = {g: sizes[g] for g in groups if any(b.get(g) == sizes[g] for b in budgets_list)}
    whole = select_instances(spark, rows, taken_whole, sizes, **kwargs)
    schema = "task string, stratum string, budget int, source string"
    out = []
    for budgets in budgets_list:
        own = select_instances(spark, rows, {g: budgets.get(g, 0) for g in apart}, sizes, **kwargs)
        plan = spark.createDataFrame(
            [(g[0], g[1], int(b), "whole" if b == sizes[g] else "apart" if g in apart else "shared")
             for g, b in budgets.items() if b > 0], schema)
        parts = []
        for source, frame in (("shared", shared), ("whole", whole), ("apart", own)):
            wanted = plan.where(F.col("source") == source).withColumnsRenamed(
                {"task": "p_task", "stratum": "p_stratum"})
            on = (frame["task"] == F.col("p_task")) & frame["stratum"].eqNullSafe(F.col("p_stratum"))
            parts.append(frame.join(F.broadcast(wanted), on).where(F.col("selection_rank") < F.col("budget"))
                         .select("task", "stratum", "id", "selection_rank", "selection_gain"))
        out.append(functools.reduce(DataFrame.unionByName, parts))
    return out
