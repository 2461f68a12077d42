"""The SparkSession the job runs in: whatever the cluster gives, plus the few settings the job relies on."""

from __future__ import annotations

import ctypes.util
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
    # Let adaptive execution coalesce the shuffle partitions of persisted frames too: without it every
    # persisted dropDuplicates/groupBy keeps spark.sql.shuffle.partitions (200) tiny tasks (the cached
    # rerun of the 3,493-row sample spent most of its embed stage on those).
    "spark.sql.optimizer.canChangeCachedPlanOutputPartitioning": "true",
}

#: The JVM's console logging for sessions this module launches: errors only, no stack traces.
LOG4J_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "log4j2.properties")
_JAVA_OPTIONS = "spark.driver.extraJavaOptions"
_SPARK_DEFAULT_PROFILE = "org/apache/spark/log4j2-defaults.properties"  # Spark's, when none is given


def quiet_submitted_jvm() -> bool:
    """Under ``spark-submit``: the JVM logs with :data:`LOG4J_CONFIG` from now on, its context start too.

    ``spark-submit`` starts the JVM, with Spark's default log4j profile (INFO), before the job's Python runs;
    the Py4J gateway reaches it before any SparkContext exists, so even the context's start lines go.
    Only Spark's own default profile is replaced: a log4j configuration the user gave
    (``-Dlog4j2.configurationFile``, ``conf/log4j2.properties``, a cluster's) stays. Returns whether it
    replaced it (False too without a gateway: a local Python process or Spark Connect).
    """
    from pyspark import SparkContext

    if "PYSPARK_GATEWAY_PORT" not in os.environ or os.environ.get("SPARK_REMOTE"):
        return False
    SparkContext._ensure_initialized()
    jvm = SparkContext._jvm
    context = jvm.org.apache.logging.log4j.LogManager.getContext(False)  # the one Spark logs to
    location = str(context.getConfiguration().getConfigurationSource().getLocation() or "")
    if not location.endswith(_SPARK_DEFAULT_PROFILE):
        return False
    # spark-submit leaves Spark's logging to be set up again by the first class that logs (the
    # SparkContext), which would load Spark's default profile once more: set it up now, silently.
    jvm.org.apache.spark.SparkConf(False).initializeLogIfNecessary(False, True)
    context.setConfigLocation(jvm.java.io.File(LOG4J_CONFIG).toURI())  # what Spark does for its default
    return True


def _jvm_running() -> bool:
    """Whether this process already has a classic SparkContext (its JVM's options are fixed)."""
    from pyspark import SparkContext

    return SparkContext._active_spark_context is not None


def get_spark(
    app_name: str = "smart-spark", master: str | None = None, conf: dict[str, str] | None = None,
    *, quiet_jvm: bool = True,
) -> SparkSession:
    """The active SparkSession (``getOrCreate``), with :data:`DEFAULTS` filled in where nothing set them.

    ``master`` and ``conf`` are applied like ``--master`` and ``--conf``; a session that already runs keeps
    its master. Works for classic and Spark Connect sessions (``SPARK_REMOTE``).
    ``quiet_jvm``: the JVM logs with :data:`LOG4J_CONFIG` (errors only, no stack traces on the console)
    unless a log4j configuration was given: when this call launches the JVM itself (a local Python
    process), and under ``spark-submit`` in place of Spark's default profile (:func:`quiet_submitted_jvm`);
    a cluster's own logging stays. A JVM this call launches also draws no console progress bar
    (``spark.ui.showConsoleProgress``): the job logs its progress.
    """
    from pyspark.sql import SparkSession

    launching_locally = "PYSPARK_GATEWAY_PORT" not in os.environ and not os.environ.get("SPARK_REMOTE")
    if launching_locally and (master is None or master.startswith("local")):
        # Local Python workers run this interpreter (its packages), not whatever `python3` is on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    conf = dict(conf or {})
    quiet_level = False
    if launching_locally and not _jvm_running():
        options = conf.get(_JAVA_OPTIONS, "")
        given = options + " " + os.environ.get("PYSPARK_SUBMIT_ARGS", "")
        if quiet_jvm and "log4j2.configurationFile" not in given and "log4j.configuration" not in given:
            conf[_JAVA_OPTIONS] = f"{options} -Dlog4j2.configurationFile=file:{LOG4J_CONFIG}".strip()
            quiet_level = True
        if quiet_jvm and "allowNative" not in given and not ctypes.util.find_library("blas"):
            # No system BLAS: Spark ML's matrix products (k-means) use Java's. Say so up front, or the
            # native loader prints "netlib-blas: JNI_OnLoad: dlopen(libblas.so.3) failed" from C.
            options = conf.get(_JAVA_OPTIONS, "")
            conf[_JAVA_OPTIONS] = f"{options} -Ddev.ludovic.netlib.blas.allowNative=false".strip()
        if "spark.ui.showConsoleProgress" not in given:  # a carriage-return bar: the job logs progress
            conf.setdefault("spark.ui.showConsoleProgress", "false")
    elif quiet_jvm and not _jvm_running():
        quiet_submitted_jvm()
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if quiet_level:  # a driver started like a shell resets the root level to WARN: errors only again
        spark.sparkContext.setLogLevel("ERROR")
    already_set = spark.conf.getAll  # explicitly set entries only (spark-submit, cluster, conf, conf.set)
    for key, value in DEFAULTS.items():
        if key not in already_set:
            spark.conf.set(key, value)
    return spark
