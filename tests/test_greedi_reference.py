"""The partitioned greedy (GreeDi) against a deliberately naive reference written from docs/algorithm.md
alone ("The greedy", "Stage 2", "The partitioned greedy"): plain Python loops over a kernel of lists, gains
from the doc's formulas, SHA-256 from hashlib. Nothing is shared with smart_spark.core but the function
under test, so a bug in the plan (``plan_group``, which the Spark path executes too) or in any step shows
up as other picks. The Spark job's picks equal this numpy path's (tests/test_job.py).
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from smart_spark import partitioned_greedy_select

SEED = 23
LAM = {"gc": 0.4, "logdet": 1.0}


class Group:
    """One group's rows: string ids and the doc's cosine kernel K[i][j] (unit rows, float32, K_ii = 1)."""

    def __init__(self, X: np.ndarray, ids: list[str]) -> None:
        rows = []
        for x in X.tolist():
            norm = math.sqrt(sum(v * v for v in x))
            rows.append([v / norm for v in x])
        n = len(rows)
        self.ids = ids
        self.K = [[1.0 if i == j else float(np.float32(sum(a * b for a, b in zip(rows[i], rows[j]))))
                   for j in range(n)] for i in range(n)]

    def gain(self, fn: str, ground: list[int], picks: list[int], j: int) -> float:
        """Marginal gain of row j given ``picks``, over the ground set ``ground`` (doc: set functions)."""
        K = self.K
        if fn == "fl":  # sum_i max(0, K_ij - m_i), m_i the running best, starting at 0
            total = 0.0
            for i in ground:
                best = max([0.0] + [K[i][s] for s in picks])
                total += max(0.0, K[i][j] - best)
            return total
        if fn == "gc":  # c_j - 2 lambda sum_{s in S} K_js - lambda K_jj
            c_j = sum(K[i][j] for i in ground)
            return c_j - 2 * LAM["gc"] * sum(K[j][s] for s in picks) - LAM["gc"] * K[j][j]
        return self.objective("logdet", ground, picks + [j]) - self.objective("logdet", ground, picks)

    def objective(self, fn: str, ground: list[int], picks: list[int]) -> float:
        """f(S) over the ground set ``ground`` (doc: three set functions)."""
        K = self.K
        if fn == "fl":
            return sum(max([0.0] + [K[i][s] for s in picks]) for i in ground)
        if fn == "gc":
            c = sum(K[i][j] for j in picks for i in ground)
            return c - LAM["gc"] * sum(K[j][k] for j in picks for k in picks)
        if not picks:
            return 0.0
        M = np.array([[K[j][k] + (LAM["logdet"] if j == k else 0.0) for k in picks] for j in picks])
        sign, logdet = np.linalg.slogdet(M)
        assert sign > 0
        return float(logdet)

    def greedy(self, fn: str, ground: list[int], budget: int) -> tuple[list[int], list[float]]:
        """``budget`` steps of the greedy over ``ground``: the largest gain, ties to the smallest id."""
        picks: list[int] = []
        gains: list[float] = []
        for _ in range(budget):
            best, best_gain = -1, -math.inf
            for j in sorted(ground, key=lambda r: self.ids[r]):
                if j in picks:
                    continue
                g = self.gain(fn, ground, picks, j)
                if g > best_gain:
                    best, best_gain = j, g
            picks.append(best)
            gains.append(best_gain)
        return picks, gains

    def partitions(self, rows: list[int], k: int) -> list[list[int]]:
        """k partitions of ``rows``: each row's rank by (SHA-256 hex of "<seed>:part:<id>", id), mod k."""
        def key(r: int) -> tuple[str, str]:
            return hashlib.sha256(f"{SEED}:part:{self.ids[r]}".encode()).hexdigest(), self.ids[r]

        ranked = sorted(rows, key=key)
        return [[r for rank, r in enumerate(ranked) if rank % k == p] for p in range(k)]


def naive_greedi(group: Group, fn: str, budget: int, P: int) -> tuple[list[int], list[float], str]:
    """(picks, gains, finish) of the partitioned greedy as docs/algorithm.md describes it."""
    n = len(group.ids)
    everything = list(range(n))
    if n <= P:
        return (*group.greedy(fn, everything, budget), "exact")
    if budget <= P / 2:  # steps 1-4
        candidates = everything
        while True:
            k = math.ceil(len(candidates) / P)
            parts = group.partitions(candidates, k)
            local = [group.greedy(fn, part, min(budget, len(part))) for part in parts]
            union = sorted({r for picks, _ in local for r in picks})
            if len(union) <= P:
                break
            candidates = union
        picks, gains = group.greedy(fn, union, budget)
        value, finish = group.objective(fn, union, picks), "merged"
        for p, (part_picks, part_gains) in enumerate(local):
            part_value = group.objective(fn, union, part_picks)
            if part_value > value:
                picks, gains, value, finish = part_picks, part_gains, part_value, f"partition {p}"
        return picks, gains, finish
    k = math.ceil(n / P)  # b > P/2: proportional shares, floor then one unit each in partition order
    parts = group.partitions(everything, k)
    shares = [budget * len(part) // n for part in parts]
    p = 0
    while sum(shares) < budget:
        if shares[p] < len(parts[p]):
            shares[p] += 1
        p = (p + 1) % k
    local = [group.greedy(fn, part, share) for part, share in zip(parts, shares)]
    if budget <= P:
        union = sorted(r for picks, _ in local for r in picks)
        return (*group.greedy(fn, union, budget), "reordered")
    merged = sorted((-g, p, rank, r) for p, (picks, gains) in enumerate(local)
                    for rank, (r, g) in enumerate(zip(picks, gains)))
    return [r for *_, r in merged], [-g for g, *_ in merged], "interleaved"


def data(n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """Clustered float32 rows (cosines of both signs: graph cut is then not submodular, and the doc's
    greedy still takes the largest gain) and shuffled string ids, so that id order is not row order."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((6, 8))
    X = centres[rng.integers(0, 6, n)] + 0.7 * rng.standard_normal((n, 8))
    ids = [f"row-{i:04d}" for i in rng.permutation(n)]
    return X.astype(np.float32), ids


CASES = [  # fn, n, budget, P, data seed, the finish the naive reading takes
    ("fl", 40, 12, 50, 0, "exact"),
    ("fl", 150, 12, 50, 1, "merged"),  # 3 partitions, union 36 <= P
    ("fl", 300, 10, 40, 2, "merged"),  # 8 partitions, union 80 > P: a second round of 2, union 20
    ("logdet", 150, 10, 50, 3, "merged"),
    ("gc", 150, 15, 50, 4, "merged"),
    ("fl", 120, 6, 50, 8, "partition 2"),  # a partition's own picks score higher on the union
    ("logdet", 120, 6, 50, 3, "partition 1"),
    ("fl", 150, 40, 50, 5, "reordered"),  # b > P/2: shares 14, 13, 13, then one greedy on the 40
    ("logdet", 150, 30, 50, 6, "reordered"),
    ("gc", 150, 26, 50, 7, "reordered"),
    ("fl", 150, 70, 50, 9, "interleaved"),  # b > P: the partitions' orderings merged by gain
    ("gc", 150, 60, 50, 10, "interleaved"),
]


@pytest.mark.parametrize("fn,n,budget,P,seed,finish", CASES)
def test_partitioned_greedy_picks_what_the_doc_says(fn: str, n: int, budget: int, P: int, seed: int,
                                                    finish: str) -> None:
    X, ids = data(n, seed)
    ref_picks, ref_gains, ref_finish = naive_greedi(Group(X, ids), fn, budget, P)
    assert ref_finish == finish
    order, gains = partitioned_greedy_select(X, fn, budget, partition_size=P, seed=SEED, ids=ids,
                                             gc_lambda=LAM["gc"], logdet_lambda=LAM["logdet"])
    assert [ids[i] for i in order] == [ids[r] for r in ref_picks]
    np.testing.assert_allclose(gains, ref_gains, rtol=1e-5, atol=1e-6)
