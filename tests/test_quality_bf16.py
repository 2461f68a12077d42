"""The quality stage's cosine maxima: float32 tiles, and the bfloat16 first pass, which prunes only (its
maxima equal the float32 products').

Checked on real third-party text (the Python standard library's docstrings, embedded by the bundled
encoder) against a float64 reference written here, and on the shapes that stress the pruning: near
copies, a row whose only key is itself, rows whose best cosine is negative, keys all about as close
(the fallback to float32 products).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from smart_spark.core import quality
from smart_spark.core.quality import max_cosine
from smart_spark.core.quality_bf16 import MAX_CANDIDATE_SHARE, error_bound, max_cosine_bf16
from smart_spark.datasets.real_text import python_doc_paragraphs
from smart_spark.embed.encoder import load_encoder


def unit(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def reference(queries: np.ndarray, keys: np.ndarray, skip: dict[int, int] | None = None) -> np.ndarray:
    S = queries.astype(np.float64) @ keys.astype(np.float64).T
    for q, k in (skip or {}).items():
        S[q, k] = -np.inf
    return S.max(axis=1)


@pytest.fixture(scope="module")
def docs() -> np.ndarray:
    texts = python_doc_paragraphs(1200)
    return unit(load_encoder(None, device="cpu", precision="float32").encode(texts))


@pytest.mark.parametrize("tile", [64, 1024])
def test_float32_tiles_equal_the_reference_with_own_rows_skipped_across_tiles(docs, monkeypatch, tile):
    """Maxima over several query and key tiles (ragged last ones), a row's own key skipped wherever its
    tile falls, equal float64 products; a lone row and itself: -inf."""
    monkeypatch.setattr(quality, "QUERY_TILE", tile)
    monkeypatch.setattr(quality, "KEY_TILE", tile // 2 + 3)
    ids = np.array([f"d{i:05d}" for i in range(len(docs))])
    queries, keys = docs[:650], docs[400:]
    assert np.abs(max_cosine(queries, keys) - reference(queries, keys)).max() < 1e-6
    skip = {q: q - 400 for q in range(400, 650)}
    got = max_cosine(queries, keys, query_ids=ids[:650], key_ids=ids[400:])
    assert np.abs(got - reference(queries, keys, skip)).max() < 1e-6
    assert max_cosine(docs[:1], docs[:1], query_ids=ids[:1], key_ids=ids[:1])[0] == -np.inf
    assert max_cosine(docs[:0], docs).shape == (0,) and (max_cosine(docs[:3], docs[:0]) == -np.inf).all()


def test_error_bound_holds_for_bfloat16_products(docs):
    """Every bfloat16 product of unit rows is within error_bound(d) of the exact cosine."""
    rng = np.random.default_rng(0)
    for X in (docs, unit(rng.standard_normal((1200, 384)))):
        exact = X.astype(np.float64) @ X.astype(np.float64).T
        bf = torch.mm(torch.from_numpy(X).bfloat16(), torch.from_numpy(X).bfloat16().T).double().numpy()
        assert np.abs(bf - exact).max() <= error_bound(X.shape[1])


def test_coverage_and_redundancy_maxima_equal_float_products(docs):
    queries, keys = docs[:700], docs[500:]
    assert np.abs(max_cosine_bf16(queries, keys) - reference(queries, keys)).max() < 1e-6
    # redundancy: the mixture rows against each other, a row's own key skipped
    own = np.arange(len(keys))
    got = max_cosine_bf16(keys, keys, own, own)
    assert np.abs(got - reference(keys, keys, {i: i for i in own})).max() < 1e-6


def test_near_copies_lone_rows_negative_bests_and_the_fallback(docs):
    rng = np.random.default_rng(1)
    copies = unit(docs[:300] + 1e-4 * rng.standard_normal((300, docs.shape[1])).astype(np.float32))
    keys = np.concatenate([docs[:300], copies])
    assert np.abs(max_cosine_bf16(docs[:400], keys) - reference(docs[:400], keys)).max() < 1e-6
    # one key, the row itself: nothing else to compare with
    assert max_cosine_bf16(docs[:1], docs[:1], np.array([0]), np.array([0]))[0] == -np.inf
    # every cosine negative: rows near one paragraph, keys near its opposite
    centre = docs[0]
    near = unit(centre + 0.05 * rng.standard_normal((200, docs.shape[1])).astype(np.float32))
    far = unit(-centre + 0.05 * rng.standard_normal((300, docs.shape[1])).astype(np.float32))
    got = max_cosine_bf16(near, far)
    assert (got < 0).all() and np.abs(got - reference(near, far)).max() < 1e-6
    # keys all about as close to every row (one direction and small noise): more candidates than
    # MAX_CANDIDATE_SHARE of the keys, so float32 products, the same maxima
    crowd = unit(centre + 0.002 * rng.standard_normal((2000, docs.shape[1])).astype(np.float32))
    queries = unit(centre + 0.01 * rng.standard_normal((64, docs.shape[1])).astype(np.float32))
    close = (torch.mm(torch.from_numpy(queries).bfloat16(), torch.from_numpy(crowd).bfloat16().T).float()
             >= 0.9).float().mean().item()
    assert close > MAX_CANDIDATE_SHARE
    assert np.abs(max_cosine_bf16(queries, crowd) - reference(queries, crowd)).max() < 1e-6
