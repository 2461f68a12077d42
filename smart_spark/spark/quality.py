"""The quality stage: what each mixture covers of the collection, measured on the executors.

One row per scope (``all``, then every task) with the figures of :mod:`smart_spark.core.quality`:
``coverage`` over a seeded sample of the scope's input rows, ``redundancy`` over a seeded sample of its
mixture rows, the Vendi score of a seeded sample of at most ``vendi_rows`` mixture rows. A row is in a
sample when its (xxhash64(id, seed), id) is among the scope's ``sample`` smallest: the same rows whatever
the partitioning, and all of them when the scope has no more.

Where the work happens (no input row reaches the driver): one shuffle into *parts*, one ``mapInArrow``
over them (:func:`smart_spark.udfs.quality.part_figures`), its small output cached for two collects,
and a tiny job for the parts' labels. Each sample's *candidates* are the rows whose h falls under a
bound (:func:`bound`) that a few more rows than the sample wants fall under; the samples are picked
from them:

* task parts (about :data:`TASK_PART_ROWS` rows each): the kept tasks' coverage candidates and all their
  mixture rows, whole tasks per part, packed largest first; the part picks each task's samples and
  sends back one figures row per task;
* whole parts (scope ``all``, at least :data:`MIN_WHOLE_PARTS`): the mixture rows split by hash (about
  :data:`KEY_PART_ROWS` each), a copy of every candidate of the scope's coverage and redundancy samples
  in each; per candidate its h and largest cosine to the part's mixture rows go on to one small task
  (:func:`smart_spark.udfs.quality.whole_means`) that keeps each one's maximum over the parts, picks the
  samples' rows and averages them: one row of means reaches the driver. The first whole part also gets
  the Vendi candidates and picks the sample.

Should a sample have fewer candidates than it wants (about 1 in 10^9 per sample), the pass runs again
with a bound four times as wide.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from smart_spark.core.quality import SAMPLE_ROWS, VENDI_ROWS
from smart_spark.delta import delta_io
from smart_spark.spark.run_state import SUCCEEDED
from smart_spark.udfs.quality import (
    BF16_MIN_PRODUCTS,
    KEY,
    PART_SCHEMA,
    QUERY,
    TASK,
    VENDI,
    part_figures,
    whole_means,
)

#: The scope of the whole mixture in ``mixture_quality`` (other scopes are task names).
ALL = "all"
#: Spreads of the candidates' bounds (:func:`bound`), the next one only when a sample fell short.
SPREADS = (6.0, 24.0)
LOWEST, HIGHEST = -(1 << 63), (1 << 63) - 1
#: Rows per task part (the kept tasks' coverage samples and mixture rows).
TASK_PART_ROWS = 131_072
#: Mixture rows per whole part, and the fewest whole parts (the scope ``all`` products spread over them).
KEY_PART_ROWS = 65_536
MIN_WHOLE_PARTS = 2

QUALITY_SCHEMA = (
    "run_id string, scope string, rows long, input_rows long, coverage double, redundancy double, "
    "vendi double, task_coverage double, sample_rows long, redundancy_rows long, vendi_rows long"
)
#: Scope ``all``'s figures kept in ``runs.metrics`` (``quality``).
SUMMARY = ("coverage", "redundancy", "vendi", "task_coverage", "sample_rows", "redundancy_rows", "vendi_rows")
NO_FIGURES = {"coverage": 0.0, "sample_rows": 0, "redundancy": None, "redundancy_rows": 0, "vendi": None,
              "vendi_rows": 0}


def measure_quality(instances: DataFrame, selected: DataFrame, *, input_rows: Mapping[str, int],
                    mixture_rows: Mapping[str, int], sample: int = SAMPLE_ROWS, vendi_rows: int = VENDI_ROWS,
                    seed: int = 23, whole_parts: int | None = None,
                    bf16_min_products: int = BF16_MIN_PRODUCTS) -> pd.DataFrame:
    """The figures of one mixture, one row per scope: ``all`` first, then every input task by name.

    ``instances``: (task, id, embedding) of every input row; ``selected``: the mixture's (id) rows;
    ``input_rows`` / ``mixture_rows``: rows per task of each. Columns as :data:`QUALITY_SCHEMA` without
    ``run_id``. A task without mixture rows has coverage 0 and no redundancy or Vendi score.
    ``whole_parts``: how many parts share scope ``all``'s mixture rows (default from their count);
    ``bf16_min_products``: products from which the exact bfloat16-pruned maximum is used (on CPUs with
    native bfloat16). Neither changes a figure beyond float rounding.
    """
    spark = instances.sparkSession
    n_input, n_mixture = sum(input_rows.values()), sum(mixture_rows.values())
    kept = sorted(t for t, b in mixture_rows.items() if b > 0)
    task_rows = {t: min(input_rows[t], sample) + mixture_rows[t] for t in kept}
    task_parts = max(1, math.ceil(sum(task_rows.values()) / TASK_PART_ROWS))
    part_of = pack_tasks(task_rows, task_parts)
    whole = whole_parts or max(MIN_WHOLE_PARTS, math.ceil(n_mixture / KEY_PART_ROWS))
    labels = part_labels(spark, task_parts + whole)
    rows = (instances.select("task", "id", "embedding", F.xxhash64(F.col("id"), F.lit(seed)).alias("h"))
            .join(F.broadcast(selected.select("id", F.lit(True).alias("mix"))), "id", "left")
            .withColumn("mix", F.coalesce("mix", F.lit(False))))
    for spread in SPREADS:  # a wider one only where a sample had too few candidates (~1 in 10^9)
        figures = _measure(rows, kept, part_of, labels, task_parts, input_rows, n_input, n_mixture,
                           sample, vendi_rows, spread, bf16_min_products)
        table = _figures_table(figures, input_rows, mixture_rows, kept, n_input, n_mixture, sample)
        if table is not None:
            return table
    raise RuntimeError("quality: a sample had fewer candidates than rows wanted at every spread")


def bound(rows: int, k: int, spread: float) -> int:
    """The h (a signed 64-bit xxhash) at or under which about ``k + spread (sqrt(k) + 10)`` of ``rows``
    uniformly hashed rows fall: a sample of the ``k`` smallest is among them unless the count falls
    short by ``spread`` standard deviations. The largest h (every row) when that is all of them."""
    share = (k + spread * (math.sqrt(k) + 10)) / max(rows, 1)
    return HIGHEST if rows <= k or share >= 1 else LOWEST + int(max(0.0, share) * 2**64)


def _measure(rows: DataFrame, kept: list[str], part_of: Mapping[str, int], labels: list[int],
             task_parts: int, input_rows: Mapping[str, int], n_input: int, n_mixture: int, sample: int,
             vendi_rows: int, spread: float, bf16_min_products: int) -> pd.DataFrame:
    """One pass of :func:`measure_quality`: the candidates into their parts, :func:`part_figures` there;
    its rows (``short`` ones where a sample had too few candidates)."""
    spark = rows.sparkSession
    kept_frame = spark.createDataFrame(
        [(t, True, labels[part_of[t]] * 4 + TASK, bound(input_rows[t], sample, spread)) for t in kept],
        "task string, kept boolean, task_code int, cov_bound long")
    h = F.col("h")
    rows = (rows.join(F.broadcast(kept_frame), "task", "left")
            .withColumns({"kept": F.coalesce("kept", F.lit(False)), "t_cov": h <= F.col("cov_bound"),
                          "a_cov": h <= F.lit(bound(n_input, sample, spread)),
                          "a_red": F.col("mix") & (h <= F.lit(bound(n_mixture, sample, spread))),
                          "a_ven": F.col("mix") & (h <= F.lit(bound(n_mixture, vendi_rows, spread)))}))
    whole_labels = labels[task_parts:]
    # Where each row goes: codes label * 4 + role (-1: nowhere), one output row per code.
    none = F.lit(-1)
    key_code = F.element_at(F.array(*[F.lit(v * 4 + KEY) for v in whole_labels]),
                            F.pmod(h, F.lit(len(whole_labels))).cast("int") + 1)
    codes = [
        F.when(F.col("kept") & (F.col("t_cov") | F.col("mix")), F.col("task_code")).otherwise(none),
        F.when(F.col("mix"), key_code).otherwise(none),
        *[F.when(F.col("a_cov") | F.col("a_red"), F.lit(v * 4 + QUERY)).otherwise(none)
          for v in whole_labels],
        F.when(F.col("a_ven"), F.lit(whole_labels[0] * 4 + VENDI)).otherwise(none),
    ]
    role = F.col("code").bitwiseAND(3)
    placed = (rows.withColumn("code", F.explode(F.array_remove(F.array(*codes), -1)))
              .select(F.shiftright("code", 2).alias("part"), role.alias("role"), "task", "id", "h",
                      "embedding",
                      F.when(role == TASK, F.col("t_cov")).when(role == QUERY, F.col("a_cov"))
                      .otherwise(False).alias("cov"),
                      "mix",
                      F.when(role == QUERY, F.col("a_red")).otherwise(False).alias("red"))
              .repartition(len(labels), "part"))
    compute = functools.partial(part_figures, sample=sample, vendi_rows=vendi_rows,
                                wanted={t: min(input_rows[t], sample) for t in kept},
                                whole_vendi=min(vendi_rows, n_mixture), bf16_min_products=bf16_min_products)
    out = placed.mapInArrow(compute, PART_SCHEMA).persist()
    try:  # the per-row maxima stay on the executors: one row of scope all's means comes back
        rest = out.where(F.col("kind") != "max").toPandas()
        means = functools.partial(whole_means, coverage_rows=min(sample, n_input),
                                  redundancy_rows=min(sample, n_mixture) if n_mixture >= 2 else 0)
        whole = out.where(F.col("kind") == "max").coalesce(1).mapInArrow(means, PART_SCHEMA).toPandas()
    finally:
        out.unpersist()
    return pd.concat([rest, whole], ignore_index=True)


def pack_tasks(rows: Mapping[str, int], parts: int) -> dict[str, int]:
    """Task -> part in ``0 .. parts - 1``: the largest task first, each into the part with the fewest
    rows so far (ties: the lowest part), so the parts' rows are about even."""
    load = [0] * parts
    out = {}
    for task in sorted(rows, key=lambda t: (-rows[t], t)):
        part = min(range(parts), key=lambda p: (load[p], p))
        out[task] = part
        load[part] += rows[task]
    return out


def part_labels(spark: SparkSession, parts: int) -> list[int]:
    """``parts`` int labels that Spark's hash partitioning (``pmod(hash(label), parts)``) sends to
    ``parts`` different partitions, so each part has its own task; ``0 .. parts - 1`` where no such
    labels are found (an engine that hashes otherwise: parts may then share a partition)."""
    found = (spark.range(64 * parts).select(F.col("id").cast("int").alias("v"))
             .groupBy(F.pmod(F.hash("v"), F.lit(parts)).alias("p")).agg(F.min("v").alias("v")).collect())
    labels = [r["v"] for r in sorted(found, key=lambda r: r["p"])]
    return labels if len(labels) == parts else list(range(parts))


def _figures_table(figures: pd.DataFrame, input_rows: Mapping[str, int], mixture_rows: Mapping[str, int],
                   kept: list[str], n_input: int, n_mixture: int, sample: int) -> pd.DataFrame | None:
    """:func:`part_figures`'s rows -> the :data:`QUALITY_SCHEMA` table (without ``run_id``): a candidate's
    maximum over the whole parts; scope ``all``'s samples, the candidates of smallest (h, id); means.
    None where a sample had fewer candidates than rows wanted."""
    if (figures["kind"] == "short").any():
        return None
    means = figures[figures["kind"] == "whole"]
    whole = means.iloc[0].to_dict() if len(means) else {"coverage": 0.0, "sample_rows": 0, "redundancy": None,
                                                         "redundancy_rows": 0}
    vendi = figures[figures["kind"] == "vendi"]
    everything = {
        "scope": ALL, "rows": n_mixture, "input_rows": n_input,
        "coverage": float(whole["coverage"]), "sample_rows": int(whole["sample_rows"]),
        "redundancy": None if pd.isna(whole["redundancy"]) else float(whole["redundancy"]),
        "redundancy_rows": int(whole["redundancy_rows"]),
        "vendi": float(vendi["vendi"].iloc[0]) if len(vendi) else None,
        "vendi_rows": int(vendi["vendi_rows"].iloc[0]) if len(vendi) else 0,
        "task_coverage": len(kept) / len(input_rows) if input_rows else None,
    }
    by_task = {r["scope"]: r for r in figures[figures["kind"] == "task"].to_dict("records")}
    out = [everything]
    for task in sorted(input_rows):
        found = by_task.get(task)
        task_figures = NO_FIGURES if found is None else {
            k: None if pd.isna(found[k]) else (int(found[k]) if k.endswith("rows") else float(found[k]))
            for k in NO_FIGURES}
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
