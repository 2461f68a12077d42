"""The whole job with a real local SparkSession and real Delta tables, read back with delta-rs.

The mixture must equal what the numpy core computes in-process on the same data: same ids, same order.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from smart_spark import mixture_budgets, partitioned_greedy_select
from smart_spark.cli.settings import make_config
from smart_spark.core.greedy import normalize_rows
from smart_spark.core.hashing import RANDOM_SALT, hash_order
from smart_spark.core.strata import split_strata
from smart_spark.core.task_selection import select_tasks
from smart_spark.datasets.synthetic import synthetic_table
from smart_spark.jobs.smart_mixture import run

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def synth_path(tmp_path_factory):
    """2,400 rows over 12 tasks with 16-d embeddings and FLAN template types, as Parquet."""
    path = tmp_path_factory.mktemp("synth") / "input.parquet"
    pq.write_table(synthetic_table(2400, 12, dim=16, families=3, seed=5), path)
    return str(path)


def read_delta(path: str, run_id: str | None = None) -> pd.DataFrame:
    frame = DeltaTable(path).to_pandas()
    return frame if run_id is None else frame[frame["run_id"] == run_id].reset_index(drop=True)


def job_config(synth_path: str, out: str, **overrides):
    values = dict(input=synth_path, output=out, id_col="id", embedding_col="embedding",
                  stratum_col="template_type", strata="flan", num_tasks=8, num_instances=500,
                  run_id="r1", report=False)
    values.update(overrides)
    return make_config(values)


def reference_mixture(synth_path: str, config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same mixture computed in-process by the numpy core: (task table, selected rows)."""
    table = pq.read_table(synth_path).to_pandas()
    X = normalize_rows(np.stack(table["embedding"].to_numpy()))
    tasks = sorted(table["task"].unique())
    means = np.stack([X[(table["task"] == t).to_numpy()].mean(axis=0) for t in tasks])
    order, gains = select_tasks(means, config.task_fn, config.num_tasks or len(tasks), names=np.array(tasks),
                                seed=config.seed)
    picked = [tasks[i] for i in order]
    sizes = np.array([(table["task"] == t).sum() for t in picked])
    weights, initial, final = mixture_budgets(gains, sizes, config.num_instances)
    rows = []
    for task, budget in zip(picked, final):
        part = table[table["task"] == task]
        counts = part["template_type"].value_counts().to_dict()
        for stratum, b in split_strata(int(budget), counts, config.strata).items():
            if b == 0:
                continue
            group = part[part["template_type"] == stratum].sort_values("id")
            ids = group["id"].to_numpy()
            if b == len(group):
                chosen, gain = list(ids), [None] * b
            elif config.instance_fn == "random":
                chosen, gain = list(ids[hash_order(ids, config.seed, RANDOM_SALT)[:b]]), [None] * b
            else:
                E = np.stack(group["embedding"].to_numpy())
                sel, g = partitioned_greedy_select(E, config.instance_fn, int(b),
                                                   partition_size=config.partition_size,
                                                   seed=config.seed, ids=ids)
                chosen, gain = list(ids[sel]), list(g)
            rows += [{"task": task, "stratum": stratum, "id": i, "selection_rank": r, "selection_gain": gg}
                     for r, (i, gg) in enumerate(zip(chosen, gain))]
    weights_frame = pd.DataFrame({"task": picked, "gain": gains, "weight": weights,
                                  "initial_budget": initial, "budget": final})
    return weights_frame, pd.DataFrame(rows)


def assert_same_mixture(got: pd.DataFrame, want: pd.DataFrame) -> None:
    key = ["task", "stratum", "selection_rank"]
    got = got.sort_values(key).reset_index(drop=True)
    want = want.sort_values(key).reset_index(drop=True)
    assert len(got) == len(want)
    assert got["id"].tolist() == want["id"].tolist()
    g = got["selection_gain"].to_numpy(dtype=float)
    w = want["selection_gain"].to_numpy(dtype=float)
    assert np.array_equal(np.isnan(g), np.isnan(w))
    np.testing.assert_allclose(g[~np.isnan(g)], w[~np.isnan(w)], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("task_fn", "instance_fn", "partition_size", "storage"),
    [("gc", "fl", 20000, "MEMORY_AND_DISK_DESER"), ("fl", "gc", 20000, "MEMORY_AND_DISK"),
     ("logdet", "logdet", 20000, "MEMORY_AND_DISK_DESER"),
     ("random", "random", 20000, "MEMORY_AND_DISK_DESER"), ("gc", "fl", 60, "DISK_ONLY"),
     ("gc", "logdet", 40, "MEMORY_AND_DISK_DESER")],
)
def test_mixture_equals_core_library(spark, synth_path, tmp_path, task_fn, instance_fn, partition_size,
                                     storage):
    """Whatever the stage functions, P and the instances' storage level (``--instance-storage``)."""
    config = job_config(synth_path, str(tmp_path), task_fn=task_fn, instance_fn=instance_fn,
                        partition_size=partition_size, instance_storage=storage)
    summary = run(spark, config)
    want_weights, want = reference_mixture(synth_path, config)
    got = read_delta(str(tmp_path / "mixture"), "r1")
    assert len(got) == config.num_instances == summary["mixture_rows"]
    assert_same_mixture(got, want)
    weights = read_delta(str(tmp_path / "task_weights"), "r1")
    kept = weights[weights["selected"]].sort_values("pick_rank")
    assert kept["task"].tolist() == want_weights["task"].tolist()
    np.testing.assert_allclose(kept["gain"], want_weights["gain"], rtol=1e-5)
    assert kept["budget"].tolist() == want_weights["budget"].tolist()
    assert kept["initial_budget"].tolist() == want_weights["initial_budget"].tolist()
    assert len(weights) == 12 and weights["selected"].sum() == 8
    runs = read_delta(str(tmp_path / "runs"), "r1")
    assert runs["status"].tolist() == ["succeeded"]
    assert json.loads(runs["config"][0])["instance_fn"] == instance_fn
    # every input column except the embedding, plus the job's own columns
    assert "embedding" not in got.columns
    assert {"template_type", "prompt", "response", "run_id", "task", "stratum", "id", "selection_rank",
            "selection_gain"} <= set(got.columns)


def test_nested_budgets_and_rerun_replaces_only_its_run(spark, synth_path, tmp_path):
    out = str(tmp_path)
    run(spark, job_config(synth_path, out, run_id="small", num_instances=300, num_tasks=None))
    run(spark, job_config(synth_path, out, run_id="large", num_instances=900, num_tasks=None))
    mix = read_delta(out + "/mixture")
    small = mix[mix["run_id"] == "small"]
    large = mix[mix["run_id"] == "large"]
    checked = 0
    for (task, stratum), group in small.groupby(["task", "stratum"]):
        bigger = large[(large["task"] == task) & (large["stratum"] == stratum)]
        whole = group["selection_gain"].isna().all() or bigger["selection_gain"].isna().all()
        if len(bigger) < len(group) or whole:  # a group taken whole is ordered by id, not by the greedy
            continue
        checked += 1
        assert group.sort_values("selection_rank")["id"].tolist() == \
            bigger.sort_values("selection_rank")["id"].tolist()[: len(group)]
    assert checked >= 5
    before_large = large.sort_values("id").reset_index(drop=True)
    run(spark, job_config(synth_path, out, run_id="small", num_instances=200, num_tasks=None))
    mix = read_delta(out + "/mixture")
    assert (mix["run_id"] == "small").sum() == 200
    after_large = mix[mix["run_id"] == "large"].sort_values("id").reset_index(drop=True)
    pd.testing.assert_frame_equal(before_large, after_large)
    assert sorted(read_delta(out + "/runs")["run_id"]) == ["large", "small"]


@pytest.mark.parametrize("strategy", ["epm", "em"])
def test_baselines_share_the_schema_and_are_seeded(spark, synth_path, tmp_path, strategy):
    from smart_spark.core.baselines import em_budgets, epm_budgets

    out = str(tmp_path)
    config = job_config(synth_path, out, strategy=strategy, num_tasks=None, epm_cap=150 if strategy == "epm"
                        else None, run_id=strategy)
    run(spark, config)
    table = pq.read_table(synth_path).to_pandas()
    tasks = sorted(table["task"].unique())
    sizes = np.array([(table["task"] == t).sum() for t in tasks])
    want = (epm_budgets(sizes, 500, cap=150) if strategy == "epm" else em_budgets(sizes, 500))
    weights = read_delta(out + "/task_weights", strategy).sort_values("pick_rank")
    assert weights["task"].tolist() == tasks
    assert weights["budget"].tolist() == want.tolist()
    assert weights["gain"].isna().all()
    mix = read_delta(out + "/mixture", strategy)
    assert len(mix) == 500 and mix["selection_gain"].isna().all()
    for (task, stratum), group in mix.groupby(["task", "stratum"]):
        pool = table[(table["task"] == task) & (table["template_type"] == stratum)]["id"].to_numpy()
        if len(group) == len(pool):
            continue
        expected = pool[hash_order(pool, 23, RANDOM_SALT)[: len(group)]]
        assert group.sort_values("selection_rank")["id"].tolist() == list(expected)


def test_delta_input_records_its_version(spark, tmp_path):
    from deltalake import write_deltalake

    table = synthetic_table(600, 5, dim=8, families=2, seed=9)
    source = str(tmp_path / "input_delta")
    write_deltalake(source, table.slice(0, 300))
    write_deltalake(source, table.slice(300), mode="append")
    config = make_config(dict(input=source, output=str(tmp_path / "out"), id_col="id",
                              embedding_col="embedding", num_instances=50, run_id="d", report=False))
    summary = run(spark, config)
    assert summary["input_version"] == 1 and summary["input_rows"] == 600
    runs = read_delta(str(tmp_path / "out" / "runs"))
    assert runs["input_version"].tolist() == [1]


def test_budget_sweep_equals_separate_runs(spark, synth_path, tmp_path):
    out = str(tmp_path / "sweep")
    summary = run(spark, job_config(synth_path, out, run_id="sw", num_tasks="8,all", num_instances="200,500",
                                    partition_size=150))
    assert [m["run_id"] for m in summary["mixtures"]] == ["sw/m8-n200", "sw/m8-n500", "sw/mall-n200",
                                                           "sw/mall-n500"]
    mix = read_delta(out + "/mixture")
    assert mix.groupby("run_id").size().to_dict() == {"sw/m8-n200": 200, "sw/m8-n500": 500,
                                                      "sw/mall-n200": 200, "sw/mall-n500": 500}
    assert sorted(read_delta(out + "/runs")["run_id"]) == sorted(mix["run_id"].unique())
    for m, n in (("8", 500), ("all", 200)):
        single = str(tmp_path / f"single-{m}-{n}")
        run(spark, job_config(synth_path, single, run_id="one", num_tasks=m, num_instances=n,
                              partition_size=150))
        want = read_delta(single + "/mixture")
        got = mix[mix["run_id"] == f"sw/m{m}-n{n}"].reset_index(drop=True)
        assert_same_mixture(got, want)
        w_got = read_delta(out + "/task_weights", f"sw/m{m}-n{n}").sort_values("task").reset_index(drop=True)
        w_want = read_delta(single + "/task_weights").sort_values("task").reset_index(drop=True)
        assert w_got["budget"].tolist() == w_want["budget"].tolist()


def test_catalog_table_input(spark, synth_path, tmp_path):
    spark.sql("CREATE DATABASE IF NOT EXISTS smart_in")
    spark.read.parquet(synth_path).write.mode("overwrite").saveAsTable("smart_in.instructions")
    config = job_config("smart_in.instructions", str(tmp_path / "out"), run_id="cat")
    assert config.input_format == "auto"
    run(spark, config)
    want = run(spark, job_config(synth_path, str(tmp_path / "ref"), run_id="cat"))
    assert want["mixture_rows"] == 500
    assert_same_mixture(read_delta(str(tmp_path / "out" / "mixture")),
                        read_delta(str(tmp_path / "ref" / "mixture")))


def test_fixed_group_weights(spark, tmp_path):
    import pyarrow as pa

    from smart_spark.core.baselines import fixed_group_budgets

    table = synthetic_table(1200, 9, dim=8, families=3, seed=4)
    groups = [f"sub{int(t[-1]) % 3}" for t in table.column("task").to_pylist()]
    source = str(tmp_path / "in.parquet")
    pq.write_table(table.append_column("submixture", pa.array(groups)), source)
    out = str(tmp_path / "out")
    run(spark, make_config(dict(input=source, output=out, id_col="id", embedding_col="embedding",
                                num_instances=300, strategy="fixed", group_col="submixture",
                                group_weights="sub0=50,sub1=30,sub2=20", run_id="fx", report=False)))
    mix = read_delta(out + "/mixture")
    sizes = pd.Series(groups).value_counts().to_dict()
    want = fixed_group_budgets(sizes, {"sub0": 50, "sub1": 30, "sub2": 20}, 300)
    assert mix.groupby("submixture").size().to_dict() == want
    assert mix["selection_gain"].isna().all() and len(mix) == 300
