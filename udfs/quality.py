"""pandas functions of the quality stage (:mod:`smart_spark.spark.quality`), run on the executors.

Rows arrive with an ``embedding`` (list of floats) and flags saying what each row is for: ``cov`` (in
the coverage sample of its scope), ``mix`` (a mixture row), ``red`` (in the redundancy sample), ``ven``
(in the Vendi sample). Every function sorts its rows by id first, so the same rows give the same
matrices (and the same float results) whatever partition they came from.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from smart_spark.core.greedy import normalize_rows
from smart_spark.core.quality import coverage_of, exact_mean, max_cosine, vendi_score

SCOPE_SCHEMA = ("whole boolean, scope string, coverage double, sample_rows long, redundancy double, "
                "redundancy_rows long, vendi double, vendi_rows long")
BLOCK_SCHEMA = ("block int, ids array<string>, cov array<boolean>, red array<boolean>, vectors binary, "
                "dim int")
MAXIMA_SCHEMA = "id string, cov double, red double"


def unit_matrix(pdf: pd.DataFrame) -> np.ndarray:
    """The ``embedding`` column of ``pdf`` as (n, d) float32 unit rows."""
    if len(pdf) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    return normalize_rows(np.stack(pdf["embedding"].to_numpy()))


def scope_figures(pdf: pd.DataFrame) -> dict:
    """One scope's rows (``whole``: scope ``all``, else the task ``scope``; ``id``, ``embedding``, flags
    ``cov``, ``mix``, ``red``, ``ven``) -> its :data:`SCOPE_SCHEMA` row as a dict.

    coverage: mean of max(0, largest cosine to a ``mix`` row) over the ``cov`` rows (0 with no mixture
    row); redundancy: mean of the largest cosine to another ``mix`` row over the ``red`` rows (null below
    two mixture rows); Vendi of the ``ven`` rows (null without one).
    """
    pdf = pdf.sort_values("id", kind="stable").reset_index(drop=True)
    X = unit_matrix(pdf)
    ids = pdf["id"].to_numpy()
    cov, mix, red, ven = (pdf[c].to_numpy(dtype=bool) for c in ("cov", "mix", "red", "ven"))
    keys, key_ids = X[mix] if len(X) else X, ids[mix]
    coverage = coverage_of(max_cosine(X[cov], keys)) if cov.any() else None
    redundancy = None
    if red.any() and mix.sum() >= 2:
        redundancy = exact_mean(max_cosine(X[red], keys, query_ids=ids[red], key_ids=key_ids).tolist())
    vendi = vendi_score(X[ven]) if ven.any() else None
    return {
        "whole": bool(pdf["whole"].iloc[0]), "scope": pdf["scope"].iloc[0],
        "coverage": coverage, "sample_rows": int(cov.sum()),
        "redundancy": redundancy, "redundancy_rows": int(red.sum()) if redundancy is not None else 0,
        "vendi": vendi, "vendi_rows": int(ven.sum()),
    }


def bucket_figures(pdf: pd.DataFrame) -> pd.DataFrame:
    """Several scopes' rows (a bucket: one ``applyInPandas`` call, not one per task) -> one
    :func:`scope_figures` row per (``whole``, ``scope``)."""
    with threadpool_limits(1, user_api="blas"):  # one Spark task per core: one BLAS thread each
        rows = [scope_figures(group) for _, group in pdf.groupby(["whole", "scope"], sort=True)]
    return pd.DataFrame(rows, columns=[c.split()[0] for c in SCOPE_SCHEMA.split(", ")])


def pack_block(pdf: pd.DataFrame) -> pd.DataFrame:
    """One block's rows (``block``, ``id``, ``embedding``, ``cov``, ``red``) -> one :data:`BLOCK_SCHEMA`
    row: ids and flags sorted by id, the unit vectors as float32 bytes (n x dim, row-major)."""
    pdf = pdf.sort_values("id", kind="stable").reset_index(drop=True)
    X = unit_matrix(pdf)
    return pd.DataFrame([{
        "block": int(pdf["block"].iloc[0]), "ids": pdf["id"].tolist(),
        "cov": pdf["cov"].astype(bool).tolist(), "red": pdf["red"].astype(bool).tolist(),
        "vectors": X.tobytes(), "dim": int(X.shape[1]),
    }])


def block_maxima(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Pairs of blocks (query ``q_*`` and key ``k_*`` columns of :data:`BLOCK_SCHEMA`) -> per query row of
    the pair: ``cov``, the largest cosine to a key row (for rows in the coverage sample), and ``red``,
    the largest to a key row of another id (for rows in the redundancy sample); null otherwise.

    The maximum over all key blocks is taken by Spark afterwards (``max`` is exact in any order)."""
    for pdf in batches:
        with threadpool_limits(1, user_api="blas"):  # one Spark task per core: one BLAS thread each
            parts = [_pair_maxima(row) for row in pdf.itertuples(index=False)]
        if parts:
            yield pd.concat(parts, ignore_index=True)


def _pair_maxima(row: tuple) -> pd.DataFrame:
    """:func:`block_maxima` of one (query block, key block) pair."""
    queries = np.frombuffer(row.q_vectors, dtype=np.float32).reshape(len(row.q_ids), row.q_dim)
    keys = np.frombuffer(row.k_vectors, dtype=np.float32).reshape(len(row.k_ids), row.k_dim)
    q_ids, k_ids = np.asarray(row.q_ids, dtype=object), np.asarray(row.k_ids, dtype=object)
    cov, red = np.asarray(row.q_cov, dtype=bool), np.asarray(row.q_red, dtype=bool)
    best = np.full(len(q_ids), np.nan)
    other = np.full(len(q_ids), np.nan)
    if cov.any():
        best[cov] = max_cosine(queries[cov], keys)
    if red.any():
        other[red] = max_cosine(queries[red], keys, query_ids=q_ids[red], key_ids=k_ids)
    return pd.DataFrame({"id": q_ids, "cov": best, "red": other})
