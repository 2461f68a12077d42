"""The Spark engine: the session has Delta (delta-spark with ``DeltaSparkSessionExtension``, Databricks).

Spark's own Delta source does the work. Writes: ``format("delta")`` with ``replaceWhere`` and
``userMetadata`` (Delta has no table API for replaceWhere). Everything else through delta-spark's
``delta.tables.DeltaTable`` (``forPath``/``forName``: the merge builder, ``history()``,
``restoreToVersion()``, ``delete()``); it also serves Delta Connect sessions. Paths and catalog names both
work. Commands other than DataFrame writes record ``commit_info`` through the session conf
``spark.databricks.delta.commitInfo.userMetadata``, so concurrent calls on one session may swap it.

Through Delta's DataFrameWriter only ``delta.*`` keys become table properties at creation, so a path table
gets the other keys in a following ``SET TBLPROPERTIES`` commit.

Concurrent writers: replaceWhere commits for different values rebase on each other; two merges racing on
the same new key: Delta fails the later one with a concurrent-append conflict, and rerunning it adds nothing
twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smart_spark.delta.common import (
    USER_METADATA_CONF,
    conform,
    guard,
    guarded,
    literal,
    quote,
    session_conf,
    user_metadata,
)
from smart_spark.delta.engine import DeltaEngine
from smart_spark.errors import SmartError

if TYPE_CHECKING:
    from delta.tables import DeltaTable
    from pyspark.sql import DataFrame, DataFrameWriter

    from smart_spark.delta.refs import TableRef


def sql_ident(ref: TableRef) -> str:
    """``ref`` as a Spark SQL table identifier (``delta.`<path>``` for a path)."""
    return ref.name if ref.name is not None else f"delta.{quote(str(ref.path))}"


class SparkDeltaEngine(DeltaEngine):
    """Spark's Delta source and delta-spark's ``DeltaTable`` API (module doc)."""

    name = "spark"

    # ------------------------------------------------------------------------------------------ reading

    def _table(self, ref: TableRef) -> DeltaTable:
        from delta.tables import DeltaTable

        if ref.name is not None:
            return DeltaTable.forName(self.spark, ref.name)
        return DeltaTable.forPath(self.spark, str(ref.path))

    def exists(self, ref: TableRef) -> bool:
        if ref.name is not None:
            return self.spark.catalog.tableExists(ref.name)
        from delta.tables import DeltaTable

        return DeltaTable.isDeltaTable(self.spark, str(ref.path))

    def version(self, ref: TableRef) -> int | None:
        if not self.exists(ref):
            return None
        return int(self._table(ref).history(1).first()["version"])

    def read(self, ref: TableRef, version: int | None = None) -> DataFrame:
        if not self.exists(ref):
            raise SmartError(f"{ref}: no Delta table there")
        if version is not None:
            return self.spark.sql(f"SELECT * FROM {sql_ident(ref)} VERSION AS OF {int(version)}")
        return self._latest_rows(ref)

    def _latest_rows(self, ref: TableRef) -> DataFrame:
        if ref.name is not None:
            return self.spark.table(ref.name)
        return self.spark.read.format("delta").load(ref.path)

    def history(self, ref: TableRef) -> list[dict[str, Any]]:
        if not self.exists(ref):
            return []
        rows = self._table(ref).history().select("version", "operation", "userMetadata").collect()
        return [row.asDict() for row in rows]

    # ------------------------------------------------------------------------------------------ writing

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
    ) -> int:
        table_exists = self.exists(ref)
        if table_exists:
            df = conform(df, self._latest_rows(ref).schema, ref)
        with guarded(column, value):
            data = guard(df, column, value)
            if not table_exists:
                self._create(data, ref, partition_by, properties or {}, commit_info)
            else:
                self._replace_existing(data, ref, column, value, commit_info)
        return self.version(ref)  # type: ignore[return-value]

    def _replace_existing(
        self, data: DataFrame, ref: TableRef, column: str, value: str, commit_info: dict[str, Any] | None
    ) -> None:
        writer = (
            data.write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", f"{quote(column)} = {literal(value)}")
            .option("userMetadata", user_metadata(commit_info))
        )
        writer.saveAsTable(ref.name) if ref.name is not None else writer.save(ref.path)

    def _create(
        self,
        df: DataFrame,
        ref: TableRef,
        partition_by: list[str],
        properties: dict[str, str],
        commit_info: dict[str, Any] | None,
    ) -> None:
        """Create the table holding ``df`` (Delta's create-table-as-select), with ``properties``."""
        if ref.name is not None:
            writer = df.writeTo(ref.name).using("delta").option("userMetadata", user_metadata(commit_info))
            if partition_by:
                writer = writer.partitionedBy(*partition_by)
            for key, value in properties.items():
                writer = writer.tableProperty(key, value)
            writer.create()
            return
        # A path write keeps only its delta.* options as table properties (DeltaDataSource.createRelation).
        path_writer: DataFrameWriter = (
            df.write.format("delta")
            .mode("error")
            .partitionBy(*partition_by)
            .options(**{k: v for k, v in properties.items() if k.startswith("delta.")})
            .option("userMetadata", user_metadata(commit_info))
        )
        path_writer.save(ref.path)
        others = {k: v for k, v in properties.items() if not k.startswith("delta.")}
        if others:
            self._set_properties(ref, others, commit_info)

    def _set_properties(
        self, ref: TableRef, properties: dict[str, str], commit_info: dict[str, Any] | None
    ) -> None:
        pairs = ", ".join(f"{literal(k)} = {literal(v)}" for k, v in properties.items())
        with session_conf(self.spark, USER_METADATA_CONF, user_metadata(commit_info)):
            self.spark.sql(f"ALTER TABLE {sql_ident(ref)} SET TBLPROPERTIES ({pairs})").collect()

    def merge_insert_new(
        self, df: DataFrame, ref: TableRef, keys: list[str], *, commit_info: dict[str, Any] | None
    ) -> int | None:
        if not self.exists(ref):
            self._create(df, ref, [], {}, commit_info)
            return self.version(ref)
        before = self.version(ref)
        self._merge(conform(df, self._latest_rows(ref).schema, ref), ref, keys, commit_info)
        after = self.version(ref)
        return after if after != before else None

    def _merge(
        self, df: DataFrame, ref: TableRef, keys: list[str], commit_info: dict[str, Any] | None
    ) -> None:
        from pyspark.sql import functions as F

        on = F.lit(True)
        for key in keys:
            on = on & F.col(f"t.{quote(key)}").eqNullSafe(F.col(f"s.{quote(key)}"))
        with session_conf(self.spark, USER_METADATA_CONF, user_metadata(commit_info)):
            self._table(ref).alias("t").merge(df.alias("s"), on).whenNotMatchedInsertAll().execute()

    def restore(self, ref: TableRef, version: int | None, *, commit_info: dict[str, Any] | None) -> None:
        if not self.exists(ref):
            if version is None:
                return
            raise SmartError(f"{ref}: no table to restore to version {version}")
        with session_conf(self.spark, USER_METADATA_CONF, user_metadata(commit_info)):
            if version is None:
                self._table(ref).delete()
            elif int(version) != self.version(ref):
                self._table(ref).restoreToVersion(int(version))
