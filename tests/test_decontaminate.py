"""Semantic decontamination on real Spark, real Delta tables and the real encoder.

Evaluation prompts: the 40 hand-written benchmark-style questions of data/paraphrases/pairs.jsonl.
Planted into a clean control set (a slice of the bundled sample): exact copies of 10 of them (case and
whitespace changed) and a human paraphrase of each of the other 30. The default threshold (0.8, chosen in
docs/decontamination.md from the same pairs) must catch every exact copy, at least 85% of the paraphrases
(measured: 90% of all 40), and of the control set only the three rows that really overlap an evaluation
prompt (KNOWN: two trivia_qa rows that ask "What is the capital city of Australia?" inside a template, and
a code-summarisation row whose code is the answer to "Write a Python function that returns the n-th
Fibonacci number"); threshold 0.99 still catches every exact copy.
A failed run leaves every table, ``decontaminated`` included, as it was.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from standalone import canon, read_table, snapshot

from smart_spark.cli.settings import make_config
from smart_spark.core.greedy import normalize_rows
from smart_spark.errors import SmartError
from smart_spark.failpoints import InjectedFailure
from smart_spark.jobs.smart_mixture import run
from smart_spark.udfs.decontaminate import best_matches, nearest_eval

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXACT = 10
#: Rows of the control slice that do contain an evaluation prompt (or its answer): real contamination.
KNOWN = {"trivia_qa-3": "eval-2", "trivia_qa-51": "eval-2", "code_x_glue_summarize-75": "eval-5"}
TABLES = ("mixture", "task_weights", "runs", "decontaminated")


def test_blocked_search_matches_brute_force():
    rng = np.random.default_rng(0)
    X, E = normalize_rows(rng.normal(size=(300, 16))), normalize_rows(rng.normal(size=(50, 16)))
    best, arg = best_matches(X, E, block_rows=64, block_evals=7)
    S = X @ E.T
    assert np.array_equal(arg, S.argmax(axis=1))
    np.testing.assert_allclose(best, S.max(axis=1), rtol=1e-6)
    # Arrow in, matches out; an exact key wins whatever the threshold.
    X[5] = E[3]
    batch = pa.record_batch({
        "id": [f"r{i}" for i in range(300)],
        "embedding": pa.array(X.tolist(), type=pa.list_(pa.float32())),
        "_prompt_key": ["k"] + [None] * 299,
    })
    found = nearest_eval(iter([batch]), evals=E, eval_ids=[f"e{i}" for i in range(50)], eval_keys={"k": 7},
                         threshold=0.999, key_col="_prompt_key")
    out = pa.Table.from_batches(list(found))
    rows = {r["id"]: r for r in out.to_pylist()}
    assert rows["r0"]["eval_id"] == "e7" and rows["r0"]["match"] == "exact"
    assert rows["r5"]["eval_id"] == "e3" and rows["r5"]["match"] == "semantic"
    assert rows["r5"]["similarity"] == pytest.approx(1.0, abs=1e-5)
    assert set(rows) == {"r0", "r5"}


def _pairs() -> list[dict]:
    with open(os.path.join(ROOT, "data", "paraphrases", "pairs.jsonl"), encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """(folder, planted ids by kind): input.parquet = control rows + planted copies; evals.jsonl."""
    root = tmp_path_factory.mktemp("decontam")
    pairs = _pairs()
    with open(os.path.join(ROOT, "data", "sample", "instructions.jsonl"), encoding="utf-8") as fh:
        sample = [json.loads(line) for line in fh][::8]
    rows = [{"id": r["id"], "task": r["task"], "prompt": r["prompt"], "response": r["response"]}
            for r in sample]
    exact, para = [], []
    for i, p in enumerate(pairs):
        if i < EXACT:
            text, kind = "  " + p["eval"].upper().replace(" ", "   ") + "\n", exact
        else:
            text, kind = p["paraphrase"], para
        kind.append(f"planted-{i}")
        rows.append({"id": f"planted-{i}", "task": "planted", "prompt": text, "response": "x"})
    pq.write_table(pa.Table.from_pylist(rows), root / "input.parquet")
    with open(root / "evals.jsonl", "w", encoding="utf-8") as fh:
        for i, p in enumerate(pairs):
            fh.write(json.dumps({"qid": f"eval-{i}", "question": p["eval"]}) + "\n")
    return root, {"exact": exact, "paraphrase": para, "control": [r["id"] for r in sample]}


def config(root, run_id, **kw):
    values = dict(input=str(root / "input.parquet"), output=str(root / "out"), id_col="id", num_instances=60,
                  run_id=run_id, device="cpu", decontaminate=str(root / "evals.jsonl"),
                  decontaminate_id_col="qid", decontaminate_prompt_col="question", report=False)
    return make_config({**values, **kw})


@pytest.mark.spark
def test_catches_exact_and_paraphrased_copies_and_nothing_else(spark, planted):
    root, ids = planted
    summary = run(spark, config(root, "d80", report=True))
    removed = read_table(f"{root}/out/decontaminated")
    removed = removed[removed["run_id"] == "d80"].set_index("id")
    caught = set(removed.index)
    para = set(ids["paraphrase"])
    print(f"threshold 0.8: caught {len(caught & para)}/{len(para)} paraphrases, "
          f"{len(caught & set(ids['exact']))}/{EXACT} exact copies, "
          f"{len(caught & set(ids['control']))}/{len(ids['control'])} control rows")
    assert set(ids["exact"]) <= caught
    assert (removed.loc[ids["exact"], "match"] == "exact").all()
    assert len(caught & para) >= 0.85 * len(para)
    assert caught & set(ids["control"]) == set(KNOWN)
    for rid in caught:  # each removed row names the evaluation prompt it copies
        assert removed.loc[rid, "eval_id"] == KNOWN.get(rid, f"eval-{rid.split('-')[-1]}")
    assert (removed.loc[sorted(caught & para), "similarity"] >= 0.8).all()
    mixture = read_table(f"{root}/out/mixture")
    assert not set(mixture["id"]) & caught
    d = summary["decontamination"]
    assert d["removed"] == len(caught)
    assert d["per_task"] == {"planted": len(caught) - 3, "trivia_qa": 2, "code_x_glue_summarize": 1}
    assert d["exact"] == EXACT and len(d["examples"]) == 5
    report = open(root / "out" / "report.md", encoding="utf-8").read()
    assert "## Decontamination" in report and "| `planted` |" in report

    # A strict threshold still catches every exact copy (by hash), and now no paraphrase.
    run(spark, config(root, "d99", decontamination_threshold=0.99))
    removed = read_table(f"{root}/out/decontaminated")
    strict = set(removed[removed["run_id"] == "d99"]["id"])  # trivia_qa-3 is 0.947, below 0.99
    assert strict == set(ids["exact"])


@pytest.mark.spark
def test_failed_run_leaves_every_table_unchanged(spark, planted, tmp_path, monkeypatch):
    root, _ = planted
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(root / "evals.jsonl", src / "evals.jsonl")
    small = pq.read_table(root / "input.parquet")
    pq.write_table(small.slice(small.num_rows - 80), src / "input.parquet")  # 40 control + 40 planted
    run(spark, config(src, "base", num_instances=20))
    before = snapshot(str(src / "out"), TABLES)
    assert before["decontaminated"]
    for point, run_id in (("after_mixture", "base"), ("after_mixture", "new"), ("before_runs", "base")):
        monkeypatch.setenv("SMART_SPARK_FAILPOINT", point)
        with pytest.raises(InjectedFailure):
            run(spark, config(src, run_id, num_instances=20, decontamination_threshold=0.7))
        assert snapshot(str(src / "out"), TABLES) == before, (point, run_id)
    monkeypatch.delenv("SMART_SPARK_FAILPOINT")
    run(spark, config(src, "base", num_instances=20, decontamination_threshold=0.7))
    after = read_table(f"{src}/out/decontaminated")
    assert len(canon(after, ["run_id", "id"])) > len(before["decontaminated"])
    # Rerunning the run id without --decontaminate replaces the whole run: its removed rows go too.
    run(spark, config(src, "base", num_instances=20, decontaminate=None))
    assert read_table(f"{src}/out/decontaminated").empty
    assert set(read_table(f"{src}/out/mixture")["run_id"]) == {"base"}


@pytest.mark.spark
def test_decontamination_over_spark_connect_equals_classic(spark, sail, tmp_path, monkeypatch):
    """Precomputed embeddings; evaluation set = 20 rows' embeddings (10 with their prompt upper-cased:
    exact copies by hash) plus 20 random vectors. Sail removes the same rows, with the same matches."""
    from deltalake import DeltaTable

    from smart_spark.datasets.synthetic import synthetic_table

    table = synthetic_table(600, 6, dim=16, families=3, seed=3)
    pq.write_table(table, tmp_path / "input.parquet")
    rows = table.to_pylist()
    rng = np.random.default_rng(4)
    evals = [{"id": f"e{i}", "prompt": r["prompt"].upper() if i < 10 else f"unrelated {i}",
              "embedding": r["embedding"]} for i, r in enumerate(rows[::30])]
    evals += [{"id": f"x{i}", "prompt": f"noise {i}", "embedding": rng.normal(size=16).tolist()}
              for i in range(20)]
    pq.write_table(pa.Table.from_pylist(evals), tmp_path / "evals.parquet")

    def cfg(out):
        return make_config(dict(
            input=str(tmp_path / "input.parquet"), output=str(tmp_path / out), id_col="id",
            embedding_col="embedding", num_instances=100, run_id="c", report=False,
            decontaminate=str(tmp_path / "evals.parquet"), decontamination_threshold=0.999))

    run(spark, cfg("classic"))
    monkeypatch.setenv("SPARK_CONNECT_MODE_ENABLED", "1")
    run(sail, cfg("connect"))
    monkeypatch.delenv("SPARK_CONNECT_MODE_ENABLED")
    cols = ["id", "eval_id", "match"]
    classic, remote = (DeltaTable(str(tmp_path / o / "decontaminated")).to_pandas().sort_values("id")[cols]
                       .reset_index(drop=True) for o in ("classic", "connect"))
    assert len(classic) == 20 and (classic["match"] == "exact").sum() == 10
    assert remote.equals(classic)


@pytest.mark.spark
def test_bad_evaluation_sets_are_one_clear_error(spark, tmp_path):
    """A missing --decontaminate path fails while reading (before any embedding), naming the flag; an
    evaluation embedding of another width than the instances' is named with its id; nothing is written."""
    from smart_spark.datasets.synthetic import synthetic_table

    pq.write_table(synthetic_table(200, 4, dim=16, families=2, seed=5), tmp_path / "input.parquet")
    pq.write_table(pa.Table.from_pylist([{"id": "e1", "prompt": "p", "embedding": [0.1] * 16},
                                         {"id": "e2", "prompt": "q", "embedding": [0.1] * 8}]),
                   tmp_path / "evals.parquet")

    def cfg(evals):
        return make_config(dict(input=str(tmp_path / "input.parquet"), output=str(tmp_path / "out"),
                                id_col="id", embedding_col="embedding", num_instances=20, report=False,
                                decontaminate=str(evals)))

    with pytest.raises(SmartError, match=r"^--decontaminate .*missing\.jsonl does not exist"):
        run(spark, cfg(tmp_path / "missing.jsonl"))
    with pytest.raises(SmartError, match=r"id 'e2' has 8 dimensions; the instances' embeddings have 16"):
        run(spark, cfg(tmp_path / "evals.parquet"))
    assert not (tmp_path / "out" / "mixture").exists()
