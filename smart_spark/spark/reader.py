"""Read the task-labelled instruction table and check it before any work is done.

``read_input`` opens a Delta folder, Parquet, JSON Lines or a catalog table (a Delta one pinned to the
version it records: later reads of the frame see that version too); ``prepare_instances`` validates
columns and values and adds the job's own columns:
``task`` (string), ``stratum`` (string or null), ``id`` (string), and the text to embed
(:data:`PROMPT_COLUMN`, string; never written to the mixture). Task and prompt come from a column, a
Spark SQL expression (``--task-expr``/``--prompt-expr``) or, for the prompt, a chat column
(``--messages-col``, :mod:`smart_spark.spark.chat`). Every check raises :class:`SmartError` naming the
flag, the column and the problem.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from smart_spark.delta import delta_io
from smart_spark.delta.refs import is_table_name
from smart_spark.errors import SmartError
from smart_spark.spark import chat

#: Columns the job adds to the mixture; input columns with these names clash unless they are the mapped ones.
OUTPUT_COLUMNS = ("run_id", "task", "stratum", "id", "selection_rank", "selection_gain")
#: ``--input-format`` values; ``auto`` picks Delta when ``_delta_log/`` exists, else by extension.
INPUT_FORMATS = ("auto", "delta", "parquet", "json", "table")
_ID_SEPARATOR = "\u001f"
#: The text the job embeds (derived prompt), a working column of the prepared frame only.
PROMPT_COLUMN = "__smartspark_prompt"
_TURNS = "__smartspark_turns"


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
    task_expr: str | None = None
    prompt_expr: str | None = None
    messages_col: str | None = None
    prompt_from: str = chat.DEFAULT_PROMPT_FROM
    model: str | None = None  # the encoder, whose tokenizer renders --prompt-from chat_template

    def prompt_flag(self) -> str:
        """The flag (and value) the prompt comes from, for error messages."""
        if self.messages_col is not None:
            return f"--messages-col {self.messages_col!r}"
        if self.prompt_expr is not None:
            return f"--prompt-expr {self.prompt_expr!r}"
        return f"--prompt-col {self.prompt_col!r}"

    def task_flag(self) -> str:
        """The flag (and value) the task comes from, for error messages."""
        return f"--task-expr {self.task_expr!r}" if self.task_expr else f"--task-col {self.task_col!r}"
    #: ``clusters``: tasks come from k-means later, so the task column may be absent (task ``all``).
    tasks_from: str = "column"


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
        if is_table_name(path):
            return "table"
        raise SmartError(f"--input {path} does not exist")
    if local is None:
        raise SmartError(f"--input {path}: cannot tell the format from the name; give --input-format")
    raise SmartError(f"--input {path}: unknown file type; give --input-format")


def read_input(spark: SparkSession, config: InputSpec) -> tuple[DataFrame, int | None]:
    """The input table and the Delta version read (None unless Delta), the frame pinned to that version."""
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
            if version is None:  # not a Delta table: nothing to pin
                return spark.table(path), None
            # Pinned (time travel): every evaluation of this frame, the mixture's join at write time
            # included, reads the version recorded, whatever lands in the table meanwhile.
            return delta_io.read(spark, ref, version=version), version
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


def sql_expression(df: DataFrame, flag: str, text: str) -> tuple[Column, T.DataType]:
    """``F.expr(text)`` and its type, analysed against ``df`` now (no Spark job runs).

    SmartError naming ``--flag`` for a syntax error, an unknown column or function, or an aggregate.
    """
    try:
        column = F.expr(text)
        dtype = df.withColumn("__smartspark_probe", column).schema["__smartspark_probe"].dataType
    except Exception as exc:  # ParseException, AnalysisException: their first line names the problem
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise SmartError(f"--{flag} {text!r} is not a Spark SQL expression over the input's columns: "
                         f"{first}") from None
    return column, dtype


def prepare_instances(df: DataFrame, config: InputSpec) -> DataFrame:
    """:func:`prepare` without its counts."""
    return prepare(df, config)[0]


def _prompt_column(df: DataFrame, config: InputSpec, embeds: bool) -> tuple[DataFrame, Column | None]:
    """``df`` (plus the normalised turns for chat input) and the column of the text to embed."""
    if config.messages_col is not None:
        if config.prompt_from not in chat.PROMPT_FROM:
            raise SmartError(f"--prompt-from must be one of {', '.join(chat.PROMPT_FROM)}, "
                             f"got {config.prompt_from!r}")
        style = chat.chat_style(df, config.messages_col)
        df = df.withColumn(_TURNS, chat.turns(config.messages_col, style))
        if config.prompt_from != "chat_template":
            return df, chat.prompt_text(F.col(_TURNS), config.prompt_from)
        if not embeds:
            return df, None
        from smart_spark.embed.encoder import has_chat_template
        from smart_spark.udfs.text import chat_template_udf

        if not has_chat_template(config.model):
            raise SmartError(f"--prompt-from chat_template: the tokenizer of --model "
                             f"{config.model or 'all-MiniLM-L6-v2 (bundled)'} has no chat template; "
                             "use first_user, all_user or context, or a model whose tokenizer has one")
        return df, chat_template_udf(config.model)(chat.context(F.col(_TURNS)))
    if config.prompt_expr is not None:
        column, dtype = sql_expression(df, "prompt-expr", config.prompt_expr)
        if not isinstance(dtype, T.StringType):
            raise SmartError(f"--prompt-expr {config.prompt_expr!r} gives {dtype.simpleString()}, not a "
                             "string; cast it (e.g. cast(... as string))")
        return df, column
    if embeds or config.id_col is None:
        _require(df, "prompt-col", config.prompt_col)
    if config.prompt_col in df.columns:  # with --embedding-col and --id-col optional (reports, exact copies)
        return df, F.col(config.prompt_col).cast("string")
    return df, None


def prepare(df: DataFrame, config: InputSpec) -> tuple[DataFrame, dict[str, int]]:
    """Validate the input and add ``task``, ``stratum``, ``id`` (strings) and :data:`PROMPT_COLUMN`.

    The embedding column is kept as is. Checks (each a :class:`SmartError` naming the problem): the named
    columns exist and the expressions analyse (before any Spark job); input columns do not clash with the
    job's output columns; chat conversations are well formed (:func:`chat.check_conversations`); the
    input is not empty; no null or empty task names; no null prompts when the job embeds; ids unique.
    Empty or whitespace-only prompts are kept (embedded as they are) and counted.
    Returns the frame and counts: ``rows``, ``empty_prompts`` (0 when nothing is embedded).
    """
    embeds = config.embedding_col is None
    # --tasks-from clusters: the tasks come from k-means later, so the task column may be absent
    unlabelled = (config.tasks_from == "clusters" and config.task_expr is None
                  and config.task_col not in df.columns)
    if config.task_expr is not None:
        task, _ = sql_expression(df, "task-expr", config.task_expr)
    elif unlabelled:
        task = F.lit("all")
    else:
        _require(df, "task-col", config.task_col)
        task = F.col(config.task_col)
    task = task.cast("string")
    df, prompt = _prompt_column(df, config, embeds)
    if not embeds:
        embedding_array(df, config.embedding_col)
    if config.id_col is not None:
        _require(df, "id-col", config.id_col)
    elif config.messages_col is None:
        _require(df, "response-col", config.response_col)
    if config.stratum_col is not None:
        _require(df, "stratum-col", config.stratum_col)

    mapped = {"task": None if config.task_expr else config.task_col, "id": config.id_col,
              "stratum": config.stratum_col}
    clashes = [
        c for c in df.columns
        if c in OUTPUT_COLUMNS and c != config.embedding_col and mapped.get(c) != c
    ]
    if clashes:
        raise SmartError(
            f"input column(s) {', '.join(clashes)} clash with the mixture's own columns; "
            "rename them or map them with --task-col/--id-col/--stratum-col"
        )

    if config.id_col is not None:
        ident = F.col(config.id_col).cast("string")
    elif config.messages_col is not None:
        parts = [task, F.to_json(F.col(config.messages_col))]
        ident = F.sha2(F.concat_ws(_ID_SEPARATOR, *(F.coalesce(p, F.lit("")) for p in parts)), 256)
    else:
        parts = [*([] if unlabelled else [task]), prompt, F.col(config.response_col).cast("string")]
        ident = F.sha2(F.concat_ws(_ID_SEPARATOR, *(F.coalesce(p, F.lit("")) for p in parts)), 256)
    stratum = (F.col(config.stratum_col).cast("string") if config.stratum_col is not None
               else F.lit(None).cast("string"))
    text = prompt if prompt is not None else F.lit(None).cast("string")
    out = df.withColumns({"task": task, "id": ident, "stratum": stratum})
    if config.messages_col is not None:
        chat.check_conversations(out, _TURNS, column=config.messages_col, prompt_from=config.prompt_from)
    out = out.withColumn(PROMPT_COLUMN, text)
    if config.messages_col is not None:
        out = out.drop(_TURNS)

    checks = [
        F.count(F.lit(1)).alias("rows"),
        F.sum((F.col("task").isNull() | (F.trim(F.col("task")) == "")).cast("long")).alias("bad_task"),
        F.sum(F.col("id").isNull().cast("long")).alias("null_id"),
        F.count_distinct(F.col("id")).alias("distinct_id"),
    ]
    if embeds:
        checks.append(F.sum(F.col(PROMPT_COLUMN).isNull().cast("long")).alias("null_prompt"))
        empty = F.col(PROMPT_COLUMN).isNotNull() & chat.blank(F.col(PROMPT_COLUMN))
        checks.append(F.sum(empty.cast("long")).alias("empty_prompts"))
    if config.stratum_col is not None:
        checks.append(F.sum(F.col("stratum").isNull().cast("long")).alias("null_stratum"))
    stats = out.agg(*checks).first().asDict()
    if not stats["rows"]:
        raise SmartError(f"--input {config.input} has no rows")
    if stats["bad_task"]:
        raise SmartError(f"{config.task_flag()} has {stats['bad_task']} null or empty task name(s)")
    if stats["null_id"]:
        raise SmartError(f"--id-col {config.id_col!r} has {stats['null_id']} null id(s)")
    if stats.get("null_prompt"):
        raise SmartError(
            f"{config.prompt_flag()} has {stats['null_prompt']} null prompt(s); "
            "the job embeds prompts (or give --embedding-col)"
        )
    if stats.get("null_stratum"):
        raise SmartError(f"--stratum-col {config.stratum_col!r} has {stats['null_stratum']} null value(s)")
    if stats["distinct_id"] != stats["rows"]:  # only then look for an example
        dup = out.groupBy("id").count().where("count > 1").orderBy("id").first()
        source = (f"--id-col {config.id_col!r}" if config.id_col
                  else "the generated (task, prompt, response) hash")
        raise SmartError(f"duplicate ids: {dup['id']!r} appears {dup['count']} times in {source}")
    return out, {"rows": int(stats["rows"]), "empty_prompts": int(stats.get("empty_prompts") or 0)}
