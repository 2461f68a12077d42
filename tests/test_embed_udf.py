"""smart_spark.udfs.embed in a local Spark session: same vectors as the in-process encoder, row for row."""

from __future__ import annotations

import os

import numpy as np
import pytest
from pyspark.sql import functions as F

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from smart_spark.embed.encoder import load_encoder, token_counts  # noqa: E402
from smart_spark.udfs.embed import embed_udf, embeddings_to_arrow  # noqa: E402

pytestmark = pytest.mark.spark

WORDS = "the of and to in a is that for it as was with be by on not he this are or his from at which".split()


def _texts(n: int) -> list[str]:
    rng = np.random.default_rng(7)
    texts = [f"prompt {i}: " + " ".join(rng.choice(WORDS, size=int(rng.integers(0, 40)))) for i in range(n)]
    texts[3], texts[10] = "", "long " * 400  # empty, and past max_length
    return texts


def test_udf_matches_in_process_encoder(spark) -> None:
    texts = _texts(300)
    df = spark.createDataFrame(list(enumerate(texts)), "id long, text string").repartition(4)
    assert df.rdd.getNumPartitions() == 4
    out = df.select("id", embed_udf(None, batch_size=16, arrow_batch_size=50)("text").alias("e"))
    assert out.schema["e"].dataType.simpleString() == "array<float>"
    rows = sorted(out.collect(), key=lambda r: r.id)
    got = np.array([r.e for r in rows], dtype=np.float32)
    assert [r.id for r in rows] == list(range(300))
    assert got.shape == (300, 384)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    expected = load_encoder(None, device="cpu").encode(texts)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def test_udf_with_tokens_gives_the_vector_and_the_untruncated_count(spark) -> None:
    texts = _texts(120)
    df = spark.createDataFrame(list(enumerate(texts)), "id long, text string").repartition(3)
    embedded = embed_udf(None, batch_size=16, arrow_batch_size=50, with_tokens=True)(F.col("text"))
    out = df.select("id", embedded["embedding"].alias("e"), embedded["tokens"].alias("n"))
    assert out.schema["n"].dataType.simpleString() == "int"
    assert out._jdf.queryExecution().executedPlan().toString().count("ArrowEvalPython") == 1  # one UDF run
    rows = sorted(out.collect(), key=lambda r: r.id)
    np.testing.assert_allclose(np.array([r.e for r in rows]), load_encoder(None, device="cpu").encode(texts),
                               atol=1e-5, rtol=0)
    assert [r.n for r in rows] == token_counts(None, texts).tolist()
    assert rows[10].n == 402 and rows[3].n == 2  # past max_length (256); the empty text: [CLS] [SEP]


def test_udf_rejects_null_text(spark) -> None:
    df = spark.createDataFrame([(1, "fine"), (2, None)], "id int, text string").coalesce(1)
    with pytest.raises(Exception, match="cannot embed a null text"):
        df.select(embed_udf(None)("text")).collect()


def test_embeddings_to_arrow_round_trip() -> None:
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    arr = embeddings_to_arrow(x)
    assert str(arr.type) == "list<item: float>" and len(arr) == 4
    np.testing.assert_array_equal(np.array(arr.to_pylist(), dtype=np.float32), x)
    assert len(embeddings_to_arrow(np.zeros((0, 3), np.float32))) == 0
