"""bfloat16 vectors that do not depend on their neighbours: fixed forward-pass shapes per length bucket
(``smart_spark.embed.batches``), checked on real text embedded alone, among thousands of others, in other
chunkings and thread counts, and through Spark with other partitionings and a warm cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from smart_spark.datasets.real_text import python_doc_paragraphs  # noqa: E402
from smart_spark.embed.batches import (  # noqa: E402
    bucket_length,
    fixed_shape_batches,
    pad_rows,
    rows_per_pass,
    token_passes,
)
from smart_spark.embed.encoder import cpu_has_native_bf16, load_encoder  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "instructions.jsonl"
#: Largest per-coordinate difference accepted between two embeddings of the same text (the issue's bound;
#: measured: 0 on this CPU).
TOLERANCE = 1e-6
#: Real texts checked, other texts they are embedded among, and the token budget per pass (the shapes,
#: hence the vectors, follow it): the job's default budget (``--embed-max-tokens`` 2048) where the CPU has
#: native bfloat16 (AVX512-BF16 or AMX); where it has not, torch emulates bfloat16 about 18x slower than
#: float32 (a fixed 2048-token pass for one text: 1.8 s), so fewer texts in 512-token passes, the same checks.
REAL, COMPANY, MAX_TOKENS = (300, 2000, 2048) if cpu_has_native_bf16() else (20, 60, 512)


@pytest.fixture(scope="module")
def real_texts() -> list[str]:
    """REAL real texts: half Python docstring paragraphs, half FLAN-style sample prompts."""
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf8").splitlines()]
    return python_doc_paragraphs(REAL // 2) + [r["prompt"] for r in rows[::23]][:REAL // 2]


@pytest.fixture(scope="module")
def company() -> list[str]:
    """COMPANY other texts (the rest of the sample's prompts, 4 in 5, and more docstrings) to embed them
    among."""
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf8").splitlines()]
    others = [r["prompt"] for i, r in enumerate(rows) if i % 23][:COMPANY * 4 // 5]
    return others + python_doc_paragraphs(REAL // 2 + COMPANY // 5)[REAL // 2:]


@pytest.fixture(scope="module")
def bf16():
    return load_encoder(None, device="cpu", precision="bfloat16")


@pytest.fixture(scope="module")
def alone(bf16, real_texts) -> np.ndarray:
    return bf16.encode(real_texts, max_tokens=MAX_TOKENS)


def test_bucket_length_depends_on_the_row_only() -> None:
    lengths = np.arange(1, 700)
    widths = bucket_length(lengths, 512)
    assert (widths >= np.minimum(lengths, 512)).all() and widths.max() == 512
    assert list(bucket_length(np.array([1, 8, 9, 100, 127, 128, 129, 250, 256, 300]), 256)) == \
        [8, 8, 16, 104, 128, 128, 144, 256, 256, 256]
    waste = (widths[:511] - lengths[:511]) / lengths[:511]
    assert waste[lengths[:511] >= 64].max() <= 0.125  # at most 1/8 of a row past 64 tokens
    assert len(np.unique(widths)) < 60  # few shapes: few kernels to pick


def test_fixed_shape_plan_covers_each_row_once_in_fixed_shapes() -> None:
    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 300, 1000)
    plan = fixed_shape_batches(lengths, batch_size=64, max_tokens=2048, cap=256)
    covered = np.concatenate([p.idx for p in plan])
    assert sorted(covered.tolist()) == list(range(1000))
    for step in plan:
        assert step.rows == rows_per_pass(step.width, 64, 2048) >= len(step.idx)
        assert (bucket_length(lengths[step.idx], 256) == step.width).all()
    assert rows_per_pass(256, 64, 2048) == 8 and rows_per_pass(16, 64, 2048) == 64
    assert rows_per_pass(4096, 64, 2048) == 1
    float32_plan = token_passes(lengths, 64, 2048)  # exact padding, real rows only
    assert sorted(np.concatenate([p.idx for p in float32_plan]).tolist()) == list(range(1000))
    assert all(p.rows == len(p.idx) and p.width == lengths[p.idx].max() for p in float32_plan)


def test_pad_rows_fills_to_a_fixed_shape() -> None:
    encoded = {"input_ids": [[101, 7, 102], [101, 102], [101, 5, 6, 102]]}
    idx, lengths = np.array([0, 1]), np.array([3, 2])
    batch = pad_rows(encoded, ["input_ids"], idx, lengths, {"input_ids": 0}, width=8, rows=4)
    assert batch["input_ids"].shape == (4, 8) and batch["attention_mask"].shape == (4, 8)
    assert batch["input_ids"][0].tolist() == [101, 7, 102, 0, 0, 0, 0, 0]
    assert batch["input_ids"][3].tolist() == batch["input_ids"][1].tolist() == [101, 102, 0, 0, 0, 0, 0, 0]
    left = pad_rows(encoded, ["input_ids"], idx, lengths, {"input_ids": 1}, left=True, width=5)
    assert left["input_ids"].tolist() == [[1, 1, 101, 7, 102], [1, 1, 1, 101, 102]]
    assert left["attention_mask"].tolist() == [[0, 0, 1, 1, 1], [0, 0, 0, 1, 1]]


def test_bfloat16_vector_independent_of_company(bf16, real_texts, company, alone) -> None:
    assert bf16.fixed_shapes and not load_encoder(None, device="cpu").fixed_shapes
    half = len(company) // 2
    mixed = company[:half] + real_texts + company[half:]
    among = bf16.encode(mixed, max_tokens=MAX_TOKENS)[half:half + len(real_texts)]
    assert np.abs(among - alone).max() <= TOLERANCE
    sevens = np.concatenate([bf16.encode(real_texts[i:i + 7], max_tokens=MAX_TOKENS)
                             for i in range(0, len(real_texts), 7)])
    assert np.abs(sevens - alone).max() <= TOLERANCE
    one_by_one = np.concatenate([bf16.encode([t], max_tokens=MAX_TOKENS) for t in real_texts[::10]])
    assert np.abs(one_by_one - alone[::10]).max() <= TOLERANCE
    reversed_ = bf16.encode(real_texts[::-1], max_tokens=MAX_TOKENS)[::-1]
    assert np.abs(reversed_ - alone).max() <= TOLERANCE
    assert np.abs(alone - load_encoder(None, device="cpu").encode(real_texts)).max() > 1e-5  # really bf16


def test_bfloat16_vector_independent_of_threads(bf16, real_texts, alone) -> None:
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            again = bf16.encode(real_texts[:60], max_tokens=MAX_TOKENS)
            assert np.abs(again - alone[:60]).max() <= TOLERANCE, n
    finally:
        torch.set_num_threads(threads)


@pytest.mark.spark
def test_bfloat16_through_spark_independent_of_partitioning_and_cache(spark, tmp_path, real_texts, company,
                                                                       alone) -> None:
    """The same texts through the embedding cache: alone in one partition, then (another cache) among
    COMPANY others in 7 partitions after half of those others were cached first: the same vectors, and
    those of the in-process encoder."""
    from smart_spark.delta.delta_io import TableRef
    from smart_spark.spark.embeddings import embed_with_cache

    def embed(texts: list[str], parts: int, cache: str) -> dict[str, np.ndarray]:
        df = spark.createDataFrame(list(enumerate(texts)), "id long, prompt string").repartition(parts)
        out, stats = embed_with_cache(spark, df, text_col="prompt", model=None, cache=TableRef(path=cache),
                                      device="cpu", precision="bfloat16", max_tokens=MAX_TOKENS)
        assert stats["model"].endswith("/bf16-fixed")
        return {r.prompt: np.array(r.embedding, np.float32) for r in out.collect()}

    cold = embed(real_texts, 1, str(tmp_path / "cold"))
    half, cut = len(company) // 2, len(company) * 7 // 20
    embed(company[:half], 3, str(tmp_path / "warm"))  # the cache sees half the company first
    warm = embed(company[:cut] + real_texts[::-1] + company[cut:], 7, str(tmp_path / "warm"))
    got_cold = np.stack([cold[t] for t in real_texts])
    got_warm = np.stack([warm[t] for t in real_texts])
    assert np.abs(got_cold - got_warm).max() <= TOLERANCE
    assert np.abs(got_cold - alone).max() <= TOLERANCE
