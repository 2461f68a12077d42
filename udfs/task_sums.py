"""``mapInArrow`` functions: per-partition, per-task exact sums of L2-normalised embeddings, and the
per-partition counts of invalid embeddings (:func:`embedding_checks`).

Sums are kept in fixed point (``round(x * 2**32)`` as int64) so that adding partial sums is exact and
associative: the task means are bit-identical whatever the partitioning or row order. The scale leaves
room for 2**31 rows of one task before an int64 could overflow.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from smart_spark.core.greedy import normalize_rows

FIXED_POINT_BITS = 32
SCALE = float(2**FIXED_POINT_BITS)


def task_sums_schema() -> str:
    """The Spark schema (DDL) of the rows :func:`partial_task_sums` yields."""
    return "task string, n long, s array<long>"


def fixed_point_rows(X: np.ndarray) -> np.ndarray:
    """(n, d) embeddings -> (n, d) int64 fixed-point values of the L2-normalised rows."""
    return np.rint(normalize_rows(X, dtype=np.float64) * SCALE).astype(np.int64)


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
        order = np.argsort(inverse, kind="stable")
        per_task = np.bincount(inverse, minlength=uniq.size)
        starts = np.concatenate(([0], np.cumsum(per_task)[:-1]))
        parts = np.add.reduceat(fixed[order], starts, axis=0)  # exact int64 sums, one row per task
        for k, name in enumerate(uniq):
            if name in sums:
                sums[name] += parts[k]
            else:
                sums[name] = parts[k]
            counts[name] = counts.get(name, 0) + int(per_task[k])
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


def combine_partition_sums(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` after ``repartition("task")``: add up each task's partial rows (exact int64 sums);
    one output row per task of the partition."""
    schema = pa.schema([("task", pa.string()), ("n", pa.int64()), ("s", pa.list_(pa.int64()))])
    table = pa.Table.from_batches(list(batches), schema=schema)
    if table.num_rows == 0:
        return
    tasks = table.column("task").to_numpy()
    counts = table.column("n").to_numpy()
    s = table.column("s").combine_chunks()
    dim = len(s[0])
    S = s.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
    uniq, inverse = np.unique(tasks, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate(([0], np.cumsum(np.bincount(inverse, minlength=uniq.size))[:-1]))
    sums = np.add.reduceat(S[order], starts, axis=0)
    offsets = pa.array(np.arange(0, (uniq.size + 1) * dim, dim, dtype=np.int32))
    yield pa.RecordBatch.from_arrays(
        [
            pa.array(uniq.tolist(), type=pa.string()),
            pa.array(np.add.reduceat(counts[order], starts), type=pa.int64()),
            pa.ListArray.from_arrays(offsets, pa.array(sums.ravel(), type=pa.int64())),
        ],
        schema=schema,
    )


#: The Spark schema (DDL) of the one row per partition that :func:`embedding_checks` yields.
CHECKS_SCHEMA = ("rows long, null long, null_id string, nan long, nan_id string, zero long, "
                 "zero_id string, min_dim int, max_dim int")


def _min_id(ids: pa.Array, mask: np.ndarray) -> str | None:
    if not mask.any():
        return None
    import pyarrow.compute as pc

    return pc.min(pc.filter(ids, pa.array(mask))).as_py()


def embedding_checks(batches: Iterator[pa.RecordBatch], *, embedding_col: str = "embedding",
                     id_col: str = "id") -> Iterator[pa.RecordBatch]:
    """One row per partition: rows, and per problem the count of rows that have it and their smallest id.

    The problems, with Spark SQL's semantics (``smart_spark.spark.task_stats.validate_embeddings``):

    - ``null``: the array is null or empty;
    - ``nan``: a non-null array with a NaN, infinite or null element;
    - ``zero``: a non-null array whose elements are all non-null zeros (an empty array counts);

    ``min_dim`` / ``max_dim``: the smallest and largest length of the non-null arrays. Vectorised over
    the Arrow buffers: no per-row Python objects.
    """
    rows = 0
    counts = {"null": 0, "nan": 0, "zero": 0}
    first: dict[str, str | None] = {"null": None, "nan": None, "zero": None}
    lo = hi = None
    for batch in batches:
        n = batch.num_rows
        if n == 0:
            continue
        rows += n
        emb = batch.column(embedding_col)
        ids = batch.column(id_col)
        offsets = emb.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
        values = emb.values
        vals = values.to_numpy(zero_copy_only=False)
        elem_null = (values.is_null().to_numpy(zero_copy_only=False) if values.null_count
                     else np.zeros(len(values), dtype=bool))
        with np.errstate(invalid="ignore"):
            bad = elem_null | ~np.isfinite(vals)
            nonzero = elem_null | (vals != 0)
        bad_cum = np.concatenate(([0], np.cumsum(bad, dtype=np.int64)))
        nonzero_cum = np.concatenate(([0], np.cumsum(nonzero, dtype=np.int64)))
        start, end = offsets[:-1], offsets[1:]
        lengths = end - start
        row_null = (emb.is_null().to_numpy(zero_copy_only=False) if emb.null_count
                    else np.zeros(n, dtype=bool))
        masks = {
            "null": row_null | (lengths == 0),
            "nan": ~row_null & (bad_cum[end] - bad_cum[start] > 0),
            "zero": ~row_null & (nonzero_cum[end] - nonzero_cum[start] == 0),
        }
        for name, mask in masks.items():
            counts[name] += int(mask.sum())
            found = _min_id(ids, mask)
            if found is not None and (first[name] is None or found < first[name]):
                first[name] = found
        sizes = lengths[~row_null]
        if sizes.size:
            lo = int(sizes.min()) if lo is None else min(lo, int(sizes.min()))
            hi = int(sizes.max()) if hi is None else max(hi, int(sizes.max()))
    yield pa.RecordBatch.from_pylist(
        [{"rows": rows, "null": counts["null"], "null_id": first["null"], "nan": counts["nan"],
          "nan_id": first["nan"], "zero": counts["zero"], "zero_id": first["zero"], "min_dim": lo,
          "max_dim": hi}],
        schema=pa.schema([("rows", pa.int64()), ("null", pa.int64()), ("null_id", pa.string()),
                          ("nan", pa.int64()), ("nan_id", pa.string()), ("zero", pa.int64()),
                          ("zero_id", pa.string()), ("min_dim", pa.int32()), ("max_dim", pa.int32())]),
    )
