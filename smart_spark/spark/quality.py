"""The quality stage: what each mixture covers of the collection, measured on the executors.

One row per scope (``all``, then every task) with the figures of :mod:`smart_spark.core.quality`:
``coverage`` over a seeded sample of the scope's input rows, ``redundancy`` over a seeded sample of its
mixture rows, the Vendi score of a seeded sample of at most ``vendi_rows`` mixture rows. A row is in a
sample when its (xxhash64(id, seed), id) is among the scope's ``sample`` smallest: the same rows whatever
the partitioning, and all of them when the scope has no more.

Where the work happens (no input row reaches the driver):

* per task: the task's sampled rows and its mixture rows meet in one ``applyInPandas`` group (tasks
  packed into buckets of about :data:`BUCKET_ROWS` rows, :func:`udfs.quality.bucket_figures`); only one
  row per task comes back;
* scope ``all``: the sampled rows and the mixture rows are packed into blocks of at most
  :data:`QUERY_BLOCK` / :data:`KEY_BLOCK` unit vectors; every (query block, key block) pair is one
  matrix product on an executor (a cartesian product of the two block tables), and only the per-row
  maxima come back (at most 2 x ``sample`` numbers);
* Vendi of scope ``all``: its ``vendi_rows`` vectors in one executor group (with its coverage and
  redundancy too when the products are at most :data:`ONE_GROUP_PRODUCTS`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from smart_spark.core.quality import SAMPLE_ROWS, VENDI_ROWS, coverage_of, exact_mean
from smart_spark.delta import delta_io
from smart_spark.spark.run_state import SUCCEEDED
from smart_spark.udfs.quality import (
    BLOCK_SCHEMA,
    MAXIMA_SCHEMA,
    SCOPE_SCHEMA,
    block_maxima,
    bucket_figures,
    pack_block,
)

#: The scope of the whole mixture in ``mixture_quality`` (other scopes are task names).
ALL = "all"
#: Rows per packed block of the scope ``all`` products (query: sampled rows; key: mixture rows).
QUERY_BLOCK = 2_048
KEY_BLOCK = 4_096
#: Scope ``all`` is measured in one executor group when (sampled rows x mixture rows) is at most this.
ONE_GROUP_PRODUCTS = 1 << 26
#: Tasks are measured in buckets of about this many rows (one ``applyInPandas`` call each, not one a task).
BUCKET_ROWS = 32_768
#: Most partitions of each block table (the products run on (query x key) partition pairs).
BLOCK_PARTITIONS = 8

QUALITY_SCHEMA = (
    "run_id string, scope string, rows long, input_rows long, coverage double, redundancy double, "
    "vendi double, task_coverage double, sample_rows long, redundancy_rows long, vendi_rows long"
)
FLAGS = ("cov", "mix", "red", "ven")
#: Scope ``all``'s figures kept in ``runs.metrics`` (``quality``).
SUMMARY = ("coverage", "redundancy", "vendi", "task_coverage", "sample_rows", "redundancy_rows", "vendi_rows")


def measure_quality(instances: DataFrame, selected: DataFrame, *, input_rows: Mapping[str, int],
                    mixture_rows: Mapping[str, int], sample: int = SAMPLE_ROWS, vendi_rows: int = VENDI_ROWS,
                    seed: int = 23, one_group_products: int = ONE_GROUP_PRODUCTS) -> pd.DataFrame:
    """The figures of one mixture, one row per scope: ``all`` first, then every input task by name.

    ``instances``: (task, id, embedding) of every input row; ``selected``: the mixture's (id) rows;
    ``input_rows`` / ``mixture_rows``: rows per task of each. Columns as :data:`QUALITY_SCHEMA` without
    ``run_id``. A task without mixture rows has coverage 0 and no redundancy or Vendi score.
    Scope ``all`` takes one executor group when its (sampled rows x mixture rows) products are at most
    ``one_group_products``, else blocked products over the executors.
    """
    picked = selected.select("id").withColumn("mix", F.lit(True))
    rows = (instances.select("task", "id", "embedding",
                             F.xxhash64(F.col("id"), F.lit(seed)).alias("h"))
            .join(F.broadcast(picked), "id", "left").withColumn("mix", F.coalesce("mix", F.lit(False))))
    n_input, n_mixture = sum(input_rows.values()), sum(mixture_rows.values())
    kept = sorted(t for t, b in mixture_rows.items() if b > 0)
    one_group = (min(n_input, sample) + min(n_mixture, sample)) * n_mixture <= one_group_products
    parts = [_whole_rows(rows, n_input, n_mixture, sample, vendi_rows, products=one_group)
             .withColumn("bucket", F.lit(-1).cast("int"))]
    if kept:
        task_rows = sum(min(input_rows[t], sample) + mixture_rows[t] for t in kept)
        buckets = max(1, math.ceil(task_rows / BUCKET_ROWS))
        parts.append(_task_rows(rows, kept, input_rows, mixture_rows, sample, vendi_rows)
                     .withColumn("bucket", F.pmod(F.xxhash64("scope"), F.lit(buckets)).cast("int")))
    # One groupBy per part (not one over their union: Sail's union checks nullability beyond Spark's).
    figures = {(r["whole"], r["scope"]): r.asDict() for part in parts for r in (
        part.groupBy("bucket").applyInPandas(bucket_figures, SCOPE_SCHEMA).collect())}
    everything = figures[(True, ALL)]
    if not one_group:
        everything.update(_blocked_products(rows, n_input, n_mixture, sample))
    out = [{**everything, "scope": ALL, "rows": n_mixture, "input_rows": n_input,
            "task_coverage": len(kept) / len(input_rows) if input_rows else None}]
    for task in sorted(input_rows):
        task_figures = figures.get((False, task), {"coverage": 0.0, "sample_rows": 0, "redundancy": None,
                                                   "redundancy_rows": 0, "vendi": None, "vendi_rows": 0})
        out.append({**task_figures, "scope": task, "rows": int(mixture_rows.get(task, 0)),
                    "input_rows": int(input_rows[task]), "task_coverage": None})
    columns = [c.split()[0] for c in QUALITY_SCHEMA.split(", ")][1:]
    return pd.DataFrame(out)[columns]


def per_task(counts: Mapping[tuple[str, str | None], int]) -> dict[str, int]:
    """Rows per (task, stratum) group -> rows per task."""
    out: dict[str, int] = {}
    for (task, _), n in counts.items():
        out[task] = out.get(task, 0) + int(n)
    return out


def quality_summary(figures: pd.DataFrame) -> dict[str, float | int | None]:
    """Scope ``all``'s figures of :func:`measure_quality` as plain numbers (``runs.metrics``, the console)."""
    row = figures.iloc[0]
    return {k: None if pd.isna(row[k]) else (int(row[k]) if k.endswith("rows") else float(row[k]))
            for k in SUMMARY}


def comparable_runs(spark: SparkSession, refs: Mapping[str, delta_io.TableRef],
                    num_instances: int) -> list[dict]:
    """Scope ``all``'s figures of every finished (``succeeded``) run of the output whose N' is
    ``num_instances``, oldest first: run_id, strategy, coverage, redundancy, vendi, task_coverage, rows."""
    if not all(delta_io.exists(spark, refs[name]) for name in ("mixture_quality", "runs")):
        return []
    figures = (delta_io.read(spark, refs["mixture_quality"])
               .where((F.col("scope") == ALL) & F.col("task_coverage").isNotNull()))
    runs = (delta_io.read(spark, refs["runs"]).where(F.col("status") == SUCCEEDED)
            .select("run_id", "config", "finished_at"))
    out = []
    for r in figures.join(runs, "run_id").orderBy("finished_at", "run_id").collect():
        config = json.loads(r["config"])
        if config.get("num_instances") == num_instances:
            out.append({"run_id": r["run_id"], "strategy": config.get("strategy"), "rows": r["rows"],
                        **{k: r[k] for k in ("coverage", "redundancy", "vendi", "task_coverage")}})
    return out


def quality_frame(spark: SparkSession, figures: pd.DataFrame, run_id: str) -> DataFrame:
    """``figures`` (from :func:`measure_quality`) as ``mixture_quality`` rows of ``run_id``."""
    rows = [(run_id, r["scope"], int(r["rows"]), int(r["input_rows"]), *(
        None if pd.isna(r[c]) else float(r[c]) for c in ("coverage", "redundancy", "vendi", "task_coverage")),
        int(r["sample_rows"]), int(r["redundancy_rows"]), int(r["vendi_rows"]))
        for r in figures.to_dict("records")]
    return spark.createDataFrame(rows, QUALITY_SCHEMA)


def smallest(frame: DataFrame, limit: int, total: int) -> Column:
    """A boolean column: the row's (h, id) is at most the ``limit``-th smallest (h, id) of ``frame``
    (``total`` rows; every row when ``total <= limit``, without any Spark work). Applies to any frame with
    ``h`` and ``id`` columns."""
    if total <= limit:
        return F.lit(True)
    last = (frame.select("h", "id").orderBy("h", "id").limit(limit)
            .agg(F.max(F.struct("h", "id")).alias("last")).collect()[0]["last"])
    h, key = F.lit(last["h"]), F.lit(last["id"])
    return (F.col("h") < h) | ((F.col("h") == h) & (F.col("id") <= key))


def in_task_sample(frame: DataFrame, name: str, limit: int, counts: Mapping[str, int], *,
                   among: DataFrame | None = None) -> DataFrame:
    """``frame`` (with ``task``, ``id``, ``h``) plus a boolean column ``name``: the row is at most the
    ``limit``-th smallest (h, id) of its task among the rows of ``among`` (default ``frame``; ``counts``:
    its rows per task). Tasks of at most ``limit`` rows are taken whole; only the larger ones are ranked
    (one window over small columns)."""
    large = sorted(t for t, n in counts.items() if n > limit)
    if not large:
        return frame.withColumn(name, F.lit(True))
    among = frame if among is None else among
    spark = frame.sparkSession
    order = Window.partitionBy("task").orderBy("h", "id")
    last = (among.join(F.broadcast(spark.createDataFrame([(t,) for t in large], "task string")), "task")
            .select("task", "h", "id").withColumn("rank", F.row_number().over(order))
            .where(F.col("rank") == limit)
            .select("task", F.col("h").alias("last_h"), F.col("id").alias("last_id")))
    below = (F.col("last_h").isNull() | (F.col("h") < F.col("last_h"))
             | ((F.col("h") == F.col("last_h")) & (F.col("id") <= F.col("last_id"))))
    return frame.join(F.broadcast(last), "task", "left").withColumn(name, below).drop("last_h", "last_id")


def _task_rows(rows: DataFrame, kept: list[str], input_rows: Mapping[str, int],
               mixture_rows: Mapping[str, int], sample: int, vendi_rows: int) -> DataFrame:
    """The rows each kept task's group needs: its coverage sample and its mixture rows, flagged."""
    spark = rows.sparkSession
    rows = rows.join(F.broadcast(spark.createDataFrame([(t,) for t in kept], "task string")), "task")
    mix = rows.where("mix")
    counts = {t: mixture_rows[t] for t in kept}
    rows = in_task_sample(rows, "cov", sample, {t: input_rows[t] for t in kept})
    rows = in_task_sample(rows, "red", sample, counts, among=mix)
    rows = in_task_sample(rows, "ven", vendi_rows, counts, among=mix)
    rows = rows.withColumns({"red": F.col("mix") & F.col("red"), "ven": F.col("mix") & F.col("ven")})
    return (rows.where(F.col("cov") | F.col("mix"))
            .select(F.lit(False).alias("whole"), F.col("task").alias("scope"), "id", "embedding", *FLAGS))


def _whole_rows(rows: DataFrame, n_input: int, n_mixture: int, sample: int, vendi_rows: int, *,
                products: bool) -> DataFrame:
    """The rows of scope ``all``'s group: its Vendi sample and, with ``products``, also its coverage and
    redundancy samples and every mixture row (else :func:`_blocked_products` measures those)."""
    mix = rows.where("mix")
    flags = {"ven": F.col("mix") & smallest(mix, vendi_rows, n_mixture)}
    if products:
        flags.update(cov=smallest(rows, sample, n_input), red=F.col("mix") & smallest(mix, sample, n_mixture))
    else:
        flags.update(cov=F.lit(False), red=F.lit(False), mix=F.col("mix") & flags["ven"])
    flagged = rows.withColumns(flags)
    return (flagged.where(F.col("cov") | F.col("mix"))
            .select(F.lit(True).alias("whole"), F.lit(ALL).alias("scope"), "id", "embedding", *FLAGS))


def _blocked_products(rows: DataFrame, n_input: int, n_mixture: int, sample: int) -> dict:
    """Coverage and redundancy of scope ``all`` from blocked products of sampled rows x mixture rows."""
    mix = rows.where("mix")
    queries = (rows.withColumns({"cov": smallest(rows, sample, n_input),
                                 "red": F.col("mix") & smallest(mix, sample, n_mixture)})
               .where(F.col("cov") | F.col("red")))
    n_queries = min(n_input, sample) + min(n_mixture, sample)
    q_blocks = _blocks(queries, max(1, math.ceil(n_queries / QUERY_BLOCK)), "q_")
    keys = mix.withColumns({"cov": F.lit(False), "red": F.lit(False)})
    k_blocks = _blocks(keys, max(1, math.ceil(n_mixture / KEY_BLOCK)), "k_")
    maxima = (q_blocks.hint("shuffle_replicate_nl").crossJoin(k_blocks)
              .mapInPandas(block_maxima, MAXIMA_SCHEMA)
              .groupBy("id").agg(F.max("cov").alias("cov"), F.max("red").alias("red")).collect())
    cov = np.array([r["cov"] for r in maxima if r["cov"] is not None], dtype=np.float64)
    red = [r["red"] for r in maxima if r["red"] is not None]
    return {"coverage": coverage_of(cov), "sample_rows": len(cov),
            "redundancy": exact_mean(red) if n_mixture >= 2 else None,
            "redundancy_rows": len(red) if n_mixture >= 2 else 0}


def _blocks(frame: DataFrame, blocks: int, prefix: str) -> DataFrame:
    """``frame``'s rows packed into ``blocks`` blocks by their hash (:func:`udfs.quality.pack_block`),
    columns prefixed, in at most :data:`BLOCK_PARTITIONS` partitions."""
    packed = (frame.select(F.pmod(F.col("h"), F.lit(blocks)).cast("int").alias("block"), "id", "embedding",
                           "cov", "red")
              .groupBy("block").applyInPandas(pack_block, BLOCK_SCHEMA))
    packed = packed.repartition(min(blocks, BLOCK_PARTITIONS), "block")
    return packed.select(*[F.col(c).alias(prefix + c) for c in packed.columns])
