"""Reading and writing the output Delta tables; the one module callers use.

The engine is chosen once per Spark session by :func:`engine` (a :class:`DeltaEngine`); nothing else in
the code knows which one runs:

* ``spark`` (:mod:`smart_spark.delta.spark_delta`): the session has Delta support (delta-spark with
  ``DeltaSparkSessionExtension``, Databricks); Spark's Delta source and delta-spark's ``DeltaTable`` API.
  On a Sail Connect server, :mod:`smart_spark.delta.sail` fills Sail's gaps.
* ``deltars`` (:mod:`smart_spark.delta.deltars`): no Delta in the session (our machines, CI, a laptop);
  delta-rs reads the log and commits, Spark reads and writes the rows
  (:mod:`smart_spark.delta.spark_files`). Paths only.

Shared rules (schemas, the one-value guard, ``commit_info`` as ``userMetadata``): :mod:`.common`.
Concurrent ``replace_where`` calls for different values commit independently (both engines check
conflicts at commit time and rebase when the other commit touched other partitions; a real conflict raises
and leaves the table as the winner left it).
"""

from __future__ import annotations

import json
import os
import weakref
from typing import TYPE_CHECKING, Any

from smart_spark.delta.common import USER_METADATA_CONF
from smart_spark.delta.engine import DeltaEngine, Fence
from smart_spark.delta.refs import TABLES, TableRef, is_schema, output_tables, table_ref
from smart_spark.errors import SmartError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "BACKEND_CONF",
    "TABLES",
    "USER_METADATA_CONF",
    "DeltaEngine",
    "Fence",
    "TableRef",
    "backend",
    "engine",
    "exists",
    "fences_commits",
    "history_commit_info",
    "is_schema",
    "merge_insert_new",
    "output_tables",
    "read",
    "replace_where",
    "restore",
    "table_ref",
    "version",
]

BACKEND_CONF = "spark.smartspark.deltaBackend"
DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
_ENGINES: weakref.WeakKeyDictionary[SparkSession, DeltaEngine] = weakref.WeakKeyDictionary()


def backend(spark: SparkSession) -> str:
    """``"spark"`` when the session has Delta support, else ``"deltars"``.

    Override with the Spark conf ``spark.smartspark.deltaBackend`` = ``spark`` | ``deltars``.
    """
    from smart_spark.delta.sail import is_sail

    choice = spark.conf.get(BACKEND_CONF, None)
    if choice:
        if choice not in ("spark", "deltars"):
            raise SmartError(f"{BACKEND_CONF} must be 'spark' or 'deltars', not {choice!r}")
        return choice
    if DELTA_EXTENSION in (spark.conf.get("spark.sql.extensions", None) or ""):
        return "spark"
    if os.environ.get("DATABRICKS_RUNTIME_VERSION") or spark.conf.get(
        "spark.databricks.clusterUsageTags.sparkVersion", None
    ):
        return "spark"
    return "spark" if is_sail(spark) else "deltars"


def engine(spark: SparkSession) -> DeltaEngine:
    """The session's Delta engine, chosen by :func:`backend` on first use and kept for the session."""
    found = _ENGINES.get(spark)
    if found is None:
        from smart_spark.delta.deltars import DeltaRsEngine
        from smart_spark.delta.sail import SailEngine, is_sail
        from smart_spark.delta.spark_delta import SparkDeltaEngine

        if backend(spark) == "deltars":
            found = DeltaRsEngine(spark)
        else:
            found = SailEngine(spark) if is_sail(spark) else SparkDeltaEngine(spark)
        _ENGINES[spark] = found
    return found


def exists(spark: SparkSession, ref: TableRef) -> bool:
    """Whether ``ref`` is a Delta table."""
    return engine(spark).exists(ref)


def version(spark: SparkSession, ref: TableRef) -> int | None:
    """The latest version of ``ref``; None when there is no table."""
    return engine(spark).version(ref)


def read(spark: SparkSession, ref: TableRef, version: int | None = None) -> DataFrame:
    """The table (at ``version``; default the latest) as a DataFrame. SmartError when there is none."""
    return engine(spark).read(ref, version)


def replace_where(
    spark: SparkSession,
    df: DataFrame,
    ref: TableRef,
    *,
    column: str,
    value: str,
    partition_by: list[str] | None = None,
    properties: dict[str, str] | None = None,
    commit_info: dict[str, Any] | None = None,
    fence: Fence | None = None,
) -> int:
    """Atomically replace the rows with ``column == value`` by ``df``'s rows; returns the new version.

    ``df`` must hold only that value: a row with another raises SmartError and commits nothing. Other
    values' rows stay as they are. A missing table is created, partitioned by ``partition_by``, with
    ``properties`` (``delta.*`` or any other key); both are ignored for an existing table. ``fence``: on an
    engine that :func:`fences_commits`, the commit carries ``fence.app_id`` and ``fence.check`` runs right
    before each commit attempt (module :class:`Fence`); on the others ``fence.check`` runs before the write.
    """
    if column not in df.columns:
        raise SmartError(f"{ref}: replace_where column {column!r} is not in the data")
    found = engine(spark)
    extra: dict[str, Any] = {}
    if fence is not None and found.fences_commits:
        extra["fence"] = fence
    elif fence is not None and fence.check is not None:
        fence.check()
    return found.replace_rows(
        df, ref, column=column, value=value, partition_by=partition_by or [], properties=properties,
        commit_info=commit_info, **extra,
    )


def fences_commits(spark: SparkSession) -> bool:
    """Whether the session's engine makes fenced commits conflict (:class:`Fence`; only ``deltars``)."""
    return engine(spark).fences_commits


def merge_insert_new(
    spark: SparkSession,
    df: DataFrame,
    ref: TableRef,
    keys: list[str],
    *,
    commit_info: dict[str, Any] | None = None,
) -> int | None:
    """Insert ``df``'s rows whose ``keys`` tuple (compared null-safe) is not in the table yet.

    Rows already stored are never rewritten. Creates the table when missing. Returns the new version, or
    None when nothing was added (then nothing is committed). Like ``MERGE ... WHEN NOT MATCHED THEN INSERT
    *``, rows of ``df`` sharing a new key are all inserted: deduplicate ``df`` first if that matters.
    """
    missing = [k for k in keys if k not in df.columns]
    if not keys or missing:
        raise SmartError(f"{ref}: merge keys {missing or keys} are not columns of the data")
    return engine(spark).merge_insert_new(df, ref, keys, commit_info=commit_info)


def restore(
    spark: SparkSession, ref: TableRef, version: int | None, *, commit_info: dict[str, Any] | None = None
) -> None:
    """Put the table back to ``version``; None means "the table did not exist": remove every row.

    Either way it is a new commit (Delta RESTORE, or DELETE of all rows); the history stays.
    """
    engine(spark).restore(ref, version, commit_info=commit_info)


def history_commit_info(spark: SparkSession, ref: TableRef) -> list[dict[str, Any]]:
    """The table's commits, newest first: each ``commit_info`` as written, with ``version``, ``operation``."""
    commits = []
    for row in engine(spark).history(ref):
        info = json.loads(row["userMetadata"]) if row.get("userMetadata") else {}
        commits.append({**info, "version": int(row["version"]), "operation": row.get("operation")})
    return sorted(commits, key=lambda commit: -commit["version"])
