"""The exact greedy of SMART-SPEC.md for facility location, graph cut and log-determinant.

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
The engines keep every candidate's gain current, so they are exact without a lazy heap:

- ``fl``: one float32 n x n kernel (upper-triangle blocks with BLAS, mirrored, so it is exactly
  symmetric); after a pick only the rows whose running best rose change any gain, and every gain is
  updated by their contribution, in float64.
- ``gc``: no kernel; the gains vector moves by one kernel row X x_s per pick (O(nd) time and memory).
- ``logdet``: no kernel; the fast greedy MAP algorithm of Chen et al. (2018): residual variances and
  incremental Cholesky rows, one kernel row per pick (O(n (d + k)) time per step, O(n (d + k)) memory).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from smart_spark.errors import SmartError

FUNCTIONS = ("fl", "gc", "logdet")

_KERNEL_ROWS = 1024  # rows per BLAS call when building the FL kernel
_MIRROR_TILE = 256  # tile edge for mirroring the upper triangle (cache-friendly transposes)
_UPDATE_ROWS = 64  # changed rows per vectorised FL gain update
_SPARSE_FRACTION = 0.05  # an FL row switches to its entry list once at most this share is above its best
_SAMPLE_STRIDE = 16  # columns sampled to estimate that share
_OBJECTIVE_ROWS = 2048  # ground-set rows per block when evaluating FL
_TIE_RTOL = 1e-12  # gains this close (relative to the gains' scale) are ties -> smallest position


def normalize_rows(X: np.ndarray) -> np.ndarray:
    """L2-normalised float32 copy of ``X`` (n, d), computed in float64.

    Raises SmartError when ``X`` is not 2-D or not numeric, naming the first row that holds a NaN or
    infinite value, or the first row that is all zeros.
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise SmartError(f"embeddings must be a 2-D array (rows x dimensions), got shape {X.shape}")
    if X.dtype == np.bool_ or not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
        raise SmartError(f"embeddings must be numeric, got dtype {X.dtype}")
    X64 = X.astype(np.float64)
    finite = np.isfinite(X64).all(axis=1)
    if not finite.all():
        raise SmartError(f"embedding row {int(np.argmin(finite))} has a NaN or infinite value")
    scale = np.abs(X64).max(axis=1, initial=0.0)  # scaling first: no overflow for huge entries
    if (scale == 0).any():
        raise SmartError(f"embedding row {int(np.argmax(scale == 0))} is all zeros and cannot be normalised")
    X64 /= scale[:, None]
    X64 /= np.sqrt(np.einsum("ij,ij->i", X64, X64))[:, None]
    return X64.astype(np.float32)


def _unit64(Xn: np.ndarray) -> np.ndarray:
    """float64 copy of unit rows ``Xn`` (n, d), renormalised in float64 so that K_jj = 1 to round-off."""
    X64 = Xn.astype(np.float64)
    X64 /= np.sqrt(np.einsum("ij,ij->i", X64, X64))[:, None]
    return X64


def _check_fn(fn: object) -> str:
    if not isinstance(fn, str) or fn not in FUNCTIONS:
        raise SmartError(f"unknown set function {fn!r}: expected one of {', '.join(FUNCTIONS)}")
    return fn


def _check_budget(budget: object, n: int) -> int:
    if isinstance(budget, (bool, np.bool_)) or not isinstance(budget, (int, np.integer)):
        raise SmartError(f"budget must be an integer, got {budget!r}")
    if not 0 <= budget <= n:
        raise SmartError(f"budget {int(budget)} is outside 0..{n} (the number of rows)")
    return int(budget)


def _check_lambdas(gc_lambda: float, logdet_lambda: float) -> tuple[float, float]:
    gc_lambda, logdet_lambda = float(gc_lambda), float(logdet_lambda)
    if not math.isfinite(gc_lambda):
        raise SmartError(f"gc_lambda must be finite, got {gc_lambda}")
    if not (math.isfinite(logdet_lambda) and logdet_lambda > 0):
        raise SmartError(f"logdet_lambda must be positive and finite, got {logdet_lambda}")
    return gc_lambda, logdet_lambda


def _argmax_first(g: np.ndarray, tol: float) -> int:
    """Smallest position whose value is within ``tol`` of the maximum of ``g`` (n,)."""
    top = g.max()
    return int(np.argmax(g >= top - tol))


def greedy_select(
    X: np.ndarray, fn: str, budget: int, *, gc_lambda: float = 0.4, logdet_lambda: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Exact greedy maximisation of ``fn`` over the rows of ``X`` for ``budget`` steps.

    Args:
        X: (n, d) embeddings, any float dtype; rows are L2-normalised here.
        fn: ``"fl"``, ``"gc"`` or ``"logdet"``.
        budget: number of picks, 0..n; exactly this many steps run.
        gc_lambda: graph-cut lambda. logdet_lambda: log-determinant ridge (> 0).

    Returns:
        (order, gains): (budget,) int64 row positions in pick order and (budget,) float64 marginal gains.

    Memory: ``fl`` holds one float32 n x n kernel (1.6 GB at n = 20,000); ``gc`` O(nd);
    ``logdet`` O(n (d + budget)) float64.
    """
    fn = _check_fn(fn)
    gc_lambda, logdet_lambda = _check_lambdas(gc_lambda, logdet_lambda)
    Xn = normalize_rows(X)
    budget = _check_budget(budget, Xn.shape[0])
    return _greedy_unit(Xn, fn, budget, gc_lambda=gc_lambda, logdet_lambda=logdet_lambda)


def _greedy_unit(
    Xn: np.ndarray, fn: str, budget: int, *, gc_lambda: float, logdet_lambda: float
) -> tuple[np.ndarray, np.ndarray]:
    """greedy_select on already normalised float32 rows ``Xn`` (n, d) with validated arguments."""
    if budget == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    if fn == "fl":
        return _greedy_fl(Xn, budget)
    if fn == "gc":
        return _greedy_gc(Xn, budget, gc_lambda)
    return _greedy_logdet(Xn, budget, logdet_lambda)


# ---------------------------------------------------------------------------------------------------
# facility location


def fl_kernel(Xn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine kernel of unit rows ``Xn`` (n, d) and every item's first FL gain.

    Returns (K, g0): K (n, n) float32, exactly symmetric with a unit diagonal (the upper-triangle
    blocks come from BLAS, the lower triangle is their mirror); g0 (n,) float64, g0_j = sum_i max(0, K_ij).
    """
    n = Xn.shape[0]
    K = np.empty((n, n), dtype=np.float32)
    for a in range(0, n, _KERNEL_ROWS):
        b = min(n, a + _KERNEL_ROWS)
        np.matmul(Xn[a:b], Xn[a:].T, out=K[a:b, a:])
    g0 = np.empty(n, dtype=np.float64)
    for a in range(0, n, _MIRROR_TILE):
        b = min(n, a + _MIRROR_TILE)
        diag = K[a:b, a:b]
        lower = np.tril_indices(b - a, -1)
        diag[lower] = diag.T[lower]
        np.fill_diagonal(diag, 1.0)
        for c in range(b, n, _MIRROR_TILE):
            e = min(n, c + _MIRROR_TILE)
            K[c:e, a:b] = K[a:b, c:e].T
        g0[a:b] = np.maximum(K[a:b], 0.0).sum(axis=1, dtype=np.float64)  # rows a:b are complete now
    return K, g0


class _RowLists:
    """Per-row lists of (column, K_ij) for the entries K_ij > t_i, t_i the row's running best when made.

    Entries at or below a row's running best never change a gain again, so once a row's best is high
    its update only needs its (short) list. The lists live in one pool; each shrinks in place to the
    entries above the new best whenever its row is used.
    """

    def __init__(self, n: int, capacity: int) -> None:
        self.start = np.zeros(n, dtype=np.int64)
        self.length = np.full(n, -1, dtype=np.int64)  # -1: the row has no list (dense updates)
        self.col = np.empty(max(capacity, 1024), dtype=np.int32)
        self.val = np.empty(max(capacity, 1024), dtype=np.float32)
        self.fill = 0

    def add(self, rows: np.ndarray, block: np.ndarray, above: np.ndarray) -> None:
        """Give each of ``rows`` (r,) the entries of its ``block`` row (r, n) above ``above`` (r,)."""
        r, c = np.nonzero(block > above[:, None])
        end = self.fill + r.size
        if end > self.col.size:
            size = max(end, 2 * self.col.size)
            self.col = np.concatenate([self.col[: self.fill], np.empty(size - self.fill, np.int32)])
            self.val = np.concatenate([self.val[: self.fill], np.empty(size - self.fill, np.float32)])
        self.col[self.fill:end] = c
        self.val[self.fill:end] = block[r, c]
        counts = np.bincount(r, minlength=rows.size)
        self.start[rows] = self.fill + np.cumsum(counts) - counts
        self.length[rows] = counts
        self.fill = end

    def decrease(self, rows: np.ndarray, lo: np.ndarray, hi: np.ndarray, n: int) -> np.ndarray:
        """(n,) float64 gain decreases from ``rows`` (r,) whose best rises ``lo`` -> ``hi``; shrinks lists."""
        lens, starts = self.length[rows], self.start[rows]
        total = int(lens.sum())
        if total == 0:
            return np.zeros(n, dtype=np.float64)
        owner = np.repeat(np.arange(rows.size), lens)
        pos = np.repeat(starts - (np.cumsum(lens) - lens), lens) + np.arange(total)
        val, col = self.val[pos], self.col[pos]
        lo_e, hi_e = lo[owner], hi[owner]
        part = np.clip(val, lo_e, hi_e).astype(np.float64)
        part -= lo_e
        keep = val > hi_e
        kept = np.bincount(owner[keep], minlength=rows.size)
        dest = np.repeat(starts - (np.cumsum(kept) - kept), kept) + np.arange(int(kept.sum()))
        self.val[dest], self.col[dest] = val[keep], col[keep]
        self.length[rows] = kept
        return np.bincount(col, weights=part, minlength=n)


def _greedy_fl(
    Xn: np.ndarray, budget: int, *, sparse_fraction: float = _SPARSE_FRACTION
) -> tuple[np.ndarray, np.ndarray]:
    """Facility-location greedy on unit rows ``Xn`` (n, d): incremental exact gains over one kernel.

    After a pick s, row i matters only if its running best m_i rises (K_si > m_i); it then lowers every
    gain j by clip(K_ij, m_old_i, m_new_i) - m_old_i (exact in float32, summed in float64). Rows are
    updated densely (blocks of kernel rows) until at most ``sparse_fraction`` of a row's entries lie
    above its best; from then on the row uses its list of those entries (``_RowLists``).
    """
    n = Xn.shape[0]
    K, g = fl_kernel(Xn)
    tol = _TIE_RTOL * max(1.0, float(g.max()))
    limit = int(sparse_fraction * n)
    lists = _RowLists(n, 4 * limit * _UPDATE_ROWS) if limit > 0 else None
    m = np.zeros(n, dtype=np.float32)  # running best similarity of every ground-set row
    order = np.empty(budget, dtype=np.int64)
    gains = np.empty(budget, dtype=np.float64)
    for t in range(budget):
        s = _argmax_first(g, tol)
        row = K[s]
        order[t] = s
        gains[t] = np.maximum(row.astype(np.float64) - m, 0.0).sum()  # exact float64 gain of s
        if t == budget - 1:
            break
        rising = np.flatnonzero(row > m)
        changed = rising
        if lists is not None:
            listed = lists.length[rising] >= 0
            if listed.any():
                rows = rising[listed]
                g -= lists.decrease(rows, m[rows], row[rows], n)
                changed = rising[~listed]
        for a in range(0, changed.size, _UPDATE_ROWS):
            rows = changed[a:a + _UPDATE_ROWS]
            lo, hi = m[rows], row[rows]
            block = K[rows]
            if lists is not None:  # rows with few entries above their new best get a list
                few = (block[:, ::_SAMPLE_STRIDE] > hi[:, None]).sum(axis=1) * _SAMPLE_STRIDE <= limit
                if few.any():
                    lists.add(rows[few], block[few], hi[few])
            np.clip(block, lo[:, None], hi[:, None], out=block)
            g -= block.sum(axis=0, dtype=np.float64)
            g += lo.sum(dtype=np.float64)
        m[rising] = row[rising]
        g[s] = -np.inf  # stays -inf under the updates
    return order, gains


# ---------------------------------------------------------------------------------------------------
# graph cut


def _greedy_gc(Xn: np.ndarray, budget: int, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Graph-cut greedy on unit rows ``Xn`` (n, d) without a kernel: O(nd) per step, float64."""
    X64 = _unit64(Xn)
    c = X64 @ X64.sum(axis=0)  # c_j = sum_i K_ij
    g = c - lam  # gain of j given the empty set: c_j - lam * K_jj
    tol = _TIE_RTOL * (1.0 + float(np.abs(c).max()) + abs(lam) * (2 * budget + 1))
    z = np.zeros(X64.shape[1], dtype=np.float64)  # sum of the picked rows
    order = np.empty(budget, dtype=np.int64)
    gains = np.empty(budget, dtype=np.float64)
    for t in range(budget):
        s = _argmax_first(g, tol)
        order[t] = s
        gains[t] = c[s] - lam - 2.0 * lam * float(X64[s] @ z)  # exact: sum_{S} K_js = x_j . z
        if t == budget - 1:
            break
        g -= (2.0 * lam) * (X64 @ X64[s])
        z += X64[s]
        g[s] = -np.inf
    return order, gains


# ---------------------------------------------------------------------------------------------------
# log-determinant


def _greedy_logdet(Xn: np.ndarray, budget: int, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Log-determinant greedy on unit rows ``Xn`` (n, d): fast greedy MAP (Chen et al., 2018).

    d2_j is the Schur complement of j given S in K + lam I (the first one is 1 + lam) and E holds the
    incremental Cholesky rows; each pick costs one kernel row X x_s and one (t, n) matrix-vector product.
    """
    X64 = _unit64(Xn)
    n = X64.shape[0]
    d2 = np.full(n, 1.0 + lam, dtype=np.float64)
    E = np.empty((budget, n), dtype=np.float64)
    tol = _TIE_RTOL * (1.0 + lam)
    order = np.empty(budget, dtype=np.int64)
    gains = np.empty(budget, dtype=np.float64)
    for t in range(budget):
        s = _argmax_first(d2, tol)
        order[t] = s
        gains[t] = math.log(d2[s])
        if t == budget - 1:
            break
        k_s = X64 @ X64[s]
        e = (k_s - E[:t].T @ E[:t, s]) / math.sqrt(d2[s])
        E[t] = e
        d2 -= e * e
        # Schur complements of K + lam I (K a Gram matrix) are >= lam: below that is round-off.
        np.maximum(d2, lam, out=d2)
        d2[order[: t + 1]] = -np.inf
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
    fn = _check_fn(fn)
    gc_lambda, logdet_lambda = _check_lambdas(gc_lambda, logdet_lambda)
    Xn = normalize_rows(X)
    sel = np.asarray(selected)
    if sel.size and not np.issubdtype(sel.dtype, np.integer):
        raise SmartError(f"selected must hold integer row positions, got dtype {sel.dtype}")
    sel = sel.astype(np.int64).ravel()
    bad = (sel < 0) | (sel >= Xn.shape[0])
    if bad.any():
        raise SmartError(f"selected position {int(sel[np.argmax(bad)])} is outside 0..{Xn.shape[0] - 1}")
    return _objective_unit(Xn, fn, np.unique(sel), gc_lambda=gc_lambda, logdet_lambda=logdet_lambda)


def _objective_unit(
    Xn: np.ndarray, fn: str, sel: np.ndarray, *, gc_lambda: float, logdet_lambda: float
) -> float:
    """objective on normalised rows ``Xn`` (n, d) for unique valid positions ``sel`` (k,)."""
    if sel.size == 0:
        return 0.0
    if fn == "fl":
        XS = Xn[sel]
        total = 0.0
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
