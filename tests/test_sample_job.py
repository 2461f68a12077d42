"""The newcomer's path: the bundled sample through the real encoder, real Spark and real Delta tables."""

from __future__ import annotations

import json
import os

import duckdb
import pytest
from deltalake import DeltaTable

from jobs.smart_mixture import main

pytestmark = pytest.mark.spark
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_sample_job_end_to_end_and_cached_rerun(spark, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = str(tmp_path / "sample")
    assert main(["--config", "conf/sample.yaml", "--output", out]) == 0
    printed = capsys.readouterr().out
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
