"""The quality stage's cosine maxima on this CPU: float32 tiles against one (rows x every key) block.

Run: ``python bench/quality_products.py`` (4,000 query rows against 50,000 key rows of 384 dimensions:
a whole part's shape, one BLAS thread per process, ``--procs 2`` processes at once as on ``local[2]``).

Printed per process: GFLOPS (2 x queries x keys x dim / seconds) of the reference (the maxima of one
block of every key for ``2^24 / keys`` rows at a time, the stage's scheme before tiles), of
:func:`smart_spark.core.quality.max_cosine` (1,024 x 1,024 tiles), and of torch's bfloat16 and float32
matrix products (what the bfloat16 first pass of ``core/quality_bf16.py`` could gain on this CPU); then
the ratio of the reference's time to the tiles'. The figures depend on the CPU, not on the values, so
the rows are random unit vectors.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time

import numpy as np


def unit_rows(n: int, dim: int, seed: int) -> np.ndarray:
    X = np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def block_maxima(queries: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """The reference: rows of ``2^24 / keys`` queries against every key at once, then each row's max."""
    out = np.empty(len(queries))
    step = max(1, (1 << 24) // len(keys))
    for start in range(0, len(queries), step):
        out[start:start + step] = (queries[start:start + step] @ keys.T).max(axis=1)
    return out


def seconds(fn, repeats: int) -> float:
    fn()  # warm: first touches of memory, BLAS and torch start-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def measure(args: argparse.Namespace) -> dict[str, float]:
    import torch
    from threadpoolctl import threadpool_limits

    from smart_spark.core.quality import max_cosine

    torch.set_num_threads(1)
    queries, keys = unit_rows(args.queries, args.dim, 1), unit_rows(args.keys, args.dim, 2)
    flop = 2.0 * args.queries * args.keys * args.dim
    q16, k16 = torch.from_numpy(queries).bfloat16(), torch.from_numpy(keys).bfloat16().T.contiguous()
    q32, k32 = torch.from_numpy(queries), torch.from_numpy(keys).T.contiguous()
    with threadpool_limits(1, user_api="blas"), torch.no_grad():
        assert np.abs(block_maxima(queries, keys) - max_cosine(queries, keys)).max() < 1e-5
        return {
            "block": flop / seconds(lambda: block_maxima(queries, keys), args.repeats) / 1e9,
            "tiles": flop / seconds(lambda: max_cosine(queries, keys), args.repeats) / 1e9,
            "torch bf16 mm": flop / seconds(lambda: torch.mm(q16, k16), 1) / 1e9,
            "torch f32 mm": flop / seconds(lambda: torch.mm(q32, k32), 1) / 1e9,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=4000)
    parser.add_argument("--keys", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--procs", type=int, default=2, help="processes at once, one BLAS thread each")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with multiprocessing.get_context("spawn").Pool(args.procs) as pool:
        results = pool.map(measure, [args] * args.procs)
    print(f"{args.queries:,} x {args.keys:,} x {args.dim}, {args.procs} process(es) at once, "
          "GFLOPS per process:")
    for i, r in enumerate(results):
        print(f"  process {i}: " + ", ".join(f"{k} {v:.0f}" for k, v in r.items()))
    ratio = np.median([r["tiles"] / r["block"] for r in results])
    print(f"tiles / block speed (median over processes): {ratio:.2f}x")


if __name__ == "__main__":
    main()
