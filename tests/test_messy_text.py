"""Messy real-world text, each case with its documented outcome (docs/input.md): empty and whitespace
prompts, prompts longer than the encoder's limit, repeated prompts, task names with ``/``, spaces, quotes,
backticks and non-ASCII characters (report, chart, sweep run ids, export files, SQL), 1,000+ tasks, and
N' checked against the input's rows right after reading."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake

from smart_spark.cli.settings import make_config
from smart_spark.errors import SmartError
from smart_spark.jobs.export_mixture import main as export_main
from smart_spark.jobs.smart_mixture import run
from smart_spark.report.chart import MAX_CHART_TASKS
from smart_spark.report.console import format_console
from smart_spark.report.markdown import MAX_LISTED_UNSELECTED, build_report

pytestmark = pytest.mark.spark

NAMES = ["translation/de_en", "math: 2-digit", "quotes \"double\" 'single'", "数学/算术 – Übersetzung",
         "back`tick | pipe $x$"]
LONG = " ".join(f"word{i % 97}" for i in range(10_000))


def messy_rows() -> list[dict]:
    rows = []
    for t, task in enumerate(NAMES):
        for i in range(8):
            rows.append({"task": task, "prompt": f"Task {t} question {i}: Wie geht's? 你好 {i}",
                         "response": f"r{t}-{i}"})
    rows += [
        {"task": NAMES[0], "prompt": "", "response": "empty"},
        {"task": NAMES[1], "prompt": "   \n\t", "response": "blank"},
        {"task": NAMES[2], "prompt": LONG, "response": "long"},
        {"task": NAMES[3], "prompt": LONG + " more", "response": "long2"},
        {"task": NAMES[0], "prompt": "Same prompt twice", "response": "a"},
        {"task": NAMES[0], "prompt": "Same prompt twice", "response": "b"},  # repeated inside a task
        {"task": NAMES[4], "prompt": "Same prompt twice", "response": "c"},  # and across tasks
    ]
    return rows


@pytest.fixture(scope="module")
def messy_run(spark, tmp_path_factory):
    base = tmp_path_factory.mktemp("messy")
    path = base / "messy.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for row in messy_rows():
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    out = str(base / "out")
    config = make_config(dict(input=str(path), output=out, num_tasks="2,all", num_instances="6,12",
                              run_id="messy"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = run(spark, config)
    return out, summary, [str(w.message) for w in caught]


def test_messy_prompts_counted_in_metrics_and_report(messy_run):
    out, summary, caught = messy_run
    assert not [w for w in caught if "Glyph" in w or "mathtext" in w.lower()]
    runs = DeltaTable(f"{out}/runs").to_pandas()
    assert sorted(runs["run_id"]) == ["messy/m2-n12", "messy/m2-n6", "messy/mall-n12", "messy/mall-n6"]
    metrics = json.loads(runs[runs["run_id"] == "messy/mall-n12"]["metrics"].iloc[0])
    stats = metrics["embed_stats"]
    rows = len(messy_rows())
    assert metrics["empty_prompts"] == 2  # kept and embedded
    assert metrics["input_rows"] == rows
    assert stats["max_tokens"] == 256 and stats["truncated_rows"] == 2 and stats["truncated_texts"] == 2
    assert stats["truncated_share"] == round(2 / rows, 6)
    assert stats["repeated_in_task"] == 1 and stats["texts_in_several_tasks"] == 1
    assert stats["distinct_texts"] == rows - 2 == stats["texts"]
    cache = DeltaTable(f"{out}/embeddings").to_pandas()
    assert len(cache) == rows - 2 and cache["text_sha256"].is_unique  # each text stored once

    report = open(f"{out}/reports/messy/mall-n12/report.md", encoding="utf-8").read()
    assert "2 empty or whitespace-only" in report
    assert "2 (4.26%) longer than the encoder's 256 tokens" in report
    assert "1 rows repeat a prompt of their own task; 1 distinct prompts appear in several tasks" in report
    # Task names as code spans: the backtick one fenced with double backticks, pipes escaped in tables.
    assert "`` back`tick \\| pipe $x$ ``" in report
    assert "`数学/算术 – Übersetzung`" in report and "`quotes \"double\" 'single'`" in report
    with open(f"{out}/reports/messy/mall-n12/budgets.png", "rb") as fh:
        assert fh.read(4) == b"\x89PNG"
    index = open(f"{out}/report.md", encoding="utf-8").read()
    assert "`messy/m2-n6`" in index


def test_messy_task_names_through_export_and_sql(spark, messy_run, tmp_path):
    out, _, _ = messy_run
    dest = str(tmp_path / "export")
    assert export_main(["--output", out, "--run-id", "messy/mall-n12", "--dest", dest, "--shards", "2",
                        "--format", "both"]) == 0
    names = sorted(os.listdir(dest))
    assert names == ["manifest.json", "parquet", "train-00000-of-00002.jsonl", "train-00001-of-00002.jsonl"]
    shards = sorted(os.listdir(f"{dest}/parquet"))
    exported = pd.concat([pd.read_parquet(f"{dest}/parquet/{f}") for f in shards])
    mixture = DeltaTable(f"{out}/mixture").to_pandas()
    mixture = mixture[mixture["run_id"] == "messy/mall-n12"]
    assert sorted(exported["task"]) == sorted(mixture["task"]) and set(mixture["task"]) <= set(NAMES)
    # SQL over the mixture with a quoted, non-ASCII name.
    spark.read.parquet(f"{out}/mixture").createOrReplaceTempView("messy_mixture")
    for name in set(mixture["task"]):
        literal = "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"
        n = spark.sql(f"SELECT count(*) AS n FROM messy_mixture WHERE run_id = 'messy/mall-n12' "
                      f"AND task = {literal}").first()["n"]
        assert n == (mixture["task"] == name).sum()


def test_num_instances_checked_right_after_reading(spark, tmp_path):
    path = tmp_path / "small.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for row in messy_rows()[:10]:
            fh.write(json.dumps(row) + "\n")
    out = tmp_path / "out"
    config = make_config(dict(input=str(path), output=str(out), num_instances=11, run_id="big"))
    with pytest.raises(SmartError, match=r"--num-instances 11 is more than the input's 10 rows"):
        run(spark, config)
    assert not out.exists()  # nothing embedded, nothing written


def test_thousand_tasks_job_and_bounded_report(spark, tmp_path):
    rng = np.random.default_rng(3)
    tasks = [f"flan/task_{i:04d} – ü" for i in range(1_001)]
    task = np.repeat(tasks, 3)
    table = pa.table({"id": [f"r{i}" for i in range(len(task))], "task": task,
                      "embedding": list(rng.standard_normal((len(task), 8)).astype(np.float32))})
    path = str(tmp_path / "many.parquet")
    pq.write_table(table, path)
    out = str(tmp_path / "out")
    summary = run(spark, make_config(dict(input=path, output=out, id_col="id", embedding_col="embedding",
                                          num_tasks=600, num_instances=1500, run_id="many")))
    assert summary["num_tasks_total"] == 1_001 and summary["num_tasks_selected"] == 600
    weights = DeltaTable(f"{out}/task_weights").to_pandas()
    assert len(weights) == 1_001 and int(weights["budget"].sum()) == 1500
    report = open(f"{out}/report.md", encoding="utf-8").read()
    kept_table = report.split("## Kept tasks, in pick order")[1].split("\n## ")[0]
    table_rows = [line for line in kept_table.splitlines() if line.startswith("| ") and "`flan/task_" in line]
    assert len(table_rows) == 600  # the kept tasks' table in full
    assert f"and {401 - MAX_LISTED_UNSELECTED} more" in report  # the rest bounded
    console = format_console(summary, weights)
    assert len(console.splitlines()) < 12
    assert build_report(summary, weights, quality_chart_name="quality.png") == report
    assert MAX_CHART_TASKS < 600  # the chart shows the first MAX_CHART_TASKS kept tasks


def test_cached_reruns_count_truncation_from_the_cache_old_caches_too(spark, messy_run, tmp_path):
    """The cache stores each text's token count; a rerun over it, and over a cache made before counts
    were stored (no ``tokens`` column, 3 texts missing), reports the same truncation and repeats."""
    out, _, _ = messy_run
    expected = json.loads(DeltaTable(f"{out}/runs").to_pandas().set_index("run_id")
                          .loc["messy/mall-n12", "metrics"])["embed_stats"]
    cache = DeltaTable(f"{out}/embeddings").to_pandas()
    assert int((cache["tokens"] > 256).sum()) == 2 and cache["tokens"].max() >= 10_000
    assert cache["tokens"].min() >= 2  # [CLS] and [SEP] at least
    legacy = str(tmp_path / "legacy")
    write_deltalake(legacy, pa.Table.from_pandas(cache.drop(columns="tokens").iloc[3:], preserve_index=False))
    source = os.path.join(os.path.dirname(out), "messy.jsonl")
    keys = ("max_tokens", "truncated_rows", "truncated_texts", "truncated_share", "distinct_texts",
            "repeated_in_task", "texts_in_several_tasks")
    for name, table, embedded in (("cached", f"{out}/embeddings", 0), ("legacy", legacy, 3)):
        config = make_config(dict(input=source, output=str(tmp_path / name), embeddings_table=table,
                                  num_instances=12, run_id=name, report=False))
        summary = run(spark, config)
        stats = summary["embed_stats"]
        assert stats["embedded"] == embedded, name
        assert {k: stats[k] for k in keys} == {k: expected[k] for k in keys}, name
    assert "tokens" not in DeltaTable(legacy).schema().to_arrow().names  # an old cache keeps its schema
    assert len(DeltaTable(legacy).to_pandas()) == len(cache)
