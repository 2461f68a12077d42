"""What a mixture covers of its collection, without training a model: the figures of ``mixture_quality``.

All three work on L2-normalised rows, so a dot product is a cosine:

* coverage: the mean, over input rows, of max(0, the largest cosine to a mixture row) (facility location
  over the collection, per row);
* redundancy: the mean, over mixture rows, of the largest cosine to another mixture row;
* Vendi score (Friedman and Dieng, 2023): exp of the entropy of the eigenvalues of K/n, K the cosine
  kernel of the n mixture rows; between 1 (all rows alike) and n (all orthogonal).

The Spark side (:mod:`smart_spark.spark.quality`) feeds blocks of rows to :func:`max_cosine` on the
executors and averages the per-row maxima with :func:`exact_mean`, so the figures do not depend on how
the rows were partitioned.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

#: Defaults of ``--quality-sample`` and ``--quality-vendi-rows``; the largest Vendi sample allowed.
SAMPLE_ROWS = 20_000
VENDI_ROWS = 2_000
MAX_VENDI_ROWS = 20_000
#: Quality is measured by default on inputs of at most this many rows.
DEFAULT_MAX_INPUT_ROWS = 10_000_000
#: Query rows x key rows of one product tile of :func:`max_cosine` (4 MiB of float32: the tile stays in
#: cache while its row maxima are taken, where a (rows x every key) block went out to memory and back;
#: 11% faster with both cores busy, measured on 50,000 keys).
QUERY_TILE = KEY_TILE = 1024
#: Eigenvalues of K/n at or below this are zero (rounding of a rank-deficient kernel), skipped by Vendi.
ZERO_EIGENVALUE = 1e-12


def max_cosine(queries: np.ndarray, keys: np.ndarray, *, query_ids: np.ndarray | None = None,
               key_ids: np.ndarray | None = None) -> np.ndarray:
    """(q,) float64: each query row's largest dot product with a key row; -inf when there is none.

    ``queries`` (q, d) and ``keys`` (k, d) are unit rows (float32). With ``query_ids`` and ``key_ids``
    (q,) and (k,), a key whose id equals the query's is skipped ("another row"). Products are taken in
    tiles of :data:`QUERY_TILE` x :data:`KEY_TILE`, each tile's row maxima folded into the result.
    """
    queries = np.asarray(queries, dtype=np.float32)
    keys = np.asarray(keys, dtype=np.float32)
    out = np.full(len(queries), -np.inf, dtype=np.float32)
    if len(queries) == 0 or len(keys) == 0:
        return out.astype(np.float64)
    same_q, same_k = (same_positions(query_ids, key_ids) if query_ids is not None and key_ids is not None
                      else (np.zeros(0, np.int64), np.zeros(0, np.int64)))
    tile = np.empty((min(QUERY_TILE, len(queries)), min(KEY_TILE, len(keys))), dtype=np.float32)
    for q0 in range(0, len(queries), QUERY_TILE):
        rows = queries[q0:q0 + QUERY_TILE]
        best = out[q0:q0 + QUERY_TILE]
        mine = (same_q >= q0) & (same_q < q0 + len(rows))
        pair_q, pair_k = same_q[mine] - q0, same_k[mine]
        for k0 in range(0, len(keys), KEY_TILE):
            block = tile[:len(rows), :min(KEY_TILE, len(keys) - k0)]
            np.matmul(rows, keys[k0:k0 + KEY_TILE].T, out=block)
            inside = (pair_k >= k0) & (pair_k < k0 + block.shape[1])
            block[pair_q[inside], pair_k[inside] - k0] = -np.inf
            np.maximum(best, block.max(axis=1), out=best)
    return out.astype(np.float64)


def same_positions(query_ids: np.ndarray, key_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(query positions, key positions) of the pairs whose ids are equal (ids unique on each side)."""
    where = {key: j for j, key in enumerate(np.asarray(key_ids).tolist())}
    pairs = [(i, where[q]) for i, q in enumerate(np.asarray(query_ids).tolist()) if q in where]
    if not pairs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    positions = np.asarray(pairs, dtype=np.int64)
    return positions[:, 0], positions[:, 1]


def exact_mean(values: Iterable[float]) -> float | None:
    """The mean of ``values``, summed exactly (``math.fsum``: the same in any order); None if empty."""
    values = list(values)
    return math.fsum(values) / len(values) if values else None


def coverage_of(maxima: np.ndarray) -> float | None:
    """Mean of max(0, m) over the per-row largest cosines ``maxima`` (-inf: no mixture row, counts 0)."""
    return exact_mean(np.maximum(np.asarray(maxima, dtype=np.float64), 0.0).tolist())


def vendi_score(X: np.ndarray) -> float | None:
    """exp(-sum lambda log lambda) over the nonzero eigenvalues lambda of K/n, K = X X^T, for unit rows
    ``X`` (n, d); None for n = 0.

    The nonzero eigenvalues of X X^T equal those of X^T X, so the smaller of the two (n x n or d x d)
    is decomposed, in float64.
    """
    X = np.asarray(X, dtype=np.float64)
    n = len(X)
    if n == 0:
        return None
    gram = X @ X.T if n <= X.shape[1] else X.T @ X
    lam = np.linalg.eigvalsh(gram / n)
    lam = lam[lam > ZERO_EIGENVALUE]
    return float(np.exp(-np.sum(lam * np.log(lam))))
