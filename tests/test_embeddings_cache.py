"""spark.embeddings: the Delta cache embeds each distinct text once per model; reruns embed nothing."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
from pyspark.sql import functions as F

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from smart_spark.delta import delta_io  # noqa: E402
from smart_spark.delta.delta_io import TableRef  # noqa: E402
from smart_spark.embed.encoder import load_encoder, token_counts  # noqa: E402
from smart_spark.embed.model_folder import model_id  # noqa: E402
from smart_spark.errors import SmartError  # noqa: E402
from smart_spark.spark.embeddings import embed_with_cache, text_sha256  # noqa: E402

pytestmark = pytest.mark.spark

TEXTS = [f"Instruction {i}: " + "explain the idea " * (i % 7) for i in range(40)]


def _frame(spark, texts: list[str], n_rows: int):
    rows = [(i, texts[i % len(texts)]) for i in range(n_rows)]  # rows past len(texts) repeat texts
    return spark.createDataFrame(rows, "id long, prompt string").repartition(3)


def _embeddings(out) -> tuple[list[int], np.ndarray, list[str]]:
    rows = sorted(out.collect(), key=lambda r: r.id)
    return [r.id for r in rows], np.array([r.embedding for r in rows], np.float32), [r.prompt for r in rows]


def test_cache_embeds_each_text_once(spark, tmp_path) -> None:
    from deltalake import DeltaTable

    ref = TableRef(path=str(tmp_path / "embeddings"))
    df = _frame(spark, TEXTS, 60)
    out, stats = embed_with_cache(spark, df, text_col="prompt", model=None, cache=ref, device="cpu")
    key = model_id(None, 256)
    assert stats == {"texts": 40, "cache_hits": 0, "embedded": 40, "model": key, "dim": 384}
    assert out.columns == ["id", "prompt", "embedding"]
    ids, emb, prompts = _embeddings(out)
    assert ids == list(range(60))
    expected = load_encoder(None, device="cpu").encode(prompts)
    np.testing.assert_allclose(emb, expected, atol=1e-5, rtol=0)

    table = DeltaTable(str(tmp_path / "embeddings"))
    data = table.to_pyarrow_table().to_pylist()
    assert len(data) == 40
    columns = [f.name for f in table.schema().fields]
    assert columns == ["model", "text_sha256", "dim", "embedding", "created_at", "tokens"]
    counts = dict(zip((hashlib.sha256(t.encode()).hexdigest() for t in TEXTS), token_counts(None, TEXTS)))
    assert {r["text_sha256"]: r["tokens"] for r in data} == counts  # untruncated, for the text statistics
    assert {r["model"] for r in data} == {key} and {r["dim"] for r in data} == {384}
    assert {r["text_sha256"] for r in data} == {hashlib.sha256(t.encode()).hexdigest() for t in TEXTS}
    version = delta_io.version(spark, ref)

    # rerun: everything cached, no new commit, same vectors
    out2, stats2 = embed_with_cache(spark, df, text_col="prompt", model=None, cache=ref, device="cpu")
    assert (stats2["texts"], stats2["cache_hits"], stats2["embedded"]) == (40, 40, 0)
    assert delta_io.version(spark, ref) == version
    np.testing.assert_array_equal(_embeddings(out2)[1], emb)

    # five new texts: exactly five embedded, one new commit
    new = [f"A brand new prompt number {i}" for i in range(5)]
    df3 = df.unionByName(spark.createDataFrame([(100 + i, t) for i, t in enumerate(new)], df.schema))
    out3, stats3 = embed_with_cache(spark, df3, text_col="prompt", model=None, cache=ref, device="cpu")
    assert (stats3["texts"], stats3["cache_hits"], stats3["embedded"]) == (45, 40, 5)
    assert delta_io.version(spark, ref) == version + 1
    assert len(DeltaTable(str(tmp_path / "embeddings")).to_pyarrow_table()) == 45
    ids3, emb3, prompts3 = _embeddings(out3)
    assert ids3 == list(range(60)) + list(range(100, 105))
    np.testing.assert_allclose(emb3, load_encoder(None, device="cpu").encode(prompts3), atol=1e-5, rtol=0)

    # another truncation length is another model key: cached separately, next to the first
    _, stats4 = embed_with_cache(
        spark, df3.limit(5), text_col="prompt", model=None, cache=ref, max_length=16, device="cpu"
    )
    assert stats4["model"] == model_id(None, 16) != key and stats4["embedded"] == 5
    assert len(DeltaTable(str(tmp_path / "embeddings")).to_pyarrow_table()) == 50


def test_cache_rows_of_another_dim_are_an_error(spark, tmp_path) -> None:
    """A cached vector of another width for one of the texts (found by the lookup job itself)."""
    ref = TableRef(path=str(tmp_path / "embeddings"))
    bad = spark.createDataFrame(
        [(model_id(None, 256), hashlib.sha256(TEXTS[2].encode()).hexdigest(), 3, [1.0, 0.0, 0.0])],
        "model string, text_sha256 string, dim int, embedding array<float>",
    ).withColumn("created_at", F.current_timestamp())
    delta_io.merge_insert_new(spark, bad, ref, keys=["model", "text_sha256"])
    df = _frame(spark, TEXTS, 5)
    with pytest.raises(SmartError, match="dim 3"):
        embed_with_cache(spark, df, text_col="prompt", model=None, cache=ref, device="cpu")
    with pytest.raises(SmartError, match="already exists"):
        embed_with_cache(spark, df, text_col="prompt", model=None, cache=ref, out_col="prompt")


def test_text_sha256_is_hashlib_sha256_of_utf8(spark) -> None:
    texts = ["", "hello", "ÜNÏCÖDÉ 中文 🙂"]
    df = spark.createDataFrame([(t,) for t in texts], "t string")
    got = df.select(text_sha256("t").alias("h")).collect()
    assert [r.h for r in got] == [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]

