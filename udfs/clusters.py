"""``mapInArrow`` function: each row's nearest k-means centre, and its cosine to it.

The centres (K, d) travel with the function (broadcast by PySpark once the pickled closure passes
1 MiB). With unit rows x and centres c, the squared Euclidean distance is 1 - 2 x.c + |c|^2, so the
nearest centre is the argmax of 2 x.c - |c|^2: one (rows x K) matrix product per block.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import pyarrow as pa

from smart_spark.core.greedy import normalize_rows
from smart_spark.udfs.decontaminate import list_matrix

#: The Spark schema (DDL) of the rows :func:`assign_clusters` yields: one per input row.
ASSIGN_SCHEMA = "id string, parent string, cluster int, similarity double"
_ARROW_SCHEMA = pa.schema([("id", pa.string()), ("parent", pa.string()), ("cluster", pa.int32()),
                           ("similarity", pa.float64())])


def nearest_centres(X: np.ndarray, C: np.ndarray, *, block_rows: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Unit rows X (n, d), centres C (K, d) -> (nearest centre (n,) int32, cosine to it (n,) float64).
    Ties go to the lowest centre."""
    C64 = np.asarray(C, dtype=np.float64)
    sq = np.sum(C64 * C64, axis=1)
    norms = np.sqrt(np.where(sq > 0, sq, 1.0))
    Cf = C64.astype(np.float32)
    labels = np.empty(X.shape[0], dtype=np.int32)
    cos = np.empty(X.shape[0], dtype=np.float64)
    for i in range(0, X.shape[0], block_rows):
        dots = (X[i:i + block_rows] @ Cf.T).astype(np.float64)
        k = np.argmax(2.0 * dots - sq, axis=1)
        labels[i:i + len(k)] = k
        cos[i:i + len(k)] = dots[np.arange(len(k)), k] / norms[k]
    return labels, cos


def assign_clusters(batches: Iterator[pa.RecordBatch], *, centres: Mapping[str | None, np.ndarray],
                    embedding_col: str = "embedding", id_col: str = "id",
                    parent_col: str | None = None) -> Iterator[pa.RecordBatch]:
    """One row (id, parent, cluster, similarity) per input row.

    ``centres``: parent task -> its (K_t, d) centres (key None, and no ``parent_col``, for one clustering
    of all rows). ``cluster`` is the row of the nearest centre, ``similarity`` the cosine to it.
    """
    for batch in batches:
        n = batch.num_rows
        if n == 0:
            continue
        X = normalize_rows(list_matrix(batch.column(embedding_col)), zero_rows="keep")
        labels = np.zeros(n, dtype=np.int32)
        cos = np.zeros(n, dtype=np.float64)
        if parent_col is None:
            parents = np.array([None] * n, dtype=object)
            labels, cos = nearest_centres(X, centres[None])
        else:
            parents = np.asarray(batch.column(parent_col).to_pylist(), dtype=object)
            for parent in set(parents.tolist()):
                rows = np.flatnonzero(parents == parent)
                labels[rows], cos[rows] = nearest_centres(X[rows], centres[parent])
        yield pa.RecordBatch.from_arrays(
            [batch.column(id_col).cast(pa.string()), pa.array(parents.tolist(), type=pa.string()),
             pa.array(labels, type=pa.int32()), pa.array(cos, type=pa.float64())],
            schema=_ARROW_SCHEMA,
        )
