"""``mapInArrow`` function: per-partition, per-task exact sums of L2-normalised embeddings.

Sums are kept in fixed point (``round(x * 2**32)`` as int64) so that adding partial sums is exact and
associative: the task means are bit-identical whatever the partitioning or row order. The scale leaves
room for 2**31 rows of one task before an int64 could overflow.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

FIXED_POINT_BITS = 32
SCALE = float(2**FIXED_POINT_BITS)


def task_sums_schema() -> str:
    """The Spark schema (DDL) of the rows :func:`partial_task_sums` yields."""
    return "task string, n long, s array<long>"


def fixed_point_rows(X: np.ndarray) -> np.ndarray:
    """(n, d) embeddings -> (n, d) int64 fixed-point values of the L2-normalised rows."""
    X = np.asarray(X, dtype=np.float64)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return np.rint(X / norms * SCALE).astype(np.int64)


def partial_task_sums(batches: Iterator[pa.RecordBatch], *, embedding_col: str = "embedding",
                      task_col: str = "task") -> Iterator[pa.RecordBatch]:
    """One output row per task seen in this partition: (task, rows, fixed-point sum of normalised rows)."""
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for batch in batches:
        if batch.num_rows == 0:
            continue
        tasks = batch.column(task_col).to_numpy(zero_copy_only=False)
        emb = batch.column(embedding_col)
        if isinstance(emb, pa.ChunkedArray):
            emb = emb.combine_chunks()
        dim = len(emb[0])
        X = emb.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
        fixed = fixed_point_rows(X)
        uniq, inverse = np.unique(tasks, return_inverse=True)
        for k, name in enumerate(uniq):
            part = fixed[inverse == k].sum(axis=0)
            if name in sums:
                sums[name] += part
            else:
                sums[name] = part
            counts[name] = counts.get(name, 0) + int((inverse == k).sum())
    if sums:
        names = sorted(sums)
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(names, type=pa.string()),
                pa.array([counts[n] for n in names], type=pa.int64()),
                pa.array([sums[n].tolist() for n in names], type=pa.list_(pa.int64())),
            ],
            names=["task", "n", "s"],
        )


def combine_task_sums(pdf: pd.DataFrame) -> pd.DataFrame:
    """``applyInPandas`` per task: add the partitions' partial rows (exact int64 sums)."""
    total = np.sum(np.stack(pdf["s"].to_numpy()), axis=0, dtype=np.int64)
    return pd.DataFrame({"task": [pdf["task"].iloc[0]], "n": [int(pdf["n"].sum())], "s": [total]})
