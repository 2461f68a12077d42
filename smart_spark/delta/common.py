"""What every Delta engine shares: schema checks, the one-value guard, commit info, SQL quoting.

Schemas: the DataFrame must have the table's columns, same names (case-sensitive), same types; column
order does not matter. Nullability is not compared (Delta makes every column written from a DataFrame
nullable), except that a NOT NULL table column needs a non-nullable DataFrame column. A mismatch raises
:class:`SmartError` naming the column, before anything is written.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from smart_spark.errors import SmartError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import DataType, StructType

    from smart_spark.delta.refs import TableRef

# Delta (delta-spark, Databricks): the commit info of commands other than DataFrame writes.
USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"
_GUARD = "SMARTSPARK_REPLACE_WHERE"


def quote(name: str) -> str:
    """``name`` as a Spark SQL identifier."""
    return "`" + name.replace("`", "``") + "`"


def literal(value: str) -> str:
    """``value`` as a Spark SQL string literal."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def user_metadata(commit_info: dict[str, Any] | None) -> str:
    """``commit_info`` as the JSON object recorded as a commit's ``userMetadata``."""
    return json.dumps(commit_info or {}, sort_keys=True, default=str)


@contextmanager
def session_conf(spark: SparkSession, key: str, value: str) -> Iterator[None]:
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


def guard(df: DataFrame, column: str, value: str) -> DataFrame:
    """``df`` whose write fails on a row with ``column`` other than ``value`` (checked in the same pass)."""
    message = literal(f"{_GUARD}: a row has {column} other than {value!r}")
    test = f"{quote(column)} <=> {literal(value)}"
    return df.selectExpr(
        *(
            f"CASE WHEN {test} THEN {quote(c)} ELSE raise_error({message}) END AS {quote(c)}"
            if c == column
            else quote(c)
            for c in df.columns
        )
    )


@contextmanager
def guarded(column: str, value: str) -> Iterator[None]:
    """Turns the failure of a :func:`guard`-ed write into SmartError."""
    try:
        yield
    except Exception as error:
        if _GUARD in str(error):
            raise SmartError(
                f"replace_where({column} = {value!r}): the data has rows with another {column}"
            ) from None
        raise


def all_nullable(dtype: DataType) -> DataType:
    """``dtype`` with every nested field, element and value nullable, and no field metadata."""
    from pyspark.sql.types import ArrayType, MapType, StructField, StructType

    if isinstance(dtype, StructType):
        return StructType([StructField(f.name, all_nullable(f.dataType), True) for f in dtype.fields])
    if isinstance(dtype, ArrayType):
        return ArrayType(all_nullable(dtype.elementType), True)
    if isinstance(dtype, MapType):
        return MapType(all_nullable(dtype.keyType), all_nullable(dtype.valueType), True)
    return dtype


def conform(df: DataFrame, table: StructType, ref: TableRef) -> DataFrame:
    """``df`` in the table's column order, after checking its schema against the table's (module doc)."""
    ours = {f.name: f for f in df.schema.fields}
    theirs = {f.name: f for f in table.fields}
    for name in ours.keys() - theirs.keys():
        raise SmartError(f"{ref}: column {name!r} is not in the table (its columns: {list(theirs)})")
    for name, field in theirs.items():
        if name not in ours:
            raise SmartError(f"{ref}: column {name!r} of the table is missing from the data")
        got = ours[name]
        if all_nullable(got.dataType) != all_nullable(field.dataType):
            raise SmartError(
                f"{ref}: column {name!r} is {got.dataType.simpleString()} in the data but "
                f"{field.dataType.simpleString()} in the table"
            )
        if not field.nullable and got.nullable:
            raise SmartError(f"{ref}: column {name!r} is NOT NULL in the table but nullable in the data")
    return df.select(*(df[name] for name in theirs))
