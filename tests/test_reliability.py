"""Reliability of the whole job on real Spark and real Delta tables (read back with delta-rs), no mocks.

1. Atomic runs: a run that fails at any failpoint leaves mixture, task_weights and runs exactly as they
   were (for a new run id and for a rerun of an existing one); the embeddings cache keeps what the failed
   run embedded, and the successful rerun embeds nothing.
2. Reruns: rerunning a run id with another N' replaces that run's rows in all three tables and no others.
3. Determinism: same input, config and seed give identical mixture and task_weights rows (gains bit for
   bit) whatever the shuffle partitions, the number of input files, the input's row order, and P.
4. Scale: a group 10x larger than P runs with Python workers whose peak RSS stays far below what the
   exact greedy's kernel needs, and the driver never collects instance rows (spark.driver.maxResultSize
   is set below the size of the instances' embeddings alone).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from standalone import TABLE_KEYS, JobDriver, canon, logs_on_failure, read_table, snapshot

from smart_spark.cli.settings import make_config
from smart_spark.core.stage2_plan import plan_stage2
from smart_spark.datasets.synthetic import synthetic_table
from smart_spark.failpoints import POINTS, InjectedFailure
from smart_spark.jobs.smart_mixture import run

pytestmark = pytest.mark.spark

OUTPUT_TABLES = ("mixture", "task_weights", "runs")


# ------------------------------------------------------------------------------------------ 1. atomic runs


def text_table(rows_per_task: int, *, new: int = 0) -> pa.Table:
    """Three tasks of short texts (no embeddings: the job embeds them); ``new`` extra rows per task."""
    topics = {"math": "add {i} and {j}", "poetry": "write a verse about the number {i}",
              "code": "sort a list of {i} integers in language {j}"}
    ids, tasks, prompts = [], [], []
    for task, template in topics.items():
        for i in range(rows_per_task + new):
            ids.append(f"{task}-{i:03d}")
            tasks.append(task)
            prompts.append(template.format(i=i, j=(7 * i) % 11) + (" (new)" if i >= rows_per_task else ""))
    responses = [f"answer {p}" for p in prompts]
    return pa.table({"id": ids, "task": tasks, "prompt": prompts, "response": responses})


@pytest.fixture(scope="module")
def atomic_base(spark, tmp_path_factory):
    """An output holding two successful encoder runs (``base`` and ``r1``) over input A; input B adds 8
    new texts per task."""
    root = tmp_path_factory.mktemp("atomic")
    pq.write_table(text_table(24), root / "a.parquet")
    pq.write_table(text_table(24, new=8), root / "b.parquet")
    out = root / "out"
    for run_id in ("base", "r1"):
        run(spark, atomic_config(root / "a.parquet", out, run_id))
    return root


def atomic_config(input_path, output, run_id: str):
    return make_config(dict(input=str(input_path), output=str(output), id_col="id", num_instances=30,
                            run_id=run_id, device="cpu", report=False))


def run_rows(output, table: str, run_id: str, drop: tuple[str, ...] = ()) -> list[tuple]:
    """Canonical rows of one run in ``<output>/<table>`` (latest snapshot)."""
    frame = read_table(f"{output}/{table}")
    return canon(frame[frame["run_id"] == run_id], TABLE_KEYS[table], drop=drop)


def cache_keys(output) -> list[tuple[str, str]]:
    frame = read_table(f"{output}/embeddings")
    return [] if frame is None else list(zip(frame["model"], frame["text_sha256"]))


@pytest.mark.parametrize("point", [*POINTS, "before_runs:empty-output"])
def test_failed_run_leaves_tables_as_they_were(spark, atomic_base, tmp_path, monkeypatch, point):
    point, _, empty = point.partition(":")
    out = tmp_path / "out"
    if not empty:
        shutil.copytree(atomic_base / "out", out)
    before = snapshot(str(out))
    cached_before = set(cache_keys(out))
    input_b = atomic_base / "b.parquet"

    monkeypatch.setenv("SMART_SPARK_FAILPOINT", point)
    for run_id in ("r1", "r2"):  # a rerun of an existing run id, then a new run id
        with pytest.raises(InjectedFailure, match=point):
            run(spark, atomic_config(input_b, out, run_id))
        after = snapshot(str(out))
        for table in OUTPUT_TABLES:
            if empty:  # the tables the failed run created hold no rows
                assert not after[table], f"{point}/{run_id}: {table} kept rows of a failed run"
            else:
                assert after[table] == before[table], f"{point}/{run_id}: {table} changed"
        # The cache keeps what was embedded before the failure: every text of B, each exactly once.
        keys = cache_keys(out)
        assert len(keys) == len(set(keys)) == 96, f"{point}/{run_id}: {len(keys)} cache rows"
        assert cached_before <= set(keys) and len(set(keys) - cached_before) == (96 if empty else 24)
        if not empty:  # rows cached earlier are never rewritten
            assert set(before["embeddings"]) <= set(after["embeddings"])
    monkeypatch.delenv("SMART_SPARK_FAILPOINT")

    cache = snapshot(str(out), ["embeddings"])["embeddings"]
    summary = run(spark, atomic_config(input_b, out, "r1"))
    assert summary["embed_stats"]["embedded"] == 0 and summary["embed_stats"]["cache_hits"] == 96
    assert snapshot(str(out), ["embeddings"])["embeddings"] == cache
    runs = read_table(f"{out}/runs").set_index("run_id")
    assert json.loads(runs.loc["r1", "metrics"])["embed_stats"]["embedded"] == 0
    assert len(run_rows(out, "mixture", "r1")) == 30 and len(run_rows(out, "task_weights", "r1")) == 3
    if not empty:
        assert sorted(runs.index) == ["base", "r1"]
        for table in OUTPUT_TABLES:  # the earlier run's rows are untouched by the rerun
            assert run_rows(out, table, "base") == run_rows(atomic_base / "out", table, "base")


# ------------------------------------------------------------------------------------ 2 and 3. precomputed


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """1,200 rows, 4 tasks, FLAN template types, 8-d embeddings: as one Parquet file, shuffled in one file,
    in 5 files, and shuffled in 5 files."""
    root = tmp_path_factory.mktemp("determinism")
    table = synthetic_table(1200, 4, dim=8, families=2, seed=7)
    pq.write_table(table, root / "one.parquet")
    shuffled = table.take(np.random.default_rng(1).permutation(len(table)))
    pq.write_table(shuffled, root / "shuffled.parquet")
    (root / "five").mkdir()
    for k, part in enumerate(np.array_split(np.arange(len(table)), 5)):
        pq.write_table(table.take(part), root / "five" / f"part-{k}.parquet")
    (root / "five-shuffled").mkdir()
    for k, part in enumerate(np.array_split(np.arange(len(table)), 5)):
        pq.write_table(shuffled.take(part), root / "five-shuffled" / f"part-{k}.parquet")
    return root


def synth_config(synth, output, run_id: str, source: str = "one.parquet", **overrides):
    values = dict(input=str(synth / source), output=str(output), id_col="id", embedding_col="embedding",
                  stratum_col="template_type", strata="flan", num_instances=300, run_id=run_id, report=False)
    values.update(overrides)
    return make_config(values)


def run_with_partitions(spark, config, partitions: int | None):
    if partitions is None:
        return run(spark, config)
    before = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", str(partitions))
    try:
        return run(spark, config)
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", before)


def test_rerun_with_other_budget_replaces_only_that_run(spark, synth, tmp_path):
    out = tmp_path / "out"
    run(spark, synth_config(synth, out, "a", num_instances=200))
    run(spark, synth_config(synth, out, "b", num_instances=120, num_tasks=3))
    before = {t: (run_rows(out, t, "a"), run_rows(out, t, "b")) for t in OUTPUT_TABLES}

    run(spark, synth_config(synth, out, "a", num_instances=90, num_tasks=2))
    for table in OUTPUT_TABLES:
        assert run_rows(out, table, "b") == before[table][1], f"{table}: run b changed"
        assert run_rows(out, table, "a") != before[table][0], f"{table}: run a was not replaced"
    mixture, weights = read_table(f"{out}/mixture"), read_table(f"{out}/task_weights")
    assert (mixture["run_id"] == "a").sum() == 90 and (mixture["run_id"] == "b").sum() == 120
    new_a = weights[weights["run_id"] == "a"]
    assert len(new_a) == 4 and new_a["selected"].sum() == 2 and new_a["budget"].sum() == 90
    runs = read_table(f"{out}/runs")
    assert sorted(runs["run_id"]) == ["a", "b"]
    a = runs[runs["run_id"] == "a"].iloc[0]
    assert json.loads(a["config"])["num_instances"] == 90 and json.loads(a["metrics"])["mixture_rows"] == 90


def results(output, run_id: str) -> tuple[list, list]:
    """(mixture rows, task_weights rows) of one run, without the run_id column."""
    return (run_rows(output, "mixture", run_id, drop=("run_id",)),
            run_rows(output, "task_weights", run_id, drop=("run_id",)))


def group_kinds(synth, output, run_id: str, partition_size: int) -> set[str]:
    """The stage-2 methods (``plan_stage2``) this run's groups fall into at ``partition_size``."""
    weights = read_table(f"{output}/task_weights")
    weights = weights[(weights["run_id"] == run_id) & weights["selected"]]
    table = pq.read_table(synth / "one.parquet", columns=["task", "template_type"]).to_pandas()
    sizes = {k: int(v) for k, v in table.groupby(["task", "template_type"]).size().items()}
    budgets = {(r.task, s): int(b) for r in weights.itertuples() for s, b in dict(r.stratum_budgets).items()}
    plan = plan_stage2(budgets, sizes, fn="fl", partition_size=partition_size, seed=23)
    return {group.method.value for group in plan.groups}


def test_same_input_and_seed_give_identical_results(spark, synth, tmp_path):
    out = tmp_path / "out"
    table = pq.read_table(synth / "one.parquet", columns=["task", "template_type"]).to_pandas()
    largest = int(table.groupby(["task", "template_type"]).size().max())

    # Every group fits in P: default P, and P = the largest group.
    run(spark, synth_config(synth, out, "ref"))
    want = results(out, "ref")
    assert len(want[0]) == 300 and len(want[1]) == 4
    # Each variation changes two things at once (to save runs): equal results under the pair mean neither
    # of the two matters.
    variations = {
        "partitions-1-five-files": dict(partitions=1, source="five"),
        "partitions-7-shuffled-rows": dict(partitions=7, source="shuffled.parquet"),
        "p-fits-all-five-shuffled": dict(partition_size=largest, source="five-shuffled"),
    }
    for name, v in variations.items():
        partitions = v.pop("partitions", None)
        run_with_partitions(spark, synth_config(synth, out, name, **v), partitions)
        got = results(out, name)
        assert got[1] == want[1], f"{name}: task_weights differ"
        assert got[0] == want[0], f"{name}: mixture differs"
    assert group_kinds(synth, out, "ref", largest) <= {"exact", "whole"}

    # Groups larger than P (regimes A and B): the same small P under the other variations.
    small = 40
    assert {"exact", "rounds", "shares"} <= group_kinds(synth, out, "ref", small)
    run(spark, synth_config(synth, out, "small-ref", partition_size=small))
    want_small = results(out, "small-ref")
    assert want_small[1] == want[1]  # stage 1 does not depend on P
    for name, source, partitions in [("small-7-five", "five", 7),
                                     ("small-1-shuffled", "shuffled.parquet", 1)]:
        config = synth_config(synth, out, name, source=source, partition_size=small)
        run_with_partitions(spark, config, partitions)
        got = results(out, name)
        assert got[1] == want_small[1], f"{name}: task_weights differ"
        assert got[0] == want_small[0], f"{name}: mixture differs"


# ----------------------------------------------------------------------------------------------- 4. scale


def test_group_ten_times_p_bounded_worker_memory_and_no_collect(tmp_path):
    """3,000 rows in one group, P = 300, in a fresh driver (its own JVM and Python workers)."""
    n, dim, p = 3000, 16, 300
    rng = np.random.default_rng(3)
    emb = (rng.standard_normal((n, dim)) + rng.standard_normal(dim)).astype(np.float32)
    ids = [f"x{i:05d}" for i in range(n)]
    data = tmp_path / "input.parquet"
    pq.write_table(pa.table({
        "id": ids, "task": ["big"] * n, "prompt": [f"prompt {i}" for i in range(n)],
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel()), dim).cast(
            pa.list_(pa.float32())),
    }), data)
    base = dict(input=str(data), output=str(tmp_path / "out"), id_col="id", embedding_col="embedding",
                num_instances=200, report=False)  # 200 > P / 2: regime B, one partitioned round
    spec = {
        "master": "local[2]",
        # The (id, embedding) rows alone are ~217 KiB: a driver that collected them would fail.
        "conf": {"spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false",
                 "spark.ui.showConsoleProgress": "false", "spark.driver.maxResultSize": "100k"},
        "sample_python": True,
        "phases": [{"name": "partitioned", "config": {**base, "run_id": "p300", "partition_size": p}},
                   {"name": "exact", "config": {**base, "run_id": "exact", "partition_size": n}}],
        "collect_check": {"input": str(data), "columns": ["id", "embedding"]},
    }
    driver = JobDriver(tmp_path / "driver", spec).start()
    try:
        with logs_on_failure(driver):
            assert driver.wait(timeout=400) == 0
            partitioned, exact = driver.summary("partitioned"), driver.summary("exact")
            assert partitioned["mixture_rows"] == exact["mixture_rows"] == 200
            collect = driver.event("COLLECT", "failed") or ""
            assert "maxResultSize" in collect, driver.events()
    finally:
        driver.stop()
    mixture = read_table(str(tmp_path / "out" / "mixture"))
    assert (mixture["run_id"] == "p300").sum() == 200
    # Peak RSS of the Python workers (VmHWM, sampled every 20 ms): the exact run's peak is higher by at
    # least half its n x n float32 kernel; the partitioned run never needed that.
    kernel_kib = n * n * 4 // 1024
    peak_p, peak_exact = partitioned["python_peak_kib"], exact["python_peak_kib"]
    assert partitioned["python_workers"] > 0 and peak_p > 0
    assert peak_p + kernel_kib // 2 < peak_exact, (peak_p, peak_exact, kernel_kib)
