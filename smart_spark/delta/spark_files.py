"""The one thing delta-rs cannot do for us: commit files that Spark wrote, in one transaction.

delta-rs writes only what the driver holds (``write_deltalake`` and ``DeltaTable.merge`` take Arrow data
in this process); a mixture or an embedding cache is written by Spark's executors, in parallel. So Spark
writes Parquet into a staging folder under the table root; the driver moves each data file to its place
(``<root>/<col>=<value>/part-*.parquet``, the layout of Spark's and delta-rs's own writers), reads its
footer for ``numRecords``, and ONE delta-rs transaction (``create_write_transaction``) commits exactly those
files and removes the replaced ones. Timestamps are written as TIMESTAMP_MICROS. A failed write commits
nothing: its staging folder is removed, and files of a failed commit stay unreferenced until VACUUM.
Spark and this process must see the same folder (over Spark Connect: a server on this machine, or a path
both resolve); a write this process cannot see is an error, and nothing is committed.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from smart_spark.delta.common import session_conf, user_metadata
from smart_spark.errors import SmartError

if TYPE_CHECKING:
    from deltalake import DeltaTable
    from deltalake.transaction import AddAction, CommitProperties
    from pyspark.sql import DataFrame, SparkSession

    from smart_spark.delta.engine import Fence

WRITE_ID = "smartspark.writeId"  # on our commits: which version our commit got
_STAGING = "smartspark-staging-"  # not hidden, so VACUUM removes what a crashed write left
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
_RETRIES = 8  # partition overwrites retried after a concurrent commit


def spark_uri(root: str) -> str:
    """``root`` as Spark should see it: a local path as a file: URI, whatever the default file system."""
    return root if "://" in root else "file://" + root


def commit_properties(
    commit_info: dict[str, Any] | None, write_id: str | None = None, app_id: str | None = None
) -> CommitProperties:
    """delta-rs commit properties recording ``commit_info`` as ``userMetadata`` (and our write id); with
    ``app_id``, an application transaction of that id, so that commits carrying it conflict."""
    from deltalake.transaction import CommitProperties, Transaction

    metadata = {"userMetadata": user_metadata(commit_info)}
    if write_id is not None:
        metadata[WRITE_ID] = write_id
    apps = None if app_id is None else [Transaction(app_id=app_id, version=time.time_ns() // 1000)]
    return CommitProperties(custom_metadata=metadata, app_transactions=apps)


def write_files(
    spark: SparkSession, df: DataFrame, root: str, partition_by: list[str], write_id: str
) -> list[AddAction]:
    """Spark writes ``df`` as Parquet; returns add actions for its non-empty files, moved into place."""
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq
    from deltalake.transaction import AddAction

    fs, base = pafs.FileSystem.from_uri(root) if "://" in root else (pafs.LocalFileSystem(), root)
    stage = f"{base}/{_STAGING}{write_id}"
    try:
        with session_conf(spark, "spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS"):
            (
                df.write.mode("error")
                .option("mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")  # no _SUCCESS file
                .partitionBy(*partition_by)
                .parquet(f"{spark_uri(root)}/{_STAGING}{write_id}")
            )
        if fs.get_file_info(stage).type == pafs.FileType.NotFound:  # Spark always makes the folder
            raise SmartError(
                f"{root}: Spark wrote the files where this process does not see them (a Spark Connect "
                "server on another machine?); delta-rs commits here what Spark writes there, so give a path "
                "both see (an object store URI), or run Spark with Delta (delta-spark)")
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


def commit_files(
    root: str,
    dt: DeltaTable,
    adds: list[AddAction],
    *,
    mode: str,
    partition_filters: list | None,
    commit_info: dict[str, Any] | None,
    write_id: str,
    fence: Fence | None = None,
) -> int:
    """One commit of ``adds`` (``overwrite`` drops files matching ``partition_filters``); its version.

    delta-rs fails an overwrite whose snapshot a concurrent commit changed, even in other partitions (Delta
    itself rebases such a commit). An overwrite of whole partitions means the same on any newer snapshot,
    so it is retried on the latest one; anything else raises. With ``fence``, the commit carries
    ``fence.app_id`` as an application transaction (delta-rs then fails it when a commit with the same id
    followed ``dt``'s snapshot) and ``fence.check`` runs before each attempt, after its snapshot is taken.
    """
    from deltalake import DeltaTable

    schema = dt.schema()
    app_id = None if fence is None else fence.app_id
    for attempt in range(_RETRIES + 1):
        if fence is not None and fence.check is not None:
            fence.check()  # raises to refuse: the files stay unreferenced, the table unchanged
        try:
            dt.create_write_transaction(
                adds,
                mode=mode,
                schema=schema,
                partition_by=dt.metadata().partition_columns,
                partition_filters=partition_filters,
                commit_properties=commit_properties(commit_info, write_id, app_id),
            )
            break
        except Exception as error:
            if attempt < _RETRIES and partition_filters and "concurrent" in str(error).lower():
                time.sleep(0.1 * (attempt + 1))
                dt = DeltaTable(root)
                if dt.schema() == schema:
                    continue
            # The files stay unreferenced (VACUUM removes them); the table is as it was.
            raise SmartError(f"{root}: commit failed, the table is unchanged: {error}") from None
    latest = DeltaTable(root)
    for commit in latest.history(limit=50):  # others may have committed since ours
        if commit.get(WRITE_ID) == write_id:
            return int(commit["version"])
    return latest.version()
