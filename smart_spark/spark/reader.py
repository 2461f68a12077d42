"""Read the task-labelled instruction table and check it before any work is done.

``read_input`` opens a Delta folder, Parquet, JSON Lines or a catalog table (recording the Delta version
read); ``prepare_instances`` validates columns and values and adds the job's own columns:
``task`` (string), ``stratum`` (string or null), ``id`` (string). Every check raises
:class:`SmartError` naming the column and the problem.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from smart_spark.delta import tables as delta_io
from smart_spark.errors import SmartError

#: Columns the job adds to the mixture; input columns with these names clash unless they are the mapped ones.
OUTPUT_COLUMNS = ("run_id", "task", "stratum", "id", "selection_rank", "selection_gain")
_TABLE_NAME = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*){0,2}$")
_ID_SEPARATOR = "\u001f"


@dataclass(frozen=True)
class InputSpec:
    """Where the instruction table is and which of its columns mean what (the job's input settings)."""

    input: str
    input_format: str = "auto"
    task_col: str = "task"
    prompt_col: str = "prompt"
    response_col: str = "response"
    id_col: str | None = None
    stratum_col: str | None = None
    embedding_col: str | None = None


def local_path(path: str) -> str | None:
    """The local filesystem path of ``path`` (``file:`` URIs included), None for other schemes."""
    if path.startswith("file:"):
        return re.sub(r"^file:(//)?", "", path) or "/"
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", path):
        return None
    return path


def detect_format(path: str) -> str:
    """``auto`` resolution: Delta when ``_delta_log/`` exists, else by extension (or the folder's files)."""
    local = local_path(path)
    if local is not None and os.path.isdir(os.path.join(local, "_delta_log")):
        return "delta"
    lowered = path.lower().rstrip("/")
    if lowered.endswith(".parquet"):
        return "parquet"
    if lowered.endswith((".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz")):
        return "json"
    if local is not None and os.path.isdir(local):
        names = [n.lower() for n in os.listdir(local) if not n.startswith((".", "_"))]
        if any(n.endswith(".parquet") for n in names):
            return "parquet"
        if any(n.endswith((".json", ".jsonl", ".ndjson")) for n in names):
            return "json"
        raise SmartError(f"--input {path}: cannot tell the format of this folder; give --input-format")
    if local is not None and not os.path.exists(local):
        if _TABLE_NAME.match(path):
            return "table"
        raise SmartError(f"--input {path} does not exist")
    if local is None:
        raise SmartError(f"--input {path}: cannot tell the format from the name; give --input-format")
    raise SmartError(f"--input {path}: unknown file type; give --input-format")


def read_input(spark: SparkSession, config: InputSpec) -> tuple[DataFrame, int | None]:
    """The input table and the Delta version read (None unless Delta)."""
    fmt = config.input_format if config.input_format != "auto" else detect_format(config.input)
    path = config.input
    local = local_path(path)
    if fmt in ("delta", "parquet", "json") and local is not None and not os.path.exists(local):
        raise SmartError(f"--input {path} does not exist")
    try:
        if fmt == "delta":
            ref = delta_io.TableRef(path=path)
            version = delta_io.version(spark, ref)
            if version is None:
                raise SmartError(f"--input {path} is not a Delta table")
            return delta_io.read(spark, ref, version=version), version
        if fmt == "parquet":
            return spark.read.parquet(path), None
        if fmt == "json":
            return spark.read.json(path), None
        if fmt == "table":
            if not spark.catalog.tableExists(path):
                raise SmartError(f"--input table {path} does not exist in the catalog")
            ref = delta_io.TableRef(name=path)
            version = delta_io.version(spark, ref) if delta_io.backend(spark) == "spark" else None
            return spark.table(path), version
    except SmartError:
        raise
    except Exception as exc:  # Spark's AnalysisException and friends: name the input
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SmartError(f"cannot read --input {path} as {fmt}: {first}") from exc
    raise SmartError(f"--input-format {fmt!r} is not supported")


def _require(df: DataFrame, flag: str, column: str) -> T.DataType:
    fields = {f.name: f.dataType for f in df.schema.fields}
    if column not in fields:
        raise SmartError(
            f"--{flag} {column!r} is not a column of the input (columns: {', '.join(df.columns)})"
        )
    return fields[column]


def embedding_array(df: DataFrame, column: str) -> Column:
    """The embedding column as ``array<float>``: arrays of float/double or ML vectors are accepted."""
    dtype = _require(df, "embedding-col", column)
    if isinstance(dtype, T.ArrayType) and isinstance(dtype.elementType, (T.FloatType, T.DoubleType)):
        return F.col(column).cast(T.ArrayType(T.FloatType()))
    if dtype.typeName() in ("vector", "udt") or type(dtype).__name__ == "VectorUDT":
        from pyspark.ml.functions import vector_to_array

        return vector_to_array(F.col(column), dtype="float32")
    raise SmartError(
        f"--embedding-col {column!r} has type {dtype.simpleString()}; expected array<float>, "
        "array<double> or an ML vector"
    )


def prepare_instances(df: DataFrame, config: InputSpec) -> DataFrame:
    """Validate the input and add ``task``, ``stratum``, ``id`` (strings); embedding column kept as is.

    Checks (each a :class:`SmartError` naming the problem): the named columns exist; input columns do not
    clash with the job's output columns; the input is not empty; no null or empty task names; no null
    prompts when the job embeds; ids unique.
    """
    return prepare_and_count(df, config)[0]


def prepare_and_count(df: DataFrame, config: InputSpec) -> tuple[DataFrame, int]:
    """:func:`prepare_instances` and the input's row count (all checks in one Spark job)."""
    _require(df, "task-col", config.task_col)
    if config.embedding_col is None:
        _require(df, "prompt-col", config.prompt_col)
    else:
        embedding_array(df, config.embedding_col)
    if config.id_col is not None:
        _require(df, "id-col", config.id_col)
    else:
        _require(df, "prompt-col", config.prompt_col)
        _require(df, "response-col", config.response_col)
    if config.stratum_col is not None:
        _require(df, "stratum-col", config.stratum_col)

    mapped = {"task": config.task_col, "id": config.id_col, "stratum": config.stratum_col}
    clashes = [
        c for c in df.columns
        if c in OUTPUT_COLUMNS and c != config.embedding_col and mapped.get(c) != c
    ]
    if clashes:
        raise SmartError(
            f"input column(s) {', '.join(clashes)} clash with the mixture's own columns; "
            "rename them or map them with --task-col/--id-col/--stratum-col"
        )

    task = F.col(config.task_col).cast("string")
    if config.id_col is not None:
        ident = F.col(config.id_col).cast("string")
    else:
        parts = [F.coalesce(F.col(c).cast("string"), F.lit("")) for c in
                 (config.task_col, config.prompt_col, config.response_col)]
        ident = F.sha2(F.concat_ws(_ID_SEPARATOR, *parts), 256)
    stratum = (F.col(config.stratum_col).cast("string") if config.stratum_col is not None
               else F.lit(None).cast("string"))
    out = df.withColumns({"task": task, "id": ident, "stratum": stratum})

    checks = [
        F.count(F.lit(1)).alias("rows"),
        F.sum((F.col("task").isNull() | (F.trim(F.col("task")) == "")).cast("long")).alias("bad_task"),
        F.sum(F.col("id").isNull().cast("long")).alias("null_id"),
        F.count_distinct(F.col("id")).alias("distinct_id"),
    ]
    if config.embedding_col is None:
        checks.append(F.sum(F.col(config.prompt_col).isNull().cast("long")).alias("null_prompt"))
    if config.stratum_col is not None:
        checks.append(F.sum(F.col("stratum").isNull().cast("long")).alias("null_stratum"))
    stats = out.agg(*checks).first().asDict()
    if not stats["rows"]:
        raise SmartError(f"--input {config.input} has no rows")
    if stats["bad_task"]:
        raise SmartError(f"--task-col {config.task_col!r} has {stats['bad_task']} null or empty task name(s)")
    if stats["null_id"]:
        raise SmartError(f"--id-col {config.id_col!r} has {stats['null_id']} null id(s)")
    if stats.get("null_prompt"):
        raise SmartError(
            f"--prompt-col {config.prompt_col!r} has {stats['null_prompt']} null prompt(s); "
            "the job embeds prompts (or give --embedding-col)"
        )
    if stats.get("null_stratum"):
        raise SmartError(f"--stratum-col {config.stratum_col!r} has {stats['null_stratum']} null value(s)")
    if stats["distinct_id"] != stats["rows"]:  # only then look for an example
        dup = out.groupBy("id").count().where("count > 1").orderBy("id").first()
        source = (f"--id-col {config.id_col!r}" if config.id_col
                  else "the generated (task, prompt, response) hash")
        raise SmartError(f"duplicate ids: {dup['id']!r} appears {dup['count']} times in {source}")
    return out, int(stats["rows"])
