"""Semantic decontamination: remove every instance whose prompt is a near copy of an evaluation prompt.

The evaluation prompts (a table or file with an id and a prompt column) are embedded with the job's encoder
through the same Delta cache (or, with ``--embedding-col``, carry that column themselves). Their (m, d) unit
embeddings go to the executors with the search function (:mod:`smart_spark.udfs.decontaminate`), which
compares each partition's instances in blocked matrix products: only the matches leave the executors. An
instance is removed when its cosine to some evaluation prompt is at least the threshold, or when its
normalised prompt text (trimmed, whitespace runs collapsed, lower case) hashes like one (an exact copy, caught
whatever the threshold). The evaluation set is held whole on the driver and in every task: meant for benchmark
test sets (10^4-10^5 prompts; 50,000 x 384 floats are 77 MB).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from pyspark import StorageLevel
from pyspark.sql import functions as F

from smart_spark.core.greedy import normalize_rows
from smart_spark.errors import SmartError
from smart_spark.spark.reader import OUTPUT_COLUMNS, PROMPT_COLUMN, InputSpec, embedding_array, read_input
from smart_spark.udfs.decontaminate import MATCH_SCHEMA, nearest_eval

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from smart_spark.delta.delta_io import TableRef
    from smart_spark.embed.settings import EncoderSettings

#: Columns the ``decontaminated`` table adds after the input's own (and run_id, task, stratum, id).
MATCH_COLUMNS = ("eval_id", "similarity", "match")
KEY_COL = "_prompt_key"
EXAMPLES = 5
EXAMPLE_CHARS = 300


def prompt_key(col: Column | str) -> Column:
    """Hash (hex SHA-256) of a prompt after trimming, collapsing whitespace and lower-casing: the key of
    an exact copy."""
    text = F.col(col) if isinstance(col, str) else col
    return F.sha2(F.lower(F.trim(F.regexp_replace(text, r"\s+", " "))), 256)


@dataclass
class EvalSet:
    """The evaluation prompts on the driver: ids (sorted), (m, d) unit embeddings, key -> row."""

    ids: list[str]
    prompts: list[str]
    embeddings: np.ndarray
    keys: dict[str, int] = field(default_factory=dict)


@dataclass
class Decontamination:
    """What was removed: ``matches`` (id, eval_id, similarity, match; persisted), counts and examples."""

    matches: DataFrame
    removed: int
    exact: int
    per_task: dict[str, int]
    examples: list[dict[str, Any]]
    eval_prompts: int
    threshold: float

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts for ``runs.metrics`` and the report."""
        return {"eval_prompts": self.eval_prompts, "threshold": self.threshold, "removed": self.removed,
                "exact": self.exact, "per_task": self.per_task, "examples": self.examples}


def read_eval_set(spark: SparkSession, source: str, *, id_col: str, prompt_col: str,
                  embedding_col: str | None) -> DataFrame:
    """The evaluation prompts of ``--decontaminate`` as (eval_id, _text[, embedding]), lazy; checked for
    what reading can tell (the source exists, its columns), so a wrong path fails before any work."""
    try:
        raw, _ = read_input(spark, InputSpec(input=source))
    except SmartError as exc:  # read_input words its errors for --input
        raise SmartError(str(exc).replace("--input", "--decontaminate")) from exc
    for flag, col in (("decontaminate-id-col", id_col), ("decontaminate-prompt-col", prompt_col)):
        if col not in raw.columns:
            raise SmartError(f"--{flag} {col!r} is not a column of --decontaminate {source} "
                             f"(columns: {', '.join(raw.columns)})")
    try:
        emb = [embedding_array(raw, embedding_col).alias("embedding")] if embedding_col else []
    except SmartError as exc:
        raise SmartError(f"--decontaminate {source}: {exc}") from exc
    return raw.select(F.col(id_col).cast("string").alias("eval_id"), F.col(prompt_col).alias("_text"), *emb)


def load_eval_set(frame: DataFrame, source: str, *, embed: Any, dim: int) -> EvalSet:
    """Check and embed the evaluation prompts of :func:`read_eval_set` (``source`` names them in errors).

    ``embed(frame, text_col)`` embeds a frame's text column (the job's encoder and cache) and returns
    it with an ``embedding`` column; None when the frame carries its own (``--embedding-col``), which must
    then be non-null and ``dim`` wide, like the instances'. Blank prompts get no exact-copy key (an empty
    instance prompt is no copy of anything).
    """
    bad = frame.where(F.col("eval_id").isNull() | F.col("_text").isNull()).select("eval_id").first()
    if bad is not None:
        raise SmartError(f"--decontaminate {source}: a row has a null id or prompt (id {bad['eval_id']!r})")
    if embed is not None:
        frame = embed(frame, "_text")
    rows = frame.select("eval_id", "_text", prompt_key("_text").alias("key"), "embedding").collect()
    if not rows:
        raise SmartError(f"--decontaminate {source} has no rows")
    rows.sort(key=lambda r: r["eval_id"])
    ids = [r["eval_id"] for r in rows]
    dup = next((a for a, b in zip(ids, ids[1:]) if a == b), None)
    if dup is not None:
        raise SmartError(f"--decontaminate {source}: id {dup!r} appears more than once")
    wrong = next((r for r in rows if r["embedding"] is None or len(r["embedding"]) != dim), None)
    if wrong is not None:
        got = "a null embedding" if wrong["embedding"] is None else f"{len(wrong['embedding'])} dimensions"
        raise SmartError(f"--decontaminate {source}: id {wrong['eval_id']!r} has {got}; the instances' "
                         f"embeddings have {dim}")
    E = normalize_rows(np.asarray([r["embedding"] for r in rows], dtype=np.float32), zero_rows="keep")
    keys: dict[str, int] = {}
    for i, r in enumerate(rows):
        if r["_text"].strip():
            keys.setdefault(r["key"], i)
    return EvalSet(ids=ids, prompts=[r["_text"] for r in rows], embeddings=E, keys=keys)


def find_matches(instances: DataFrame, evals: EvalSet, *, threshold: float) -> DataFrame:
    """(id, eval_id, similarity, match) of every instance that matches an evaluation prompt.

    ``instances`` has ``id`` and ``embedding``, and optionally ``_prompt_key`` (:func:`prompt_key`).
    """
    key_col = KEY_COL if KEY_COL in instances.columns else None
    cols = ["id", "embedding", *([key_col] if key_col else [])]
    search = functools.partial(nearest_eval, evals=evals.embeddings, eval_ids=evals.ids,
                               eval_keys=evals.keys if key_col else {}, threshold=threshold,
                               key_col=key_col)
    return instances.select(*cols).mapInArrow(search, MATCH_SCHEMA)


def decontaminate(instances: DataFrame, prepared: DataFrame, evals: EvalSet, *, threshold: float,
                  prompt_col: str | None) -> tuple[DataFrame, Decontamination]:
    """``instances`` without the matched rows, and what was removed (counts per task, a few examples)."""
    matches = find_matches(instances, evals, threshold=threshold).persist(StorageLevel.MEMORY_AND_DISK)
    tasks = instances.select("id", "task")
    counted = matches.join(tasks, "id")
    per_task = {r["task"]: int(r["n"]) for r in
                counted.groupBy("task").agg(F.count(F.lit(1)).alias("n")).orderBy("task").collect()}
    exact = matches.where(F.col("match") == "exact").count()
    shown = counted.orderBy(F.desc("similarity"), "id").limit(EXAMPLES)
    if prompt_col is not None and prompt_col in prepared.columns:
        shown = shown.join(prepared.select("id", F.col(prompt_col).alias("prompt")), "id")
    else:
        shown = shown.withColumn("prompt", F.lit(None).cast("string"))
    by_id = dict(zip(evals.ids, evals.prompts))
    examples = [{"task": r["task"], "id": r["id"], "prompt": shortened(r["prompt"]),
                 "eval_id": r["eval_id"], "eval_prompt": shortened(by_id.get(r["eval_id"])),
                 "similarity": round(float(r["similarity"]), 4), "match": r["match"]}
                for r in sorted(shown.collect(), key=lambda r: (-r["similarity"], r["id"]))]
    kept = instances.join(matches.select("id"), "id", "left_anti")
    info = Decontamination(matches=matches, removed=sum(per_task.values()), exact=exact, per_task=per_task,
                           examples=examples, eval_prompts=len(evals.ids), threshold=threshold)
    return kept, info


def shortened(text: str | None, limit: int = EXAMPLE_CHARS) -> str | None:
    """``text`` cut to ``limit`` characters (an ellipsis marks the cut): examples stay readable in
    ``runs.metrics`` and the report; the ``decontaminated`` table keeps the whole rows."""
    return text if text is None or len(text) <= limit else text[: limit - 1] + "…"


def decontaminated_frame(prepared: DataFrame, matches: DataFrame, *, run_id: str,
                         embedding_col: str | None) -> DataFrame:
    """The ``decontaminated`` table's rows: the removed input rows (every input column except the
    embedding), run_id, task, stratum, id, then eval_id, similarity, match."""
    keep = [c for c in prepared.columns if c not in (*OUTPUT_COLUMNS, PROMPT_COLUMN, embedding_col)
            and c not in MATCH_COLUMNS]
    return (prepared.join(matches, "id").withColumn("run_id", F.lit(run_id))
            .select(*keep, "run_id", "task", "stratum", "id", *MATCH_COLUMNS))


def eval_embedder(spark: SparkSession, *, model: str | None, cache: TableRef | None, max_length: int,
                  batch_size: int, device: str, precision: str = "float32", max_tokens: int | None = None):
    """``embed(frame, text_col)`` for :func:`load_eval_set`: the job's encoder (same precision and token
    budget as the instances) through its cache, or in memory when ``cache`` is None."""
    from smart_spark.spark.embeddings import embed_uncached, embed_with_cache

    options = dict(model=model, max_length=max_length, batch_size=batch_size, device=device,
                   precision=precision, max_tokens=max_tokens)

    def embed(frame: DataFrame, text_col: str) -> DataFrame:
        if cache is None:
            out, _ = embed_uncached(spark, frame, text_col=text_col, **options)
        else:
            out, _ = embed_with_cache(spark, frame, text_col=text_col, cache=cache, **options)
        return out

    return embed


def remove_contaminated(spark: SparkSession, prepared: DataFrame, instances: DataFrame, eval_frame: DataFrame,
                        dim: int, *, source: str, threshold: float, encoder: EncoderSettings | None,
                        cache: TableRef | None, storage: StorageLevel = StorageLevel.MEMORY_AND_DISK_DESER,
                        ) -> tuple[DataFrame, Decontamination]:
    """The instances that match no evaluation prompt of ``source`` (persisted at ``storage``; ``instances``
    is unpersisted) and what was removed. Exact copies are keyed on the prepared prompt
    (:data:`PROMPT_COLUMN`, whatever it came from: a column, ``--prompt-expr`` or chat turns).
    ``eval_frame``: from :func:`read_eval_set`; ``dim``: the instances' embedding width; ``encoder``: how
    the evaluation prompts are embedded (through ``cache``), None when they carry the ``--embedding-col``
    themselves."""
    embed = None if encoder is None else eval_embedder(spark, cache=cache, **encoder.options())
    evals = load_eval_set(eval_frame, source, embed=embed, dim=dim)
    kept, removed = decontaminate(instances, prepared, evals, threshold=threshold, prompt_col=PROMPT_COLUMN)
    kept = kept.drop(KEY_COL).persist(storage)
    if kept.count() == 0:
        raise SmartError(f"--decontaminate {source} removed every instance "
                         f"({removed.removed:,}); raise --decontamination-threshold")
    instances.unpersist()
    return kept, removed
