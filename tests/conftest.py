"""Shared fixtures. ``spark``: one local SparkSession for the whole test run (real Spark, Java 17)."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# CI draws the same examples every run (no flaky red builds); locally, HYPOTHESIS_PROFILE=dev explores.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory):
    """A local[2] classic SparkSession: UTC, Arrow on, 4 shuffle partitions, no UI, warehouse in a tmp dir."""
    from smart_spark.spark.session import get_spark

    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    session = get_spark(
        "smart-spark-tests",
        master="local[2]",
        conf={
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.execution.arrow.pyspark.enabled": "true",
            "spark.sql.shuffle.partitions": "4",
            "spark.default.parallelism": "2",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.warehouse.dir": str(warehouse),
            "spark.driver.extraJavaOptions": f"-Dderby.system.home={warehouse}",
        },
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def sail():
    """A Spark Connect session to a Sail server on 127.0.0.1 (a free port), stopped afterwards.

    One per test module: Sail ends a Connect session that stays idle too long, and the whole suite runs
    for half an hour between the first module that uses it and the last."""
    from pysail.spark import SparkConnectServer
    from pyspark.sql.connect.session import SparkSession as RemoteSparkSession

    server = SparkConnectServer("127.0.0.1", 0)
    server.start(background=True)
    try:
        host, port = server.listening_address
        # The Connect builder directly: pyspark's generic builder refuses while the classic session runs.
        session = RemoteSparkSession.builder.remote(f"sc://{host}:{port}").getOrCreate()
        session.conf.set("spark.sql.session.timeZone", "UTC")
        yield session
        session.stop()
    finally:
        server.stop()
