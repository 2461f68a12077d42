"""Bad input gets one clear error naming the problem, and no output table changes."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from smart_spark.cli.settings import make_config
from smart_spark.datasets.synthetic import synthetic_table
from smart_spark.errors import SmartError
from smart_spark.jobs.smart_mixture import run

pytestmark = pytest.mark.spark
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A valid input table (pyarrow) and an output folder already holding one successful run."""
    base = tmp_path_factory.mktemp("errors")
    table = synthetic_table(600, 6, dim=8, families=2, seed=3)
    return table, str(base / "out")


@pytest.fixture(scope="module")
def output_versions(spark, good, tmp_path_factory):
    table, out = good
    path = str(tmp_path_factory.mktemp("in") / "good.parquet")
    pq.write_table(table, path)
    run(spark, config(path, out))
    return {name: DeltaTable(f"{out}/{name}").version() for name in ("mixture", "task_weights", "runs")}


def config(path: str, out: str, **overrides):
    values = dict(input=path, output=out, id_col="id", embedding_col="embedding", num_instances=100,
                  stratum_col="template_type", strata="flan", run_id="ok", report=False)
    values.update(overrides)
    return make_config(values)


def write(tmp_path, table: pa.Table) -> str:
    path = str(tmp_path / "bad.parquet")
    pq.write_table(table, path)
    return path


def replace(table: pa.Table, name: str, values: list) -> pa.Table:
    column = pa.array(values, type=table.schema.field(name).type)
    return table.set_column(table.schema.get_field_index(name), name, column)


def embeddings(table: pa.Table) -> list:
    return table.column("embedding").to_pylist()


def _cases(table: pa.Table):
    emb = embeddings(table)
    tasks = table.column("task").to_pylist()
    ids = table.column("id").to_pylist()
    yield "unknown task column", table, {"task_col": "category"}, "--task-col 'category' is not a column"
    yield "null task", replace(table, "task", [None] + tasks[1:]), {}, "null or empty task name"
    yield "empty task", replace(table, "task", [""] + tasks[1:]), {}, "null or empty task name"
    yield "duplicate ids", replace(table, "id", [ids[1]] + ids[1:]), {}, "duplicate ids: 'r001'"
    yield "null embedding", replace(table, "embedding", [None] + emb[1:]), {}, "null embedding"
    yield "nan embedding", replace(table, "embedding", [[float("nan")] * 8] + emb[1:]), {}, "NaN"
    yield "zero embedding", replace(table, "embedding", [[0.0] * 8] + emb[1:]), {}, "all-zero"
    yield "mixed dims", replace(table, "embedding", [[1.0] * 9] + emb[1:]), {}, "mixed dimension"
    yield "too many instances", table, {"num_instances": 10_000}, "600"
    yield "too many tasks", table, {"num_tasks": 7}, "num_tasks 7 is larger than the 6 tasks"
    bad_tmpl = replace(table, "template_type", ["zs_weird"] + table.column("template_type").to_pylist()[1:])
    yield "flan unknown template", bad_tmpl, {}, "zs_weird"
    yield "empty input", table.slice(0, 0), {}, "has no rows"
    yield "clashing column", table.append_column("selection_rank", pa.array(np.zeros(600, np.int32))), {}, \
        "selection_rank"
    prompts = table.column("prompt").to_pylist()
    no_embedding = {"embedding_col": None}
    yield "null prompt", replace(table, "prompt", [None] + prompts[1:]), no_embedding, "null prompt"
    yield "unreadable model", table, {**no_embedding, "model": "/nonexistent/model"}, "/nonexistent/model"


CASES = list(_cases(synthetic_table(600, 6, dim=8, families=2, seed=3)))


@pytest.mark.parametrize(("label", "table", "overrides", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_fails_cleanly(spark, good, output_versions, tmp_path, label, table, overrides, message):
    _, out = good
    path = write(tmp_path, table)
    with pytest.raises(SmartError, match=message):
        run(spark, config(path, out, run_id="bad", **overrides))
    after = {name: DeltaTable(f"{out}/{name}").version() for name in output_versions}
    assert after == output_versions
    assert "bad" not in DeltaTable(f"{out}/runs").to_pandas()["run_id"].tolist()


def test_cli_prints_one_clear_line(tmp_path):
    missing = tmp_path / "nope.parquet"
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "jobs", "smart_mixture.py"), "--input", str(missing),
         "--output", str(tmp_path / "out"), "--num-instances", "5"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert proc.returncode == 1  # a failed run: the input is read once Spark is up (2: a refused flag)
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("smart_mixture: error:") and "nope.parquet" in last
    assert not (tmp_path / "out").exists()


def test_catalog_output_without_delta_in_the_session(spark, good, tmp_path, monkeypatch):
    """``--output catalog:<schema>`` on a session without Delta (the delta-rs backend serves paths only): a
    clear error before anything is written, nothing created in the working folder."""
    table, _ = good
    path = write(tmp_path, table)
    monkeypatch.chdir(tmp_path)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(SmartError, match="catalog tables need a Delta-enabled Spark session"):
        run(spark, config(path, "catalog:smartdb"))
    assert sorted(os.listdir(tmp_path)) == before
