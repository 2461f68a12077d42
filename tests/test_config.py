"""Flags, the YAML config and their validation (no Spark)."""

from __future__ import annotations

import json

import pytest

from smart_spark.cli.settings import load_config, make_config
from smart_spark.errors import SmartError

BASE = ["--input", "in.jsonl", "--output", "out", "--num-instances", "100"]


def test_defaults_match_interfaces():
    c = load_config(BASE)
    assert (c.task_col, c.prompt_col, c.response_col) == ("task", "prompt", "response")
    assert (c.task_fn, c.instance_fn, c.strata, c.input_format, c.device) == ("gc", "fl", "proportional",
                                                                            "auto", "auto")
    assert (c.gc_lambda, c.logdet_lambda, c.temperature) == (0.4, 1.0, 1.0)
    assert (c.partition_size, c.seed, c.max_length, c.embed_batch_size) == (20000, 23, 256, 64)
    assert c.num_tasks is None and c.id_col is None and c.embedding_col is None
    assert c.run_id and json.loads(c.to_json())["num_instances"] == 100


def test_flags_override_yaml(tmp_path):
    cfg = tmp_path / "job.yaml"
    cfg.write_text("input: a.jsonl\noutput: o\nnum_instances: 5\nnum-tasks: 3\ntask_fn: fl\nseed: 1\n")
    c = load_config(["--config", str(cfg), "--seed", "9", "--num-tasks", "all"])
    assert (c.input, c.num_instances, c.task_fn, c.seed, c.num_tasks) == ("a.jsonl", 5, "fl", 9, None)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--task-fn", "xyz"], "--task-fn"),
        (["--instance-fn", "pagerank"], "--instance-fn"),
        (["--partition-size", "1"], "--partition-size"),
        (["--num-tasks", "0"], "--num-tasks"),
        (["--num-tasks", "many"], "--num-tasks"),
        (["--strata", "flan"], "--stratum-col"),
        (["--strata", "weird"], "--strata"),
        (["--temperature", "0"], "--temperature"),
        (["--device", "tpu"], "--device"),
        (["--run-id", "bad id!"], "--run-id"),
        (["--id-col", "task"], "--id-col"),
    ],
)
def test_bad_flags_name_the_flag(extra, message):
    with pytest.raises(SmartError, match=message):
        load_config(BASE + extra)


def test_negative_budget_and_missing_required():
    with pytest.raises(SmartError, match="--num-instances must be positive"):
        load_config(["--input", "a", "--output", "o", "--num-instances", "-3"])
    with pytest.raises(SmartError, match="--output is required"):
        load_config(["--input", "a", "--num-instances", "3"])


def test_unknown_yaml_key(tmp_path):
    cfg = tmp_path / "job.yaml"
    cfg.write_text("input: a\noutput: o\nnum_instances: 5\nnum_taks: 3\n")
    with pytest.raises(SmartError, match="unknown setting.*num_taks"):
        load_config(["--config", str(cfg)])


def test_make_config_types():
    c = make_config({"input": "a", "output": "o", "num_instances": "7", "num_tasks": "4", "seed": "5"})
    assert (c.num_instances, c.num_tasks, c.seed) == (7, 4, 5)
    with pytest.raises(SmartError, match="--seed must be a number"):
        make_config({"input": "a", "output": "o", "num_instances": 1, "seed": "x"})


def test_help_shows_defaults_required_flags_and_every_choice(capsys):
    with pytest.raises(SystemExit):
        load_config(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "required (on the command line or in --config): --input INPUT" in text
    assert "--num-instances N[,N...]" in text.split("settings:")[0]
    assert "--strategy {smart,epm,em,fixed}" in text
    assert "--partition-size PARTITION_SIZE P: most rows one greedy holds a kernel for (default: 20000)" \
        in text
    assert "--no-report" in text


def test_every_declared_setting_is_a_flag_and_a_yaml_key(tmp_path):
    from smart_spark.cli.settings import build_parser, declared

    flags = {a.dest for a in build_parser()._actions}
    names = [f.name for f in declared()]
    assert set(names) <= flags
    cfg = tmp_path / "job.yaml"
    cfg.write_text("input: a\noutput: o\nnum_instances: 5\nmax_length: 12\nreport: false\nepm_cap: 3\n"
                   "group_weights: {a: 1, b: 2}\n")
    c = load_config(["--config", str(cfg)])
    assert (c.max_length, c.report, c.epm_cap, c.group_weights) == (12, False, 3, {"a": 1.0, "b": 2.0})
    with pytest.raises(SmartError, match="--epm-cap must be positive"):
        make_config({"input": "a", "output": "o", "num_instances": 1, "epm_cap": 0})


def test_every_setting_is_documented():
    from pathlib import Path

    from smart_spark.cli.settings import declared, flag

    usage = (Path(__file__).resolve().parent.parent / "docs" / "usage.md").read_text(encoding="utf-8")
    missing = [flag(f.name) for f in declared()
               if flag(f.name) not in usage and f"--no-{f.name.replace('_', '-')}" not in usage]
    assert not missing, f"settings missing from docs/usage.md: {missing}"
