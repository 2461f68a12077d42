"""The job on real third-party text through the real encoder: the FLAN chain-of-thought MMLU exemplars
shipped in the ``lm-eval`` package (282 prompts, 57 tasks named ``mmlu/<subject>``; MIT licence; see
data/README.md)."""

from __future__ import annotations

import collections
import json

import pytest
from deltalake import DeltaTable

from smart_spark.cli.settings import make_config
from smart_spark.datasets.mmlu_cot import mmlu_cot_rows
from smart_spark.jobs.smart_mixture import run

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def rows():
    try:
        return mmlu_cot_rows()
    except FileNotFoundError as exc:  # scripts/setup.sh installs it: a missing file is a set-up error
        pytest.fail(f"{exc}; run scripts/setup.sh (pip install --no-deps lm-eval==0.4.13)")


def test_job_on_real_third_party_text(spark, tmp_path, rows, capsys):
    path = tmp_path / "mmlu_cot.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    out = str(tmp_path / "out")
    summary = run(spark, make_config(dict(input=str(path), output=out, id_col="id", num_tasks=20,
                                          num_instances=60, run_id="mmlu")))
    printed = capsys.readouterr().out
    assert len(rows) == 282 and summary["input_rows"] == 282 and summary["num_tasks_total"] == 57

    mixture = DeltaTable(f"{out}/mixture").to_pandas()
    weights = DeltaTable(f"{out}/task_weights").to_pandas()
    assert len(mixture) == 60 and mixture["id"].is_unique
    assert int(weights["selected"].sum()) == 20 and int(weights["budget"].sum()) == 60
    assert set(mixture["task"]) <= set(weights[weights["selected"]]["task"])
    assert all(t.startswith("mmlu/") for t in mixture["task"])

    # What the text looks like is counted exactly.
    stats = summary["embed_stats"]
    by_text = collections.defaultdict(set)
    pairs = collections.Counter()
    for r in rows:
        by_text[r["prompt"]].add(r["task"])
        pairs[(r["task"], r["prompt"])] += 1
    assert stats["distinct_texts"] == stats["texts"] == len(by_text)
    assert stats["texts_in_several_tasks"] == sum(len(t) > 1 for t in by_text.values())
    assert stats["repeated_in_task"] == sum(n - 1 for n in pairs.values())
    from smart_spark.embed.encoder import token_counts
    tokens = token_counts(None, [r["prompt"] for r in rows])
    assert stats["truncated_rows"] == int((tokens > 256).sum()) > 0
    assert summary["empty_prompts"] == 0
    metrics = json.loads(DeltaTable(f"{out}/runs").to_pandas()["metrics"][0])
    assert metrics["embed_stats"]["truncated_share"] == round(stats["truncated_rows"] / 282, 6)
    assert "SMART run mmlu" in printed and "truncated" in printed
    print("\nmmlu_cot stage seconds:", summary["stage_seconds"], "truncated:", stats["truncated_rows"])
