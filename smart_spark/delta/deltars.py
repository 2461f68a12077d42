"""The delta-rs engine: a session without Delta (our machines, CI, a laptop) commits through ``deltalake``.

delta-rs's own API does the table work: ``DeltaTable`` (open, version, ``history()``, ``restore()``,
``delete()``, ``alter``), ``DeltaTable.create``. Spark still reads and writes the rows, in parallel: reads
go through the snapshot's active files, and writes go through :mod:`smart_spark.delta.spark_files`
(Spark writes Parquet, one delta-rs transaction commits exactly those files). A missing table is first
created empty (a ``CREATE TABLE`` commit with the schema, partitioning and properties) once its files are
written. Local paths (or URIs that Spark, pyarrow and delta-rs all resolve alike) only: a catalog name
needs a Delta-enabled session.

The engine refuses tables it cannot read correctly (deletion vectors, column mapping, reader features it
does not know) and, for writes, tables whose rules it would not enforce on the files it commits (CHECK
constraints, generated or identity columns, invariants, unknown writer features).

Two ``merge_insert_new`` calls racing on the same new key are both taken as appends, so that key may then
be stored twice (the rows come from the same deterministic producer; readers must not assume it unique).
"""

from __future__ import annotations

import json
import os
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from smart_spark.delta.common import conform, guard, guarded, literal, quote
from smart_spark.delta.engine import DeltaEngine, Fence
from smart_spark.delta.spark_files import commit_files, commit_properties, spark_uri, write_files
from smart_spark.errors import SmartError

if TYPE_CHECKING:
    from deltalake import DeltaTable
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

    from smart_spark.delta.refs import TableRef

# Table features this engine reads correctly by reading the active files' Parquet.
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


def table_root(ref: TableRef) -> str:
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


def open_table(ref: TableRef, version: int | None = None) -> DeltaTable | None:
    """``ref`` through delta-rs (at ``version``); None when it is no Delta table."""
    from deltalake import DeltaTable

    root = table_root(ref)
    if not DeltaTable.is_deltatable(root):
        return None
    try:
        return DeltaTable(root, version=version)
    except Exception as error:  # a version that does not exist, or whose log was cleaned up
        raise SmartError(f"{root}: cannot load version {version}: {error}") from None


def _check(dt: DeltaTable, ref: TableRef, *, write: bool) -> None:
    """SmartError when this engine cannot read (or, ``write``, commit to) this table correctly."""
    protocol = dt.protocol()
    config = dt.metadata().configuration
    readers, writers = set(protocol.reader_features or []), set(protocol.writer_features or [])
    root = table_root(ref)
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


def _spark_schema(dt: DeltaTable) -> StructType:
    from pyspark.sql.types import StructType

    return StructType.fromJson(json.loads(dt.schema().to_json()))  # Delta's schema JSON is Spark's


def _new_schema(df: DataFrame, partition_by: list[str], ref: TableRef) -> StructType:
    """The schema of a table created from ``df``: every column nullable, as Delta makes them."""
    from smart_spark.delta.common import all_nullable

    for column in partition_by:
        if column not in df.columns:
            raise SmartError(f"{ref}: partition column {column!r} is not in the data")
        kind = df.schema[column].dataType.typeName()
        if kind not in _PARTITION_TYPES:
            raise SmartError(
                f"{ref}: partition column {column!r} is {kind}; use one of {sorted(_PARTITION_TYPES)}"
            )
    return all_nullable(df.schema)  # type: ignore[return-value]


def _create(
    df: DataFrame,
    ref: TableRef,
    schema: StructType,
    partition_by: list[str],
    properties: dict[str, str] | None,
    commit_info: dict[str, Any] | None,
) -> DeltaTable:
    """Create the empty table (or find the one a concurrent writer just created: it must fit ``df``)."""
    from deltalake import DeltaTable, Schema

    root = table_root(ref)
    DeltaTable.create(
        root,
        Schema.from_json(schema.json()),
        mode="ignore",
        partition_by=partition_by or None,
        configuration=properties or None,
        raise_if_key_not_exists=False,  # keeps non-delta.* properties, as Spark's TBLPROPERTIES does
        commit_properties=commit_properties(commit_info),
    )
    dt = DeltaTable(root)
    conform(df, _spark_schema(dt), ref)
    if dt.metadata().partition_columns != partition_by:
        raise SmartError(f"{ref}: created meanwhile, partitioned by {dt.metadata().partition_columns}")
    return dt


class DeltaRsEngine(DeltaEngine):
    """Spark reads and writes the rows; delta-rs reads the log and commits (module doc)."""

    name = "deltars"
    fences_commits = True

    def exists(self, ref: TableRef) -> bool:
        return open_table(ref) is not None

    def version(self, ref: TableRef) -> int | None:
        dt = open_table(ref)
        return None if dt is None else dt.version()

    def read(self, ref: TableRef, version: int | None = None) -> DataFrame:
        dt = open_table(ref, version)
        if dt is None:
            raise SmartError(f"{ref}: no Delta table there")
        _check(dt, ref, write=False)
        return self._scan(dt, ref)

    def _scan(self, dt: DeltaTable, ref: TableRef) -> DataFrame:
        """The snapshot's rows: its active files' Parquet, partition values from their hive-style folders."""
        import pyarrow as pa

        root = table_root(ref)
        schema = _spark_schema(dt)
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
            files.append(f"{spark_uri(root)}/{relative}")
        if not files:
            return self.spark.createDataFrame([], schema)
        reader = self.spark.read.schema(schema)
        if partition_columns:
            reader = reader.option("basePath", spark_uri(root))
        return reader.parquet(*files).select(*(quote(c) for c in schema.fieldNames()))

    def replace_rows(
        self,
        df: DataFrame,
        ref: TableRef,
        *,
        column: str,
        value: str,
        partition_by: list[str],
        properties: dict[str, str] | None,
        commit_info: dict[str, Any] | None,
        fence: Fence | None = None,
    ) -> int:
        root = table_root(ref)
        dt = open_table(ref)
        if dt is None:
            schema = _new_schema(df, partition_by, ref)
        else:
            _check(dt, ref, write=True)
            schema, partition_by = _spark_schema(dt), dt.metadata().partition_columns
            df = conform(df, schema, ref)
        data = guard(df, column, value)
        # delta-rs removes the partition's files; a column the files are not partitioned by may share files
        # with other values, so then every file goes and the other values' rows are written again.
        filters = [(column, "=", value)] if column in partition_by else None
        if dt is not None and filters is None:
            data = data.unionByName(self._scan(dt, ref).where(f"NOT ({quote(column)} <=> {literal(value)})"))
        write_id = uuid.uuid4().hex
        with guarded(column, value):
            adds = write_files(self.spark, data, root, partition_by, write_id)
        if dt is None:
            if fence is not None and fence.check is not None:
                fence.check()  # a refused commit creates no table either
            dt = _create(df, ref, schema, partition_by, properties, commit_info)
            if filters is None and dt.file_uris():
                raise SmartError(f"{ref}: another writer created and filled the table meanwhile; run again")
        return commit_files(
            root, dt, adds, mode="overwrite", partition_filters=filters, commit_info=commit_info,
            write_id=write_id, fence=fence,
        )

    def merge_insert_new(
        self, df: DataFrame, ref: TableRef, keys: list[str], *, commit_info: dict[str, Any] | None
    ) -> int | None:
        # Not DeltaTable.merge: its source is Arrow data in this process; here Spark finds the new rows.
        root = table_root(ref)
        dt = open_table(ref)
        if dt is None:
            schema, partition_by, new = _new_schema(df, [], ref), [], df
        else:
            _check(dt, ref, write=True)
            partition_by = dt.metadata().partition_columns
            data = conform(df, _spark_schema(dt), ref)
            stored = self._scan(dt, ref).select(*keys)
            on = data[keys[0]].eqNullSafe(stored[keys[0]])
            for key in keys[1:]:
                on = on & data[key].eqNullSafe(stored[key])
            new = data.join(stored, on=on, how="left_anti")
        write_id = uuid.uuid4().hex
        adds = write_files(self.spark, new, root, partition_by, write_id)
        if dt is None:
            dt = _create(df, ref, schema, partition_by, None, commit_info)
            if not adds:
                return dt.version()
        elif not adds:
            return None
        return commit_files(
            root, dt, adds, mode="append", partition_filters=None, commit_info=commit_info, write_id=write_id
        )

    def restore(self, ref: TableRef, version: int | None, *, commit_info: dict[str, Any] | None) -> None:
        dt = open_table(ref)
        if dt is None:
            if version is None:
                return
            raise SmartError(f"{ref}: no table to restore to version {version}")
        _check(dt, ref, write=True)
        try:
            if version is None:
                if dt.file_uris():
                    dt.delete(commit_properties=commit_properties(commit_info))
            elif int(version) != dt.version():
                dt.restore(int(version), commit_properties=commit_properties(commit_info))
        except Exception as error:
            raise SmartError(f"{ref}: restore to version {version} failed: {error}") from None

    def history(self, ref: TableRef) -> list[dict[str, Any]]:
        dt = open_table(ref)
        return [] if dt is None else dt.history()

    def set_properties(
        self, ref: TableRef, properties: dict[str, str], commit_info: dict[str, Any] | None
    ) -> None:
        """One commit setting table ``properties`` (any key, ``delta.*`` or not)."""
        dt = open_table(ref)
        if dt is None:
            raise SmartError(f"{ref}: no Delta table there")
        dt.alter.set_table_properties(
            properties, raise_if_not_exists=False, commit_properties=commit_properties(commit_info)
        )
