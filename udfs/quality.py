"""The quality stage's executor side (:mod:`smart_spark.spark.quality`): one ``mapInArrow`` over parts.

Each row arrives in one part with a ``role`` and flags; a part is either a *task part* (``role``
:data:`TASK`: some tasks' coverage candidates (``cov``) and all their mixture rows (``mix``)) or a
*whole part* (scope ``all``: role :data:`KEY`, a share of the mixture rows; role :data:`QUERY`, every
candidate of the coverage (``cov``) and redundancy (``red``) samples; role :data:`VENDI`, the Vendi
candidates, in one part only). Candidates are the rows whose h = xxhash64(id, seed) falls under a bound
that a few more rows than the sample wants fall under; a part keeps the rows of smallest (h, id) (a
task's samples, scope ``all``'s Vendi sample), or sends h on with each maximum so :func:`whole_means`
does (scope ``all``'s coverage and redundancy samples). Out of a task part come one figures row per
task; out of a whole part, per candidate its largest cosine to the part's keys (:func:`whole_means`
takes the maximum over parts).

Rows are sorted by id inside each scope first, so the same rows give the same matrices (and the same
float results) whatever partition they came from. Products above :data:`BF16_MIN_PRODUCTS` take the
bfloat16 first pass of :mod:`smart_spark.core.quality_bf16` where the CPU multiplies bfloat16 natively
(exact all the same).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from threadpoolctl import threadpool_limits

from smart_spark.core.greedy import normalize_rows
from smart_spark.core.quality import coverage_of, exact_mean, max_cosine, same_positions, vendi_score
from smart_spark.core.quality_bf16 import max_cosine_bf16
from smart_spark.embed.device import cpu_has_native_bf16

#: Roles of a row in its part.
TASK, KEY, QUERY, VENDI = 0, 1, 2, 3
#: (query rows x key rows) from which the bfloat16 first pass is used (where the CPU has it).
BF16_MIN_PRODUCTS = 1 << 20
INPUT_SCHEMA = ("part int, role int, task string, id string, h long, embedding array<float>, cov boolean, "
                "mix boolean, red boolean")
#: ``kind``: ``task`` (a task's figures, ``scope`` its name), ``max`` (a candidate row of scope ``all``'s
#: samples: ``coverage`` / ``redundancy`` its largest cosine to a (another) key of the part), ``vendi``
#: (scope ``all``'s Vendi score), ``short`` (a sample had fewer candidates than rows wanted: ``scope``
#: the task, or empty for scope ``all``'s Vendi sample; the driver widens the bounds and starts again).
PART_SCHEMA = ("kind string, scope string, id string, h long, coverage double, sample_rows long, "
               "redundancy double, redundancy_rows long, vendi double, vendi_rows long")


def part_figures(batches: Iterator[pa.RecordBatch], *, sample: int, vendi_rows: int,
                 wanted: Mapping[str, int], whole_vendi: int,
                 bf16_min_products: int = BF16_MIN_PRODUCTS) -> Iterator[pa.RecordBatch]:
    """A partition's rows (:data:`INPUT_SCHEMA`, one or more parts) -> :data:`PART_SCHEMA` rows.

    Samples are the rows of smallest (h, id): of a task's coverage candidates (``cov``) the first
    ``wanted[task]``; of its mixture rows the first ``sample`` (redundancy) and ``vendi_rows`` (Vendi);
    of scope ``all``'s Vendi candidates the first ``whole_vendi``."""
    batches = list(batches)
    if not batches:
        return
    table = pa.Table.from_batches(batches)
    maxima = functools.partial(_maxima, bf16_min_products=bf16_min_products)
    with threadpool_limits(1, user_api="blas"):  # one Spark task per core: one BLAS thread each
        parts = sorted(pc.unique(table.column("part")).to_pylist())
        for part in parts:  # one per partition, unless the engine hashes the labels otherwise
            rows = table if len(parts) == 1 else table.filter(pc.equal(table.column("part"), part))
            roles = rows.column("role").to_numpy()
            if (roles == TASK).all():
                out = _task_figures(rows, sample, vendi_rows, wanted)
            else:
                with _one_torch_thread():
                    out = _whole_maxima(rows, maxima, whole_vendi)
            if out:
                yield pa.RecordBatch.from_pylist(out, schema=_arrow_schema())


def whole_means(batches: Iterator[pa.RecordBatch], *, coverage_rows: int,
                redundancy_rows: int) -> Iterator[pa.RecordBatch]:
    """Scope ``all``'s candidates (the ``max`` rows of every whole part, all in one partition) -> one
    ``whole`` row: each candidate's maximum over the parts; the samples, the first ``coverage_rows`` /
    ``redundancy_rows`` candidates in (h, id) order; their means (summed exactly). A ``short`` row
    instead where a sample had fewer candidates."""
    batches = [b.select(["h", "id", "coverage", "redundancy"]) for b in batches]
    if not batches:  # no candidates at all (an empty input): nothing to average
        return
    maxima = (pa.Table.from_batches(batches).to_pandas()
              .groupby(["h", "id"])[["coverage", "redundancy"]].max().sort_index())
    cov = maxima["coverage"].dropna().to_numpy(dtype=np.float64)[:coverage_rows]
    red = maxima["redundancy"].dropna().to_numpy(dtype=np.float64)[:redundancy_rows]
    if len(cov) < coverage_rows or len(red) < redundancy_rows:
        row = {"kind": "short", "scope": ""}
    else:
        row = {"kind": "whole", "coverage": coverage_of(cov) if len(cov) else 0.0, "sample_rows": len(cov),
               "redundancy": exact_mean(red.tolist()) if redundancy_rows else None,
               "redundancy_rows": len(red)}
    yield pa.RecordBatch.from_pylist([row], schema=_arrow_schema())


def first(h: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
    """(len(h),) bool: the first ``k`` rows of ``mask`` in (h, position) order (rows sorted by id, so
    position order is id order)."""
    chosen = np.zeros(len(h), dtype=bool)
    where = np.flatnonzero(mask)
    chosen[where[np.lexsort((where, h[where]))[:k]]] = True
    return chosen


def _task_figures(rows: pa.Table, sample: int, vendi_rows: int, wanted: Mapping[str, int]) -> list[dict]:
    """One :data:`PART_SCHEMA` row per task of a task part (float32 products: inside one task the keys
    lie about as close to a row, so the bfloat16 pruning does not pay; measured on the bench data)."""
    keys_order = [("task", "ascending"), ("id", "ascending")]
    order = pc.sort_indices(rows.select(["task", "id"]), keys_order).to_numpy()
    tasks = rows.column("task").to_numpy(zero_copy_only=False)[order]
    ids = rows.column("id").to_numpy(zero_copy_only=False)[order]
    hs = rows.column("h").to_numpy()[order]
    X = _unit_rows(rows, order)
    candidates = rows.column("cov").to_numpy(zero_copy_only=False).astype(bool)[order]
    mixed = rows.column("mix").to_numpy(zero_copy_only=False).astype(bool)[order]
    starts = np.flatnonzero(np.r_[True, tasks[1:] != tasks[:-1]])
    out = []
    for a, b in zip(starts, np.r_[starts[1:], len(tasks)]):
        task, h, mix = tasks[a], hs[a:b], mixed[a:b]
        if candidates[a:b].sum() < wanted[task]:
            out.append({"kind": "short", "scope": task})
            continue
        cov = first(h, candidates[a:b], wanted[task])
        red, ven = first(h, mix, sample), first(h, mix, vendi_rows)
        Xt, keys, key_ids = X[a:b], X[a:b][mix], ids[a:b][mix]
        coverage = None
        if cov.any():  # a mixture row covers itself (cosine 1): products for the other rows only
            far = cov & ~mix
            coverage = coverage_of(np.r_[max_cosine(Xt[far], keys), np.ones(int((cov & mix).sum()))])
        redundancy = None
        if red.any() and mix.sum() >= 2:
            maxima = max_cosine(Xt[red], keys, query_ids=ids[a:b][red], key_ids=key_ids)
            redundancy = exact_mean(maxima.tolist())
        out.append({"kind": "task", "scope": task, "coverage": coverage, "sample_rows": int(cov.sum()),
                    "redundancy": redundancy,
                    "redundancy_rows": int(red.sum()) if redundancy is not None else 0,
                    "vendi": vendi_score(Xt[ven]) if ven.any() else None, "vendi_rows": int(ven.sum())})
    return out


def _whole_maxima(rows: pa.Table, maxima, whole_vendi: int) -> list[dict]:
    """A whole part's rows -> per query row its maxima and h (``max`` rows: :func:`whole_means` keeps the
    samples' rows), and the Vendi row if the part holds scope ``all``'s Vendi candidates.
    A query that is a mixture row covers itself: its coverage is 1 (cosine to itself) without products."""
    order = pc.sort_indices(rows.select(["id"]), [("id", "ascending")]).to_numpy()
    X = _unit_rows(rows, order)
    ids = rows.column("id").to_numpy(zero_copy_only=False)[order]
    hs = rows.column("h").to_numpy()[order]
    roles = rows.column("role").to_numpy()[order]
    flag = {c: rows.column(c).to_numpy(zero_copy_only=False).astype(bool)[order]
            for c in ("cov", "mix", "red")}
    key, query = roles == KEY, roles == QUERY
    keys, key_ids = X[key], ids[key]
    out = []
    if query.any():
        cov, red, mix = flag["cov"][query], flag["red"][query], flag["mix"][query]
        Q, q_ids, q_h = X[query], ids[query], hs[query]
        best = np.where(cov & mix, 1.0, np.nan)
        other = np.full(len(q_ids), np.nan)
        far = cov & ~mix
        best[far] = maxima(Q[far], keys)
        other[red] = maxima(Q[red], keys, q_ids[red], key_ids)
        out.extend({"kind": "max", "id": i, "h": int(hh), "coverage": None if np.isnan(c) else float(c),
                    "redundancy": None if np.isnan(r) else float(r)}
                   for i, hh, c, r in zip(q_ids, q_h, best, other))
    vendi = roles == VENDI
    if vendi.any():
        if vendi.sum() < whole_vendi:
            out.append({"kind": "short", "scope": ""})
        else:
            V = X[first(hs, vendi, whole_vendi)]
            out.append({"kind": "vendi", "vendi": vendi_score(V), "vendi_rows": len(V)})
    return out


def _maxima(queries: np.ndarray, keys: np.ndarray, query_ids: np.ndarray | None = None,
            key_ids: np.ndarray | None = None, *, bf16_min_products: int) -> np.ndarray:
    """Each query's largest cosine to a key (of another id when ids are given): bfloat16 first pass for
    large products on CPUs with native bfloat16, else float32 products."""
    if len(queries) * len(keys) >= bf16_min_products and len(keys) and _native_bf16():
        same = same_positions(query_ids, key_ids) if query_ids is not None else (None, None)
        return max_cosine_bf16(queries, keys, *same)
    return max_cosine(queries, keys, query_ids=query_ids, key_ids=key_ids)


@functools.cache
def _native_bf16() -> bool:
    return cpu_has_native_bf16()


def _unit_rows(rows: pa.Table, order: np.ndarray) -> np.ndarray:
    """The ``embedding`` column as (n, d) float32 unit rows, row i the ``order[i]``-th row of ``rows``
    (gathered in one copy, normalised in place in float32; rows that cannot be normalised go to
    :func:`normalize_rows`, which names them)."""
    if rows.num_rows == 0:
        return np.zeros((0, 0), dtype=np.float32)
    where = np.empty(len(order), dtype=np.int64)
    where[order] = np.arange(len(order))  # each input row's place in X
    blocks = [c.flatten().to_numpy(zero_copy_only=False).reshape(len(c), -1)
              for c in rows.column("embedding").chunks if len(c)]
    X = np.empty((rows.num_rows, blocks[0].shape[1]), dtype=np.float32)
    start = 0
    for block in blocks:
        X[where[start:start + len(block)]] = block
        start += len(block)
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    if not (np.isfinite(norms).all() and (norms > 0).all()):
        return normalize_rows(X)
    X /= norms[:, None]
    return X


@contextlib.contextmanager
def _one_torch_thread():
    """torch at one intra-op thread inside, where the bfloat16 pass will use it."""
    if not _native_bf16():
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@functools.cache
def _arrow_schema() -> pa.Schema:
    types = {"string": pa.string(), "double": pa.float64(), "long": pa.int64()}
    return pa.schema([(name, types[kind]) for name, kind in (c.split() for c in PART_SCHEMA.split(", "))])
