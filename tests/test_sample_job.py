"""The newcomer's path: the bundled sample through the real encoder, real Spark and real Delta tables."""

from __future__ import annotations

import contextlib
import io
import json
import os

import duckdb
import pytest
from deltalake import DeltaTable

from smart_spark.cli.settings import load_config
from smart_spark.jobs.smart_mixture import main, run

pytestmark = pytest.mark.spark
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def classic_sample(spark, tmp_path_factory):
    """The sample job run once on the classic local session: (output folder, console text)."""
    out = str(tmp_path_factory.mktemp("classic") / "sample")
    here = os.getcwd()
    os.chdir(ROOT)
    try:
        console = io.StringIO()
        with contextlib.redirect_stdout(console):
            assert main(["--config", "conf/sample.yaml", "--output", out]) == 0
    finally:
        os.chdir(here)
    return out, console.getvalue()


def test_sample_job_end_to_end_and_cached_rerun(classic_sample, monkeypatch):
    monkeypatch.chdir(ROOT)
    out, printed = classic_sample
    assert "SMART run sample" in printed and "N' = 600" in printed

    mixture = DeltaTable(f"{out}/mixture").to_pyarrow_dataset()  # noqa: F841 (DuckDB reads it by name)
    counts = duckdb.sql(
        "SELECT count(*) AS n, count(DISTINCT task) AS tasks, count(DISTINCT id) AS ids "
        "FROM mixture WHERE run_id = 'sample'").fetchall()[0]
    assert counts == (600, 24, 600)
    weights = DeltaTable(f"{out}/task_weights").to_pandas()
    assert weights["selected"].sum() == 24 and len(weights) == 37
    assert weights["budget"].sum() == 600
    kept = weights[weights["selected"]]
    assert (kept["budget"] <= kept["task_size"]).all()
    assert all(sum(m.values()) == b for m, b in zip(
        kept["stratum_budgets"].map(lambda pairs: dict(pairs)), kept["budget"]))
    runs = DeltaTable(f"{out}/runs").to_pandas()
    metrics = json.loads(runs["metrics"][0])
    assert metrics["embed_stats"]["embedded"] == metrics["embed_stats"]["texts"] > 3000
    report = open(f"{out}/report.md", encoding="utf-8").read()
    first = kept.sort_values("pick_rank")["task"].iloc[0]
    assert f"| 0 | `{first}` |" in report and "Share of the first-picked task" in report
    with open(f"{out}/budgets.png", "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"

    # A rerun of the same run id embeds nothing (every prompt is in the cache) and replaces the run.
    cache_version = DeltaTable(f"{out}/embeddings").version()
    assert main(["--config", "conf/sample.yaml", "--output", out, "--no-report"]) == 0
    assert DeltaTable(f"{out}/embeddings").version() == cache_version
    runs = DeltaTable(f"{out}/runs").to_pandas()
    assert len(runs) == 1
    assert json.loads(runs["metrics"][0])["embed_stats"]["embedded"] == 0
    rerun = DeltaTable(f"{out}/mixture").to_pandas()
    assert len(rerun) == 600


def test_sample_job_over_spark_connect_equals_classic(classic_sample, sail, tmp_path, monkeypatch):
    """The whole sample job (the encoder UDF included, its own empty cache) over Spark Connect to a Sail
    server: the same mixture as the classic run, gains equal up to the encoder's float32 noise (the
    Arrow batches, hence the padding, differ between the engines)."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("SPARK_CONNECT_MODE_ENABLED", "1")  # pyspark's functions build Connect columns
    out = str(tmp_path / "connect")
    config = load_config(["--config", "conf/sample.yaml", "--output", out, "--no-report"])
    run(sail, config)
    monkeypatch.delenv("SPARK_CONNECT_MODE_ENABLED")
    key = ["task", "stratum", "selection_rank"]
    classic = DeltaTable(f"{classic_sample[0]}/mixture").to_pandas().sort_values(key).reset_index(drop=True)
    remote = DeltaTable(f"{out}/mixture").to_pandas().sort_values(key).reset_index(drop=True)
    assert len(remote) == 600
    assert remote[key + ["id"]].equals(classic[key + ["id"]])
    assert remote["selection_gain"].isna().equals(classic["selection_gain"].isna())  # null: whole group
    assert ((remote["selection_gain"] - classic["selection_gain"]).abs().fillna(0) <= 1e-4).all()
    runs = DeltaTable(f"{out}/runs").to_pandas()
    assert json.loads(runs["metrics"][0])["embed_stats"]["embedded"] > 3000
    weights = [DeltaTable(f"{folder}/task_weights").to_pandas().sort_values("task").reset_index(drop=True)
               for folder in (classic_sample[0], out)]
    assert weights[0][["task", "selected", "budget"]].equals(weights[1][["task", "selected", "budget"]])
