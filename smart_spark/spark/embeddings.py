"""Embeddings for a DataFrame's text column, through the Delta ``embeddings`` cache (docs/tables.md).

Cache rows: ``model`` string (:func:`~smart_spark.embed.model_folder.model_id`: name, folder fingerprint,
truncation length and, for bfloat16, ``/bf16-fixed``: the two precisions never share a key), ``text_sha256``
string (hex SHA-256 of the UTF-8 text), ``dim`` int, ``embedding``
array<float>, ``created_at`` timestamp, ``tokens`` int (the text's token count before truncation, so a
cached rerun counts truncated prompts without the tokenizer; absent from caches made before it). Rows
are only ever added (``merge_insert_new`` on (model, text_sha256)).
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

from pyspark import StorageLevel
from pyspark.sql import functions as F

from smart_spark.delta import delta_io
from smart_spark.embed.device import resolve_device, resolve_precision
from smart_spark.embed.model_folder import embedding_dim, model_id
from smart_spark.errors import SmartError
from smart_spark.spark.parallelism import TASKS_PER_SLOT, task_slots
from smart_spark.spark.progress import describe, watch
from smart_spark.udfs.embed import embed_udf, executor_precision
from smart_spark.udfs.text import token_count_udf

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from smart_spark.delta.delta_io import TableRef

_SHA = "__smartspark_text_sha256"
_TEXT = "__smartspark_text"
_STORED = "__smartspark_stored_sha256"
#: Embedding tasks hold at most this many texts (a task buffers a window of texts, and a retried task
#: redoes its whole partition).
_TEXTS_PER_TASK = 20_000
log = logging.getLogger(__name__)


def text_sha256(col: Column | str) -> Column:
    """Hex SHA-256 (64 lowercase characters) of the UTF-8 bytes of a string column; null stays null."""
    return F.sha2(F.col(col) if isinstance(col, str) else col, 256)


def _embed_partitions(spark: SparkSession, n_texts: int, batch_size: int) -> int:
    """Partitions for embedding ``n_texts``: up to :data:`~smart_spark.spark.parallelism.TASKS_PER_SLOT`
    per task slot of the cluster (finished tasks are what the progress lines count), but at least
    ``batch_size`` texts (one full forward pass) per partition, and at most :data:`_TEXTS_PER_TASK` texts
    per partition."""
    wanted = min(TASKS_PER_SLOT * task_slots(spark), math.ceil(n_texts / max(1, batch_size)))
    return max(1, wanted, math.ceil(n_texts / _TEXTS_PER_TASK))


def by_length(df: DataFrame, text_col: str, key_col: str, parts: int) -> DataFrame:
    """``df`` in ``parts`` partitions of contiguous text-length ranges, the longest texts in partition 0.

    Each embedding task then holds texts of similar length (little padding in its forward passes), and
    the costliest tasks are scheduled first (Spark launches low partition indices first), so the last
    ones to finish are short: no core idles long at the end of the stage. Length in characters stands
    in for tokens; ties are ordered by ``key_col`` (the text's hash)."""
    return df.repartitionByRange(parts, F.length(F.col(text_col)).desc(), F.col(key_col))


def embed_uncached(
    spark: SparkSession,
    df: DataFrame,
    *,
    text_col: str,
    model: str | None,
    max_length: int = 256,
    batch_size: int = 64,
    device: str = "auto",
    out_col: str = "embedding",
    precision: str = "float32",
    max_tokens: int | None = None,
    tokens_col: str | None = None,
) -> tuple[DataFrame, dict[str, Any]]:
    """Like :func:`embed_with_cache` with no cache table: each distinct text is embedded once (in memory,
    persisted) and joined back; nothing is written. For notebooks that must not write."""
    if out_col in df.columns:
        raise SmartError(f"column {out_col!r} already exists; it would be overwritten by the embeddings")
    precision = job_precision(spark, precision, device)
    key, dim = model_id(model, max_length, precision), embedding_dim(model)
    keyed = df.withColumn(_SHA, text_sha256(text_col))
    distinct = keyed.select(F.col(_SHA).alias(_STORED), F.col(text_col).alias(_TEXT))
    distinct = distinct.dropDuplicates([_STORED])
    n_texts = distinct.count()
    embedded = embed_udf(model, max_length=max_length, batch_size=batch_size, device=device,
                         precision=precision, max_tokens=max_tokens, with_tokens=True)(F.col(_TEXT))
    tokens = [embedded["tokens"].alias(tokens_col)] if tokens_col else []
    parts = _embed_partitions(spark, max(n_texts, 1), batch_size)
    vectors = (by_length(distinct, _TEXT, _STORED, parts)
               .select(_STORED, embedded["embedding"].alias(out_col), *tokens)
               .persist(StorageLevel.MEMORY_AND_DISK))
    out = keyed.join(vectors, F.col(_SHA) == F.col(_STORED), "left").drop(_SHA, _STORED)
    return out, {"texts": n_texts, "cache_hits": 0, "embedded": n_texts, "model": key, "dim": dim}


def count_truncated(df: DataFrame, *, text_col: str, model: str | None, max_length: int) -> dict[str, Any]:
    """How many texts the encoder truncates: ``truncated_rows`` (rows of ``df``), ``truncated_texts``
    (distinct texts), ``truncated_share`` (of the rows), ``max_tokens`` (the effective limit). Tokenizer
    only, once per distinct text."""
    from smart_spark.embed.model_folder import effective_max_length

    limit = effective_max_length(model, max_length)
    sha = text_sha256(text_col)
    distinct = df.select(sha.alias(_STORED), F.col(text_col).alias(_TEXT)).dropDuplicates([_STORED])
    counted = distinct.select(_STORED, token_count_udf(model)(F.col(_TEXT)).alias("tokens"))
    long_texts = counted.where(F.col("tokens") > limit).select(_STORED)
    row = (df.select(sha.alias(_SHA)).join(long_texts, F.col(_SHA) == F.col(_STORED), "left")
           .agg(F.count(F.lit(1)).alias("rows"), F.count(_STORED).alias("truncated_rows"),
                F.countDistinct(_STORED).alias("truncated_texts")).first())
    rows = int(row["rows"] or 0)
    truncated = int(row["truncated_rows"] or 0)
    return {"max_tokens": limit, "truncated_rows": truncated, "truncated_texts": int(row["truncated_texts"]),
            "truncated_share": round(truncated / rows, 6) if rows else 0.0}


def text_stats(df: DataFrame, *, text_col: str, tokens_col: str, model: str | None,
               max_length: int) -> dict[str, Any]:
    """What the encoder makes of the texts, in one Spark job over ``df`` (``task``, ``text_col``, and
    ``tokens_col``: untruncated token counts, as :func:`embed_with_cache` gives them):
    ``max_tokens`` (the effective limit), ``truncated_rows``, ``truncated_texts`` (distinct),
    ``truncated_share`` (of the rows), ``distinct_texts``, ``repeated_in_task`` (rows whose (task, text)
    pair occurred before) and ``texts_in_several_tasks``. Texts without a count (a cache made before
    counts were stored) are counted by the tokenizer (:func:`count_truncated`)."""
    from smart_spark.embed.model_folder import effective_max_length

    limit = effective_max_length(model, max_length)
    pairs = df.groupBy("task", text_sha256(text_col).alias(_SHA)).agg(
        F.count(F.lit(1)).alias("n"), F.max(tokens_col).alias("tokens"),
        F.max(F.col(tokens_col).isNull().cast("int")).alias("unknown"))
    texts = pairs.groupBy(_SHA).agg(
        F.count(F.lit(1)).alias("tasks"), F.sum("n").alias("rows"), F.max("tokens").alias("tokens"),
        F.max("unknown").alias("unknown"))
    long_text = (F.col("tokens") > limit).cast("long")
    row = texts.agg(
        F.count(F.lit(1)).alias("distinct_texts"), F.sum("rows").alias("rows"), F.sum("tasks").alias("pairs"),
        F.sum((F.col("tasks") > 1).cast("long")).alias("several"),
        F.sum(F.col("rows") * long_text).alias("truncated_rows"), F.sum(long_text).alias("truncated_texts"),
        F.sum("unknown").alias("unknown"),
    ).first()
    rows = int(row["rows"] or 0)
    out: dict[str, Any] = {
        "distinct_texts": int(row["distinct_texts"] or 0),
        "repeated_in_task": rows - int(row["pairs"] or 0),
        "texts_in_several_tasks": int(row["several"] or 0)}
    if row["unknown"]:
        log.info("embed: %s cached texts have no token count (an older cache): running the tokenizer",
                 f"{int(row['unknown']):,}")
        out.update(count_truncated(df, text_col=text_col, model=model, max_length=max_length))
        return out
    truncated = int(row["truncated_rows"] or 0)
    out.update(max_tokens=limit, truncated_rows=truncated, truncated_texts=int(row["truncated_texts"] or 0),
               truncated_share=round(truncated / rows, 6) if rows else 0.0)
    return out


def job_precision(spark: SparkSession, precision: str, device: str) -> str:
    """``precision`` resolved once for the whole job (``float32`` or ``bfloat16``), so every task embeds
    alike and the cache key is known on the driver: ``auto`` is decided on the driver in local mode, and
    by one executor task on a cluster (whose workers may have GPUs or CPUs the driver lacks)."""
    if precision != "auto":
        return resolve_precision(precision, "cpu")  # checks the name; executors check their device
    try:
        master = str(spark.conf.get("spark.master", "") or "")
    except Exception:  # Spark Connect may not expose it: ask an executor
        master = ""
    if master.startswith("local"):
        return resolve_precision("auto", resolve_device(device))
    return executor_precision(spark, "auto", device)


def keeps_float32(cache: DataFrame, float32_key: str, bfloat16_key: str) -> bool:
    """Whether ``auto`` stays float32 on this cache: it holds vectors under ``float32_key`` and none under
    ``bfloat16_key`` (a cache made while ``auto`` meant float32 on CPUs), so a rerun neither embeds its
    texts again nor changes its mixture. One small Spark job over the cache's ``model`` column."""
    found = {r["model"] for r in cache.where(F.col("model").isin(float32_key, bfloat16_key))
             .select("model").distinct().collect()}
    return float32_key in found and bfloat16_key not in found


def embed_with_cache(
    spark: SparkSession,
    df: DataFrame,
    *,
    text_col: str,
    model: str | None,
    cache: TableRef,
    max_length: int = 256,
    batch_size: int = 64,
    device: str = "auto",
    out_col: str = "embedding",
    precision: str = "float32",
    max_tokens: int | None = None,
    tokens_col: str | None = None,
) -> tuple[DataFrame, dict[str, Any]]:
    """``df`` plus ``out_col`` (array<float>, the embedding of ``text_col``), and stats.

    Only texts not yet cached for this model are embedded, once per distinct text (the UDF's output goes
    straight into the cache table by MERGE, then every row's embedding is read back from the cache, so the
    encoder runs at most once per text). Stats: ``texts`` distinct texts, ``cache_hits`` of them already
    cached, ``embedded`` embedded now, ``model`` the cache key (ends in ``/bf16-fixed`` when the resolved
    ``precision`` is bfloat16; ``auto``: :func:`job_precision`, but float32 where :func:`keeps_float32`),
    ``dim`` the embedding width.
    ``max_tokens``: padded tokens per forward pass (``batch_size`` rows at most either way).
    ``tokens_col``: also a column of untruncated token counts (int; stored with new vectors, null for
    texts cached before the cache stored counts).
    SmartError when ``out_col`` already exists or the cache holds vectors of another width for one of the
    texts under this model's key.
    The result is lazy; the caller persists it if it is used more than once.
    """
    if text_col not in df.columns:
        raise SmartError(f"text column {text_col!r} is not in the data")
    if out_col in df.columns:
        raise SmartError(f"column {out_col!r} already exists; it would be overwritten by the embeddings")
    asked, precision = precision, job_precision(spark, precision, device)
    key = model_id(model, max_length, precision)
    dim = embedding_dim(model)
    keyed = df.withColumn(_SHA, text_sha256(text_col))

    stored = None
    counts_stored = True  # the cache has (or will be created with) the ``tokens`` column
    if delta_io.exists(spark, cache):
        table = delta_io.read(spark, cache)
        if asked == "auto" and precision == "bfloat16":
            float32_key = model_id(model, max_length, "float32")
            if keeps_float32(table, float32_key, key):
                log.info("embed: the cache holds float32 vectors of this model and no bfloat16 ones: "
                         "auto stays float32 (--precision bfloat16 to switch)")
                precision, key = "float32", float32_key
        counts_stored = "tokens" in table.columns
        cached = table.where(F.col("model") == F.lit(key))
        stored = cached.select(F.col("text_sha256").alias(_STORED), F.col("dim").alias("_dim"))
        stored = stored.dropDuplicates([_STORED])

    distinct = keyed.select(_SHA, F.col(text_col).alias(_TEXT)).dropDuplicates([_SHA])
    distinct = distinct.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        # One job: distinct texts, how many are not cached yet, and cached vectors of the wrong width.
        looked_up = distinct.select(_SHA) if stored is None else distinct.select(_SHA).join(
            stored, F.col(_SHA) == F.col(_STORED), "left")
        stored_col = F.col(_STORED) if stored is not None else F.lit(None)
        wrong_dim = F.col("_dim") if stored is not None else F.lit(None).cast("int")
        wrong_dim = F.when(wrong_dim != F.lit(dim), wrong_dim)
        describe(spark, "embed", "look up the embeddings cache")
        counts = looked_up.agg(F.count(F.lit(1)).alias("texts"),
                               F.sum(stored_col.isNull().cast("long")).alias("missing"),
                               F.max(wrong_dim).alias("wrong_dim")).first()
        if counts["wrong_dim"] is not None:
            raise SmartError(
                f"{cache}: cached embeddings of model {key} have dim {counts['wrong_dim']}, but the model "
                f"gives {dim}; remove those rows or use another --embeddings-table")
        n_texts, n_missing = int(counts["texts"]), int(counts["missing"] or 0)
        log.info("embed: %s distinct texts, %s cached, %s to embed", f"{n_texts:,}",
                 f"{n_texts - n_missing:,}", f"{n_missing:,}")
        if n_missing:
            missing = distinct if stored is None else distinct.join(
                stored, F.col(_SHA) == F.col(_STORED), "left_anti")
            # One UDF (one Python worker per task) gives the vector and the untruncated token count.
            embedded = embed_udf(model, max_length=max_length, batch_size=batch_size, device=device,
                                 precision=precision, max_tokens=max_tokens, with_tokens=True)(F.col(_TEXT))
            # Few bytes but much compute: spread over the cluster (AQE would coalesce the shuffle output
            # of a few MB of text into one task).
            parts = _embed_partitions(spark, n_missing, batch_size)
            missing = by_length(missing, _TEXT, _SHA, parts)
            tokens = [embedded["tokens"].alias("tokens")] if counts_stored else []
            new = missing.select(
                F.lit(key).alias("model"),
                F.col(_SHA).alias("text_sha256"),
                F.lit(dim).cast("int").alias("dim"),
                embedded["embedding"].alias("embedding"),
                F.current_timestamp().alias("created_at"),
                *tokens,
            )
            info = {"operation": "embed", "model": key}
            describe(spark, "embed", f"embed {n_missing:,} prompts")
            with watch(spark, "embed", rows=n_missing, unit="texts", tasks=parts):
                delta_io.merge_insert_new(spark, new, cache, keys=["model", "text_sha256"], commit_info=info)
    finally:
        distinct.unpersist()

    stats = {"texts": n_texts, "cache_hits": n_texts - n_missing, "embedded": n_missing}
    stats.update(model=key, dim=dim)
    if n_texts == 0:
        out = df.withColumn(out_col, F.lit(None).cast("array<float>"))
        return (out.withColumn(tokens_col, F.lit(None).cast("int")) if tokens_col else out), stats
    # A concurrent run may have stored the same key too (see delta_io): keep one row per key.
    table = delta_io.read(spark, cache)
    if tokens_col:
        count = F.col("tokens") if "tokens" in table.columns else F.lit(None).cast("int")
        tokens = [count.alias(tokens_col)]
    else:
        tokens = []
    vectors = (
        table.where(F.col("model") == F.lit(key))
        .select(F.col("text_sha256").alias(_STORED), F.col("embedding").alias(out_col), *tokens)
        .dropDuplicates([_STORED])
    )
    out = keyed.join(vectors, F.col(_SHA) == F.col(_STORED), "left").drop(_SHA, _STORED)
    return out, stats  # df's columns in order, then out_col (and tokens_col)
