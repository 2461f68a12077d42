"""The exact greedy against submodlib 0.0.3 (the authors' library) and a brute-force greedy.

submodlib gets the same kernel we define (unit rows, float32 cosines, diagonal exactly 1, nothing
shifted), passed in dense mode. Its LazyGreedy is not the reference for graph cut (with negative
cosines GC is not submodular, so stale heap bounds are not bounds): instead we walk OUR pick path and,
at every step, ask submodlib for every candidate's marginal gain given our current set.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import submodlib  # the oracle, a test dependency (setup.py's test extra): a broken install fails here
from hypothesis import given, settings
from hypothesis import strategies as st

from smart_spark.core import greedy
from smart_spark.core.greedy import fl_kernel, greedy_select, normalize_rows, objective
from smart_spark.errors import SmartError

pytestmark = pytest.mark.filterwarnings("ignore:Please import `csr_matrix`:DeprecationWarning")

RTOL = 1e-5
LAMBDAS = {"gc_lambda": 0.4, "logdet_lambda": 1.0}


def _random(n: int, d: int, seed: int) -> np.ndarray:
    """Gaussian rows: cosines of both signs."""
    return np.random.default_rng(seed).standard_normal((n, d))


def _tricky(n: int, d: int, seed: int) -> np.ndarray:
    """Clusters plus exact duplicate rows and near-ties (1e-7 perturbations), shifted off the origin
    by less than their spread so that some cosines are negative."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((5, d))
    X = centres[rng.integers(0, 5, n)] + 0.8 * rng.standard_normal((n, d))
    X[n // 3] = X[1]
    X[n // 2] = X[1]
    X[n - 1] = X[7]
    X[n - 2] = X[9] + 1e-7 * rng.standard_normal(d)
    X[n - 3] = X[9] * 3.0  # same direction, other scale: an exact duplicate after normalising
    return X


def _kernel64(X: np.ndarray) -> np.ndarray:
    """The spec's kernel from our normalised rows: float32 cosines, diagonal exactly 1."""
    Xn = normalize_rows(X)
    K = Xn @ Xn.T
    np.fill_diagonal(K, 1.0)
    return K


def _submodlib(fn: str, K: np.ndarray):
    n = K.shape[0]
    if fn == "fl":
        return submodlib.FacilityLocationFunction(n=n, mode="dense", sijs=K, separate_rep=False)
    if fn == "gc":
        return submodlib.GraphCutFunction(n=n, mode="dense", lambdaVal=LAMBDAS["gc_lambda"], ggsijs=K,
                                          separate_rep=False)
    return submodlib.LogDeterminantFunction(n=n, mode="dense", lambdaVal=LAMBDAS["logdet_lambda"], sijs=K)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= RTOL * max(1.0, abs(a), abs(b))


@pytest.mark.parametrize("fn,budget,d", [("fl", 70, 8), ("gc", 70, 8), ("logdet", 30, 8), ("logdet", 60, 40)],
                         ids=["fl", "gc", "logdet-features", "logdet-cholesky"])
@pytest.mark.parametrize("make", [_random, _tricky], ids=["random", "tricky"])
def test_every_pick_is_submodlibs_best_gain(fn: str, budget: int, d: int, make) -> None:
    """LogDet runs in feature space when n >= 4 d (90 x 8), over Cholesky rows otherwise (90 x 40)."""
    X = make(90, d, seed=7)
    order, gains = greedy_select(X, fn, budget, **LAMBDAS)
    assert order.dtype == np.int64 and gains.dtype == np.float64
    assert len(set(order.tolist())) == budget
    f = _submodlib(fn, _kernel64(X))
    Xn = normalize_rows(X)
    chosen: set[int] = set()
    for t, s in enumerate(order.tolist()):
        f.setMemoization(chosen)
        cand = [j for j in range(len(X)) if j not in chosen]
        theirs = np.array([f.marginalGainWithMemoization(chosen, j) for j in cand])
        best = float(theirs.max())
        ours = float(theirs[cand.index(s)])
        assert ours >= best - RTOL * max(1.0, abs(best)), (t, s, ours, best)
        assert _close(gains[t], ours), (t, gains[t], ours)
        # exact ties (rows equal once normalised) go to the smallest position
        assert not [j for j in cand if j < s and np.array_equal(Xn[j], Xn[s])], (t, s)
        chosen.add(s)
    assert _close(objective(X, fn, order, **LAMBDAS), f.evaluate(chosen))
    assert _close(objective(X, fn, order, **LAMBDAS), gains.sum())


def _brute_greedy(X: np.ndarray, fn: str, budget: int) -> tuple[list[int], list[float]]:
    """Eager greedy with explicit float64 set-function evaluations; ties to the smallest position."""
    Xn = normalize_rows(X).astype(np.float64)
    Xn /= np.linalg.norm(Xn, axis=1, keepdims=True)
    K = Xn @ Xn.T
    np.fill_diagonal(K, 1.0)

    def f(S: list[int]) -> float:
        if not S:
            return 0.0
        if fn == "fl":
            return float(np.maximum(K[:, S].max(axis=1), 0.0).sum())
        if fn == "gc":
            return float(K[:, S].sum() - LAMBDAS["gc_lambda"] * K[np.ix_(S, S)].sum())
        return float(np.linalg.slogdet(K[np.ix_(S, S)] + LAMBDAS["logdet_lambda"] * np.eye(len(S)))[1])

    S: list[int] = []
    gains: list[float] = []
    for _ in range(budget):
        base = f(S)
        scores = [(f(S + [j]) - base, j) for j in range(len(X)) if j not in S]
        top = max(g for g, _ in scores)
        j = min(j for g, j in scores if g >= top - 1e-9)
        S.append(j)
        gains.append(top)
    return S, gains


@pytest.mark.parametrize("fn", ["fl", "gc", "logdet"])
@pytest.mark.parametrize("seed", range(4))
def test_matches_brute_force_on_tiny_inputs(fn: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(3, 10)), int(rng.integers(2, 6))
    X = rng.standard_normal((n, d))
    if seed % 2:
        X[n - 1] = X[0]  # an exact duplicate
    order, gains = greedy_select(X, fn, n, **LAMBDAS)
    brute_order, brute_gains = _brute_greedy(X, fn, n)
    assert order.tolist() == brute_order
    np.testing.assert_allclose(gains, brute_gains, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("fn", ["fl", "gc", "logdet"])
def test_budget_zero_and_budget_n(fn: str) -> None:
    X = _random(25, 4, seed=3)
    order, gains = greedy_select(X, fn, 0)
    assert order.shape == (0,) and order.dtype == np.int64
    assert gains.shape == (0,) and gains.dtype == np.float64
    order, gains = greedy_select(X, fn, 25)
    assert sorted(order.tolist()) == list(range(25))
    assert gains.shape == (25,)
    assert _close(objective(X, fn, order), gains.sum())


@pytest.mark.parametrize("fn", ["fl", "gc", "logdet"])
def test_smaller_budget_is_a_prefix(fn: str) -> None:
    X = _tricky(60, 6, seed=11)
    order, gains = greedy_select(X, fn, 40)
    for b in (1, 7, 20, 39):
        small_order, small_gains = greedy_select(X, fn, b)
        assert small_order.tolist() == order[:b].tolist()
        np.testing.assert_array_equal(small_gains, gains[:b])


def test_first_logdet_gain_and_duplicate_gain() -> None:
    X = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])  # rows 0 and 1 are duplicates
    order, gains = greedy_select(X, "logdet", 3, logdet_lambda=1.0)
    assert order.tolist() == [0, 2, 1]  # all first gains tie at ln 2: smallest position first
    np.testing.assert_allclose(gains, [math.log(2.0), math.log(2.0), math.log(1.5)], rtol=1e-12)
    order, gains = greedy_select(X, "logdet", 1, logdet_lambda=0.5)
    np.testing.assert_allclose(gains, [math.log(1.5)], rtol=1e-12)


@pytest.mark.parametrize("fn", ["fl", "gc"])
def test_duplicates_tie_to_smallest_position_and_add_nothing(fn: str) -> None:
    rng = np.random.default_rng(5)
    X = np.vstack([rng.standard_normal((40, 6)) * 0.3 + np.eye(6)[0] * 2.0, rng.standard_normal((10, 6))])
    centre = X[:40].mean(axis=0)
    X[12] = centre
    X[31] = centre * 7.0  # the same direction: a duplicate once normalised
    order, gains = greedy_select(X, fn, 50)
    assert order[0] == 12
    if fn == "fl":
        assert gains[order.tolist().index(31)] == pytest.approx(0.0, abs=1e-5)


def test_fl_negative_similarities_count_nothing() -> None:
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    order, gains = greedy_select(X, "fl", 3)
    # every first gain is 1 (itself) + 0 + 0: cosines -1 and 0 add nothing; ties -> position 0
    assert order.tolist() == [0, 1, 2]
    np.testing.assert_allclose(gains, [1.0, 1.0, 1.0])
    assert objective(X, "fl", [1]) == pytest.approx(1.0)


def test_gc_gain_formula_with_negative_cosines() -> None:
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.6, 0.8]])
    lam = 0.4
    K = normalize_rows(X).astype(np.float64) @ normalize_rows(X).astype(np.float64).T
    c = K.sum(axis=0)
    order, gains = greedy_select(X, "gc", 3, gc_lambda=lam)
    s0, s1, s2 = order.tolist()
    assert s0 == int(np.argmax(c))
    assert gains[0] == pytest.approx(c[s0] - lam, abs=1e-6)
    assert gains[1] == pytest.approx(c[s1] - 2 * lam * K[s1, s0] - lam, abs=1e-6)
    assert gains[2] == pytest.approx(c[s2] - 2 * lam * (K[s2, s0] + K[s2, s1]) - lam, abs=1e-6)


def test_fl_kernel_is_symmetric_with_unit_diagonal() -> None:
    Xn = normalize_rows(_random(700, 12, seed=2))  # several kernel and mirror blocks
    K, g0 = fl_kernel(Xn)
    assert K.dtype == np.float32
    np.testing.assert_array_equal(K, K.T)
    np.testing.assert_array_equal(np.diag(K), 1.0)
    np.testing.assert_allclose(K, Xn.astype(np.float64) @ Xn.T.astype(np.float64) - np.eye(700)
                               * (np.einsum("ij,ij->i", Xn, Xn) - 1.0), atol=1e-6)
    np.testing.assert_allclose(g0, np.maximum(K, 0).astype(np.float64).sum(axis=1), rtol=1e-12)


@pytest.mark.parametrize("make", [_random, _tricky], ids=["random", "tricky"])
def test_fl_incremental_updates_equal_recomputing_every_gain(make) -> None:
    """At n = 1,500 the first updates are split over threads: same picks and gains as recomputing
    every gain from the kernel at every step."""
    X = make(1500, 12, seed=23)
    order, gains = greedy_select(X, "fl", 120)
    K, _ = fl_kernel(normalize_rows(X))
    m = np.zeros(len(K))
    taken = np.zeros(len(K), dtype=bool)
    for t in range(120):
        g = np.where(taken, -np.inf, np.maximum(K - m[None, :], 0.0).sum(axis=1))
        s = int(np.argmax(g >= g.max() - 1e-9))
        assert order[t] == s, t
        assert gains[t] == pytest.approx(g[s], rel=1e-12)
        m = np.maximum(m, K[s])
        taken[s] = True


@pytest.mark.parametrize("make", [_random, _tricky], ids=["random", "tricky"])
def test_gc_shortlist_equals_full_recompute(make) -> None:
    """Above 256 rows GC computes only a shortlist's gains between refreshes: same picks as recomputing
    every gain at every step."""
    X = make(1500, 12, seed=21)
    _assert_gc_recomputes_every_gain(X, *greedy_select(X, "gc", 600, gc_lambda=0.4))


def _assert_gc_recomputes_every_gain(X: np.ndarray, order: np.ndarray, gains: np.ndarray) -> None:
    """``order`` and ``gains`` are what recomputing every GC gain (lambda 0.4) at every step gives."""
    X64 = normalize_rows(X).astype(np.float64)
    X64 /= np.linalg.norm(X64, axis=1, keepdims=True)
    base = X64 @ X64.sum(axis=0) - 0.4
    z, taken = np.zeros(X64.shape[1]), np.zeros(len(X64), dtype=bool)
    for t in range(len(order)):
        g = np.where(taken, -np.inf, base - 0.8 * (X64 @ z))
        s = int(np.argmax(g >= g.max() - 1e-9))
        assert order[t] == s, t
        assert gains[t] == pytest.approx(g[s], rel=1e-12, abs=1e-9)
        taken[s] = True
        z += X64[s]


@pytest.mark.parametrize("make", [_random, _tricky], ids=["random", "tricky"])
def test_logdet_shortlist_equals_full_cholesky_updates(make) -> None:
    """Above 256 rows LogDet updates only a shortlist between refreshes (and catches the rest up with
    one BLAS-3 product): same picks and gains as updating every Schur complement at every step."""
    X = make(1500, 12, seed=22)
    order, gains = greedy_select(X, "logdet", 300, logdet_lambda=1.0)
    X64 = normalize_rows(X).astype(np.float64)
    X64 /= np.linalg.norm(X64, axis=1, keepdims=True)
    d2 = np.full(len(X64), 2.0)
    E = np.zeros((300, len(X64)))
    for t in range(300):
        s = int(np.argmax(d2 >= d2.max() - 1e-9))
        assert order[t] == s, t
        assert gains[t] == pytest.approx(np.log(d2[s]), rel=1e-9, abs=1e-12)
        E[t] = (X64 @ X64[s] - E[:t].T @ E[:t, s]) / np.sqrt(d2[s])
        d2 = d2 - E[t] ** 2
        d2[order[: t + 1]] = -np.inf


@pytest.mark.parametrize("make", [_random, _tricky], ids=["random", "tricky"])
@pytest.mark.parametrize("n,d", [(700, 48), (120, 48)])
def test_logdet_feature_space_equals_cholesky_rows(make, n: int, d: int) -> None:
    """The two LogDet forms give the same picks and gains, past the rank d of the kernel too."""
    Xn = normalize_rows(make(n, d, seed=5))
    with greedy._one_blas_thread():
        features = greedy._logdet_features(Xn, n, 1.0)
        cholesky = greedy._logdet_cholesky(Xn, n, 1.0)
    assert features[0].tolist() == cholesky[0].tolist()
    np.testing.assert_allclose(features[1], cholesky[1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("make", [_random, _tricky], ids=["random", "tricky"])
@pytest.mark.parametrize("cache_columns", [None, 40], ids=["cache-default", "cache-40-columns"])
def test_gc_column_mode_equals_full_recompute(make, cache_columns: int | None, monkeypatch) -> None:
    """High-dimensional unclustered rows make GC refresh every few steps, so it goes on with kernel
    columns (also with a cache too small for a batch, which evicts): same picks as recomputing every gain
    at every step, and the same as the column mode from the first step."""
    n, budget = 1200, 500
    if cache_columns:
        monkeypatch.setattr(greedy, "_GC_CACHE_BYTES", 8 * n * cache_columns)
    X = make(n, 96, seed=31)
    order, gains = greedy_select(X, "gc", budget, gc_lambda=0.4)
    _assert_gc_recomputes_every_gain(X, order, gains)
    X64 = normalize_rows(X).astype(np.float64)
    X64 /= np.linalg.norm(X64, axis=1, keepdims=True)
    base = X64 @ X64.sum(axis=0) - 0.4
    from_start = (np.empty(budget, dtype=np.int64), np.empty(budget))
    greedy._gc_columns(X64, base, base.copy(), np.zeros(X64.shape[1]), 0.4, 1e-12 * (1 + np.abs(base).max()),
                       *from_start, 0)
    assert from_start[0].tolist() == order.tolist()


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 30), d=st.integers(1, 6), seed=st.integers(0, 2**16), fn=st.sampled_from(
    ["fl", "gc", "logdet"]), frac=st.floats(0.0, 1.0))
def test_gains_sum_to_the_objective(n: int, d: int, seed: int, fn: str, frac: float) -> None:
    X = np.random.default_rng(seed).standard_normal((n, d)) + 1e-3  # no all-zero rows
    budget = int(round(frac * n))
    order, gains = greedy_select(X, fn, budget)
    assert len(order) == budget == len(set(order.tolist()))
    assert objective(X, fn, order) == pytest.approx(gains.sum(), rel=1e-5, abs=1e-5)


# --- input errors ---------------------------------------------------------------------------------


def test_nan_and_inf_rows_are_named() -> None:
    X = _random(10, 3, seed=0)
    X[4, 1] = np.nan
    X[7, 0] = np.inf
    with pytest.raises(SmartError, match="row 4"):
        greedy_select(X, "fl", 2)
    X[4, 1] = 1.0
    with pytest.raises(SmartError, match="row 7"):
        normalize_rows(X)


def test_zero_row_is_named() -> None:
    X = _random(10, 3, seed=0)
    X[6] = 0.0
    with pytest.raises(SmartError, match="row 6.*zeros"):
        greedy_select(X, "gc", 2)


@pytest.mark.parametrize("bad,message", [
    (np.zeros(5), r"embeddings must be a 2-D array \(rows x dimensions\), got shape \(5,\)"),
    (np.zeros((2, 3, 4)), r"embeddings must be a 2-D array \(rows x dimensions\), got shape \(2, 3, 4\)"),
    (np.array([["a", "b"]]), r"embeddings must be numeric, got dtype <U1"),
])
def test_bad_shapes_and_dtypes(bad: np.ndarray, message: str) -> None:
    with pytest.raises(SmartError, match=f"^{message}$"):
        normalize_rows(bad)


def test_unknown_function() -> None:
    with pytest.raises(SmartError, match="unknown set function 'facility'"):
        greedy_select(_random(5, 2, seed=0), "facility", 1)


@pytest.mark.parametrize("budget", [-1, 6, 2.0, True, "3"])
def test_bad_budget(budget: object) -> None:
    with pytest.raises(SmartError, match="budget"):
        greedy_select(_random(5, 2, seed=0), "fl", budget)  # type: ignore[arg-type]


def test_bad_lambdas_and_selected() -> None:
    X = _random(5, 2, seed=0)
    with pytest.raises(SmartError, match="logdet_lambda"):
        greedy_select(X, "logdet", 1, logdet_lambda=0.0)
    with pytest.raises(SmartError, match="gc_lambda"):
        greedy_select(X, "gc", 1, gc_lambda=float("nan"))
    with pytest.raises(SmartError, match="position 5"):
        objective(X, "fl", [0, 5])


def test_normalize_rows_is_float32_unit_and_handles_huge_values() -> None:
    X = np.array([[3.0, 4.0], [1e200, 1e200], [-2, 0]], dtype=np.float64)
    Xn = normalize_rows(X)
    assert Xn.dtype == np.float32
    np.testing.assert_allclose(Xn, [[0.6, 0.8], [2**-0.5, 2**-0.5], [-1.0, 0.0]], rtol=1e-7)
    assert normalize_rows(np.array([[1, 2]], dtype=np.int64)).dtype == np.float32


def test_normalize_rows_may_keep_zero_rows_and_give_float64() -> None:
    """The one row normaliser of the code base: the greedy's (zero rows refused, float32), the searches'
    (zero rows kept: cosine 0 to everything) and the fixed-point task sums' (float64)."""
    X = np.array([[3.0, 4.0], [0.0, 0.0], [1e-200, 0.0]], dtype=np.float64)
    kept = normalize_rows(X, zero_rows="keep", dtype=np.float64)
    assert kept.dtype == np.float64
    np.testing.assert_array_equal(kept, [[0.6, 0.8], [0.0, 0.0], [1.0, 0.0]])
    with pytest.raises(SmartError, match="row 1 is all zeros"):
        normalize_rows(X)
    with pytest.raises(SmartError, match="row 0 has a NaN"):
        normalize_rows(np.array([[np.nan, 1.0]]), zero_rows="keep")


@pytest.mark.parametrize("n", [300, 2500])
def test_fl_kernel_gains_and_picks_ignore_blas_threads(n: int) -> None:
    """The kernel, its first gains, the picks, their gains and f(S) are bit for bit the same with 1, 2 or
    4 BLAS threads (a multithreaded OpenBLAS product rounds with its thread count on some CPUs)."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(11)
    X = (rng.standard_normal(64) + rng.standard_normal((n, 64))).astype(np.float32)
    Xn = normalize_rows(X)
    runs = []
    for threads in (1, 2, 4):
        with threadpool_limits(threads, user_api="blas"):
            K, g0 = fl_kernel(Xn)
            order, gains = greedy_select(X, "fl", 40)
            runs.append((K, g0, order, gains, objective(X, "fl", order[:25])))
    for K, g0, order, gains, f in runs[1:]:
        assert np.array_equal(K, runs[0][0]) and np.array_equal(g0, runs[0][1])
        assert np.array_equal(order, runs[0][2]) and np.array_equal(gains, runs[0][3]) and f == runs[0][4]
