"""``mapInArrow`` function: each instance's most similar evaluation prompt, kept when it is a match.

The evaluation embeddings (m, d) travel with the function (PySpark broadcasts a function's pickled
closure once it is larger than ``spark.broadcast.UDFCompressionThreshold``-sized commands, 1 MiB by
default), so every task holds them once and compares its rows in blocked matrix products: no instance
ever leaves its executor except the matches. Exact copies are matched by hash, whatever the threshold.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import pyarrow as pa

from smart_spark.core.greedy import normalize_rows

#: The Spark schema (DDL) of the rows :func:`nearest_eval` yields: one per matched instance.
MATCH_SCHEMA = "id string, eval_id string, similarity double, match string"
_ARROW_SCHEMA = pa.schema([("id", pa.string()), ("eval_id", pa.string()), ("similarity", pa.float64()),
                           ("match", pa.string())])


def list_matrix(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An Arrow ``list<float>`` column of equal-length rows as an (n, d) float32 matrix."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    n = len(column)
    if n == 0:
        return np.zeros((0, 0), dtype=np.float32)
    start = column.offsets[0].as_py()
    end = column.offsets[n].as_py()
    flat = column.values.slice(start, end - start).to_numpy(zero_copy_only=False)
    return np.asarray(flat, dtype=np.float32).reshape(n, -1)


def best_matches(X: np.ndarray, E: np.ndarray, *, block_rows: int = 2048,
                 block_evals: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """For unit rows X (n, d) and unit evaluation rows E (m, d): (best cosine (n,) float64, its row in E
    (n,) int64), in blocks of ``block_rows`` x ``block_evals`` (at most that many floats at once).
    Ties go to the lowest row of E."""
    n = X.shape[0]
    best = np.full(n, -np.inf)
    arg = np.zeros(n, dtype=np.int64)
    for i in range(0, n, block_rows):
        xb = X[i:i + block_rows]
        for j in range(0, E.shape[0], block_evals):
            s = xb @ E[j:j + block_evals].T
            k = np.argmax(s, axis=1)
            v = s[np.arange(len(k)), k].astype(np.float64)
            better = v > best[i:i + len(k)]
            best[i:i + len(k)][better] = v[better]
            arg[i:i + len(k)][better] = k[better] + j
    return best, arg


def nearest_eval(batches: Iterator[pa.RecordBatch], *, evals: np.ndarray, eval_ids: list[str],
                 eval_keys: Mapping[str, int], threshold: float, embedding_col: str = "embedding",
                 id_col: str = "id", key_col: str | None = None) -> Iterator[pa.RecordBatch]:
    """One row (id, eval_id, similarity, match) per instance that matches an evaluation prompt.

    ``evals``: (m, d) unit rows; ``eval_ids``: their ids; ``eval_keys``: normalised-text hash -> row of
    ``evals`` (exact copies). ``match`` is ``exact`` for a hash match (the similarity is then the cosine
    to that prompt), else ``semantic`` (cosine >= ``threshold`` to the most similar prompt).
    """
    for batch in batches:
        if batch.num_rows == 0:
            continue
        X = normalize_rows(list_matrix(batch.column(embedding_col)), zero_rows="keep")
        best, arg = best_matches(X, evals)
        exact = np.zeros(batch.num_rows, dtype=bool)
        if key_col is not None and eval_keys:
            keys = batch.column(key_col).to_pylist()
            for r, key in enumerate(keys):
                hit = eval_keys.get(key) if key is not None else None
                if hit is not None:
                    exact[r] = True
                    arg[r] = hit
                    best[r] = float(X[r] @ evals[hit])
        hits = np.flatnonzero(exact | (best >= threshold))
        if hits.size == 0:
            continue
        ids = batch.column(id_col).take(pa.array(hits))
        yield pa.RecordBatch.from_arrays(
            [ids.cast(pa.string()), pa.array([eval_ids[a] for a in arg[hits]], type=pa.string()),
             pa.array(best[hits], type=pa.float64()),
             pa.array(np.where(exact[hits], "exact", "semantic").tolist(), type=pa.string())],
            schema=_ARROW_SCHEMA,
        )
