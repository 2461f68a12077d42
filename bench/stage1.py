"""Stage 1 (task selection and budgets) at FLAN scale and beyond: ``select_tasks`` + ``mixture_budgets``.

Run: ``python bench/stage1.py`` (M = 1,840 and 100,000; M' = 16, 256, 1,840 and all) or e.g.
``python bench/stage1.py --tasks 1840 --picks 16,256,all --fns gc,fl``.

Per M: random 384-d task means (Gaussian, ``--seed``) and Zipf-like task sizes
(``smart_spark.datasets.synthetic.task_sizes``; ``--rows`` instances in all, FLAN's 17.59M by default); per
function and M': seconds of ``select_tasks`` (the greedy over the M x M task kernel) and of
``mixture_budgets`` (Taylor softmax, floor-then-cycle split of N', water-filling caps; N' = 400,000 or what
the picked tasks hold), and the rise of this process's peak RSS (VmHWM, reset before each call).

Memory guard (``--max-gb``, default 12): a call whose estimated memory exceeds it is not run; the line
says what it would need. FL holds one float32 M x M kernel (M = 100,000: 40 GB, so it is skipped);
LogDet holds M' x M float64 Cholesky rows (M' = M = 100,000: 80 GB). For FL at M = 100,000 the script
measures instead (a) the dense FL greedy at the largest sizes that fit (``--fl-fit``, default 20,000 and
40,000) and extrapolates to 100,000 by (M / n)^2 (kernel build and dense updates are both quadratic),
and (b) the partitioned greedy (``partitioned_greedy_select``, P = ``--partition-size``) at M = 100,000,
which is what the product would need to run FL there on this machine (or the torch engine of
``bench/gpu_greedy.py`` on a GPU: 40 GB float32 fits one 80 GB H100). GC for more than ``--max-steps``
picks (M' = all = 100,000) is timed for ``--max-steps`` / 2 and ``--max-steps`` picks and extrapolated
linearly (printed as EXTRAPOLATED), and so is LogDet: every step costs about O(M d) there.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from measure import measure  # noqa: E402 (bench/, this script's folder)

from smart_spark.core.budgets import mixture_budgets  # noqa: E402
from smart_spark.core.partitioned import partitioned_greedy_select  # noqa: E402
from smart_spark.core.task_selection import select_tasks  # noqa: E402
from smart_spark.datasets.synthetic import task_sizes  # noqa: E402

GB = 1024**3


def estimate_gb(fn: str, m: int, k: int, d: int) -> float:
    """Rough peak memory of select_tasks(fn) on M = m tasks, M' = k picks."""
    if fn == "fl":
        return (4.0 * m * m + 2 * 4.0 * m * d + 110.0 * m) / GB
    if fn == "logdet":  # feature space (d x d state) when m >= 4 d, else Cholesky rows (k x m)
        return ((8.0 * (k * d + d * d) if m >= 4 * d else 8.0 * k * m) + 3 * 8.0 * m * d) / GB
    if fn == "gc":
        return (3 * 8.0 * m * d) / GB
    return 8.0 * m / GB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="1840,100000", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--picks", default="16,256,1840,all", type=lambda s: s.split(","))
    parser.add_argument("--fns", default="gc,fl,logdet", type=lambda s: s.split(","))
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--rows", type=int, default=17_590_000, help="instances over all tasks")
    parser.add_argument("--num-instances", type=int, default=400_000, help="N' (capped at what is held)")
    parser.add_argument("--max-gb", type=float, default=12.0)
    parser.add_argument("--fl-fit", default="20000,40000", type=lambda s: [int(x) for x in s.split(",") if x])
    parser.add_argument("--partition-size", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=10000,
                        help="gc with more picks than this: timed at half and all of it, extrapolated")
    args = parser.parse_args()

    print(f"machine: {platform.node()}, {os.cpu_count()} cores, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / GB:.0f} GiB; numpy {np.__version__}; "
          f"memory cap {args.max_gb} GiB")
    for m in args.tasks:
        rng = np.random.default_rng([args.seed, m])
        means = rng.standard_normal((m, args.dim)).astype(np.float32)
        names = [f"task_{i:06d}" for i in range(m)]
        sizes = task_sizes(max(args.rows, m), m, seed=args.seed)
        print(f"\nM = {m} tasks, d = {args.dim}, {int(sizes.sum())} instances "
              f"(largest task {int(sizes.max())}, median {int(np.median(sizes))})")
        picks = sorted({m if p == "all" else min(int(p), m) for p in args.picks})
        for fn in args.fns:
            for k in picks:
                label = f"  {fn:6} M'={k:<6}"
                need = estimate_gb(fn, m, k, args.dim)
                if need > args.max_gb:
                    what = ("the partitioned greedy (below) or a GPU (bench/gpu_greedy.py)" if fn == "fl"
                            else "a smaller M' or a partitioned greedy")
                    print(f"{label} skipped: needs ~{need:.0f} GiB > {args.max_gb} GiB cap; "
                          f"would take {what}")
                    continue
                if fn in ("gc", "logdet") and k > args.max_steps:
                    extrapolate(args, fn, means, names, k)
                    continue
                (order, gains), secs, mb = measure(
                    lambda fn=fn, k=k, means=means, names=names: select_tasks(
                        means, fn, k, names=names, seed=args.seed))
                held = int(sizes[order].sum())
                n_prime = min(args.num_instances, held)
                _, bsecs, _ = measure(lambda order=order, gains=gains, n_prime=n_prime, sizes=sizes:
                                      mixture_budgets(gains, sizes[order], n_prime))
                print(f"{label} select_tasks {secs:8.2f}s (peak +{mb:6.0f} MB)  mixture_budgets "
                      f"{bsecs * 1000:7.2f} ms (N'={n_prime})", flush=True)
        if "fl" in args.fns and estimate_gb("fl", m, m, args.dim) > args.max_gb:
            fl_fit(args, m, picks)


def extrapolate(args: argparse.Namespace, fn: str, means: np.ndarray, names: list[str], k: int) -> None:
    """GC or LogDet for k picks where that takes too long here: time two prefixes (the greedy's first
    picks are the same for any budget) and extrapolate linearly in the number of picks (on unclustered
    means each step costs about O(M d): a kernel column for GC, a row update for LogDet)."""
    k1, k2 = args.max_steps // 2, args.max_steps
    _, t1, _ = measure(lambda: select_tasks(means, fn, k1, names=names, seed=args.seed))
    _, t2, mb = measure(lambda: select_tasks(means, fn, k2, names=names, seed=args.seed))
    est = t2 + (k - k2) * (t2 - t1) / (k2 - k1)
    print(f"  {fn:6} M'={k:<6} select_tasks ~{est:7.0f}s EXTRAPOLATED from M'={k1}: {t1:.1f}s and M'={k2}: "
          f"{t2:.1f}s (peak +{mb:6.0f} MB); budgets as above", flush=True)


def fl_fit(args: argparse.Namespace, m: int, picks: list[int]) -> None:
    """FL where the dense M x M kernel does not fit: dense at smaller M (extrapolated), and partitioned."""
    print(f"  fl at M = {m}: dense kernel {4.0 * m * m / GB:.0f} GiB does not fit; dense FL at smaller M, "
          f"extrapolated by (M/n)^2:")
    for n in args.fl_fit:
        if estimate_gb("fl", n, n, args.dim) > args.max_gb:
            print(f"    n={n}: skipped, needs ~{estimate_gb('fl', n, n, args.dim):.0f} GiB")
            continue
        rng = np.random.default_rng([args.seed, n])
        X = rng.standard_normal((n, args.dim)).astype(np.float32)
        names = [f"task_{i:06d}" for i in range(n)]
        for k in [p for p in picks if p < m and p <= n]:
            _, secs, mb = measure(lambda X=X, k=k, names=names: select_tasks(X, "fl", k, names=names))
            print(f"    n={n:<6} M'={k:<6} {secs:8.2f}s (peak +{mb:6.0f} MB) -> M={m}: "
                  f"~{secs * (m / n) ** 2:.0f}s and {4.0 * m * m / GB:.0f} GiB", flush=True)
    rng = np.random.default_rng([args.seed, m])
    means = rng.standard_normal((m, args.dim)).astype(np.float32)
    ids = [f"task_{i:06d}" for i in range(m)]
    print(f"  fl at M = {m}, partitioned greedy (P = {args.partition_size}; GreeDi, not the exact greedy):")
    for k in [p for p in picks if p < m and p <= args.partition_size // 2]:
        _, secs, mb = measure(lambda k=k: partitioned_greedy_select(
            means, "fl", k, partition_size=args.partition_size, seed=args.seed, ids=ids))
        print(f"    M'={k:<6} {secs:8.2f}s (peak +{mb:6.0f} MB)", flush=True)


if __name__ == "__main__":
    main()
