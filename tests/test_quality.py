"""--quality: the mixture_quality figures against a plain numpy computation written here, on real text.

The reference below is independent of smart_spark.core.quality: n x n kernels in float64, the Vendi score
from the n x n kernel's eigenvalues, samples picked in numpy from Spark's own xxhash64 of each id.
"""

from __future__ import annotations

import contextlib
import io
import json
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from pyspark.sql import functions as F

from smart_spark.datasets.real_text import python_doc_paragraphs
from smart_spark.embed.encoder import load_encoder
from smart_spark.jobs.smart_mixture import main
from smart_spark.spark import quality
from smart_spark.spark.quality import measure_quality

pytestmark = pytest.mark.spark
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = 23


# ------------------------------------------------------------------------------------------- reference


def unit(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def reference(X: np.ndarray, ids: list[str], tasks: list[str], mix: set[str],
              sample: dict[str, set[str]] | None = None) -> dict[str, dict]:
    """scope -> coverage, redundancy, vendi, over all rows of the scope (or the ids in ``sample``:
    scope -> (coverage rows, redundancy rows, vendi rows))."""
    U = unit(X)
    ids_a, tasks_a = np.array(ids), np.array(tasks)
    out = {}
    for scope in ["all", *sorted(set(tasks))]:
        rows = np.ones(len(ids), bool) if scope == "all" else tasks_a == scope
        m = rows & np.isin(ids_a, list(mix))
        cov_rows, red_rows, ven_rows = rows, m, m
        if sample is not None:
            cov_rows = rows & np.isin(ids_a, list(sample[scope][0]))
            red_rows = m & np.isin(ids_a, list(sample[scope][1]))
            ven_rows = m & np.isin(ids_a, list(sample[scope][2]))
        figures = {"coverage": 0.0, "redundancy": None, "vendi": None}
        if m.any():
            figures["coverage"] = float(np.mean(np.maximum((U[cov_rows] @ U[m].T).max(axis=1), 0.0)))
            K = U[ven_rows] @ U[ven_rows].T
            lam = np.linalg.eigvalsh(K / len(K))
            lam = lam[lam > 1e-12]
            figures["vendi"] = float(np.exp(-(lam * np.log(lam)).sum()))
        if m.sum() >= 2:
            S = U[red_rows] @ U[m].T
            S[ids_a[red_rows][:, None] == ids_a[m][None, :]] = -np.inf
            figures["redundancy"] = float(S.max(axis=1).mean())
        out[scope] = figures
    return out


def assert_matches(table: pd.DataFrame, expected: dict[str, dict]) -> None:
    got = {r["scope"]: r for r in table.to_dict("records")}
    assert set(got) == set(expected)
    for scope, want in expected.items():
        row = got[scope]
        assert row["coverage"] == pytest.approx(want["coverage"], abs=1e-6), scope
        if want["redundancy"] is None:
            assert row["redundancy"] is None or pd.isna(row["redundancy"]), scope
        else:
            assert row["redundancy"] == pytest.approx(want["redundancy"], abs=1e-6), scope
        if want["vendi"] is None:
            assert row["vendi"] is None or pd.isna(row["vendi"]), scope
        else:
            assert row["vendi"] == pytest.approx(want["vendi"], abs=1e-4), scope


# ----------------------------------------------------------------------------------------------- inputs


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    """900 paragraphs of the Python standard library's docstrings (real third-party prose), embedded by
    the bundled encoder, in 9 tasks of consecutive paragraphs (neighbouring docs of one module share a
    task): a Parquet file with a precomputed ``embedding`` column. (path, ids, tasks, vectors)."""
    texts = python_doc_paragraphs(900)
    X = load_encoder(None, device="cpu", precision="float32").encode(texts)
    ids = [f"doc-{i:04d}" for i in range(len(texts))]
    tasks = [f"part{i * 9 // len(texts)}" for i in range(len(texts))]
    path = tmp_path_factory.mktemp("docs") / "docs.parquet"
    pq.write_table(pa.table({"id": ids, "task": tasks, "prompt": texts, "response": [""] * len(texts),
                             "embedding": pa.array(list(X), pa.list_(pa.float32()))}), path)
    return str(path), ids, tasks, X


def job(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def read(output: str, table: str, run_id: str) -> pd.DataFrame:
    frame = DeltaTable(f"{output}/{table}").to_pandas()
    return frame[frame["run_id"] == run_id].reset_index(drop=True)


@pytest.fixture(scope="module")
def docs_runs(spark, docs, tmp_path_factory):
    """smart (M' = 6 of 9) and epm (all tasks) mixtures of 120 rows into one output."""
    path = docs[0]
    output = str(tmp_path_factory.mktemp("docs-out") / "out")
    common = ["--input", path, "--output", output, "--id-col", "id", "--embedding-col", "embedding",
              "--num-instances", "120", "--quiet"]
    assert job(*common, "--run-id", "smart", "--num-tasks", "6")[0] == 0
    assert job(*common, "--run-id", "epm", "--strategy", "epm")[0] == 0
    return output


# ------------------------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("run_id", ["smart", "epm"])
def test_figures_equal_numpy_over_all_rows(docs, docs_runs, run_id):
    """Inputs below --quality-sample rows: every figure is exact (coverage, redundancy, task coverage to
    1e-6, Vendi to 1e-4), every scope (all and each task, kept or not)."""
    _, ids, tasks, X = docs
    table = read(docs_runs, "mixture_quality", run_id)
    mix = set(read(docs_runs, "mixture", run_id)["id"])
    assert len(mix) == 120
    assert_matches(table, reference(X, ids, tasks, mix))
    whole = table[table["scope"] == "all"].iloc[0]
    counts = (whole["rows"], whole["input_rows"], whole["sample_rows"], whole["vendi_rows"])
    assert counts == (120, 900, 900, 120)
    kept = {t for t in set(tasks) if any(i in mix for i, tt in zip(ids, tasks) if tt == t)}
    assert whole["task_coverage"] == pytest.approx(len(kept) / 9, abs=1e-12)
    per_task = table[table["scope"] != "all"].set_index("scope")
    assert per_task["task_coverage"].isna().all()
    assert per_task["input_rows"].to_dict() == {t: tasks.count(t) for t in set(tasks)}
    assert per_task["rows"].sum() == 120
    if run_id == "smart":  # 3 tasks not kept: coverage 0, no redundancy or Vendi score
        dropped = per_task[per_task["rows"] == 0]
        assert len(dropped) == 3 and (dropped["coverage"] == 0).all() and dropped["vendi"].isna().all()
    metrics = json.loads(read(docs_runs, "runs", run_id)["metrics"][0])
    assert metrics["quality"]["coverage"] == pytest.approx(whole["coverage"], abs=1e-12)


def test_sampled_figures_are_the_seeded_samples_and_ignore_partitioning(spark, docs, docs_runs, monkeypatch):
    """With samples smaller than the scopes: the rows used are the ones of smallest xxhash64(id, seed)
    per scope (checked against numpy over exactly those rows), and the figures are the same for 1 or 7
    partitions, for other splits of scope all's products, and after a pass whose candidates fell short."""
    path, ids, tasks, X = docs
    mix = read(docs_runs, "mixture", "epm")
    instances = spark.read.parquet(path).select("task", "id", "embedding")
    input_rows = {t: tasks.count(t) for t in set(tasks)}
    mixture_rows = mix.groupby("task").size().to_dict()
    selected = spark.createDataFrame(mix[["id"]])
    kwargs = dict(input_rows=input_rows, mixture_rows=mixture_rows, sample=60, vendi_rows=9, seed=SEED)
    one = measure_quality(instances.repartition(1), selected, **kwargs)
    seven = measure_quality(instances.repartition(7), selected, **kwargs)
    # Scope all's mixture rows over 3 parts instead of 4, and the bfloat16-pruned products for every
    # scope all product (on a CPU with native bfloat16; float32 elsewhere): the same figures.
    pruned = measure_quality(instances.repartition(3), selected, whole_parts=3, bf16_min_products=0, **kwargs)
    pd.testing.assert_frame_equal(one, seven)
    # candidates' bounds too narrow at first (fewer candidates than the samples want): a second pass
    monkeypatch.setattr(quality, "SPREADS", (-3.0, 6.0))
    pd.testing.assert_frame_equal(one, measure_quality(instances.repartition(2), selected, **kwargs))
    pd.testing.assert_frame_equal(one, pruned, rtol=0, atol=1e-7)  # float32 sums in another order

    hashes = dict(instances.select("id", F.xxhash64(F.col("id"), F.lit(SEED)).alias("h")).collect())
    mix_ids = set(mix["id"])

    def smallest(candidates: list[str], k: int) -> set[str]:
        return set(sorted(candidates, key=lambda i: (hashes[i], i))[:k])

    sample = {}
    for scope in ["all", *sorted(set(tasks))]:
        rows = [i for i, t in zip(ids, tasks) if scope == "all" or t == scope]
        mixed = [i for i in rows if i in mix_ids]
        sample[scope] = (smallest(rows, 60), smallest(mixed, 60), smallest(mixed, 9))
    assert_matches(one, reference(X, ids, tasks, mix_ids, sample))
    whole = one.iloc[0]
    assert (whole["sample_rows"], whole["redundancy_rows"], whole["vendi_rows"]) == (60, 60, 9)
    assert (one["sample_rows"][1:] == 60).all()  # each task has 100 rows


def test_sample_smart_epm_em_into_one_output(spark, tmp_path, monkeypatch):
    """The bundled sample, its three mixtures of N' = 600 into one output: the table, the report section
    (all three runs, the chart, the least-covered tasks), the console line; a failed rerun leaves
    mixture_quality as it was; a rerun with --no-quality takes the run's rows out."""
    monkeypatch.chdir(ROOT)
    out = str(tmp_path / "sample")
    base = ["--config", "conf/sample.yaml", "--output", out]
    for strategy in ("epm", "em"):
        assert job(*base, "--run-id", strategy, "--strategy", strategy, "--quiet", "--no-report")[0] == 0
    code, printed, _ = job(*base, "--run-id", "smart")
    assert code == 0 and "  covers: coverage 0." in printed
    table = DeltaTable(f"{out}/mixture_quality").to_pandas()
    assert sorted(set(table["run_id"])) == ["em", "epm", "smart"]
    whole = table[table["scope"] == "all"].set_index("run_id")
    assert (table.groupby("run_id").size() == 38).all()  # all + 37 tasks
    assert (whole["rows"] == 600).all() and (whole["input_rows"] == 3493).all()
    report = open(f"{out}/report.md", encoding="utf-8").read()
    section = report.split("## What the mixture covers")[1].split("\n## ")[0]
    for run_id in ("smart", "epm", "em"):
        assert f"| `{run_id}`" in section
        assert f"{whole.loc[run_id, 'coverage']:.3f}" in section
    assert "`smart` (this run)" in section and "Least-covered kept tasks (10)" in section
    with open(f"{out}/quality.png", "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"

    before = DeltaTable(f"{out}/mixture_quality").version()
    monkeypatch.setenv("SMART_SPARK_FAILPOINT", "after_task_weights")
    assert job(*base, "--run-id", "smart", "--quality-sample", "100", "--no-report")[0] == 1
    monkeypatch.delenv("SMART_SPARK_FAILPOINT")
    again = DeltaTable(f"{out}/mixture_quality").to_pandas()
    pd.testing.assert_frame_equal(
        again.sort_values(["run_id", "scope"]).reset_index(drop=True),
        table.sort_values(["run_id", "scope"]).reset_index(drop=True))
    assert DeltaTable(f"{out}/mixture_quality").version() > before  # committed, then put back

    assert job(*base, "--run-id", "em", "--strategy", "em", "--no-quality", "--no-report", "--quiet")[0] == 0
    assert sorted(set(DeltaTable(f"{out}/mixture_quality").to_pandas()["run_id"])) == ["epm", "smart"]


@pytest.mark.parametrize("flags, message", [
    (["--quality-sample", "0"], "--quality-sample must be positive, got 0"),
    (["--quality-sample", "-5"], "--quality-sample must be positive, got -5"),
    (["--quality-vendi-rows", "20001"], "--quality-vendi-rows must be at most 20,000"),
])
def test_bad_quality_settings_are_one_line_and_write_nothing(tmp_path, flags, message):
    out = tmp_path / "out"
    code, printed, err = job("--config", os.path.join(ROOT, "conf/sample.yaml"), "--output", str(out),
                             *flags)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
