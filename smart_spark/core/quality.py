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
#: Largest (query rows x key rows) cosine block held at once by :func:`max_cosine` (float32 entries).
BLOCK_ENTRIES = 1 << 24
#: Eigenvalues of K/n at or below this are zero (rounding of a rank-deficient kernel), skipped by Vendi.
ZERO_EIGENVALUE = 1e-12


def max_cosine(queries: np.ndarray, keys: np.ndarray, *, query_ids: np.ndarray | None = None,
               key_ids: np.ndarray | None = None) -> np.ndarray:
    """(q,) float64: each query row's largest dot product with a key row; -inf when there is none.

    ``queries`` (q, d) and ``keys`` (k, d) are unit rows (float32). With ``query_ids`` and ``key_ids``
    (q,) and (k,), a key whose id equals the query's is skipped ("another row"). Blocks of at most
    :data:`BLOCK_ENTRIES` products are held at once.
    """
    queries = np.asarray(queries, dtype=np.float32)
    keys = np.asarray(keys, dtype=np.float32)
    out = np.full(len(queries), -np.inf)
    if len(queries) == 0 or len(keys) == 0:
        return out
    same_q, same_k = (same_positions(query_ids, key_ids) if query_ids is not None and key_ids is not None
                      else (np.zeros(0, np.int64), np.zeros(0, np.int64)))
    step = max(1, BLOCK_ENTRIES // len(keys))
    for start in range(0, len(queries), step):
        block = queries[start:start + step] @ keys.T
        inside = (same_q >= start) & (same_q < start + step)
        block[same_q[inside] - start, same_k[inside]] = -np.inf
        out[start:start + step] = block.max(axis=1)
    return out


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
