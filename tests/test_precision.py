"""--precision and token-budget batches: bfloat16 close to float32 on real text, cache keys kept apart,
float32 vectors unchanged by how rows are batched."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from smart_spark.cli.settings import make_config  # noqa: E402
from smart_spark.datasets.real_text import python_doc_paragraphs  # noqa: E402
from smart_spark.embed import device as device_module  # noqa: E402
from smart_spark.embed.batches import token_batches  # noqa: E402
from smart_spark.embed.device import cpu_has_native_bf16, resolve_precision  # noqa: E402
from smart_spark.embed.encoder import load_encoder  # noqa: E402
from smart_spark.embed.model_folder import model_id  # noqa: E402
from smart_spark.errors import SmartError  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "instructions.jsonl"
#: Least per-text cosine(bfloat16, float32) accepted. Measured (bench/precision_quality.py, RESULTS.md):
#: min 0.99995 over the sample's 3,493 prompts; the bound leaves room for other CPUs' kernels.
MIN_COSINE = 0.9995
#: Texts encoded in bfloat16 and the token budget of its fixed-shape passes: all 300 texts in the job's
#: default 2048-token passes where the CPU has native bfloat16; where torch emulates it (about 18x slower
#: than float32, a fixed 2048-token pass 1.8 s), every third text in 512-token passes.
BF16_STEP, BF16_TOKENS = (1, 2048) if cpu_has_native_bf16() else (3, 512)


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """300 real texts: 150 Python docstring paragraphs (short to long) and 150 sample prompts."""
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf8").splitlines()]
    return python_doc_paragraphs(150) + [r["prompt"] for r in rows[::23]][:150]


@pytest.fixture(scope="module")
def fp32(texts) -> np.ndarray:
    return load_encoder(None, device="cpu").encode(texts)


def test_bfloat16_close_to_float32(texts, fp32) -> None:
    encoder = load_encoder(None, device="cpu", precision="bfloat16")
    assert encoder.precision == "bfloat16" and encoder.model_id.endswith("/max256/bf16-fixed")
    bf16 = encoder.encode(texts[::BF16_STEP], max_tokens=BF16_TOKENS)
    fp32 = fp32[::BF16_STEP]
    assert bf16.dtype == np.float32 and bf16.shape == fp32.shape
    np.testing.assert_allclose(np.linalg.norm(bf16, axis=1), 1.0, atol=1e-5)  # normalised in float32
    cos = (bf16 * fp32).sum(1)
    assert cos.min() >= MIN_COSINE
    assert np.abs(bf16 - fp32).max() > 1e-5  # really ran in bfloat16
    # float32 stays what sentence-transformers gives (the float32 encoder is the one of test_encoder)
    assert load_encoder(None, device="cpu", precision="float32").model_id == model_id(None, 256)


def test_float32_unchanged_by_token_batches(texts, fp32) -> None:
    encoder = load_encoder(None, device="cpu")
    subset, want = texts[::2], fp32[::2]  # other neighbours, other padding, other batch widths
    for batch_size, max_tokens in ((512, 4096), (512, 700), (7, None)):
        got = encoder.encode(subset, batch_size=batch_size, max_tokens=max_tokens)
        assert np.abs(got - want).max() <= 1e-6, (batch_size, max_tokens)


def test_token_batches_bound_rows_and_tokens() -> None:
    lengths = np.array([300, 256, 256, 100, 50, 50, 20, 20, 20, 5, 5, 3])
    batches = token_batches(lengths, batch_size=4, max_tokens=512)
    assert batches[0] == (0, 1)  # longer than the budget: alone
    assert [b for b in batches if b[0] > 0][0] == (1, 3)
    starts = [s for s, _ in batches]
    assert starts == sorted(starts) and batches[-1][1] == len(lengths)
    assert all(b[0] == a[1] for a, b in zip(batches, batches[1:], strict=False))
    for start, stop in batches:
        assert stop - start <= 4
        assert stop - start == 1 or (stop - start) * lengths[start] <= 512
    assert token_batches(lengths, batch_size=5) == [(0, 5), (5, 10), (10, 12)]
    assert token_batches(np.array([], dtype=int), 8, 100) == []


def test_resolve_precision(tmp_path, monkeypatch) -> None:
    amx = tmp_path / "amx"
    amx.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f amx_bf16 amx_tile\n")
    plain = tmp_path / "plain"
    plain.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n")
    assert cpu_has_native_bf16(str(amx)) and not cpu_has_native_bf16(str(plain))
    assert not cpu_has_native_bf16(str(tmp_path / "missing"))
    # auto: bfloat16 where the CPU has native bf16 (this machine: AVX512-BF16), float32 elsewhere
    assert resolve_precision("auto", "cpu") == ("bfloat16" if cpu_has_native_bf16() else "float32")
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto", "cpu") == "bfloat16"
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto", "cpu") == "float32"
    assert resolve_precision("bfloat16", "cpu") == "bfloat16"  # works without native support, slowly
    # CUDA: the device's own bf16 capability decides (mocked: no GPU here)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", "cuda:0") == "bfloat16"
    assert resolve_precision("float32", "cuda:0") == "float32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision("auto", "cuda:0") == "float32"
    with pytest.raises(SmartError, match="the CUDA device cuda:0 does not support bfloat16"):
        resolve_precision("bfloat16", "cuda:0")
    assert resolve_precision("float32", "cpu") == "float32"
    assert resolve_precision("bfloat16", "cpu") == "bfloat16"
    with pytest.raises(SmartError, match="--precision 'half'"):
        resolve_precision("half", "cpu")
    with pytest.raises(SmartError, match="once resolved"):
        model_id(None, 256, "auto")


def test_settings_precision_and_max_tokens() -> None:
    base = {"input": "x", "output": "y", "num_instances": 10}
    config = make_config(base)
    assert (config.precision, config.embed_max_tokens, config.embed_batch_size) == ("auto", 2048, 64)
    config = make_config(base | {"precision": "bfloat16", "embed_max_tokens": "4096"})
    assert (config.precision, config.embed_max_tokens) == ("bfloat16", 4096)
    with pytest.raises(SmartError, match="--precision must be one of auto, float32, bfloat16"):
        make_config(base | {"precision": "fp16"})
    with pytest.raises(SmartError, match="--embed-max-tokens must be positive"):
        make_config(base | {"embed_max_tokens": 0})


@pytest.mark.spark
def test_cache_keeps_precisions_apart(spark, tmp_path, texts) -> None:
    from deltalake import DeltaTable

    from smart_spark.delta.delta_io import TableRef
    from smart_spark.spark.embeddings import embed_with_cache

    subset = texts[140:180:BF16_STEP]  # docstrings and prompts
    ref = TableRef(path=str(tmp_path / "embeddings"))
    df = spark.createDataFrame(list(enumerate(subset)), "id long, prompt string").repartition(2)
    runs = []
    for precision in ("float32", "bfloat16", "float32"):
        out, stats = embed_with_cache(spark, df, text_col="prompt", model=None, cache=ref, device="cpu",
                                      precision=precision, max_tokens=BF16_TOKENS)
        rows = sorted(out.collect(), key=lambda r: r.id)
        runs.append((stats, np.array([r.embedding for r in rows], np.float32)))
    (first, v32), (second, v16), (third, again) = runs
    assert (first["embedded"], second["embedded"], third["embedded"]) == (len(subset), len(subset), 0)
    assert (second["cache_hits"], third["cache_hits"]) == (0, len(subset))  # bf16 never reads fp32 rows
    keys = {"float32": first["model"], "bfloat16": second["model"]}
    assert keys["float32"] == model_id(None, 256) and keys["bfloat16"] == keys["float32"] + "/bf16-fixed"
    data = DeltaTable(str(tmp_path / "embeddings")).to_pyarrow_table(columns=["model"]).to_pylist()
    assert sorted({r["model"] for r in data}) == sorted(keys.values()) and len(data) == 2 * len(subset)
    want32 = load_encoder(None, device="cpu").encode(subset)
    want16 = load_encoder(None, device="cpu", precision="bfloat16").encode(subset, max_tokens=BF16_TOKENS)
    np.testing.assert_allclose(v32, want32, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(again, v32)
    assert np.abs(v16 - want16).max() <= 1e-6  # fixed-shape passes: batched differently, same vectors
    assert (v16 * v32).sum(1).min() >= MIN_COSINE and np.abs(v16 - v32).max() > 1e-5


@pytest.mark.spark
def test_auto_precision_resolved_by_an_executor(spark) -> None:
    from smart_spark.spark.embeddings import job_precision
    from smart_spark.udfs.embed import executor_precision

    auto = "bfloat16" if cpu_has_native_bf16() else "float32"
    assert executor_precision(spark, "auto", "cpu") == auto  # what a cluster run asks one task
    assert executor_precision(spark, "bfloat16", "cpu") == "bfloat16"
    assert job_precision(spark, "auto", "cpu") == auto  # local mode: decided on the driver
    assert job_precision(spark, "float32", "cpu") == "float32"
    with pytest.raises(SmartError, match="--precision"):
        job_precision(spark, "fp8", "cpu")


@pytest.mark.spark
def test_auto_keeps_a_float32_cache(spark, tmp_path, texts, monkeypatch) -> None:
    """A cache made while ``auto`` meant float32 on CPUs: ``auto`` stays float32 on it (no re-embedding,
    the same vectors, so the same mixture); a cache that also holds bfloat16 vectors gets bfloat16."""
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: True)  # as on this machine
    from smart_spark.delta.delta_io import TableRef
    from smart_spark.spark.embeddings import embed_with_cache

    ref = TableRef(path=str(tmp_path / "embeddings"))
    df = spark.createDataFrame(list(enumerate(texts[:12])), "id long, prompt string")
    _, made = embed_with_cache(spark, df, text_col="prompt", model=None, cache=ref, device="cpu",
                               precision="float32")
    _, auto = embed_with_cache(spark, df, text_col="prompt", model=None, cache=ref, device="cpu",
                               precision="auto")
    assert (auto["model"], auto["cache_hits"], auto["embedded"]) == (made["model"], 12, 0)
    embed_with_cache(spark, df.limit(1), text_col="prompt", model=None, cache=ref, device="cpu",
                     precision="bfloat16", max_tokens=BF16_TOKENS)
    _, auto = embed_with_cache(spark, df, text_col="prompt", model=None, cache=ref, device="cpu",
                               precision="auto", max_tokens=BF16_TOKENS)
    assert (auto["model"], auto["cache_hits"], auto["embedded"]) == (made["model"] + "/bf16-fixed", 1, 11)
