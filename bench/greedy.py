"""Benchmark of the greedy engine: ours against submodlib 0.0.3 and apricot, and the partitioned greedy.

Run: ``python bench/greedy.py`` (the full benchmark, many minutes on 2 cores) or with flags to pick sizes,
e.g. ``python bench/greedy.py --sizes 2000 --kinds random --no-partitioned``.

Everything runs in this one process on the same data: unit-norm rows, d = 384, k = n / 10 picks,
``random`` (Gaussian) and ``clustered`` (50 Gaussian clusters). Per method: wall time, the objective
of its picks (always evaluated by ``smart_spark.core.greedy.objective``, so all use the same f) and peak
memory: for our numpy engines the peak traced by tracemalloc (numpy reports its arrays) in a separate
untimed run; for the others the rise of the process's peak RSS (VmHWM, reset before each call: it
counts C++ allocations, but misses memory recycled from the heap). The floor is the time of one
float32 ``X @ X.T`` (the minimum of ``--repeats`` runs, like our times; the others, seconds to minutes
each, run once). Methods whose estimated
memory exceeds ``--max-gb`` (default 12) or what the machine has free are skipped, with the reason.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import sys
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from measure import measure  # noqa: E402 (bench/, this script's folder)

from smart_spark.core.greedy import greedy_select, objective  # noqa: E402
from smart_spark.core.partitioned import partitioned_greedy_select  # noqa: E402

warnings.filterwarnings("ignore", category=DeprecationWarning)
GB = 1024**3


def _available_gb() -> float:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 / GB
    return float("nan")


def traced_peak_mb(call: Callable[[], object]) -> float:
    """Peak of the memory traced by tracemalloc during ``call()`` in MB (numpy reports its arrays)."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def make_data(kind: str, n: int, d: int, seed: int = 0) -> np.ndarray:
    """(n, d) float32 unit rows: Gaussian, or 50 Gaussian clusters (within-cluster cosine about 0.5)."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        X = rng.standard_normal((n, d))
    else:
        centres = rng.standard_normal((50, d))
        X = centres[rng.integers(0, 50, n)] + rng.standard_normal((n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32)


def kernel(X: np.ndarray) -> np.ndarray:
    """float32 cosine kernel of unit rows with an exact unit diagonal."""
    K = X @ X.T
    np.fill_diagonal(K, 1.0)
    return K


# --- the methods: each returns its pick order ---------------------------------------------------------


def ours(fn: str) -> Callable[[np.ndarray, int], np.ndarray]:
    return lambda X, k: greedy_select(X, fn, k)[0]


def submodlib_cosine(X: np.ndarray, k: int) -> np.ndarray:
    from submodlib import FacilityLocationFunction

    f = FacilityLocationFunction(n=X.shape[0], mode="dense", data=X, metric="cosine")
    return np.array([i for i, _ in f.maximize(budget=k, optimizer="LazyGreedy", show_progress=False)])


def submodlib_given(fn: str) -> Callable[[np.ndarray, int], np.ndarray]:
    def run(X: np.ndarray, k: int) -> np.ndarray:
        from submodlib import FacilityLocationFunction, GraphCutFunction, LogDeterminantFunction

        K, n = kernel(X), X.shape[0]
        if fn == "fl":
            f = FacilityLocationFunction(n=n, mode="dense", sijs=K, separate_rep=False)
        elif fn == "gc":
            f = GraphCutFunction(n=n, mode="dense", lambdaVal=0.4, ggsijs=K, separate_rep=False)
        else:
            f = LogDeterminantFunction(n=n, mode="dense", lambdaVal=1.0, sijs=K)
        return np.array([i for i, _ in f.maximize(budget=k, optimizer="LazyGreedy", show_progress=False)])

    return run


def apricot_fl(X: np.ndarray, k: int) -> np.ndarray:
    from apricot import FacilityLocationSelection

    # apricot's own 'cosine' metric is the squared cosine (another objective), so it gets our kernel;
    # it refuses negative entries, and max(K, 0) has the same FL objective (the best starts at 0)
    sel = FacilityLocationSelection(k, metric="precomputed", optimizer="lazy", verbose=False)
    return np.asarray(sel.fit(np.maximum(kernel(X), 0.0)).ranking)


def floor(X: np.ndarray, k: int) -> None:
    K = X @ X.T
    del K


# bytes needed per n^2 (estimates, from the data structures each builds)
MEMORY_PER_N2 = {
    "floor": 4, "ours fl": 4.5, "ours gc": 0, "ours logdet": 0,
    "submodlib cosine": 48,  # C++ kernel, its Python list of lists (32 B/entry), float64 array, C++ copy
    "submodlib K given fl": 8, "submodlib K given gc": 40, "submodlib K given logdet": 40,  # K.tolist()
    "apricot (K given)": 16,
}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def bench_sizes(args: argparse.Namespace) -> list[str]:
    rows = ["| fn | data | n | k | method | seconds | vs ours (speed-up) | ours / X·Xᵀ | objective | "
            "ours / theirs (objective) | peak MB (ours: traced; others: RSS rise) |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    notes: list[str] = []
    if not args.no_apricot:  # compile apricot's numba functions outside the timings
        apricot_fl(make_data("random", 50, 8), 5)
    for n in args.sizes:
        k = n // 10
        for kind in args.kinds:
            X = make_data(kind, n, args.dim)
            floor_s = min(measure(functools.partial(floor, X, k))[1] for _ in range(args.repeats))
            rows.append(f"| – | {kind} | {n} | {k} | floor: one float32 X·Xᵀ | {floor_s:.2f} | | | | | "
                        f"{4 * n * n / 2**20:.0f} (output) |")
            for fn in args.funcs:
                methods: list[tuple[str, Callable[[np.ndarray, int], np.ndarray]]] = [("ours", ours(fn))]
                if not args.no_submodlib:
                    if fn == "fl":
                        methods.append(("submodlib cosine", submodlib_cosine))
                    methods.append((f"submodlib K given {fn}", submodlib_given(fn)))
                if fn == "fl" and not args.no_apricot:
                    methods.append(("apricot (K given)", apricot_fl))
                ours_s = ours_f = float("nan")
                for name, method in methods:
                    key = f"ours {fn}" if name == "ours" else name
                    need = MEMORY_PER_N2[key] * n * n / GB
                    if need > args.max_gb or need > _available_gb() - 2:
                        notes.append(f"- skipped {name} ({fn}, {kind}, n={n}): needs about {need:.1f} GB "
                                     f"(limit {args.max_gb} GB, {_available_gb():.1f} GB available)")
                        _log(notes[-1])
                        continue
                    _log(f"{fn} {kind} n={n}: {name} ...")
                    reps = args.repeats if name == "ours" else 1
                    runs = [measure(functools.partial(method, X, k)) for _ in range(reps)]
                    order, seconds, peak = min(runs, key=lambda r: r[1])
                    peak = max(r[2] for r in runs)
                    if name == "ours":
                        peak = traced_peak_mb(functools.partial(method, X, k))
                    value = objective(X, fn, np.asarray(order, dtype=np.int64))
                    if name == "ours":
                        ours_s, ours_f = seconds, value
                        cells = ["", f"{seconds / floor_s:.2f}", f"{value:.4f}", ""]
                    else:
                        cells = [f"{seconds / ours_s:.1f}×", "", f"{value:.4f}", f"{ours_f / value:.6f}"]
                    rows.append(f"| {fn} | {kind} | {n} | {k} | {name} | {seconds:.2f} | " + " | ".join(cells)
                                + f" | {peak:.0f} |")
                    _log(rows[-1])
            del X
    return rows + [""] + notes


def bench_partitioned(args: argparse.Namespace) -> list[str]:
    n, P, k = args.part_n, args.part_size, args.part_budget
    X = make_data("clustered", n, args.dim, seed=1)
    _log(f"partitioned: n={n} P={P} k={k} ...")
    run_part = functools.partial(partitioned_greedy_select, X, "fl", k, partition_size=P)
    (order, _), part_s, _ = measure(run_part)
    part_mb = traced_peak_mb(run_part)
    part_f = objective(X, "fl", order)
    rows = ["| method | seconds | objective on all n rows | ratio to exact "
            "| peak MB (traced; exact: its kernel) |",
            "|---|---|---|---|---|",
            f"| partitioned greedy (P = {P}) | {part_s:.1f} | {part_f:.2f} | "]
    need = MEMORY_PER_N2["ours fl"] * n * n / GB
    if need > args.max_gb or need > _available_gb() - 2:
        rows[-1] += f" – | {part_mb:.0f} |"
        rows.append(f"\nexact greedy skipped: needs about {need:.1f} GB ({_available_gb():.1f} GB available)")
        return rows
    _log(f"exact greedy n={n} k={k} ...")
    (exact_order, _), exact_s, _ = measure(functools.partial(greedy_select, X, "fl", k))
    exact_mb = 4 * n * n / 2**20  # its kernel (not traced again: another 10 GB run)
    exact_f = objective(X, "fl", exact_order)
    rows[-1] += f"{part_f / exact_f:.4f} | {part_mb:.0f} |"
    rows.append(f"| exact greedy | {exact_s:.1f} | {exact_f:.2f} | 1 | {exact_mb:.0f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",") if x],
                        default=[5000, 10000, 20000])
    parser.add_argument("--kinds", type=lambda s: s.split(","), default=["random", "clustered"])
    parser.add_argument("--funcs", type=lambda s: s.split(","), default=["fl", "gc", "logdet"])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--repeats", type=int, default=3, help="runs of the floor and of ours (min)")
    parser.add_argument("--max-gb", type=float, default=12.0)
    parser.add_argument("--no-submodlib", action="store_true")
    parser.add_argument("--no-apricot", action="store_true")
    parser.add_argument("--no-partitioned", action="store_true")
    parser.add_argument("--part-n", type=int, default=50000)
    parser.add_argument("--part-size", type=int, default=5000)
    parser.add_argument("--part-budget", type=int, default=5000)
    args = parser.parse_args()

    print(f"# bench/greedy.py  ({' '.join(sys.argv[1:]) or 'defaults'})")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / GB:.1f} GiB, "
          f"numpy {np.__version__}, load average at start {os.getloadavg()[0]:.2f}\n")
    if args.sizes and args.funcs:
        print("\n".join(bench_sizes(args)))
    if not args.no_partitioned:
        print("\n## partitioned greedy (FL, clustered)\n")
        print("\n".join(bench_partitioned(args)))
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
