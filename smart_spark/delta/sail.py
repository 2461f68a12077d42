"""The Spark engine on a Sail Spark Connect server (pysail): what Sail lacks, filled in here only.

Sail serves ``format("delta")`` natively but has no Delta Connect (so no ``delta.tables.DeltaTable``), no
``DESCRIBE HISTORY``, ``RESTORE`` or ``ALTER TABLE`` on a path. Here the version, history, restore and
non-``delta.*`` table properties go through delta-rs on the table's folder (a path table's path, a catalog
table's ``Location`` from ``DESCRIBE TABLE EXTENDED``; the Sail server must run on this machine), and the
merge is Sail's ``MERGE INTO``. Sail's ``saveAsTable`` ignores ``replaceWhere``, so a catalog table is
replaced through DataFrameWriterV2 ``overwrite(condition)``, which Sail commits as one replaceWhere write.
Sail records no ``userMetadata`` on MERGE. Sail 0.7's path ``replaceWhere`` fails on tables with map or
array columns (tests/test_delta_io_sail.py probes each gap).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from smart_spark.delta.common import USER_METADATA_CONF, quote, session_conf, user_metadata
from smart_spark.delta.deltars import DeltaRsEngine
from smart_spark.delta.refs import TableRef
from smart_spark.delta.spark_delta import SparkDeltaEngine, sql_ident
from smart_spark.errors import SmartError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def is_sail(spark: SparkSession) -> bool:
    """A Spark Connect session served by Sail (``version()`` answers Sail's version, not Spark's)."""
    if not type(spark).__module__.startswith("pyspark.sql.connect"):
        return False
    server = str(spark.sql("SELECT version()").first()[0])
    return not server.startswith(spark.version)


class SailEngine(SparkDeltaEngine):
    """:class:`SparkDeltaEngine` with Sail's gaps filled by delta-rs on the table's folder."""

    def __init__(self, spark: SparkSession) -> None:
        super().__init__(spark)
        self._rs = DeltaRsEngine(spark)

    def _located(self, ref: TableRef) -> TableRef | None:
        """``ref`` as delta-rs opens it: a path as it is, a catalog table's Location (None: no table)."""
        if ref.name is None:
            return ref
        if not self.spark.catalog.tableExists(ref.name):
            return None
        for row in self.spark.sql(f"DESCRIBE TABLE EXTENDED {ref.name}").collect():
            if row["col_name"] == "Location" and row["data_type"]:
                return TableRef(path=row["data_type"])
        raise SmartError(f"{ref}: DESCRIBE TABLE EXTENDED gives no Location for this table")

    def exists(self, ref: TableRef) -> bool:
        located = self._located(ref)
        return located is not None and self._rs.exists(located)

    def version(self, ref: TableRef) -> int | None:
        located = self._located(ref)
        return None if located is None else self._rs.version(located)

    def history(self, ref: TableRef) -> list[dict[str, Any]]:
        located = self._located(ref)
        return [] if located is None else self._rs.history(located)

    def restore(self, ref: TableRef, version: int | None, *, commit_info: dict[str, Any] | None) -> None:
        located = self._located(ref)
        if located is None:
            if version is None:
                return
            raise SmartError(f"{ref}: no table to restore to version {version}")
        self._rs.restore(located, version, commit_info=commit_info)

    def _set_properties(
        self, ref: TableRef, properties: dict[str, str], commit_info: dict[str, Any] | None
    ) -> None:
        self._rs.set_properties(self._located(ref) or ref, properties, commit_info)

    def _replace_existing(
        self, data: DataFrame, ref: TableRef, column: str, value: str, commit_info: dict[str, Any] | None
    ) -> None:
        if ref.name is None:
            super()._replace_existing(data, ref, column, value, commit_info)
            return
        from pyspark.sql.connect.functions import col, lit  # Sail: always Spark Connect

        data.writeTo(ref.name).option("userMetadata", user_metadata(commit_info)).overwrite(
            col(column) == lit(value)
        )

    def _merge(
        self, df: DataFrame, ref: TableRef, keys: list[str], commit_info: dict[str, Any] | None
    ) -> None:
        view = f"smartspark_merge_{uuid.uuid4().hex}"
        df.createOrReplaceTempView(view)
        on = " AND ".join(f"t.{quote(k)} <=> s.{quote(k)}" for k in keys)
        try:
            with session_conf(self.spark, USER_METADATA_CONF, user_metadata(commit_info)):
                self.spark.sql(
                    f"MERGE INTO {sql_ident(ref)} AS t USING {view} AS s ON {on} "
                    "WHEN NOT MATCHED THEN INSERT *"
                ).collect()
        finally:
            self.spark.catalog.dropTempView(view)
