"""Synthetic instruction tables with precomputed embeddings, for tests and the scaling benchmark.

Tasks fall into families (one centre each); a task's rows scatter around the task's own centre, which
sits near its family's, so both stages see cluster structure. Task sizes are skewed (Zipf-like), and
rows carry FLAN template types. Deterministic in ``seed``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

TEMPLATE_TYPES = ("zs_opt", "zs_noopt", "fs_opt", "fs_noopt")


def task_sizes(num_rows: int, num_tasks: int, *, skew: float = 1.0, seed: int = 0) -> np.ndarray:
    """(num_tasks,) int64 sizes summing to num_rows, each >= 1, Zipf-like with exponent ``skew``."""
    if num_rows < num_tasks:
        raise ValueError(f"num_rows {num_rows} < num_tasks {num_tasks}")
    rng = np.random.default_rng(seed)
    w = 1.0 / np.arange(1, num_tasks + 1) ** skew
    w = w[rng.permutation(num_tasks)]
    sizes = np.floor(w / w.sum() * (num_rows - num_tasks)).astype(np.int64) + 1
    sizes[: num_rows - int(sizes.sum())] += 1
    return sizes


def synthetic_table(num_rows: int, num_tasks: int, *, dim: int = 384, families: int | None = None,
                    seed: int = 0, start: int = 0, stop: int | None = None) -> pa.Table:
    """Rows [start, stop) of the synthetic table: id, task, template_type, prompt, response, embedding.

    ``embedding`` is list<float32> (unnormalised); ids are ``"r<row>"`` zero-padded so they sort by row.
    """
    stop = num_rows if stop is None else stop
    families = families or max(1, num_tasks // 20)
    rng = np.random.default_rng(seed)
    sizes = task_sizes(num_rows, num_tasks, seed=seed)
    family_centres = rng.standard_normal((families, dim)).astype(np.float32)
    family_of = rng.integers(0, families, num_tasks)
    centres = family_centres[family_of] + 0.6 * rng.standard_normal((num_tasks, dim)).astype(np.float32)
    spread = rng.uniform(0.5, 1.5, num_tasks).astype(np.float32)
    task_of_row = np.repeat(np.arange(num_tasks), sizes)[start:stop]
    rows = np.arange(start, stop)
    row_rng = np.random.default_rng([seed, start])
    emb = centres[task_of_row] + spread[task_of_row, None] * row_rng.standard_normal(
        (len(rows), dim), dtype=np.float32)
    # zero-shot-only tasks (every 7th) and few-shot-only tasks (every 11th) as in FLAN
    tmpl = row_rng.integers(0, 4, len(rows))
    tmpl = np.where(task_of_row % 7 == 3, tmpl % 2, tmpl)
    tmpl = np.where(task_of_row % 11 == 5, 2 + tmpl % 2, tmpl)
    width = len(str(num_rows))
    ids = [f"r{r:0{width}d}" for r in rows]
    tasks = [f"task_{t:05d}" for t in task_of_row]
    return pa.table({
        "id": pa.array(ids, pa.string()),
        "task": pa.array(tasks, pa.string()),
        "template_type": pa.array(np.asarray(TEMPLATE_TYPES, dtype=object)[tmpl], pa.string()),
        "prompt": pa.array([f"instruction {r} of {t}" for r, t in zip(rows, tasks)], pa.string()),
        "response": pa.array([f"answer {r}" for r in rows], pa.string()),
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel()), dim).cast(
            pa.list_(pa.float32())),
    })


def write_synthetic(path: str, num_rows: int, num_tasks: int, *, dim: int = 384, seed: int = 0,
                    chunk_rows: int = 100_000) -> None:
    """Write the synthetic table as one Parquet file, ``chunk_rows`` rows at a time (bounded memory)."""
    writer = None
    try:
        for start in range(0, num_rows, chunk_rows):
            table = synthetic_table(num_rows, num_tasks, dim=dim, seed=seed, start=start,
                                    stop=min(num_rows, start + chunk_rows))
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
