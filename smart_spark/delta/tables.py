"""Reading and writing the output Delta tables: the one module that knows which engine commits them.

Two backends, picked per session by :func:`backend`; nothing else in the code knows which one runs.

``spark``: the session has Delta support (``io.delta:delta-spark`` with ``DeltaSparkSessionExtension``,
Databricks, or a Spark Connect session to Sail). Spark's own Delta source does the work:
``format("delta")`` with ``replaceWhere`` and ``userMetadata``, ``MERGE INTO``, ``DESCRIBE HISTORY``,
``RESTORE``, ``DELETE``; paths and catalog names both work. Sail has no ``DESCRIBE HISTORY``, ``RESTORE``
or ``ALTER TABLE`` on a path: there, the version, history, restore and table properties go through
delta-rs on the table's folder (a path table's path, a catalog table's ``Location`` from ``DESCRIBE TABLE
EXTENDED``; the Sail server must run on this machine). Sail's ``saveAsTable`` ignores ``replaceWhere``, so
a Sail catalog table is replaced through DataFrameWriterV2 ``overwrite(condition)``, which Sail commits as
one replaceWhere write (map and array columns included). Sail 0.7's path ``replaceWhere`` fails on tables
with map or array columns (tests/test_delta_io_sail.py probes each gap).

``deltars``: no Delta in the session (our machines, CI, a laptop). Spark writes Parquet in parallel into
a staging folder under the table root; the driver moves each data file to its place
(``<root>/<col>=<value>/part-*.parquet``, the layout of Spark's and delta-rs's own writers) and reads its
footer for ``numRecords``; ONE delta-rs transaction then commits exactly those files and removes the
replaced ones. A missing table is first created empty (a ``CREATE TABLE`` commit with the schema,
partitioning and properties) once its files are written. Timestamps are written as TIMESTAMP_MICROS.
A failed write commits nothing: its staging folder is removed, and files of a failed commit stay
unreferenced until VACUUM. Reads go through the snapshot's active files. Local paths (or URIs that Spark,
pyarrow and delta-rs all resolve alike) only: a catalog name needs a Delta-enabled session.

Rules both backends share:

* Schemas: the DataFrame must have the table's columns, same names (case-sensitive), same types; column
  order does not matter. Nullability is not compared (Delta makes every column written from a DataFrame
  nullable), except that a NOT NULL table column needs a non-nullable DataFrame column. A mismatch raises
  :class:`SmartError` naming the column, before anything is written.
* ``properties`` are table properties set when the table is created (``delta.*`` or any other key).
  Through Delta's DataFrameWriter only ``delta.*`` keys take effect at creation, so a path table created
  by the ``spark`` backend gets the other keys in a following ``SET TBLPROPERTIES`` commit.
* ``commit_info`` is recorded on the commit as ``userMetadata`` (a JSON object);
  :func:`history_commit_info` gives it back. For SQL commands (MERGE, RESTORE, DELETE) the Spark backend
  passes it through the session conf ``spark.databricks.delta.commitInfo.userMetadata``, so concurrent
  calls on one session may swap it; Sail does not record it on MERGE.
* The delta-rs backend refuses tables it cannot read correctly (deletion vectors, column mapping, reader
  features it does not know) and, for writes, tables whose rules it would not enforce on the files it
  commits (CHECK constraints, generated or identity columns, invariants, unknown writer features).

Concurrent writers: ``replace_where`` calls for different values commit independently (both engines check
conflicts at commit time and rebase when the other commit touched other partitions; a real conflict raises
and leaves the table as the winner left it). Two ``merge_insert_new`` calls racing on the same new key:
Delta's MERGE fails the later one with a concurrent-append conflict, and rerunning it adds nothing twice;
delta-rs takes both commits as appends, so that key may then be stored twice (the rows come from the same
deterministic producer; readers of such a table must not assume the key is unique).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from smart_spark.errors import SmartError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from deltalake import DeltaTable
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import DataType, StructType

TABLES = ("mixture", "task_weights", "runs", "embeddings")
BACKEND_CONF = "spark.smartspark.deltaBackend"
DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"  # Delta: commit info of SQL commands
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_SCHEMA_NAME = re.compile(rf"{_IDENT}(\.{_IDENT})?")  # db, catalog.db
_TABLE_NAME = re.compile(rf"{_IDENT}(\.{_IDENT}){{0,2}}")  # table, db.table, catalog.db.table
_WRITE_ID = "smartspark.writeId"  # on delta-rs commits: which version our commit got
_STAGING = "smartspark-staging-"  # not hidden, so VACUUM removes what a crashed write left
_GUARD = "SMARTSPARK_REPLACE_WHERE"
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"

# Table features the delta-rs backend reads correctly by reading the active files' Parquet.
_READ_FEATURES = {"timestampNtz", "v2Checkpoint", "vacuumProtocolCheck"}
# Writer features that do not constrain the files we add, or whose rules are checked for use below.
_WRITE_FEATURES = _READ_FEATURES | {
    "appendOnly",
    "invariants",
    "checkConstraints",
    "changeDataFeed",
    "generatedColumns",
    "identityColumns",
    "domainMetadata",
    "checkpointProtection",
}
# Partition column types whose Spark folder names are Delta's partition value strings.
_PARTITION_TYPES = {"string", "byte", "short", "integer", "long", "date", "boolean"}


@dataclass(frozen=True)
class TableRef:
    """Where a Delta table lives: a ``path`` (folder or URI) or a catalog ``name``; exactly one."""

    path: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.name is None):
            raise SmartError(f"a table is a path or a catalog name, not both or neither: {self}")

    def __str__(self) -> str:
        return str(self.path if self.path is not None else self.name)


def table_ref(text: str) -> TableRef:
    """``db.table`` / ``catalog.db.table`` (identifier parts, no slash) as a name; anything else a path."""
    return TableRef(name=text) if _TABLE_NAME.fullmatch(text) else TableRef(path=text)


def output_tables(output: str) -> dict[str, TableRef]:
    """The four output tables of ``--output``.

    A catalog schema (``catalog.db`` or ``db``: identifier parts, no slash) gives ``<schema>.smart_<table>``;
    anything else is a folder (path or URI) holding ``<output>/<table>``.
    """
    if _SCHEMA_NAME.fullmatch(output):
        return {table: TableRef(name=f"{output}.smart_{table}") for table in TABLES}
    return {table: TableRef(path=f"{output.rstrip('/')}/{table}") for table in TABLES}


def backend(spark: SparkSession) -> str:
    """``"spark"`` when the session has Delta support, else ``"deltars"``.

    Override with the Spark conf ``spark.smartspark.deltaBackend`` = ``spark`` | ``deltars``.
    """
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
    return "spark" if _is_sail(spark) else "deltars"


def exists(spark: SparkSession, ref: TableRef) -> bool:
    """Whether ``ref`` is a Delta table."""
    if _uses_deltars(spark, ref):
        return _rs_table(spark, ref) is not None
    if ref.name is not None:
        return spark.catalog.tableExists(_spark_ident(spark, ref))
    from pyspark.errors import AnalysisException

    try:
        spark.read.format("delta").load(ref.path).schema  # noqa: B018 -- analysing it is the test
    except AnalysisException:
        return False
    return True


def version(spark: SparkSession, ref: TableRef) -> int | None:
    """The latest version of ``ref``; None when there is no table."""
    return _latest(spark, ref)


def read(spark: SparkSession, ref: TableRef, version: int | None = None) -> DataFrame:
    """The table (at ``version``; default the latest) as a DataFrame. SmartError when there is none."""
    if backend(spark) == "deltars":
        root = _rs_root(ref)
        dt = _rs_open(root, version)
        if dt is None:
            raise SmartError(f"{ref}: no Delta table there")
        _rs_check(dt, root, write=False)
        return _rs_scan(spark, dt, root)
    if not exists(spark, ref):
        raise SmartError(f"{ref}: no Delta table there")
    if version is not None:
        return spark.sql(f"SELECT * FROM {_spark_ident(spark, ref)} VERSION AS OF {int(version)}")
    return spark.table(ref.name) if ref.name is not None else spark.read.format("delta").load(ref.path)


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
) -> int:
    """Atomically replace the rows with ``column == value`` by ``df``'s rows; returns the new version.

    ``df`` must hold only that value: a row with another raises SmartError and commits nothing. Other
    values' rows stay as they are. A missing table is created, partitioned by ``partition_by``, with
    ``properties``; both are ignored for an existing table.
    """
    if column not in df.columns:
        raise SmartError(f"{ref}: replace_where column {column!r} is not in the data")
    if backend(spark) == "deltars":
        return _rs_replace_where(spark, df, ref, column, value, partition_by or [], properties, commit_info)
    table_exists = exists(spark, ref)
    if table_exists:
        df = _conform(df, _spark_schema(spark, ref), ref)
    with _guarded(column, value):
        data = _guard(df, column, value)
        if not table_exists:
            _spark_create(spark, data, ref, partition_by or [], properties, commit_info)
        else:
            if ref.name is not None and _is_sail(spark):  # Sail's saveAsTable ignores replaceWhere
                from pyspark.sql.connect.functions import col, lit  # Sail: always Spark Connect

                v2 = data.writeTo(ref.name).option("userMetadata", _user_metadata(commit_info))
                v2.overwrite(col(column) == lit(value))
                return _latest(spark, ref)  # type: ignore[return-value]
            writer = (
                data.write.format("delta")
                .mode("overwrite")
                .option("replaceWhere", f"{_q(column)} = {_lit(value)}")
                .option("userMetadata", _user_metadata(commit_info))
            )
            writer.saveAsTable(ref.name) if ref.name is not None else writer.save(ref.path)
    return _latest(spark, ref)  # type: ignore[return-value]


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
    if backend(spark) == "deltars":
        return _rs_merge_insert_new(spark, df, ref, keys, commit_info)
    if not exists(spark, ref):
        _spark_create(spark, df, ref, [], None, commit_info)
        return _latest(spark, ref)
    df = _conform(df, _spark_schema(spark, ref), ref)
    before = _latest(spark, ref)
    view = f"smartspark_merge_{uuid.uuid4().hex}"
    df.createOrReplaceTempView(view)
    on = " AND ".join(f"t.{_q(k)} <=> s.{_q(k)}" for k in keys)
    try:
        with _session_conf(spark, USER_METADATA_CONF, _user_metadata(commit_info)):
            spark.sql(
                f"MERGE INTO {_spark_ident(spark, ref)} AS t USING {view} AS s ON {on} "
                "WHEN NOT MATCHED THEN INSERT *"
            ).collect()
    finally:
        spark.catalog.dropTempView(view)
    after = _latest(spark, ref)
    return after if after != before else None


def restore(
    spark: SparkSession, ref: TableRef, version: int | None, *, commit_info: dict[str, Any] | None = None
) -> None:
    """Put the table back to ``version``; None means "the table did not exist": remove every file.

    Either way it is a new commit (Delta RESTORE, or DELETE of all rows); the history stays.
    """
    if _uses_deltars(spark, ref):
        located = _rs_located(spark, ref)
        if located is None:  # a Sail catalog name with no table
            if version is None:
                return
            raise SmartError(f"{ref}: no table to restore to version {version}")
        _rs_restore(located, version, commit_info)
        return
    if not exists(spark, ref):
        if version is None:
            return
        raise SmartError(f"{ref}: no table to restore to version {version}")
    ident = _spark_ident(spark, ref)
    with _session_conf(spark, USER_METADATA_CONF, _user_metadata(commit_info)):
        if version is None:
            spark.sql(f"DELETE FROM {ident}").collect()
        elif int(version) != _latest(spark, ref):
            spark.sql(f"RESTORE TABLE {ident} TO VERSION AS OF {int(version)}").collect()


def history_commit_info(spark: SparkSession, ref: TableRef) -> list[dict[str, Any]]:
    """The table's commits, newest first: each ``commit_info`` as written, with ``version``, ``operation``."""
    if _uses_deltars(spark, ref):
        dt = _rs_table(spark, ref)
        rows = [] if dt is None else dt.history()
    else:
        rows = [r.asDict() for r in spark.sql(f"DESCRIBE HISTORY {_spark_ident(spark, ref)}").collect()]
    commits = []
    for row in rows:
        info = json.loads(row["userMetadata"]) if row.get("userMetadata") else {}
        commits.append({**info, "version": int(row["version"]), "operation": row.get("operation")})
    return sorted(commits, key=lambda commit: -commit["version"])


# ----------------------------------------------------------------------------------------- shared helpers

_SAIL_SESSIONS: dict[str, bool] = {}


def _is_sail(spark: SparkSession) -> bool:
    """A Spark Connect session served by Sail (``version()`` answers Sail's version, not Spark's)."""
    if not type(spark).__module__.startswith("pyspark.sql.connect"):
        return False
    if spark.session_id not in _SAIL_SESSIONS:
        server = str(spark.sql("SELECT version()").first()[0])
        _SAIL_SESSIONS[spark.session_id] = not server.startswith(spark.version)
    return _SAIL_SESSIONS[spark.session_id]


def _uses_deltars(spark: SparkSession, ref: TableRef) -> bool:
    """Whether delta-rs serves this table's version, history and restore (the deltars backend, or Sail)."""
    return backend(spark) == "deltars" or _is_sail(spark)


def _rs_located(spark: SparkSession, ref: TableRef) -> TableRef | None:
    """``ref`` as delta-rs opens it: a path as it is; on Sail, a catalog table's ``Location`` (None: no
    such table). A catalog name on the deltars backend stays a name (``_rs_root`` refuses it)."""
    if ref.name is None or backend(spark) == "deltars":
        return ref
    if not spark.catalog.tableExists(ref.name):
        return None
    for row in spark.sql(f"DESCRIBE TABLE EXTENDED {ref.name}").collect():
        if row["col_name"] == "Location" and row["data_type"]:
            return TableRef(path=row["data_type"])
    raise SmartError(f"{ref}: DESCRIBE TABLE EXTENDED gives no Location for this table")


def _rs_table(spark: SparkSession, ref: TableRef) -> DeltaTable | None:
    """The latest snapshot of ``ref`` through delta-rs (at its Location on Sail); None: no table."""
    located = _rs_located(spark, ref)
    return None if located is None else _rs_open(_rs_root(located))


def _latest(spark: SparkSession, ref: TableRef) -> int | None:
    if _uses_deltars(spark, ref):
        dt = _rs_table(spark, ref)
        return None if dt is None else dt.version()
    if not exists(spark, ref):
        return None
    return int(spark.sql(f"DESCRIBE HISTORY {_spark_ident(spark, ref)} LIMIT 1").first()["version"])


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _lit(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _user_metadata(commit_info: dict[str, Any] | None) -> str:
    return json.dumps(commit_info or {}, sort_keys=True, default=str)


@contextmanager
def _session_conf(spark: SparkSession, key: str, value: str) -> Iterator[None]:
    """``key`` set to ``value`` on the session for the block, then put back as it was.

    Session-wide: concurrent calls on one session that set the same key to different values interfere.
    """
    before = spark.conf.get(key, None)
    if before == value:
        yield
        return
    spark.conf.set(key, value)
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)


def _guard(df: DataFrame, column: str, value: str) -> DataFrame:
    """``df`` whose write fails on a row with ``column`` other than ``value`` (checked in the same pass)."""
    message = _lit(f"{_GUARD}: a row has {column} other than {value!r}")
    test = f"{_q(column)} <=> {_lit(value)}"
    return df.selectExpr(
        *(
            f"CASE WHEN {test} THEN {_q(c)} ELSE raise_error({message}) END AS {_q(c)}"
            if c == column
            else _q(c)
            for c in df.columns
        )
    )


@contextmanager
def _guarded(column: str, value: str) -> Iterator[None]:
    """Turns the failure of a :func:`_guard`-ed write into SmartError."""
    try:
        yield
    except Exception as error:
        if _GUARD in str(error):
            raise SmartError(
                f"replace_where({column} = {value!r}): the data has rows with another {column}"
            ) from None
        raise


def _all_nullable(dtype: DataType) -> DataType:
    """``dtype`` with every nested field, element and value nullable, and no field metadata."""
    from pyspark.sql.types import ArrayType, MapType, StructField, StructType

    if isinstance(dtype, StructType):
        return StructType([StructField(f.name, _all_nullable(f.dataType), True) for f in dtype.fields])
    if isinstance(dtype, ArrayType):
        return ArrayType(_all_nullable(dtype.elementType), True)
    if isinstance(dtype, MapType):
        return MapType(_all_nullable(dtype.keyType), _all_nullable(dtype.valueType), True)
    return dtype


def _conform(df: DataFrame, table: StructType, ref: TableRef) -> DataFrame:
    """``df`` in the table's column order, after checking its schema against the table's (module doc)."""
    ours = {f.name: f for f in df.schema.fields}
    theirs = {f.name: f for f in table.fields}
    for name in ours.keys() - theirs.keys():
        raise SmartError(f"{ref}: column {name!r} is not in the table (its columns: {list(theirs)})")
    for name, field in theirs.items():
        if name not in ours:
            raise SmartError(f"{ref}: column {name!r} of the table is missing from the data")
        got = ours[name]
        if _all_nullable(got.dataType) != _all_nullable(field.dataType):
            raise SmartError(
                f"{ref}: column {name!r} is {got.dataType.simpleString()} in the data but "
                f"{field.dataType.simpleString()} in the table"
            )
        if not field.nullable and got.nullable:
            raise SmartError(f"{ref}: column {name!r} is NOT NULL in the table but nullable in the data")
    return df.select(*(df[name] for name in theirs))


# -------------------------------------------------------------------------------- backend: Spark's Delta


def _spark_ident(spark: SparkSession, ref: TableRef) -> str:
    if ref.name is None:
        return f"delta.{_q(str(ref.path))}"
    return ref.name


def _spark_schema(spark: SparkSession, ref: TableRef) -> StructType:
    table = spark.table(ref.name) if ref.name is not None else spark.read.format("delta").load(ref.path)
    return table.schema


def _spark_create(
    spark: SparkSession,
    df: DataFrame,
    ref: TableRef,
    partition_by: list[str],
    properties: dict[str, str] | None,
    commit_info: dict[str, Any] | None,
) -> None:
    """Create the table holding ``df`` (Delta's create-table-as-select), with ``properties``."""
    properties = properties or {}
    if ref.name is not None:
        writer = df.writeTo(ref.name).using("delta").option("userMetadata", _user_metadata(commit_info))
        if partition_by:
            writer = writer.partitionedBy(*partition_by)
        for key, value in properties.items():
            writer = writer.tableProperty(key, value)
        writer.create()
        return
    # A path write keeps only its delta.* options as table properties (DeltaDataSource.createRelation).
    (
        df.write.format("delta")
        .mode("error")
        .partitionBy(*partition_by)
        .options(**{k: v for k, v in properties.items() if k.startswith("delta.")})
        .option("userMetadata", _user_metadata(commit_info))
        .save(ref.path)
    )
    others = {k: v for k, v in properties.items() if not k.startswith("delta.")}
    if not others:
        return
    if _is_sail(spark):
        _rs_open(_rs_root(ref)).alter.set_table_properties(  # type: ignore[union-attr]
            others, raise_if_not_exists=False, commit_properties=_rs_commit_properties(commit_info)
        )
        return
    pairs = ", ".join(f"{_lit(k)} = {_lit(v)}" for k, v in others.items())
    with _session_conf(spark, USER_METADATA_CONF, _user_metadata(commit_info)):
        spark.sql(f"ALTER TABLE {_spark_ident(spark, ref)} SET TBLPROPERTIES ({pairs})").collect()


# ---------------------------------------------------------------------------------------- backend: delta-rs


def _rs_root(ref: TableRef) -> str:
    """The table root as delta-rs and pyarrow name it: a local absolute path, or a URI."""
    if ref.path is None:
        raise SmartError(
            f"{ref}: catalog tables need a Delta-enabled Spark session (io.delta:delta-spark_4.2_2.13 with "
            "DeltaSparkSessionExtension, or Databricks); without one, give a folder instead"
        )
    if ref.path.startswith("file:"):
        return unquote(urlparse(ref.path).path).rstrip("/") or "/"
    if "://" in ref.path:
        return ref.path.rstrip("/")
    return os.path.abspath(ref.path)


def _spark_uri(root: str) -> str:
    """``root`` as Spark should see it: a local path as a file: URI, whatever the default file system."""
    return root if "://" in root else "file://" + root


def _rs_open(root: str, version: int | None = None) -> DeltaTable | None:
    from deltalake import DeltaTable

    if not DeltaTable.is_deltatable(root):
        return None
    try:
        return DeltaTable(root, version=version)
    except Exception as error:  # a version that does not exist, or whose log was cleaned up
        raise SmartError(f"{root}: cannot load version {version}: {error}") from None


def _rs_check(dt: DeltaTable, root: str, *, write: bool) -> None:
    """SmartError when the delta-rs backend cannot read (or, ``write``, commit to) this table correctly."""
    protocol = dt.protocol()
    config = dt.metadata().configuration
    readers, writers = set(protocol.reader_features or []), set(protocol.writer_features or [])
    if (
        "deletionVectors" in readers | writers
        or config.get("delta.enableDeletionVectors", "").lower() == "true"
    ):
        raise SmartError(
            f"{root}: the table uses deletion vectors, which a session without Delta cannot read (its files "
            "still hold deleted rows); use a Delta-enabled Spark session, or purge them (REORG TABLE ... "
            "APPLY (PURGE)) and set delta.enableDeletionVectors=false"
        )
    mapping = config.get("delta.columnMapping.mode", "none")
    if "columnMapping" in readers | writers or protocol.min_reader_version == 2 or mapping.lower() != "none":
        raise SmartError(
            f"{root}: the table uses column mapping (delta.columnMapping.mode={mapping}), which a session "
            "without Delta cannot read; use a Delta-enabled Spark session"
        )
    unknown = (readers - _READ_FEATURES) | ((writers - _WRITE_FEATURES) if write else set())
    if unknown or protocol.min_reader_version > 3 or protocol.min_writer_version > 7:
        raise SmartError(
            f"{root}: table features {sorted(unknown)} (protocol {protocol.min_reader_version}/"
            f"{protocol.min_writer_version}) need a Delta-enabled Spark session"
        )
    if write:
        schema_json = dt.schema().to_json()
        rules = [k for k in config if k.startswith("delta.constraints.")]
        rules += [
            k
            for k in ("delta.generationExpression", "delta.identity.", "delta.invariants")
            if k in schema_json
        ]
        if rules:
            raise SmartError(
                f"{root}: the table has rules ({', '.join(rules)}) that a session without Delta would not "
                "enforce on the rows it writes; use a Delta-enabled Spark session"
            )


def _rs_spark_schema(dt: DeltaTable) -> StructType:
    from pyspark.sql.types import StructType

    return StructType.fromJson(json.loads(dt.schema().to_json()))  # Delta's schema JSON is Spark's


def _rs_scan(spark: SparkSession, dt: DeltaTable, root: str) -> DataFrame:
    """The snapshot's rows: its active files' Parquet, partition values from their hive-style folders."""
    import pyarrow as pa

    schema = _rs_spark_schema(dt)
    partition_columns = dt.metadata().partition_columns
    files = []
    for path in pa.table(dt.get_add_actions(flatten=True)).column("path").to_pylist():
        relative = unquote(path)  # paths in the log are URI-encoded
        folders = [part.partition("=")[0] for part in relative.split("/")[:-1]]
        if "://" in relative or relative.startswith("/") or folders != partition_columns:
            raise SmartError(
                f"{root}: file {relative} is not in the table's {partition_columns} partition folders "
                "(random prefixes? a shallow clone?); use a Delta-enabled Spark session for this table"
            )
        files.append(f"{_spark_uri(root)}/{relative}")
    if not files:
        return spark.createDataFrame([], schema)
    reader = spark.read.schema(schema)
    if partition_columns:
        reader = reader.option("basePath", _spark_uri(root))
    return reader.parquet(*files).select(*(_q(c) for c in schema.fieldNames()))  # partition columns in place


def _rs_new_schema(df: DataFrame, partition_by: list[str], ref: TableRef) -> StructType:
    """The schema of a table created from ``df``: every column nullable, as Delta makes them."""
    for column in partition_by:
        if column not in df.columns:
            raise SmartError(f"{ref}: partition column {column!r} is not in the data")
        kind = df.schema[column].dataType.typeName()
        if kind not in _PARTITION_TYPES:
            raise SmartError(
                f"{ref}: partition column {column!r} is {kind}; use one of {sorted(_PARTITION_TYPES)}"
            )
    return _all_nullable(df.schema)  # type: ignore[return-value]


def _rs_write_files(
    spark: SparkSession, df: DataFrame, root: str, partition_by: list[str], write_id: str
) -> list:
    """Spark writes ``df`` as Parquet; returns add actions for its non-empty files, moved into place."""
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq
    from deltalake.transaction import AddAction

    fs, base = pafs.FileSystem.from_uri(root) if "://" in root else (pafs.LocalFileSystem(), root)
    stage = f"{base}/{_STAGING}{write_id}"
    try:
        with _session_conf(spark, "spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS"):
            (
                df.write.mode("error")
                .option("mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")  # no _SUCCESS file
                .partitionBy(*partition_by)
                .parquet(f"{_spark_uri(root)}/{_STAGING}{write_id}")
            )
        adds = []
        for info in fs.get_file_info(pafs.FileSelector(stage, recursive=True, allow_not_found=True)):
            if not info.is_file or not info.base_name.endswith(".parquet") or info.base_name[0] in "._":
                continue  # Hadoop's .crc checksums stay behind
            rows = pq.read_metadata(info.path, filesystem=fs).num_rows
            if rows == 0:
                continue  # Spark writes one empty file for an empty DataFrame
            relative = info.path[len(stage) + 1 :]
            fs.create_dir(f"{base}/{relative}".rsplit("/", 1)[0], recursive=True)
            fs.move(info.path, f"{base}/{relative}")  # Spark's file names are unique per write job
            values = {}
            for folder in relative.split("/")[:-1]:
                key, _, text = folder.partition("=")
                values[unquote(key)] = None if text == _HIVE_NULL else unquote(text)
            adds.append(
                AddAction(
                    path=relative,  # delta-rs URI-encodes it in the log
                    size=info.size,
                    partition_values=values,
                    modification_time=info.mtime_ns // 1_000_000,
                    data_change=True,
                    stats=json.dumps({"numRecords": rows}),
                )
            )
        return adds
    finally:
        if fs.get_file_info(stage).type != pafs.FileType.NotFound:
            fs.delete_dir(stage)  # what is left: checksums, empty folders, a failed job's files


def _rs_commit_properties(commit_info: dict[str, Any] | None, write_id: str | None = None):
    from deltalake.transaction import CommitProperties

    metadata = {"userMetadata": _user_metadata(commit_info)}
    if write_id is not None:
        metadata[_WRITE_ID] = write_id
    return CommitProperties(custom_metadata=metadata)


def _rs_create(
    root: str,
    df: DataFrame,
    ref: TableRef,
    schema: StructType,
    partition_by: list[str],
    properties: dict[str, str] | None,
    commit_info: dict[str, Any] | None,
) -> DeltaTable:
    """Create the empty table (or find the one a concurrent writer just created: it must fit ``df``)."""
    from deltalake import DeltaTable, Schema

    DeltaTable.create(
        root,
        Schema.from_json(schema.json()),
        mode="ignore",
        partition_by=partition_by or None,
        configuration=properties or None,
        raise_if_key_not_exists=False,  # keeps non-delta.* properties, as Spark's TBLPROPERTIES does
        commit_properties=_rs_commit_properties(commit_info),
    )
    dt = DeltaTable(root)
    _conform(df, _rs_spark_schema(dt), ref)
    if dt.metadata().partition_columns != partition_by:
        raise SmartError(f"{ref}: created meanwhile, partitioned by {dt.metadata().partition_columns}")
    return dt


def _rs_commit(
    root: str,
    dt: DeltaTable,
    adds: list,
    *,
    mode: str,
    partition_filters: list | None = None,
    commit_info: dict[str, Any] | None,
    write_id: str,
) -> int:
    """One delta-rs commit of ``adds`` (``overwrite`` removes the files matching ``partition_filters``)."""
    from deltalake import DeltaTable

    try:
        dt.create_write_transaction(
            adds,
            mode=mode,
            schema=dt.schema(),
            partition_by=dt.metadata().partition_columns,
            partition_filters=partition_filters,
            commit_properties=_rs_commit_properties(commit_info, write_id),
        )
    except Exception as error:
        # The files stay unreferenced (VACUUM removes them); the table is as it was.
        raise SmartError(f"{root}: commit failed, the table is unchanged: {error}") from None
    latest = DeltaTable(root)
    for commit in latest.history(limit=50):  # others may have committed since ours
        if commit.get(_WRITE_ID) == write_id:
            return int(commit["version"])
    return latest.version()


def _rs_replace_where(
    spark: SparkSession,
    df: DataFrame,
    ref: TableRef,
    column: str,
    value: str,
    partition_by: list[str],
    properties: dict[str, str] | None,
    commit_info: dict[str, Any] | None,
) -> int:
    root = _rs_root(ref)
    dt = _rs_open(root)
    if dt is None:
        schema = _rs_new_schema(df, partition_by, ref)
    else:
        _rs_check(dt, root, write=True)
        schema, partition_by = _rs_spark_schema(dt), dt.metadata().partition_columns
        df = _conform(df, schema, ref)
    data = _guard(df, column, value)
    # delta-rs removes the partition's files; a column the files are not partitioned by may share files
    # with other values, so then every file goes and the other values' rows are written again.
    filters = [(column, "=", value)] if column in partition_by else None
    if dt is not None and filters is None:
        data = data.unionByName(_rs_scan(spark, dt, root).where(f"NOT ({_q(column)} <=> {_lit(value)})"))
    write_id = uuid.uuid4().hex
    with _guarded(column, value):
        adds = _rs_write_files(spark, data, root, partition_by, write_id)
    if dt is None:
        dt = _rs_create(root, df, ref, schema, partition_by, properties, commit_info)
        if filters is None and dt.file_uris():
            raise SmartError(f"{ref}: another writer created and filled the table meanwhile; run again")
    return _rs_commit(
        root,
        dt,
        adds,
        mode="overwrite",
        partition_filters=filters,
        commit_info=commit_info,
        write_id=write_id,
    )


def _rs_merge_insert_new(
    spark: SparkSession, df: DataFrame, ref: TableRef, keys: list[str], commit_info: dict[str, Any] | None
) -> int | None:
    root = _rs_root(ref)
    dt = _rs_open(root)
    if dt is None:
        schema, partition_by, new = _rs_new_schema(df, [], ref), [], df
    else:
        _rs_check(dt, root, write=True)
        partition_by = dt.metadata().partition_columns
        data = _conform(df, _rs_spark_schema(dt), ref)
        stored = _rs_scan(spark, dt, root).select(*keys)
        on = data[keys[0]].eqNullSafe(stored[keys[0]])
        for key in keys[1:]:
            on = on & data[key].eqNullSafe(stored[key])
        new = data.join(stored, on=on, how="left_anti")
    write_id = uuid.uuid4().hex
    adds = _rs_write_files(spark, new, root, partition_by, write_id)
    if dt is None:
        dt = _rs_create(root, df, ref, schema, partition_by, None, commit_info)
        if not adds:
            return dt.version()
    elif not adds:
        return None
    return _rs_commit(root, dt, adds, mode="append", commit_info=commit_info, write_id=write_id)


def _rs_restore(ref: TableRef, version: int | None, commit_info: dict[str, Any] | None) -> None:
    root = _rs_root(ref)
    dt = _rs_open(root)
    if dt is None:
        if version is None:
            return
        raise SmartError(f"{ref}: no table to restore to version {version}")
    _rs_check(dt, root, write=True)
    try:
        if version is None:
            if dt.file_uris():
                dt.delete(commit_properties=_rs_commit_properties(commit_info))
        elif int(version) != dt.version():
            dt.restore(int(version), commit_properties=_rs_commit_properties(commit_info))
    except Exception as error:
        raise SmartError(f"{ref}: restore to version {version} failed: {error}") from None
