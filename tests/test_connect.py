"""The job runs unchanged over Spark Connect (a local Sail server, native ``format("delta")`` there).

Its mixture must equal the classic local run's, row for row.
"""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from smart_spark.cli.settings import make_config
from smart_spark.datasets.synthetic import synthetic_table
from smart_spark.delta import delta_io
from smart_spark.jobs.smart_mixture import run

pytestmark = [pytest.mark.spark, pytest.mark.slow]
COLUMNS = ["task", "stratum", "selection_rank", "id", "selection_gain"]


def mixture_rows(path: str):
    frame = DeltaTable(path).to_pandas()
    return frame.sort_values(["task", "stratum", "selection_rank"])[COLUMNS].reset_index(drop=True)


@pytest.mark.parametrize("partition_size", [20000, 60])
def test_connect_run_equals_classic(spark, sail, tmp_path, monkeypatch, partition_size):
    source = str(tmp_path / "input.parquet")
    pq.write_table(synthetic_table(1500, 8, dim=16, families=3, seed=11), source)

    def config(out: str):
        return make_config(dict(input=source, output=out, id_col="id", embedding_col="embedding",
                                stratum_col="template_type", strata="flan", num_tasks=6, num_instances=400,
                                partition_size=partition_size, run_id="connect", report=False))

    run(spark, config(str(tmp_path / "classic")))
    monkeypatch.setenv("SPARK_CONNECT_MODE_ENABLED", "1")  # pyspark's functions build Connect columns
    assert delta_io.backend(sail) == "spark"
    run(sail, config(str(tmp_path / "connect")))
    monkeypatch.delenv("SPARK_CONNECT_MODE_ENABLED")

    classic = mixture_rows(str(tmp_path / "classic" / "mixture"))
    remote = mixture_rows(str(tmp_path / "connect" / "mixture"))
    assert len(remote) == 400
    assert remote[["task", "stratum", "selection_rank", "id"]].equals(
        classic[["task", "stratum", "selection_rank", "id"]])
    assert ((remote["selection_gain"] - classic["selection_gain"]).abs().fillna(0) < 1e-9).all()
    weights = DeltaTable(str(tmp_path / "connect" / "task_weights")).to_pandas()
    assert weights["selected"].sum() == 6
    assert DeltaTable(str(tmp_path / "connect" / "runs")).to_pandas()["status"].tolist() == ["succeeded"]


def test_connect_run_into_a_catalog_schema(spark, sail, tmp_path, monkeypatch):
    """``--output catalog:<schema>`` on Sail's catalog: the tables are ``<schema>.smart_<table>``; the mixture
    equals the classic run's, and a second run id adds its rows beside the first one's."""
    source = str(tmp_path / "input.parquet")
    pq.write_table(synthetic_table(900, 6, dim=16, families=3, seed=5), source)
    schema = "smartspark_connect_catalog"
    sail.sql(f"CREATE DATABASE {schema} LOCATION '{tmp_path / schema}'").collect()

    def config(out: str, run_id: str):
        return make_config(dict(input=source, output=out, id_col="id", embedding_col="embedding",
                                stratum_col="template_type", strata="flan", num_tasks=4, num_instances=200,
                                run_id=run_id, report=False))

    run(spark, config(str(tmp_path / "classic"), "a"))
    monkeypatch.setenv("SPARK_CONNECT_MODE_ENABLED", "1")
    try:
        run(sail, config(f"catalog:{schema}", "a"))  # a bare schema name is spelled catalog:<schema>
        run(sail, config(f"catalog:{schema}", "b"))
        tables = sorted(r.tableName for r in sail.sql(f"SHOW TABLES IN {schema}").collect())
        remote = sail.table(f"{schema}.smart_mixture").toPandas()
        runs = sail.table(f"{schema}.smart_runs").toPandas()
        finished = sail.table(f"{schema}.smart_mixture_succeeded").toPandas()  # the view of finished runs
    finally:
        sail.sql(f"DROP VIEW IF EXISTS {schema}.smart_mixture_succeeded").collect()
        for table in sail.sql(f"SHOW TABLES IN {schema}").collect():
            sail.sql(f"DROP TABLE IF EXISTS {schema}.{table.tableName}").collect()
        sail.sql(f"DROP DATABASE IF EXISTS {schema}").collect()
        monkeypatch.delenv("SPARK_CONNECT_MODE_ENABLED")

    assert {"smart_mixture", "smart_runs", "smart_task_weights"} <= set(tables)
    assert all(t.startswith("smart_") for t in tables)
    assert sorted(runs["run_id"]) == ["a", "b"] and set(runs["status"]) == {"succeeded"}
    assert len(finished) == len(remote) == 400
    classic = mixture_rows(str(tmp_path / "classic" / "mixture"))
    for run_id in ("a", "b"):
        mine = remote[remote["run_id"] == run_id].sort_values(["task", "stratum", "selection_rank"])
        assert mine[["task", "stratum", "selection_rank", "id"]].reset_index(drop=True).equals(
            classic[["task", "stratum", "selection_rank", "id"]])
