"""The DataFrame API (``smart_spark.build_mixture``) as a notebook uses it, on a real local SparkSession
with the real encoder: nothing written unless asked; a write equals the job's tables."""

from __future__ import annotations

import doctest
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from deltalake import DeltaTable

import smart_spark
from smart_spark.api import mixture as api
from smart_spark.cli.settings import make_config
from smart_spark.jobs.smart_mixture import run

pytestmark = pytest.mark.spark
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def small_sample(tmp_path_factory):
    """The first 8 rows of each task of the bundled sample (296 rows, 37 tasks), as JSON Lines."""
    path = tmp_path_factory.mktemp("sample") / "small.jsonl"
    seen: dict[str, int] = {}
    with open(os.path.join(ROOT, "data/sample/instructions.jsonl"), encoding="utf-8") as src, \
            open(path, "w", encoding="utf-8") as dst:
        for line in src:
            task = json.loads(line)["task"]
            if seen.get(task, 0) < 8:
                seen[task] = seen.get(task, 0) + 1
                dst.write(line)
    return str(path)


def test_import_smart_spark_needs_no_spark():
    code = ("import sys, smart_spark; assert 'pyspark' not in sys.modules; "
            "assert callable(smart_spark.greedy_select); print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": ROOT}, check=True)
    assert out.stdout.strip() == "ok"
    assert smart_spark.build_mixture is api.build_mixture


def test_docstring_example_runs(spark, small_sample, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    finder = doctest.DocTestFinder()
    [test] = [t for t in finder.find(api, "smart_spark.api.mixture") if t.name == "smart_spark.api.mixture"]
    test.globs.update(spark=spark, SAMPLE=small_sample)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
    assert os.listdir(tmp_path) == []  # nothing written


def test_notebook_style_never_writes(spark, small_sample, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    warehouse = spark.conf.get("spark.sql.warehouse.dir").removeprefix("file:")
    before = sorted(os.listdir(warehouse)) if os.path.isdir(warehouse) else []
    df = spark.read.json(small_sample).where("task != 'copa'")
    result = smart_spark.build_mixture(df, id_col="id", num_instances=120, num_tasks=20,
                                       stratum_col="template_type", strata="flan", run_id="nb")
    mixture = result.mixture
    assert mixture.count() == 120
    assert {"run_id", "task", "stratum", "id", "selection_rank", "selection_gain", "prompt"} <= set(
        mixture.columns)
    weights = result.task_weights
    assert len(weights) == 36 and int(weights["selected"].sum()) == 20 and int(weights["budget"].sum()) == 120
    assert result.summary["embed_stats"]["cache_hits"] == 0
    assert result.summary["num_tasks_total"] == 36 and set(result.summary["stage_seconds"]) == {
        "read", "embed", "weigh", "select", "quality"}
    assert result.mixtures[0].quality.iloc[0]["scope"] == "all"  # what the mixture covers (docs/quality.md)
    assert 0 < result.summary["quality"]["coverage"] <= 1
    # The mixture is a DataFrame: query it with SQL.
    mixture.createOrReplaceTempView("nb_mixture")
    per_task = spark.sql("SELECT task, count(*) AS n FROM nb_mixture GROUP BY task").toPandas()
    assert dict(zip(per_task["task"], per_task["n"])) == {
        t: b for t, b in zip(weights["task"], weights["budget"]) if b}
    assert os.listdir(tmp_path) == []
    assert (sorted(os.listdir(warehouse)) if os.path.isdir(warehouse) else []) == before
    result.unpersist()


def test_write_equals_the_jobs_tables(spark, small_sample, tmp_path):
    settings = dict(id_col="id", num_instances=100, num_tasks=16, run_id="same", seed=11, report=False)
    cli_out, api_out = str(tmp_path / "cli"), str(tmp_path / "api")
    run(spark, make_config(dict(input=small_sample, output=cli_out, **settings)))

    result = smart_spark.build_mixture(spark.read.json(small_sample), **settings)
    summary = result.write(api_out)
    result.unpersist()
    assert summary["output"] == api_out

    # Gains agree to float32 rounding only: the encoder's batches differ between the cached and the
    # in-memory path (which texts are padded together), which moves embeddings by ~1e-7.
    floats = {"selection_gain", "gain", "weight"}
    for table, key in (("mixture", ["id"]), ("task_weights", ["task"])):
        a = DeltaTable(f"{cli_out}/{table}").to_pandas().sort_values(key).reset_index(drop=True)
        b = DeltaTable(f"{api_out}/{table}").to_pandas().sort_values(key).reset_index(drop=True)
        assert sorted(a.columns) == sorted(b.columns), table
        exact = sorted(set(a.columns) - floats)
        assert a[exact].astype(str).equals(b[exact].astype(str)), table
        for col in floats & set(a.columns):
            x, y = a[col].astype(float), b[col].astype(float)
            assert np.allclose(x, y, rtol=1e-5, atol=1e-6, equal_nan=True), col
    runs = {name: DeltaTable(f"{out}/runs").to_pandas().iloc[0] for name, out in (("cli", cli_out),
                                                                                   ("api", api_out))}
    skip = {"stage_seconds", "output", "input", "report_path", "embed_stats", "attempt"}
    metrics = {k: {m: v for m, v in json.loads(r["metrics"]).items() if m not in skip}
               for k, r in runs.items()}
    assert metrics["cli"] == metrics["api"]
    stats = {k: json.loads(r["metrics"])["embed_stats"] for k, r in runs.items()}
    assert stats["cli"] == stats["api"]  # no cache on either side yet: every text embedded
    assert runs["api"]["status"] == "succeeded" and runs["api"]["input"] == "<DataFrame>"
    assert os.path.exists(f"{api_out}/embeddings") is False  # built without an output: nothing cached
