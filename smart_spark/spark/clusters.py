"""Tasks from the data: k-means clusters of the normalised embeddings (Spark ML ``KMeans``, k-means||).

``--tasks-from clusters`` clusters all instances into K tasks named ``cluster-0000`` ...; ``--split-tasks
K`` clusters inside each labelled task (one fit per task), naming the parts ``<task>/c00`` ....
Large inputs are fitted on a hash sample by id (:func:`fit_rows`). The rows are arranged
deterministically before fitting (hash-partitioned by id into a number of
partitions that depends only on the row count, sorted by id inside each), so k-means||'s per-partition
sampling, and with it the clusters, is the same for the same input, config and seed whatever the file
layout, shuffle partitions or executor count. Every row is then assigned to its nearest centre on the
executors (:mod:`smart_spark.udfs.clusters`); only the centres and three prompts per cluster reach the driver.
"""

from __future__ import annotations

import functools
import gc
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from pyspark import StorageLevel
from pyspark.sql import Window
from pyspark.sql import functions as F

from smart_spark.core.greedy import normalize_rows
from smart_spark.errors import SmartError
from smart_spark.spark.reader import PROMPT_COLUMN
from smart_spark.udfs.clusters import ASSIGN_SCHEMA, assign_clusters

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

#: Rows per partition the fit aims for (the partition count depends only on the row count).
ROWS_PER_PARTITION = 50_000
MAX_PARTITIONS = 256
NEAREST = 3
#: k-means|| rounds and fits per clustering (seeds seed, seed + 1, ...; the lowest training cost wins)
#: for K up to :data:`FEW_CLUSTERS`. With few clusters a local optimum costs a whole group: Spark's
#: default of 2 rounds merged two of tests/test_clusters.py's 8 groups and split another (cost 519
#: against 317) for 2 of 3 seeds; 10 rounds found the optimum for seeds 0-2, 3 fits for every seed tried.
INIT_STEPS = 10
RESTARTS = 3
#: Above this K, Spark's default 2 rounds and one fit: a local optimum then moves a few of many
#: clusters, and the driver's k-means++ over the ~2K candidates per round costs candidates x K x 30.
FEW_CLUSTERS = 100
#: The fit sees at most max(FIT_ROWS_PER_CLUSTER x K, MIN_FIT_ROWS) rows, a hash sample by id (the same
#: rows whatever the layout); every row is then assigned to its nearest centre. A few hundred points
#: per centre estimate a centre well; each Lloyd iteration costs fit rows x K x d.
FIT_ROWS_PER_CLUSTER = 100
MIN_FIT_ROWS = 50_000
#: The ``clusters`` table's schema: one row per input row of the run.
CLUSTERS_SCHEMA = "run_id string, id string, task string, parent_task string, cluster int, similarity double"


@dataclass
class Clustering:
    """Every row's cluster (``assignments``: id, task, parent_task, cluster, similarity; persisted), per
    cluster task its size and nearest prompts (``info``: task -> dict), ``index`` (task, cluster: one row
    per cluster) and the number of k-means fits."""

    assignments: DataFrame
    info: dict[str, dict[str, Any]]
    index: DataFrame
    fits: int


def _arranged(rows: DataFrame, n_rows: int) -> DataFrame:
    """``rows`` hash-partitioned by id into ceil(n / 50,000) partitions (at most 256), sorted by id."""
    parts = max(1, min(MAX_PARTITIONS, math.ceil(n_rows / ROWS_PER_PARTITION)))
    return rows.repartition(parts, "id").sortWithinPartitions("id")


#: The error of a Spark Connect server without Spark ML ({server}: which one, or what it said).
NO_SPARK_ML = ("--tasks-from clusters / --split-tasks need Spark ML's KMeans, which this Spark Connect "
               "server ({server}) does not run; use classic Spark or a Connect server with Spark ML "
               "(Apache Spark 4's)")


def check_spark_ml(spark: SparkSession) -> None:
    """SmartError unless the session can run Spark ML: Sail's Spark Connect server cannot."""
    from smart_spark.delta.sail import is_sail

    if is_sail(spark):
        raise SmartError(NO_SPARK_ML.format(server="Sail"))


def fit_rows(rows: DataFrame, n_rows: int, *, k: int, seed: int,
             limit: int | None = None) -> tuple[DataFrame, int]:
    """``rows`` and their count, or, above ``limit`` (default max(:data:`FIT_ROWS_PER_CLUSTER` x ``k``,
    :data:`MIN_FIT_ROWS`)), the rows whose seeded hash of id falls in that fraction and the expected
    count: the same rows whatever the partitioning."""
    limit = limit if limit is not None else max(FIT_ROWS_PER_CLUSTER * k, MIN_FIT_ROWS)
    if n_rows <= limit:
        return rows, n_rows
    buckets = 1_000_000
    keep = math.ceil(limit / n_rows * buckets)
    picked = rows.where(F.pmod(F.xxhash64(F.col("id"), F.lit(seed)), F.lit(buckets)) < keep)
    return picked, round(n_rows * keep / buckets)


def fit_centres(rows: DataFrame, n_rows: int, *, k: int, seed: int, max_iter: int = 20,
                tol: float = 1e-4, init_steps: int | None = None, restarts: int | None = None) -> np.ndarray:
    """(K', d) k-means centres of the unit-normalised ``embedding`` column of ``rows`` (K' <= k when
    there are fewer distinct points). Spark ML ``KMeans`` (k-means|| initialisation, the block solver:
    distances as matrix products), seeds ``seed``, ``seed + 1``, ...: of ``restarts`` fits, the one with
    the lowest training cost (ties: the first). ``init_steps``/``restarts``: by default
    :data:`INIT_STEPS`/:data:`RESTARTS` for K <= :data:`FEW_CLUSTERS`, else 2 and 1. Large inputs are
    fitted on a hash sample (:func:`fit_rows`)."""
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.feature import Normalizer
    from pyspark.ml.functions import array_to_vector

    if min(k, n_rows) < 2:  # Spark's KMeans needs k >= 2: one row (or K = 1) is one cluster
        first = np.asarray(rows.select("embedding").first()["embedding"], dtype=np.float64)
        return normalize_rows(first[None, :], zero_rows="keep", dtype=np.float64)
    few = k <= FEW_CLUSTERS
    init_steps = init_steps if init_steps is not None else (INIT_STEPS if few else 2)
    restarts = restarts if restarts is not None else (RESTARTS if few else 1)
    sample, n_fit = fit_rows(rows.select("id", "embedding"), n_rows, k=k, seed=seed)
    vectors = _arranged(sample, n_fit).select(array_to_vector("embedding").alias("raw"))
    unit = Normalizer(inputCol="raw", outputCol="features", p=2.0).transform(vectors)
    unit = unit.persist(StorageLevel.MEMORY_AND_DISK)
    best: tuple[float, np.ndarray] | None = None
    try:
        for attempt in range(max(1, restarts)):
            kmeans = KMeans(k=min(k, n_fit), seed=seed + attempt, initMode="k-means||", solver="block",
                            initSteps=init_steps, maxIter=max_iter, tol=tol, featuresCol="features")
            try:
                model = kmeans.fit(unit)
            except Exception as exc:
                if "UnsupportedOperation" not in type(exc).__name__ and "ml command" not in str(exc):
                    raise
                said = f"{type(exc).__name__}: {str(exc)[:200]}"
                raise SmartError(NO_SPARK_ML.format(server=said)) from exc
            cost = float(model.summary.trainingCost)
            if best is None or cost < best[0]:
                best = (cost, np.asarray([np.asarray(c, dtype=np.float64) for c in model.clusterCenters()]))
    finally:
        unit.unpersist()
        # Over Spark Connect a fitted model and its summary free their server-side copies in __del__, a
        # gRPC call; left to the cycle collector, that call can start inside another gRPC call of this
        # thread and wait on it forever (seen here: a later applyInPandas hung; pyspark's SPARK-55020 and
        # SPARK-57655 narrow that window, 4.2 still has it). Free them here, outside any call.
        model = kmeans = None
        gc.collect()
    return best[1]


def cluster_name(index: int, k: int, parent: str | None) -> str:
    """``cluster-0042`` (all rows) or ``<parent>/c07`` (inside a labelled task); zero-padded to K's width."""
    if parent is None:
        return f"cluster-{index:0{max(4, len(str(k - 1)))}d}"
    return f"{parent}/c{index:0{max(2, len(str(k - 1)))}d}"


def cluster_tasks(spark: SparkSession, instances: DataFrame, *, k: int, seed: int, split: bool,
                  sizes: dict[str, int], prepared: DataFrame, prompt_col: str | None,
                  max_iter: int = 20) -> Clustering:
    """Cluster ``instances`` (task, id, embedding) into tasks; ``sizes`` is rows per labelled task.

    ``split`` False: one K-means over all rows. True: one per labelled task, K_t = min(K, its rows)
    (tasks of one row are one cluster).
    """
    centres: dict[str | None, np.ndarray] = {}
    if not split:
        centres[None] = fit_centres(instances, sum(sizes.values()), k=k, seed=seed, max_iter=max_iter)
    else:
        for task in sorted(sizes):
            rows = instances.where(F.col("task") == task)
            centres[task] = fit_centres(rows, sizes[task], k=k, seed=seed, max_iter=max_iter)
    names = {parent: [cluster_name(i, k, parent) for i in range(len(c))]
             for parent, c in centres.items()}
    assign = functools.partial(assign_clusters, centres=centres, parent_col="task" if split else None)
    cols = ["id", "embedding", *(["task"] if split else [])]
    raw = instances.select(*cols).mapInArrow(assign, ASSIGN_SCHEMA)
    mapping = spark.createDataFrame(
        [(p, i, n) for p, ns in names.items() for i, n in enumerate(ns)],
        "parent string, cluster int, name string")
    on = [F.col("a.cluster") == F.col("m.cluster")]
    if split:
        on.append(F.col("a.parent") == F.col("m.parent"))
    assignments = (raw.alias("a").join(F.broadcast(mapping.alias("m")), on)
                   .select(F.col("a.id").alias("id"), F.col("m.name").alias("task"),
                           F.col("a.parent").alias("parent_task"), F.col("a.cluster").alias("cluster"),
                           F.col("a.similarity").alias("similarity"))
                   .persist(StorageLevel.MEMORY_AND_DISK))
    return Clustering(assignments=assignments, info=nearest_prompts(assignments, prepared, prompt_col),
                      index=mapping.select(F.col("name").alias("task"), "cluster"), fits=len(centres))


def nearest_prompts(assignments: DataFrame, prepared: DataFrame, prompt_col: str | None) -> dict[str, dict]:
    """Per cluster task: ``size``, ``cluster``, ``parent_task`` and the ``nearest`` prompts (the three
    rows most similar to the centre, ties by id; the id when there is no prompt column)."""
    sizes = assignments.groupBy("task", "cluster", "parent_task").agg(F.count(F.lit(1)).alias("size"))
    rank = Window.partitionBy("task").orderBy(F.desc("similarity"), "id")
    top = assignments.withColumn("_r", F.row_number().over(rank)).where(F.col("_r") <= NEAREST)
    if prompt_col is not None and prompt_col in prepared.columns:
        text = F.coalesce(F.col(prompt_col).cast("string"), F.col("id"))  # no prompt: the id
        top = top.join(prepared.select("id", text.alias("_text")), "id")
    else:
        top = top.withColumn("_text", F.col("id"))
    info = {r["task"]: {"cluster": int(r["cluster"]), "parent_task": r["parent_task"], "size": int(r["size"]),
                        "nearest": []} for r in sizes.collect()}
    rows = sorted(top.select("task", "_r", "_text", "similarity").collect(),
                  key=lambda r: (r["task"], r["_r"]))
    for r in rows:
        info[r["task"]]["nearest"].append({"text": r["_text"],
                                           "similarity": round(float(r["similarity"]), 4)})
    return info


def relabel(frame: DataFrame, assignments: DataFrame) -> DataFrame:
    """``frame`` (with ``id`` and ``task``) with ``task`` replaced by each row's cluster task."""
    return frame.drop("task").join(assignments.select("id", "task"), "id").select(*frame.columns)


def clusters_frame(assignments: DataFrame, run_id: str) -> DataFrame:
    """The ``clusters`` table's rows for one run: every row's cluster task, index and cosine to it."""
    return assignments.select(F.lit(run_id).alias("run_id"), "id", "task", "parent_task", "cluster",
                              "similarity")


def cluster_into_tasks(spark: SparkSession, prepared: DataFrame, instances: DataFrame, *, k: int, seed: int,
                       split: bool, storage: StorageLevel = StorageLevel.MEMORY_AND_DISK_DESER,
                       ) -> tuple[DataFrame, Clustering]:
    """The instances relabelled with their k-means cluster task (persisted at ``storage``; ``instances`` is
    unpersisted) and the clustering (``split`` False: K over all rows; True: K per labelled task)."""
    sizes = {r["task"]: int(r["count"]) for r in instances.groupBy("task").count().collect()}
    clustering = cluster_tasks(spark, instances, k=k, seed=seed, split=split, sizes=sizes, prepared=prepared,
                               prompt_col=PROMPT_COLUMN)
    relabelled = relabel(instances, clustering.assignments).persist(storage)
    relabelled.count()
    instances.unpersist()
    return relabelled, clustering
