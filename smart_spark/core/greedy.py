"""The exact greedy (docs/algorithm.md) for facility location, graph cut and log-determinant.

Every function takes embeddings ``X`` of shape (n, d) and works on the cosine kernel
``K_ij = x_i . x_j`` of the L2-normalised rows, with the diagonal exactly 1 and nothing shifted or
clipped. The ground set is always every row of ``X``.

- ``fl``: f(S) = sum_i max(0, max_{s in S} K_is); gain(j | S) = sum_i max(0, K_ij - m_i) with the
  running best m_i starting at 0.
- ``gc``: f(S) = sum_{j in S} c_j - lambda * sum_{j,k in S} K_jk with c_j = sum_i K_ij;
  gain(j | S) = c_j - 2 lambda sum_{s in S} K_js - lambda.
- ``logdet``: f(S) = ln det(K_SS + lambda I); gain(j | S) = ln of the Schur complement of j given S.

The greedy runs exactly ``budget`` steps (it never stops on zero or negative gains); at every step it
takes the largest exact gain, ties (equal up to float64 round-off) going to the smallest row position.
No lazy heap: FL keeps every gain current; GC and LogDet keep a shortlist's gains current and bound
all others, so every pick is the exact greedy pick:

- ``fl``: one float32 n x n kernel (upper-triangle blocks with BLAS, mirrored, so it is exactly
  symmetric); after a pick only the rows whose running best rose change any gain, and every gain is
  updated by their contribution, in float64.
- ``gc``: no kernel (O(nd) memory); gains are computed from the running sum z of the picked rows,
  every gain at a refresh, a shortlist's in between (a Cauchy-Schwarz bound keeps it exact).
- ``logdet``: no kernel; the fast greedy MAP algorithm of Chen et al. (2018) (residual variances and
  incremental Cholesky rows), with the same shortlist scheme, O(n (d + k)) memory.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from smart_spark.core.ties import TIE_RTOL
from smart_spark.errors import SmartError

try:  # optional: limits BLAS threads for the many small products of the GC and LogDet loops
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - then BLAS keeps its own thread count
    threadpool_limits = None

FUNCTIONS = ("fl", "gc", "logdet")

_KERNEL_ROWS = 1024  # rows per BLAS call when building the FL kernel
_MIRROR_TILE = 256  # tile edge for mirroring the upper triangle (cache-friendly transposes)
_UPDATE_ROWS = 64  # changed rows per vectorised FL gain update
_PARALLEL_MIN = 1 << 18  # FL updates touching fewer kernel entries than this stay on one thread
_MAX_THREADS = 4  # most threads for the FL updates (they are memory-bound)
_SHORTLIST_MIN = 256  # GC, LogDet: fewest candidates whose gains are kept between refreshes
_SHORTLIST_SHARE = 16  # GC, LogDet: first shortlist size n / this (then it adapts)
_GC_SWITCH_REFRESHES = 4  # GC: column mode once this many refreshes came ...
_GC_SWITCH_STEPS = 16  # ... fewer than this many steps apart on average
_GC_BATCH_MIN = 32  # GC column mode: first and smallest batch of kernel columns
_GC_CACHE_BYTES = 64 << 20  # GC column mode: most memory for cached kernel columns
_GC_RESYNC = 64  # GC column mode: more contenders (float32 error bounds) than this and than ...
_GC_RESYNC_SHARE = 16  # ... n / this -> every gain exactly again
_GC_THREADED_PRODUCT = 1 << 27  # GC column mode: multiply-adds from which a column batch uses threads
_GC_COLUMNS_MIN_DIM = 64  # GC: no column mode below this d (a refresh, O(nd), is cheap there)
_LOGDET_FEATURES_MIN_RATIO = 4  # LogDet in feature space when n >= this * d
_OBJECTIVE_ROWS = 2048  # ground-set rows per block when evaluating FL
_NORM2_MIN = 1e-200  # rows whose squared norm is below this (or overflows) are scaled first


def normalize_rows(X: np.ndarray, *, zero_rows: str = "error", dtype: type = np.float32) -> np.ndarray:
    """L2-normalised copy of ``X`` (n, d), computed in float64, returned as ``dtype`` (float32 or float64).

    ``zero_rows``: ``"error"`` (the greedy's kernels need unit rows) raises SmartError naming the first row
    that is all zeros; ``"keep"`` leaves such rows zero (cosine 0 to everything). Raises SmartError when
    ``X`` is not 2-D or not numeric, naming the first row that holds a NaN or infinite value.
    """
    if zero_rows not in ("error", "keep"):
        raise ValueError(f"zero_rows must be 'error' or 'keep', got {zero_rows!r}")
    X = np.asarray(X)
    if X.ndim != 2:
        raise SmartError(f"embeddings must be a 2-D array (rows x dimensions), got shape {X.shape}")
    if X.dtype == np.bool_ or not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
        raise SmartError(f"embeddings must be numeric, got dtype {X.dtype}")
    X64 = X.astype(np.float64)
    norm2 = np.einsum("ij,ij->i", X64, X64)
    scaled = ~((norm2 > _NORM2_MIN) & (norm2 < np.inf))  # NaN, inf, zero, overflow or underflow
    if scaled.any():  # those rows only (every row's result depends on that row alone)
        rows = np.flatnonzero(scaled)
        sub = X64[rows]
        finite = np.isfinite(sub).all(axis=1)
        if not finite.all():
            raise SmartError(f"embedding row {int(rows[np.argmin(finite)])} has a NaN or infinite value")
        scale = np.abs(sub).max(axis=1, initial=0.0)  # scaling first: no overflow for huge entries
        zero = scale == 0
        if zero.any() and zero_rows == "error":
            raise SmartError(f"embedding row {int(rows[np.argmax(zero)])} is all zeros and cannot be "
                             "normalised")
        sub /= np.where(zero, 1.0, scale)[:, None]
        X64[rows] = sub
        norm2[rows] = np.where(zero, 1.0, np.einsum("ij,ij->i", sub, sub))
    X64 /= np.sqrt(norm2)[:, None]
    return X64.astype(dtype, copy=False)


def _unit64(Xn: np.ndarray) -> np.ndarray:
    """float64 copy of unit rows ``Xn`` (n, d), renormalised in float64 so that K_jj = 1 to round-off."""
    X64 = Xn.astype(np.float64)
    X64 /= np.sqrt(np.einsum("ij,ij->i", X64, X64))[:, None]
    return X64


def check_fn(fn: object) -> str:
    if not isinstance(fn, str) or fn not in FUNCTIONS:
        raise SmartError(f"unknown set function {fn!r}: expected one of {', '.join(FUNCTIONS)}")
    return fn


def check_budget(budget: object, n: int) -> int:
    if isinstance(budget, (bool, np.bool_)) or not isinstance(budget, (int, np.integer)):
        raise SmartError(f"budget must be an integer, got {budget!r}")
    if not 0 <= budget <= n:
        raise SmartError(f"budget {int(budget)} is outside 0..{n} (the number of rows)")
    return int(budget)


def check_lambdas(gc_lambda: float, logdet_lambda: float) -> tuple[float, float]:
    gc_lambda, logdet_lambda = float(gc_lambda), float(logdet_lambda)
    if not math.isfinite(gc_lambda):
        raise SmartError(f"gc_lambda must be finite, got {gc_lambda}")
    if not (math.isfinite(logdet_lambda) and logdet_lambda > 0):
        raise SmartError(f"logdet_lambda must be positive and finite, got {logdet_lambda}")
    return gc_lambda, logdet_lambda


def _one_blas_thread() -> contextlib.AbstractContextManager:
    """Run small BLAS products on one thread: with more, an oversubscribed machine (a busy host, a Spark
    executor with a Python worker per core) makes each small product many times slower."""
    return threadpool_limits(1, user_api="blas") if threadpool_limits else contextlib.nullcontext()


def _blas_threads() -> contextlib.AbstractContextManager:
    """Let large BLAS-3 products (GC's column batches) use the threads the FL updates use."""
    if threadpool_limits is None:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(_fl_threads(), user_api="blas")


def _argmax_first(g: np.ndarray, tol: float) -> int:
    """Smallest position whose value is within ``tol`` of the maximum of ``g`` (n,)."""
    top = g.max()
    return int(np.argmax(g >= top - tol))


def _resized(size: int, lasted: int, n: int) -> int:
    """GC, LogDet: the next shortlist's size after one that lasted ``lasted`` steps: doubled (at most n)
    below 4 steps, halved (not below ``_SHORTLIST_MIN``) above 32."""
    if lasted < 4:
        return min(n, 2 * size)
    if lasted > 32:
        return max(min(n, _SHORTLIST_MIN), size // 2)
    return size


def _shortlist(scores: np.ndarray, size: int, keep: int | None = None) -> tuple[np.ndarray, float]:
    """GC, LogDet: the sorted positions of the ``size`` best ``scores`` (n,) (with ``keep``), and the
    best score left out (-inf when every live row, score > -inf, is in)."""
    live = scores > -np.inf
    if np.count_nonzero(live) <= size:
        return np.flatnonzero(live), -np.inf
    split = np.argpartition(-scores, size)
    short = np.sort(split[:size]) if keep is None else np.union1d(split[:size], [keep])
    rest = scores.copy()
    rest[short] = -np.inf
    return short, float(rest.max())


def greedy_select(
    X: np.ndarray, fn: str, budget: int, *, gc_lambda: float = 0.4, logdet_lambda: float = 1.0,
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Exact greedy maximisation of ``fn`` over the rows of ``X`` for ``budget`` steps.

    Args:
        X: (n, d) embeddings, any float dtype; rows are L2-normalised here.
        fn: ``"fl"``, ``"gc"`` or ``"logdet"``.
        budget: number of picks, 0..n; exactly this many steps run.
        gc_lambda: graph-cut lambda. logdet_lambda: log-determinant ridge (> 0).
        device: ``cpu`` (numpy), or a torch device (``cuda:0``) for ``fl``: the same algorithm there
            (:mod:`smart_spark.core.greedy_torch`, the kernel on the device); GC and LogDet always run here.

    Returns:
        (order, gains): (budget,) int64 row positions in pick order and (budget,) float64 marginal gains.

    Memory: ``fl`` holds one float32 n x n kernel (1.6 GB at n = 20,000); ``gc`` O(nd);
    ``logdet`` O(n (d + budget)) float64. Threads: the FL kernel uses BLAS's threads and its updates
    up to 4 threads; GC and LogDet run BLAS on one thread (via threadpoolctl when installed).
    """
    fn = check_fn(fn)
    gc_lambda, logdet_lambda = check_lambdas(gc_lambda, logdet_lambda)
    Xn = normalize_rows(X)
    budget = check_budget(budget, Xn.shape[0])
    return greedy_unit(Xn, fn, budget, gc_lambda=gc_lambda, logdet_lambda=logdet_lambda, device=device)


def greedy_unit(
    Xn: np.ndarray, fn: str, budget: int, *, gc_lambda: float, logdet_lambda: float, device: str = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """greedy_select on already normalised float32 rows ``Xn`` (n, d) with validated arguments."""
    if budget == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    if fn == "fl" and device != "cpu":
        from smart_spark.core.greedy_torch import fl_greedy_torch

        return fl_greedy_torch(Xn, budget, device)
    if fn == "fl":
        return _greedy_fl(Xn, budget)
    with _one_blas_thread():
        if fn == "gc":
            return _greedy_gc(Xn, budget, gc_lambda)
        return _greedy_logdet(Xn, budget, logdet_lambda)


# ---------------------------------------------------------------------------------------------------
# facility location


def fl_kernel(Xn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine kernel of unit rows ``Xn`` (n, d) and every item's first FL gain.

    Returns (K, g0): K (n, n) float32, exactly symmetric with a unit diagonal (the upper-triangle
    blocks come from BLAS, the lower triangle is their mirror); g0 (n,) float64, g0_j = sum_i max(0, K_ij).
    Each block of ``_KERNEL_ROWS`` rows is one single-threaded BLAS call, the blocks spread over our own
    threads: OpenBLAS's multithreaded products round differently with its thread count, so K, and the
    gains, would depend on the cores of the machine or executor. The mirror runs in threads, tile-rows
    dealt round-robin, each with its own g0 accumulator.
    """
    n = Xn.shape[0]
    K = np.empty((n, n), dtype=np.float32)
    blocks = list(range(0, n, _KERNEL_ROWS))
    threads = min(_fl_threads(), len(blocks)) if n * n >= _PARALLEL_MIN else 1

    def upper(a: int) -> None:
        b = min(n, a + _KERNEL_ROWS)
        np.matmul(Xn[a:b], Xn[a:].T, out=K[a:b, a:])

    with _one_blas_thread():
        if threads > 1:
            with ThreadPoolExecutor(threads) as pool:
                for done in [pool.submit(upper, a) for a in blocks]:  # the largest blocks first
                    done.result()
        else:
            for a in blocks:
                upper(a)
    starts = list(range(0, n, _MIRROR_TILE))
    threads = min(_fl_threads(), len(starts)) if n * n >= _PARALLEL_MIN else 1
    partial = np.zeros((max(threads, 1), n), dtype=np.float64)

    def mirror(k: int) -> None:
        g0 = partial[k]
        for a in starts[k::threads]:
            b = min(n, a + _MIRROR_TILE)
            diag = K[a:b, a:b]
            lower = np.tril_indices(b - a, -1)
            diag[lower] = diag.T[lower]
            np.fill_diagonal(diag, 1.0)
            g0[a:b] += np.maximum(diag, 0.0).sum(axis=1, dtype=np.float64)
            for c in range(b, n, _MIRROR_TILE):
                e = min(n, c + _MIRROR_TILE)
                tile = K[a:b, c:e]
                K[c:e, a:b] = tile.T
                positive = np.maximum(tile, 0.0)  # while the tile is in cache: its share of g0, both ways
                g0[a:b] += positive.sum(axis=1, dtype=np.float64)
                g0[c:e] += positive.sum(axis=0, dtype=np.float64)

    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            for done in [pool.submit(mirror, k) for k in range(threads)]:
                done.result()
    elif starts:
        mirror(0)
    return K, partial.sum(axis=0)


def _fl_update(K: np.ndarray, rising: np.ndarray, lo: np.ndarray, hi: np.ndarray, g: np.ndarray,
               columns: slice) -> None:
    """Lower the gains ``g[columns]`` by the rows ``rising`` whose best rises ``lo`` -> ``hi``.

    g_j -= sum_i clip(K_ij, lo_i, hi_i) - lo_i over i in ``rising``, ``_UPDATE_ROWS`` rows at a time:
    the clip is exact in float32, the sums float64, in the same order whatever the column range.
    """
    part = np.empty(g[columns].size, dtype=np.float64)
    for a in range(0, rising.size, _UPDATE_ROWS):
        block = K[rising[a:a + _UPDATE_ROWS], columns]  # a copy: the kernel is never modified
        np.clip(block, lo[a:a + _UPDATE_ROWS, None], hi[a:a + _UPDATE_ROWS, None], out=block)
        np.add.reduce(block, axis=0, dtype=np.float64, out=part)
        g[columns] -= part
    g[columns] += lo.sum(dtype=np.float64)


def _greedy_fl(Xn: np.ndarray, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Facility-location greedy on unit rows ``Xn`` (n, d): incremental exact gains over one kernel.

    After a pick s, row i matters only if its running best m_i rises (K_si > m_i); it then lowers every
    gain j by clip(K_ij, m_old_i, m_new_i) - m_old_i. The clip is exact in float32 and the sums are
    float64, so the running gains are exact to float64 round-off (far below the tie tolerance, so
    duplicate rows tie and the smaller position wins). Large updates are split over threads by column
    ranges (numpy releases the GIL); each column's arithmetic is the same whatever the threads.
    """
    n = Xn.shape[0]
    K, g = fl_kernel(Xn)
    tol = TIE_RTOL * max(1.0, float(g.max()))
    m = np.zeros(n, dtype=np.float32)  # running best similarity of every ground-set row
    threads = _fl_threads() if n * n >= _PARALLEL_MIN else 1
    bounds = np.linspace(0, n, threads + 1).astype(int)
    ranges = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    order = np.empty(budget, dtype=np.int64)
    gains = np.empty(budget, dtype=np.float64)
    with ThreadPoolExecutor(threads) if threads > 1 else contextlib.nullcontext() as pool:
        for t in range(budget):
            s = _argmax_first(g, tol)
            row = K[s]
            order[t] = s
            gains[t] = g[s]
            if t == budget - 1:
                break
            rising = np.flatnonzero(row > m)
            lo, hi = m[rising], row[rising]
            if pool is not None and rising.size * n >= _PARALLEL_MIN:
                for done in [pool.submit(_fl_update, K, rising, lo, hi, g, cols) for cols in ranges]:
                    done.result()
            else:
                _fl_update(K, rising, lo, hi, g, slice(0, n))
            m[rising] = hi
            g[s] = -np.inf  # stays -inf under the updates
    return order, gains


def _fl_threads() -> int:
    """Threads for the FL updates: the usable cores, at most ``_MAX_THREADS``."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(_MAX_THREADS, cores))


# ---------------------------------------------------------------------------------------------------
# graph cut


def _greedy_gc(Xn: np.ndarray, budget: int, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Graph-cut greedy on unit rows ``Xn`` (n, d) without a full kernel, exact in float64.

    gain_j = c_j - lam - 2 lam x_j . z with z the sum of the picked rows. It starts in shortlist mode:
    a refresh computes every gain (one X z, O(nd)) and shortlists the M best (M adapts to how long
    shortlists last); until the next refresh only the shortlist's gains are computed (O(Md) per step).
    Since |x_j . (z - z0)| <= ||z - z0|| for unit rows, no candidate left out at the refresh (z = z0) can
    exceed its refresh gain by more than 2 |lam| ||z - z0||: while the shortlist's best beats that bound,
    it is the exact greedy pick; otherwise the step refreshes. On data where that bound is loose
    (high-dimensional, unclustered rows) refreshes come every few steps; once they average fewer than
    ``_GC_SWITCH_STEPS`` steps apart (and d >= ``_GC_COLUMNS_MIN_DIM``) it goes on in column mode
    (:func:`_gc_columns`).
    """
    X64 = _unit64(Xn)
    n = X64.shape[0]
    base = X64 @ X64.sum(axis=0) - lam  # gain of j given the empty set: c_j - lam * K_jj
    tol = TIE_RTOL * (1.0 + float(np.abs(base).max()) + abs(lam) * (2 * budget + 1))
    size = min(n, max(_SHORTLIST_MIN, n // _SHORTLIST_SHARE))
    z = np.zeros(X64.shape[1], dtype=np.float64)  # sum of the picked rows
    z0 = z.copy()
    taken = np.zeros(n, dtype=bool)
    short = np.zeros(0, dtype=np.int64)
    X_short, base_short = X64[:0], base[:0]
    left_out = np.inf  # best refresh-time gain outside the shortlist (inf: refresh needed)
    refreshed = -(2**31)  # step of the last refresh
    refreshes = 0
    order = np.empty(budget, dtype=np.int64)
    gains = np.empty(budget, dtype=np.float64)
    for t in range(budget):
        s = -1
        if short.size and left_out < np.inf:
            g_short = base_short - (2.0 * lam) * (X_short @ z)
            g_short[taken[short]] = -np.inf
            j = _argmax_first(g_short, tol)
            if g_short[j] > left_out + 2.0 * abs(lam) * float(np.linalg.norm(z - z0)) + tol:
                s = int(short[j])
        if s < 0:  # refresh: every gain exactly, a new shortlist (longer if the last one lasted < 4 steps)
            g = base - (2.0 * lam) * (X64 @ z)
            g[taken] = -np.inf
            refreshes += 1
            if (refreshes >= _GC_SWITCH_REFRESHES and t < _GC_SWITCH_STEPS * refreshes
                    and X64.shape[1] >= _GC_COLUMNS_MIN_DIM):
                _gc_columns(X64, base, g, z, lam, tol, order, gains, t)
                return order, gains
            s = _argmax_first(g, tol)
            g[s] = -np.inf  # picked now: not part of the bound below
            z0 = z.copy()
            size = _resized(size, t - refreshed, n)
            refreshed = t
            short, left_out = _shortlist(g, size)
            X_short, base_short = X64[short], base[short]  # O(Md) copy, reused until the next refresh
        order[t] = s
        gains[t] = base[s] - 2.0 * lam * float(X64[s] @ z)
        taken[s] = True
        z += X64[s]
    return order, gains


def _gc_columns(X64: np.ndarray, base: np.ndarray, g: np.ndarray, z: np.ndarray, lam: float, tol: float,
                order: np.ndarray, gains: np.ndarray, start: int) -> None:
    """Graph-cut greedy from step ``start`` on with every gain current; fills order[start:], gains[start:].

    ``g`` (n,) holds every row's exact gain at ``start`` (-inf for picked rows), ``z`` (d,) the sum of the
    picked rows. After a pick s, g -= 2 lam K[:, s] (O(n)). The kernel columns come in batches, one
    float32 BLAS-3 product each: on a pick whose column is not cached, the best-ranked uncached rows (the
    likely next picks, the pick among them) get theirs, evicting the cached columns ranked lowest; the
    batch doubles when at least half of the last batch's columns were used by the next miss, and halves
    (not below ``_GC_BATCH_MIN``) when fewer than a quarter were. At most ``_GC_CACHE_BYTES`` of columns
    (n * 4 bytes each, at least ``_GC_BATCH_MIN``) are held.

    Picks stay exact: a float32 column entry is within 2 |lam| gamma_(d+4) of 2 lam K_js in float64
    (gamma_m = m u / (1 - m u), u = 2^-24: the dot product of two unit rows), so a gain that took r
    columns since it was last exact is within r times that (``eps``, doubled for safety) of the exact
    gain. Each row keeps its own bound: ``up`` / ``lo`` hold g_j -+ eps * (the step it was last exact),
    so that g_j -+ eps * (steps since then) are up + eps r / lo - eps r. Every row whose upper bound
    reaches the best lower bound (minus tol) gets its exact float64 gain (c_j - lam - 2 lam x_j . z),
    which resets its bound, and the best of those is the pick (ties to the smallest position). If more
    than ``_GC_RESYNC`` and n / ``_GC_RESYNC_SHARE`` rows contend, every gain is recomputed exactly (one
    X z).
    """
    n, d = X64.shape
    budget = order.size
    X32 = X64.astype(np.float32)
    unit = 2.0**-24
    eps = 2.0 * 2.0 * abs(lam) * (d + 4) * unit / (1.0 - (d + 4) * unit)  # bound per column, doubled
    up, lo = g.copy(), g.copy()  # exact at r = 0; -inf for picked rows
    cap = int(min(n, max(_GC_BATCH_MIN, _GC_CACHE_BYTES // (4 * n))))
    cache = np.empty((cap, n), dtype=np.float32)  # cache[k] ~ 2 lam K[owner[k], :]
    slot = np.full(n, -1, dtype=np.int64)  # row -> its cache slot, -1: not cached
    owner = np.full(cap, -1, dtype=np.int64)  # slot -> its row, -1: free
    batch = min(cap, _GC_BATCH_MIN)
    fill = np.full(cap, -1, dtype=np.int64)  # slot -> the batch that filled it
    fills = used = 0  # batches so far; picks served by the last batch
    taken = np.isneginf(g)
    scale = np.float32(2.0 * lam)
    for t in range(start, budget):
        drift = eps * (t - start)  # eps * r
        near = np.flatnonzero(up >= lo.max() - 2.0 * drift - tol)
        if near.size > max(_GC_RESYNC, n // _GC_RESYNC_SHARE):  # too many contenders: all exactly again
            exact = base - (2.0 * lam) * (X64 @ z)
            exact[taken] = -np.inf
            np.subtract(exact, drift, out=up)
            np.add(exact, drift, out=lo)
            near = np.flatnonzero(exact >= exact.max() - tol)
        exact = base[near] - (2.0 * lam) * (X64[near] @ z)
        up[near] = exact - drift
        lo[near] = exact + drift
        s = int(near[_argmax_first(exact, tol)])
        if slot[s] < 0:
            if fills:
                if 2 * used >= batch:
                    batch = min(cap, 2 * batch)
                elif 4 * used < batch:
                    batch = max(min(cap, _GC_BATCH_MIN), batch // 2)
            fills += 1
            used = 0
            want = min(batch, budget - t)
            free = np.flatnonzero(owner < 0)
            rank = up + lo  # twice the current estimate of every gain
            if free.size < want:  # evict the cached columns of the rows now ranked lowest
                held = np.flatnonzero(owner >= 0)
                worst = held[np.argsort(rank[owner[held]], kind="stable")[: want - free.size]]
                slot[owner[worst]] = -1
                owner[worst] = -1
                free = np.flatnonzero(owner < 0)
            rank[owner[owner >= 0]] = -np.inf
            rank[s] = -np.inf  # s goes in first, whatever the ties at the cut
            top = np.argpartition(-rank, want - 1)[: want - 1] if want > 1 else np.zeros(0, np.int64)
            new = np.concatenate(([s], top[rank[top] > -np.inf]))
            dst = free[: new.size]
            if new.size * n * d >= _GC_THREADED_PRODUCT:  # large enough to pay for waking threads
                with _blas_threads():
                    cache[dst] = (scale * X32[new]) @ X32.T
            else:
                cache[dst] = (scale * X32[new]) @ X32.T
            owner[dst] = new
            slot[new] = dst
            fill[dst] = fills
        k = int(slot[s])
        used += int(fill[k] == fills)
        order[t] = s
        gains[t] = base[s] - 2.0 * lam * float(X64[s] @ z)
        column = cache[k]
        up -= column
        lo -= column
        up[s] = lo[s] = -np.inf
        taken[s] = True
        slot[s] = -1
        owner[k] = -1
        z += X64[s]


# ---------------------------------------------------------------------------------------------------
# log-determinant


def _greedy_logdet(Xn: np.ndarray, budget: int, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Log-determinant greedy on unit rows ``Xn`` (n, d): the same picks and gains two ways, the cheaper
    for the shape: in feature space (d x d state) when n >= 4 d, else over Cholesky rows (budget x n)."""
    if Xn.shape[0] >= _LOGDET_FEATURES_MIN_RATIO * Xn.shape[1]:
        return _logdet_features(Xn, budget, lam)
    return _logdet_cholesky(Xn, budget, lam)


def _logdet_features(Xn: np.ndarray, budget: int, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Log-determinant greedy on unit rows ``Xn`` (n, d), in feature space, float64.

    d2_j is the Schur complement of j given S in K + lam I (the first one is 1 + lam) and the gain is
    ln d2_j. With K_SS = X_S X_S^T (unit rows, K_jj = 1), the push-through identity gives
    d2_j = lam (1 + x_j^T (X_S^T X_S + lam I)^-1 x_j) = lam + x_j^T W x_j, W = (X_S^T X_S / lam + I)^-1
    (d x d). A pick s is a rank-one (Sherman-Morrison) update: v = W x_s / sqrt(d2_s), W -= v v^T and
    d2_j -= (x_j . v)^2 for every j, the same numbers as the incremental Cholesky of the fast greedy MAP
    algorithm (Chen et al., 2018), whose Cholesky entries are the x_j . v, at O(nd) a step instead of
    O(n (d + |S|)) and O(nd + d^2) memory instead of O(n |S|).

    Schur complements only shrink as S grows, so a candidate's d2 at the last refresh bounds it later.
    A refresh brings every d2 up to date and shortlists the M largest (M adapts to how long shortlists
    last); between refreshes only the shortlist's d2 are updated (O(Md + d^2) per step) and its best is the
    exact greedy pick while it beats every bound left out. A refresh catches every row up over the r picks
    since the last one with one BLAS-3 product X V^T (n x d x r) and folds them into W.
    """
    X64 = _unit64(Xn)
    n, d = X64.shape
    tol = TIE_RTOL * (1.0 + lam)
    d2 = np.full(n, 1.0 + lam, dtype=np.float64)  # current at ``synced`` (selected: -inf)
    W: np.ndarray | None = None  # W at ``synced``; None: the identity (nothing picked before it)
    V = np.empty((budget, d), dtype=np.float64)  # v of every pick
    size = min(n, max(_SHORTLIST_MIN, n // _SHORTLIST_SHARE))
    synced = 0
    short = np.zeros(0, dtype=np.int64)
    where = np.full(n, -1, dtype=np.int64)  # position of a row in the shortlist
    X_short, d2_short = X64[:0], d2[:0]
    left_out = np.inf  # largest d2 (at the refresh) outside the shortlist; inf: refresh needed
    order = np.empty(budget, dtype=np.int64)
    gains = np.empty(budget, dtype=np.float64)
    for t in range(budget):
        j = _argmax_first(d2_short, tol) if short.size and left_out < np.inf else -1
        if j < 0 or not d2_short[j] > left_out + tol:
            if t > synced:  # catch every row up over the picks order[synced:t]
                Vr = V[synced:t]
                P = X64 @ Vr.T
                d2 -= np.einsum("ij,ij->i", P, P)
                np.maximum(d2, lam, out=d2)  # Schur complements of K + lam I are >= lam
                d2[order[:t]] = -np.inf
                W = (np.eye(d) if W is None else W) - Vr.T @ Vr
                size = _resized(size, t - synced, n)
            synced = t
            best = _argmax_first(d2, tol)  # the exact pick, over every row
            short, left_out = _shortlist(d2, size, best)
            where[:] = -1
            where[short] = np.arange(short.size)
            X_short, d2_short = X64[short], d2[short]
            j = int(where[best])
        s = int(short[j])
        order[t] = s
        gains[t] = math.log(d2_short[j])
        if t == budget - 1:
            break
        x = X64[s]
        w = x.copy() if W is None else W @ x
        if t > synced:  # the picks since the last refresh, not yet folded into W
            Vr = V[synced:t]
            w -= Vr.T @ (Vr @ x)
        v = w / math.sqrt(d2_short[j])
        V[t] = v
        e = X_short @ v
        d2_short -= e * e
        np.maximum(d2_short, lam, out=d2_short)
        d2_short[j] = -np.inf
        d2_short[where[order[synced:t]]] = -np.inf
    return order, gains


def _logdet_cholesky(Xn: np.ndarray, budget: int, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Log-determinant greedy on unit rows ``Xn`` (n, d): fast greedy MAP (Chen et al., 2018), float64.
    For n < 4 d (where it beats :func:`_logdet_features`).

    d2_j is the Schur complement of j given S in K + lam I (the first one is 1 + lam); E[t, j] is the
    incremental Cholesky entry of j for the t-th pick: E[t, j] = (K_{s_t j} - sum_{r<t} E[r, s_t] E[r, j])
    / sqrt(d2_{s_t}) and d2_j = 1 + lam - sum_t E[t, j]^2.

    Schur complements only shrink as S grows, so a candidate's d2 at the last refresh bounds it later.
    A refresh brings every column up to date and shortlists the M largest d2 (M adapts to how long
    shortlists last); between refreshes only the shortlist's columns are updated (O(M (d + t)) per step)
    and its best is the exact greedy pick while it beats every bound left out. A refresh catches all
    columns up over the r picks since the last one with BLAS-3: an r x n kernel block, one (r, t) x (t, n)
    product and an r x r triangular solve, instead of r matrix-vector products.
    """
    X64 = _unit64(Xn)
    n = X64.shape[0]
    tol = TIE_RTOL * (1.0 + lam)
    E = np.empty((budget, n), dtype=np.float64)  # rows < synced are current for every column
    d2 = np.full(n, 1.0 + lam, dtype=np.float64)  # current at ``synced`` (selected: -inf)
    size = min(n, max(_SHORTLIST_MIN, n // _SHORTLIST_SHARE))
    synced = 0
    short = np.zeros(0, dtype=np.int64)
    where = np.full(n, -1, dtype=np.int64)  # position of a row in the shortlist
    E_short = np.empty((budget, 0), dtype=np.float64)
    X_short, d2_short = X64[:0], d2[:0]
    left_out = np.inf  # largest d2 (at the refresh) outside the shortlist; inf: refresh needed
    root = np.empty(budget, dtype=np.float64)  # sqrt(d2) of every pick when picked
    order = np.empty(budget, dtype=np.int64)
    gains = np.empty(budget, dtype=np.float64)
    for t in range(budget):
        j = _argmax_first(d2_short, tol) if short.size and left_out < np.inf else -1
        if j < 0 or not d2_short[j] > left_out + tol:
            if t > synced:  # catch every column up over the picks order[synced:t]
                picks = order[synced:t]
                r = t - synced
                rhs = X64[picks] @ X64.T - E[:synced, picks].T @ E[:synced]
                L = np.zeros((r, r), dtype=np.float64)
                rows, cols = np.tril_indices(r, -1)
                L[rows, cols] = E_short[synced + cols, where[picks[rows]]]
                L[np.arange(r), np.arange(r)] = root[synced:t]
                E[synced:t] = np.linalg.solve(L, rhs)
                d2 -= np.einsum("ij,ij->j", E[synced:t], E[synced:t])
                np.maximum(d2, lam, out=d2)  # Schur complements of K + lam I are >= lam
                d2[order[:t]] = -np.inf
                size = _resized(size, t - synced, n)
            synced = t
            best = _argmax_first(d2, tol)  # the exact pick, over every row
            short, left_out = _shortlist(d2, size, best)
            where[:] = -1
            where[short] = np.arange(short.size)
            E_short = np.empty((budget, short.size), dtype=np.float64)
            E_short[:t] = E[:t, short]
            X_short, d2_short = X64[short], d2[short]
            j = int(where[best])
        s = int(short[j])
        order[t] = s
        root[t] = math.sqrt(d2_short[j])
        gains[t] = math.log(d2_short[j])
        if t == budget - 1:
            break
        e = (X_short @ X64[s] - E_short[:t].T @ E_short[:t, j]) / root[t]
        E_short[t] = e
        d2_short -= e * e
        np.maximum(d2_short, lam, out=d2_short)
        d2_short[j] = -np.inf
        d2_short[where[order[synced:t]]] = -np.inf
    return order, gains


# ---------------------------------------------------------------------------------------------------
# objective


def objective(
    X: np.ndarray,
    fn: str,
    selected: Sequence[int] | np.ndarray,
    *,
    gc_lambda: float = 0.4,
    logdet_lambda: float = 1.0,
) -> float:
    """f(S) in float64 with the ground set = every row of ``X`` (n, d) (rows normalised here).

    ``selected`` holds row positions (a set: order and repeats do not matter). FL is evaluated in
    blocks of ground-set rows (memory O(block x |S|)), never with an n x n kernel.
    """
    fn = check_fn(fn)
    gc_lambda, logdet_lambda = check_lambdas(gc_lambda, logdet_lambda)
    Xn = normalize_rows(X)
    sel = np.asarray(selected)
    if sel.size and not np.issubdtype(sel.dtype, np.integer):
        raise SmartError(f"selected must hold integer row positions, got dtype {sel.dtype}")
    sel = sel.astype(np.int64).ravel()
    bad = (sel < 0) | (sel >= Xn.shape[0])
    if bad.any():
        raise SmartError(f"selected position {int(sel[np.argmax(bad)])} is outside 0..{Xn.shape[0] - 1}")
    return objective_unit(Xn, fn, np.unique(sel), gc_lambda=gc_lambda, logdet_lambda=logdet_lambda)


def objective_unit(
    Xn: np.ndarray, fn: str, sel: np.ndarray, *, gc_lambda: float, logdet_lambda: float
) -> float:
    """objective on normalised rows ``Xn`` (n, d) for unique valid positions ``sel`` (k,)."""
    if sel.size == 0:
        return 0.0
    if fn == "fl":
        XS = Xn[sel]
        total = 0.0
        with _one_blas_thread():  # the same rounding whatever BLAS's thread count (fl_kernel)
            for a in range(0, Xn.shape[0], _OBJECTIVE_ROWS):
                b = min(Xn.shape[0], a + _OBJECTIVE_ROWS)
                block = Xn[a:b] @ XS.T  # (rows, |S|) float32
                inside = np.flatnonzero((sel >= a) & (sel < b))
                block[sel[inside] - a, inside] = 1.0  # K_ii = 1 exactly
                total += float(np.maximum(block.max(axis=1), 0.0).sum(dtype=np.float64))
        return total
    X64 = _unit64(Xn)
    if fn == "gc":
        c = X64[sel] @ X64.sum(axis=0)
        z = X64[sel].sum(axis=0)
        return float(c.sum() - gc_lambda * (z @ z))
    A = X64[sel] @ X64[sel].T
    np.fill_diagonal(A, 1.0 + logdet_lambda)
    return float(2.0 * np.log(np.diag(np.linalg.cholesky(A))).sum())
