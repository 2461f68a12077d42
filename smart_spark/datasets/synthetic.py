"""Synthetic instruction tables with precomputed embeddings, for tests and the scaling benchmark.

Tasks fall into families (one centre each); a task's rows scatter around the task's own centre, which
sits near its family's, so both stages see cluster structure. Task sizes are skewed (Zipf-like), and
rows carry FLAN template types. Deterministic in ``seed``.
"""

from __future__ import annotations

import math

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


def bounded_task_sizes(num_rows: int, num_tasks: int, lo: int, hi: int, *, sigma: float = 2.0,
                       seed: int = 0) -> np.ndarray:
    """(num_tasks,) int64 sizes summing to num_rows, the smallest exactly ``lo`` and the largest exactly
    ``hi``: log-normal (log-sd ``sigma``) scaled to the total, clipped to [lo, hi] (a collection whose
    builders capped each task, like FLAN's). ValueError when no such sizes exist."""
    if not (num_tasks >= 2 and 1 <= lo <= hi and lo * num_tasks <= num_rows <= hi * num_tasks):
        raise ValueError(f"no {num_tasks} sizes in [{lo}, {hi}] sum to {num_rows}")
    rng = np.random.default_rng(seed)
    w = np.exp(sigma * rng.standard_normal(num_tasks))
    inner = num_rows - lo - hi  # the two end tasks are fixed
    scale_lo, scale_hi = 0.0, float(hi) / w.min()
    for _ in range(100):  # bisect the scale so the clipped sizes sum to the total
        scale = (scale_lo + scale_hi) / 2
        total = np.clip(np.floor(w[2:] * scale), lo, hi).sum()
        scale_lo, scale_hi = (scale, scale_hi) if total < inner else (scale_lo, scale)
    sizes = np.clip(np.floor(w[2:] * scale_lo), lo, hi).astype(np.int64)
    order = np.argsort(-w[2:], kind="stable")
    short = inner - int(sizes.sum())  # >= 0: the rows flooring lost go to the largest tasks below hi
    for i in order:
        if short <= 0:
            break
        if sizes[i] < hi:
            add = min(short, hi - int(sizes[i]))
            sizes[i] += add
            short -= add
    out = np.concatenate([[lo, hi], sizes])
    return out[rng.permutation(num_tasks)]


#: FLAN 2022 as SMART mixed it: 17.59M instances in 1,840 tasks.
FLAN_ROWS, FLAN_TASKS = 17_590_000, 1_840
#: Its long tail (Super-Natural Instructions' ~1,550 tasks, capped near 6,500 instances each) holds about
#: a quarter of the rows; the rest (Flan 2021, T0, CoT, dialog: ~290 tasks) reach a few hundred thousand.
FLAN_TAIL_TASKS, FLAN_TAIL_SHARE, FLAN_TAIL_CAP, FLAN_HEAD_SHARE_CAP = 1_550, 0.26, 6_500, 0.025


def flan_task_sizes(num_rows: int, num_tasks: int = FLAN_TASKS, *, seed: int = 0) -> np.ndarray:
    """(num_tasks,) int64 sizes shaped like FLAN 2022's, scaled to ``num_rows``: a tail of
    ``FLAN_TAIL_TASKS / FLAN_TASKS`` of the tasks holding :data:`FLAN_TAIL_SHARE` of the rows, log-normal
    from 8 rows to the (scaled) 6,500 cap, and a head of larger tasks, log-normal up to
    :data:`FLAN_HEAD_SHARE_CAP` of all rows (440,000 at full size: far above the default P of 20,000).
    Shuffled (deterministic in ``seed``)."""
    scale = num_rows / FLAN_ROWS
    tail_tasks = round(num_tasks * FLAN_TAIL_TASKS / FLAN_TASKS)
    tail_rows = round(num_rows * FLAN_TAIL_SHARE)
    tail = bounded_task_sizes(tail_rows, tail_tasks, 8, max(16, math.ceil(FLAN_TAIL_CAP * scale)),
                              sigma=1.0, seed=seed)
    head = bounded_task_sizes(num_rows - tail_rows, num_tasks - tail_tasks, max(8, math.ceil(FLAN_TAIL_CAP
                              * scale)), math.ceil(FLAN_HEAD_SHARE_CAP * num_rows), sigma=1.5, seed=seed + 1)
    sizes = np.concatenate([tail, head])
    return sizes[np.random.default_rng(seed).permutation(num_tasks)]


def synthetic_table(num_rows: int, num_tasks: int, *, dim: int = 384, families: int | None = None,
                    seed: int = 0, start: int = 0, stop: int | None = None,
                    sizes: np.ndarray | None = None) -> pa.Table:
    """Rows [start, stop) of the synthetic table: id, task, template_type, prompt, response, embedding.

    ``embedding`` is list<float32> (unnormalised); ids are ``"r<row>"`` zero-padded so they sort by row.
    ``sizes``: the tasks' row counts (default :func:`task_sizes`, Zipf-like).
    """
    stop = num_rows if stop is None else stop
    families = families or max(1, num_tasks // 20)
    rng = np.random.default_rng(seed)
    sizes = task_sizes(num_rows, num_tasks, seed=seed) if sizes is None else np.asarray(sizes)
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
                    chunk_rows: int = 100_000, sizes: np.ndarray | None = None) -> None:
    """Write the synthetic table as one Parquet file, ``chunk_rows`` rows at a time (bounded memory);
    ``sizes`` as in :func:`synthetic_table`."""
    writer = None
    try:
        for start in range(0, num_rows, chunk_rows):
            table = synthetic_table(num_rows, num_tasks, dim=dim, seed=seed, start=start,
                                    stop=min(num_rows, start + chunk_rows), sizes=sizes)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
