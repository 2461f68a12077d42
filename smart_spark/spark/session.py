"""The SparkSession the job runs in: whatever the cluster gives, plus the few settings the job relies on."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# What the job relies on; each applies only where neither the caller, spark-submit nor the cluster set it.
DEFAULTS = {
    "spark.sql.session.timeZone": "UTC",
    # Delta readers (delta-rs, DuckDB, Spark) expect INT64 microseconds, not Spark's default INT96.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


def get_spark(
    app_name: str = "smart-spark", master: str | None = None, conf: dict[str, str] | None = None
) -> SparkSession:
    """The active SparkSession (``getOrCreate``), with :data:`DEFAULTS` filled in where nothing set them.

    ``master`` and ``conf`` are applied like ``--master`` and ``--conf``; a session that already runs keeps
    its master. Works for classic and Spark Connect sessions (``SPARK_REMOTE``).
    """
    from pyspark.sql import SparkSession

    launching_locally = "PYSPARK_GATEWAY_PORT" not in os.environ and not os.environ.get("SPARK_REMOTE")
    if launching_locally and (master is None or master.startswith("local")):
        # Local Python workers run this interpreter (its packages), not whatever `python3` is on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    already_set = spark.conf.getAll  # explicitly set entries only (spark-submit, cluster, conf, conf.set)
    for key, value in DEFAULTS.items():
        if key not in already_set:
            spark.conf.set(key, value)
    return spark
