"""The bundled sample (data/sample/instructions.jsonl): shape, content rules, byte-identical regeneration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample" / "instructions.jsonl"
SCRIPT = ROOT / "scripts" / "make_sample.py"
TYPES = {"zs_opt", "zs_noopt", "fs_opt", "fs_noopt"}


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    assert SAMPLE.is_file(), f"{SAMPLE} is missing: run python scripts/make_sample.py --seed 7"
    return pd.read_json(SAMPLE, lines=True, dtype=False)


def test_file_is_small() -> None:
    assert SAMPLE.stat().st_size < 3 * 1024 * 1024


def test_columns_and_counts(sample: pd.DataFrame) -> None:
    assert list(sample.columns) == ["id", "task", "template_type", "prompt", "response"]
    assert 3000 <= len(sample) <= 4000
    assert 30 <= sample["task"].nunique() <= 40


def test_no_nulls_or_empty_strings(sample: pd.DataFrame) -> None:
    assert not sample.isna().any().any()
    for col in sample.columns:
        assert sample[col].map(lambda v: isinstance(v, str) and v.strip() != "").all(), col


def test_ids_unique_and_named_after_their_task(sample: pd.DataFrame) -> None:
    assert sample["id"].is_unique
    assert (sample.apply(lambda r: r["id"].rsplit("-", 1)[0] == r["task"], axis=1)).all()


def test_template_types(sample: pd.DataFrame) -> None:
    assert set(sample["template_type"]) == TYPES
    counts = sample["template_type"].value_counts()
    assert counts.min() >= 0.15 * len(sample)
    per_task = sample.groupby("task")["template_type"].agg(set)
    assert any(s <= {"zs_opt", "zs_noopt"} for s in per_task), "no zero-shot-only task"
    assert any(s <= {"fs_opt", "fs_noopt"} for s in per_task), "no few-shot-only task"


def test_options_rows_list_the_answer(sample: pd.DataFrame) -> None:
    for row in sample.itertuples():
        has_options = "\nOPTIONS:\n- " in row.prompt
        if row.template_type in ("zs_opt", "fs_opt"):
            assert has_options, row.id
            block = row.prompt.rsplit("OPTIONS:\n", 1)[1]
            options = [ln[2:] for ln in block.split("\n") if ln.startswith("- ")]
            # gsm8k's chain-of-thought responses end with "The answer is <option>."
            ok = row.response in options or any(row.response.endswith(f"The answer is {o}.") for o in options)
            assert ok, row.id
        else:
            assert not has_options, row.id


def test_skewed_sizes_and_lengths(sample: pd.DataFrame) -> None:
    sizes = sample.groupby("task").size()
    assert sizes.min() <= 20 and sizes.max() >= 300
    words = sample["prompt"].str.split().str.len()
    assert words.min() <= 12 and words.max() >= 250
    assert words.quantile(0.99) <= 320


def test_few_duplicate_prompts(sample: pd.DataFrame) -> None:
    dups = sample.duplicated(["task", "prompt"]).sum()
    assert dups <= 0.01 * len(sample)


def test_regenerates_byte_identical(tmp_path: Path) -> None:
    out = tmp_path / "instructions.jsonl"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # string hashing must not matter
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--seed", "7"], check=True,
                   capture_output=True, env=env)
    assert out.read_bytes() == SAMPLE.read_bytes()
