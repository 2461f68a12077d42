"""Tasks from k-means clusters (``--tasks-from clusters`` / ``--split-tasks``) on real Spark and Delta.

Data: 8 hidden groups of 300 rows each, no task column (a label-free collection), 32-dim precomputed
embeddings = a random unit centre per group + Gaussian noise (sigma 0.07 per coordinate, so a row is
about 0.93 cosine-similar to its own centre and about 0 +- 0.2 to the others). The cluster tasks must
recover the groups: adjusted Rand index >= 0.9. Why 0.9: with 8 equal groups, the k-means local optimum
that merges two groups and splits another gives ARI ~0.83 (computed below), so 0.9 means no group was
lost; a correct clustering gives 1.0. (With Spark's default 2 k-means|| rounds, k-means lands in that
optimum here for 2 of 3 seeds, ARI 0.834; the job uses 10 rounds: smart_spark.spark.clusters.INIT_STEPS.)
Determinism: the same input written as 1 file and as 5 files of shuffled rows, run with 4 and with 7
shuffle partitions, gives identical clusters (every row) and an identical mixture. A failed run
(failpoint after the mixture and clusters commits) leaves every table as it was.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from standalone import canon, read_table, snapshot

from smart_spark.cli.settings import make_config
from smart_spark.errors import SmartError
from smart_spark.failpoints import InjectedFailure
from smart_spark.jobs.smart_mixture import run
from smart_spark.spark.clusters import cluster_name, fit_rows

GROUPS, PER_GROUP, DIM = 8, 300, 32
TOPICS = ["algebra", "poetry", "sql", "biology", "french", "chess", "tax", "cooking"]
TABLES = ("mixture", "task_weights", "runs", "clusters")


def adjusted_rand_index(a: list, b: list) -> float:
    """ARI of two labelings (Hubert & Arabie 1985) from their contingency table."""
    pairs = Counter(zip(a, b))
    comb = lambda n: n * (n - 1) / 2  # noqa: E731
    index = sum(comb(n) for n in pairs.values())
    rows = sum(comb(n) for n in Counter(a).values())
    cols = sum(comb(n) for n in Counter(b).values())
    expected = rows * cols / comb(len(a))
    top = (rows + cols) / 2
    return 1.0 if top == expected else (index - expected) / (top - expected)


def test_ari_reference_values():
    truth = [g for g in range(GROUPS) for _ in range(PER_GROUP)]
    assert adjusted_rand_index(truth, truth) == 1.0
    assert adjusted_rand_index(truth, [7 - g for g in truth]) == 1.0  # names do not matter
    # Merge groups 0 and 1, split group 2 in halves: the local optimum the threshold must reject.
    bad = [0 if g == 1 else (8 if g == 2 and i % 2 else g) for i, g in enumerate(truth)]
    assert 0.75 < adjusted_rand_index(truth, bad) < 0.85
    rng = np.random.default_rng(0)
    assert abs(adjusted_rand_index(truth, list(rng.integers(0, 8, len(truth))))) < 0.02
    assert cluster_name(42, 1000, None) == "cluster-0042" and cluster_name(3, 4, "qa") == "qa/c03"


def groups_table(seed: int = 5) -> pa.Table:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(GROUPS, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    hidden = np.repeat(np.arange(GROUPS), PER_GROUP)
    X = centres[hidden] + rng.normal(scale=0.07, size=(len(hidden), DIM))
    ids = [f"row-{i:05d}" for i in range(len(hidden))]
    prompts = [f"a {TOPICS[g]} question, number {i}" for i, g in enumerate(hidden)]
    return pa.table({"id": ids, "hidden": [TOPICS[g] for g in hidden], "prompt": prompts,
                     "emb": pa.array(X.astype(np.float32).tolist(), type=pa.list_(pa.float32()))})


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """Folder with ``one/`` (one file, row order) and ``five/`` (five files of shuffled rows)."""
    root = tmp_path_factory.mktemp("clusters")
    table = groups_table()
    (root / "one").mkdir()
    pq.write_table(table, root / "one" / "part-0.parquet")
    order = np.random.default_rng(1).permutation(table.num_rows)
    (root / "five").mkdir()
    for k, chunk in enumerate(np.array_split(order, 5)):
        pq.write_table(table.take(pa.array(chunk)), root / "five" / f"part-{k}.parquet")
    return root


def config(root, layout: str, run_id: str, **kw):
    values = dict(input=str(root / layout), output=str(root / "out"), id_col="id", embedding_col="emb",
                  tasks_from="clusters", num_clusters=GROUPS, num_instances=400, run_id=run_id,
                  report=False)
    return make_config({**values, **kw})


def rows_of(output, table: str, run_id: str) -> list[tuple]:
    frame = read_table(f"{output}/{table}")
    frame = frame[frame["run_id"] == run_id].drop(columns=["run_id"])
    key = {"mixture": ["task", "selection_rank"], "clusters": ["id"], "task_weights": ["task"]}[table]
    return canon(frame, key)


@pytest.mark.spark
def test_clusters_recover_hidden_groups_whatever_the_layout(spark, layouts):
    root = layouts
    out = root / "out"
    spark.conf.set("spark.sql.shuffle.partitions", "4")
    summary = run(spark, config(root, "one", "a", report=True))
    truth = groups_table().select(["id", "hidden"]).to_pandas()
    clusters = read_table(f"{out}/clusters").merge(truth, on="id")
    assert len(clusters) == GROUPS * PER_GROUP  # every row's cluster is kept
    ari = adjusted_rand_index(list(clusters["hidden"]), list(clusters["task"]))
    print(f"ARI of {GROUPS} cluster tasks vs the hidden groups: {ari:.4f}")
    assert ari >= 0.9
    assert sorted(set(clusters["task"])) == [cluster_name(i, GROUPS, None) for i in range(GROUPS)]
    mixture = read_table(f"{out}/mixture")
    assert len(mixture) == 400 and set(mixture["task"]) <= set(clusters["task"])
    by_id = clusters.set_index("id")
    assert (mixture["cluster"].to_numpy() == by_id.loc[mixture["id"], "cluster"].to_numpy()).all()
    weights = read_table(f"{out}/task_weights")
    assert sorted(weights["task_size"]) == sorted(Counter(clusters["task"]).values())
    report = open(out / "report.md", encoding="utf-8").read()
    assert "## Cluster tasks" in report and summary["clusters"]["clusters"] == GROUPS
    # The prompts shown for each kept cluster come from one hidden group.
    for task, info in summary["cluster_info"].items():
        assert len(info["nearest"]) == 3
        assert len({p["text"].split()[1] for p in info["nearest"]}) == 1, (task, info["nearest"])
    before = snapshot(str(out), TABLES)

    # A failed run (after the mixture and clusters commits) changes nothing.
    import os

    os.environ["SMART_SPARK_FAILPOINT"] = "after_mixture"
    try:
        for run_id in ("a", "b"):
            with pytest.raises(InjectedFailure):
                run(spark, config(root, "five", run_id, num_clusters=5))
            assert snapshot(str(out), TABLES) == before, run_id
    finally:
        del os.environ["SMART_SPARK_FAILPOINT"]

    # Another file layout and shuffle-partition count: the same clusters and mixture, row for row.
    spark.conf.set("spark.sql.shuffle.partitions", "7")
    try:
        run(spark, config(root, "five", "b"))
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", "4")
    for table in ("clusters", "mixture", "task_weights"):
        assert rows_of(out, table, "a") == rows_of(out, table, "b"), table


@pytest.mark.spark
def test_split_tasks_clusters_inside_each_labelled_task(spark, tmp_path):
    """Two labelled tasks, each the union of 4 hidden groups: --split-tasks 4 finds them per task."""
    table = groups_table(seed=9)
    hidden = table.column("hidden").to_pylist()
    labels = ["stem" if TOPICS.index(h) % 2 == 0 else "humanities" for h in hidden]
    pq.write_table(table.append_column("task", pa.array(labels)), tmp_path / "in.parquet")
    values = dict(input=str(tmp_path / "in.parquet"), output=str(tmp_path / "out"), id_col="id",
                  embedding_col="emb", split_tasks=4, num_instances=200, run_id="s", report=False)
    run(spark, make_config(values))
    clusters = read_table(f"{tmp_path}/out/clusters").merge(
        table.select(["id", "hidden"]).to_pandas(), on="id")
    assert set(clusters["parent_task"]) == {"stem", "humanities"}
    assert all(t.startswith(p + "/c0") for t, p in zip(clusters["task"], clusters["parent_task"]))
    ari = adjusted_rand_index(list(clusters["hidden"]), list(clusters["task"]))
    print(f"ARI of split tasks vs the hidden groups: {ari:.4f}")
    assert ari >= 0.9
    assert math.isclose(len(clusters), GROUPS * PER_GROUP)


def test_settings_of_cluster_tasks_and_decontamination(tmp_path):
    from smart_spark.cli.settings import load_config
    from smart_spark.errors import SmartError

    base = dict(input="x.parquet", output="out", num_instances=10)
    with pytest.raises(SmartError, match="--num-clusters"):
        make_config({**base, "tasks_from": "clusters"})
    with pytest.raises(SmartError, match="--tasks-from clusters"):
        make_config({**base, "num_clusters": 5})
    with pytest.raises(SmartError, match="--split-tasks"):
        make_config({**base, "tasks_from": "clusters", "num_clusters": 5, "split_tasks": 3})
    with pytest.raises(SmartError, match="--tasks-from must be one of"):
        make_config({**base, "tasks_from": "kmeans"})
    with pytest.raises(SmartError, match="--decontamination-threshold"):
        make_config({**base, "decontamination_threshold": 1.5})
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("tasks_from: clusters\nnum_clusters: 1000\ndecontaminate: evals.jsonl\n")
    c = load_config(["--config", str(yaml_file), "--input", "x", "--output", "o", "--num-instances", "5",
                     "--decontamination-threshold", "0.85"])
    assert (c.tasks_from, c.num_clusters, c.decontaminate) == ("clusters", 1000, "evals.jsonl")
    assert c.decontamination_threshold == 0.85
    assert (c.decontaminate_id_col, c.decontaminate_prompt_col) == ("id", "prompt")


@pytest.mark.spark
def test_large_inputs_are_fitted_on_the_same_hash_sample_whatever_the_layout(spark):
    """Above the fit limit k-means sees a seeded hash sample by id: about the limit's rows, the same
    rows for two partitionings, other rows for another seed."""
    rows = spark.range(20_000).selectExpr("concat('r', id) AS id", "array(cast(id AS float)) AS embedding")

    def sample(frame, seed):
        picked, expected = fit_rows(frame, 20_000, k=10, seed=seed, limit=2_000)
        return sorted(r["id"] for r in picked.select("id").collect()), expected

    a, expected = sample(rows.repartition(3), 23)
    b, _ = sample(rows.repartition(7, "embedding"), 23)
    other, _ = sample(rows, 24)
    assert expected == 2_000 and abs(len(a) - 2_000) < 150  # binomial: sd ~42
    assert a == b and a != other
    assert fit_rows(rows, 20_000, k=10, seed=23, limit=20_000) == (rows, 20_000)


@pytest.mark.spark
def test_connect_server_without_spark_ml_is_one_clear_error(spark, sail, layouts, tmp_path, monkeypatch):
    """Sail (Spark Connect) runs no Spark ML: the job says so, naming the flag, and writes nothing."""
    monkeypatch.setenv("SPARK_CONNECT_MODE_ENABLED", "1")
    with pytest.raises(SmartError, match="--tasks-from clusters / --split-tasks need Spark ML's KMeans"):
        run(sail, config(layouts, "one", "connect", output=str(tmp_path / "out")))
    assert not (tmp_path / "out" / "mixture").exists()


@pytest.mark.spark
@pytest.mark.parametrize("strategy", ["smart", "epm", "em"])
def test_clusters_and_decontamination_with_chat_input_and_a_sweep(spark, tmp_path, strategy):
    """Chat rows (OpenAI turns, no task label, precomputed embeddings) with cluster tasks, an evaluation
    set holding two exact copies of first user turns, and a budget sweep: every mixture of the sweep is
    written, the two copies are removed (and only they), and every kept row has its cluster."""
    table = groups_table()
    rows = table.to_pylist()[::3]  # 800 rows, 100 per hidden group
    for r in rows:
        r["messages"] = [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": r["prompt"]},
                         {"role": "assistant", "content": "ok"}]
    pq.write_table(pa.Table.from_pylist([{k: r[k] for k in ("id", "messages", "emb")} for r in rows]),
                   tmp_path / "chat.parquet")
    copies = [rows[5], rows[400]]
    rng = np.random.default_rng(3)
    evals = [{"id": f"q{i}", "prompt": "  " + r["prompt"].upper() + " ",
              "emb": rng.normal(size=DIM).astype(np.float32).tolist()} for i, r in enumerate(copies)]
    pq.write_table(pa.Table.from_pylist(evals), tmp_path / "evals.parquet")
    out = str(tmp_path / "out")
    summary = run(spark, make_config(dict(
        input=str(tmp_path / "chat.parquet"), output=out, id_col="id", messages_col="messages",
        embedding_col="emb", tasks_from="clusters", num_clusters=GROUPS, strategy=strategy,
        decontaminate=str(tmp_path / "evals.parquet"), num_tasks="4,all", num_instances="40,80",
        run_id="chat", report=False)))
    runs = read_table(f"{out}/runs")
    assert sorted(runs["run_id"]) == ["chat/m4-n40", "chat/m4-n80", "chat/mall-n40", "chat/mall-n80"]
    removed = read_table(f"{out}/decontaminated")
    assert sorted(set(removed["id"])) == sorted(r["id"] for r in copies)
    assert set(removed["match"]) == {"exact"}
    clusters = read_table(f"{out}/clusters")
    assert len(set(clusters["id"])) == len(rows) - 2 and not set(clusters["id"]) & {r["id"] for r in copies}
    mixture = read_table(f"{out}/mixture")
    assert sorted(mixture.groupby("run_id").size().items()) == [
        ("chat/m4-n40", 40), ("chat/m4-n80", 80), ("chat/mall-n40", 40), ("chat/mall-n80", 80)]
    assert mixture["cluster"].notna().all() and mixture["task"].str.startswith("cluster-").all()
    assert not set(mixture["id"]) & {r["id"] for r in copies}
    assert [(m["run_id"], m["mixture_rows"]) for m in summary["mixtures"]] == [
        ("chat/m4-n40", 40), ("chat/m4-n80", 80), ("chat/mall-n40", 40), ("chat/mall-n80", 80)]
    assert (summary["run_id"], summary["clusters"]["clusters"]) == ("chat", GROUPS)
    assert (summary["decontamination"]["removed"], summary["decontamination"]["exact"]) == (2, 2)


@pytest.mark.spark
def test_input_column_named_cluster_is_refused_before_any_work(spark, tmp_path):
    table = groups_table().slice(0, 50)
    pq.write_table(table.append_column("cluster", pa.array(["x"] * 50)), tmp_path / "rows.parquet")
    with pytest.raises(SmartError, match=r"input column\(s\) cluster clash with the output columns that "
                                         r"--tasks-from clusters / --split-tasks adds"):
        run(spark, config(tmp_path, "rows.parquet", "c", output=str(tmp_path / "out"), num_instances=10))
    assert not (tmp_path / "out").exists()
