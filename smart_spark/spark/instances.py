"""The instances every later stage works on: (task, stratum, id, embedding) rows, from a precomputed
column or from the encoder through the embedding cache."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyspark import StorageLevel
from pyspark.sql import functions as F

from smart_spark.spark.decontaminate import KEY_COL, prompt_key
from smart_spark.spark.reader import PROMPT_COLUMN, embedding_array

#: Spark storage levels the instances may be kept at between stages (``--instance-storage``), the first
#: the default: what ``DataFrame.persist()`` gives. ``DISK_ONLY`` keeps no instance on the heap.
INSTANCE_STORAGE = ("MEMORY_AND_DISK_DESER", "MEMORY_AND_DISK", "DISK_ONLY")

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from smart_spark.delta.delta_io import TableRef
    from smart_spark.embed.settings import EncoderSettings


def embed_instances(spark: SparkSession, prepared: DataFrame, *, embedding_col: str | None,
                    encoder: EncoderSettings, cache: TableRef | None,
                    prompt_keys: bool = False) -> tuple[DataFrame, dict[str, Any] | None]:
    """(task, stratum, id, embedding) rows of ``prepared`` and the embedding stats (None for a
    precomputed ``embedding_col``). Otherwise the prompts are embedded with ``encoder``, through the
    ``cache`` table (None: in memory, nothing written).

    With ``prompt_keys`` (for decontamination) the rows also carry the hash of the normalised prompt
    (``KEY_COL``; exact copies of evaluation prompts)."""
    key = [prompt_key(PROMPT_COLUMN).alias(KEY_COL)] if prompt_keys else []
    if embedding_col is not None:
        emb = embedding_array(prepared, embedding_col).alias("embedding")
        return prepared.select("task", "stratum", "id", *key, emb), None
    from smart_spark.spark.embeddings import embed_uncached, embed_with_cache, text_stats

    texts = prepared.select("task", "stratum", "id", *key, F.col(PROMPT_COLUMN).alias("_text"))
    options = dict(text_col="_text", **encoder.options(), tokens_col="_tokens")
    if cache is None:
        instances, stats = embed_uncached(spark, texts, **options)
    else:
        instances, stats = embed_with_cache(spark, texts, cache=cache, **options)
    # Truncated and repeated prompts, from the cached token counts: no tokenizer on a cached rerun.
    stats.update(text_stats(instances.select("task", "_text", "_tokens"), text_col="_text",
                            tokens_col="_tokens", model=encoder.model, max_length=encoder.max_length))
    return instances.select("task", "stratum", "id", *([KEY_COL] if key else []), "embedding"), stats


def storage_level(name: str) -> StorageLevel:
    """The :class:`pyspark.StorageLevel` called ``name`` (one of :data:`INSTANCE_STORAGE`).

    >>> storage_level("DISK_ONLY") == StorageLevel.DISK_ONLY
    True
    """
    if name not in INSTANCE_STORAGE:
        raise ValueError(f"instance storage must be one of {', '.join(INSTANCE_STORAGE)}, got {name!r}")
    return getattr(StorageLevel, name)
