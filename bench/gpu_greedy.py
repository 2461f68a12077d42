"""Facility-location greedy through torch on a GPU against our CPU engine (``smart_spark.core.greedy``).

Run on a CUDA machine (no Spark, no Java: torch and numpy; pandas for the table)::

    python bench/gpu_greedy.py                       # GPU at n = 100,000, b = 10,000; CPU at 10k and 20k
    python bench/gpu_greedy.py --device cpu --smoke  # tiny sizes, the torch engine on CPU: checks it runs

The torch engine (``smart_spark.core.greedy_torch``, used by stage 2 on GPU executors) is the CPU engine's
algorithm:

- the cosine kernel K (n x n float32, TF32 off) is built in blocks of ``--block`` rows of the upper
  triangle and mirrored, so it is exactly symmetric with a unit diagonal (n = 100,000: 40 GB, fits one
  80 GB H100; past the GPU's memory the kernel would have to be recomputed per block each step, or the
  partitioned greedy used);
- gains g_j = sum_i max(0, K_ij - m_i) are kept current in float64: after a pick s, only the ground rows
  whose running best m_i rises (K_si > m_i) change anything, and every gain drops by
  sum over those rows of clip(K_ij, m_i, K_si) - m_i, computed in blocks of rising rows;
- a pick is the smallest position within 1e-12 (relative) of the largest gain, like the CPU engine.

Compared (same data: unit rows, d = 384, 50 Gaussian clusters or ``--kind random``; b = n / 10):

- CPU engine ``greedy_select(X, "fl", b)`` at ``--cpu-sizes`` (too slow and too big at 100,000 on a
  small CPU box: its time there is extrapolated by a power law fitted to those sizes, and printed as such);
- the torch engine at the same sizes (picks compared with the CPU engine's: identical, or where they
  differ, the pick's gain is within 1e-5 relative of the best, the tolerance of docs/algorithm.md) and
  at ``--n``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smart_spark.core import greedy_torch  # noqa: E402
from smart_spark.core.greedy import greedy_select, normalize_rows, objective  # noqa: E402


def make_data(n: int, d: int, kind: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng([seed, n])
    if kind == "random":
        X = rng.standard_normal((n, d))
    else:
        centres = rng.standard_normal((50, d))
        X = centres[rng.integers(0, 50, n)] + rng.standard_normal((n, d))
    return normalize_rows(X.astype(np.float32))


def torch_fl_greedy(X_np: np.ndarray, budget: int, *, device: str, block: int = 4096
                    ) -> tuple[np.ndarray, np.ndarray, dict]:
    """The product's torch engine (``smart_spark.core.greedy_torch``) on ``device``: (order, gains, timings).

    ``kernel_s`` is a separate build of the kernel alone (then freed); ``total_s`` the whole greedy."""
    import torch

    greedy_torch._BLOCK = block
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    torch.backends.cuda.matmul.allow_tf32 = False
    t0 = time.perf_counter()
    K = greedy_torch.fl_kernel_torch(torch.from_numpy(np.ascontiguousarray(X_np)).to(device), block)
    sync()
    t_kernel = time.perf_counter() - t0
    del K
    t0 = time.perf_counter()
    order, gains = greedy_torch.fl_greedy_torch(X_np, budget, device)
    sync()
    total = time.perf_counter() - t0
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return order, gains, {"kernel_s": t_kernel, "total_s": total}


def compare_picks(X: np.ndarray, a: np.ndarray, ga: np.ndarray, b: np.ndarray, gb: np.ndarray) -> str:
    """Agreement of two FL orderings on X: identical, or the first divergence and whether it is a tie."""
    if np.array_equal(a, b):
        return f"identical picks ({a.size}); max |gain diff| {np.abs(ga - gb).max():.2e}"
    t = int(np.argmax(a != b))
    rel = abs(ga[t] - gb[t]) / max(1.0, abs(gb[t]))
    fa, fb = objective(X, "fl", a), objective(X, "fl", b)
    return (f"picks differ from step {t} (gains {ga[t]:.9g} vs {gb[t]:.9g}, rel {rel:.1e}: "
            f"{'a tie within 1e-5' if rel <= 1e-5 else 'NOT a tie'}); f = {fa:.6f} vs {fb:.6f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--cpu-sizes", default="10000,20000", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--fraction", type=float, default=0.1, help="b = fraction * n")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--kind", default="clustered", choices=["clustered", "random"])
    parser.add_argument("--block", type=int, default=4096)
    parser.add_argument("--smoke", action="store_true", help="n = 3000, CPU sizes 1000,2000")
    parser.add_argument("--results", default="gpu_results.jsonl",
                        help="JSON Lines file the rows are appended to (shared with bench/gpu_embed.py)")
    args = parser.parse_args()
    if args.smoke:
        args.n, args.cpu_sizes = 3000, [1000, 2000]

    import pandas as pd
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --device cpu (and --smoke) to check the script")
    gpu = torch.cuda.get_device_name(torch.device(args.device)) if args.device.startswith("cuda") else "none"
    print(f"machine: {platform.node()}, {os.cpu_count()} cores; GPU: {gpu}; torch {torch.__version__}; "
          f"data {args.kind}, d = {args.dim}, b = {args.fraction} n")
    rows = []
    for n in args.cpu_sizes:
        X = make_data(n, args.dim, args.kind)
        b = max(1, int(args.fraction * n))
        t0 = time.perf_counter()
        order_c, gains_c = greedy_select(X, "fl", b)
        cpu_s = time.perf_counter() - t0
        order_t, gains_t, tm = torch_fl_greedy(X, b, device=args.device, block=args.block)
        check = compare_picks(X, order_t, gains_t, order_c, gains_c)
        print(f"n={n} b={b}: cpu engine {cpu_s:.2f}s; torch {args.device} {tm['total_s']:.2f}s "
              f"(kernel {tm['kernel_s']:.2f}s); {check}", flush=True)
        rows += [{"n": n, "b": b, "engine": "cpu (core.greedy)", "seconds": cpu_s, "measured": True},
                 {"n": n, "b": b, "engine": f"torch {args.device}", "seconds": tm["total_s"],
                  "measured": True}]
    if len(args.cpu_sizes) >= 2:
        n1, n2 = args.cpu_sizes[-2:]
        t1, t2 = (r["seconds"] for r in rows if r["engine"].startswith("cpu") and r["n"] in (n1, n2))
        alpha = math.log(t2 / t1) / math.log(n2 / n1)
        est = t2 * (args.n / n2) ** alpha
        print(f"cpu engine at n={args.n}: ~{est:.0f}s EXTRAPOLATED (t ~ n^{alpha:.2f} from n={n1},{n2}); "
              f"its kernel alone is {4 * args.n**2 / 2**30:.0f} GiB")
        rows.append({"n": args.n, "b": int(args.fraction * args.n), "engine": "cpu (smart_spark.core.greedy)",
                     "seconds": est, "measured": False})
    X = make_data(args.n, args.dim, args.kind)
    b = max(1, int(args.fraction * args.n))
    need = 4 * args.n**2 / 2**30
    if args.device.startswith("cuda"):
        free = torch.cuda.mem_get_info(torch.device(args.device))[0] / 2**30
        if need + 2 > free:
            raise SystemExit(f"n={args.n}: the kernel needs {need:.0f} GiB, the GPU has {free:.0f} GiB free")
    order_t, gains_t, tm = torch_fl_greedy(X, b, device=args.device, block=args.block)
    print(f"n={args.n} b={b}: torch {args.device} {tm['total_s']:.2f}s (kernel {tm['kernel_s']:.2f}s), "
          f"f = {objective(X, 'fl', order_t):.4f}", flush=True)
    rows.append({"n": args.n, "b": b, "engine": f"torch {args.device}", "seconds": tm["total_s"],
                 "measured": True})
    print(f"\nGPU: {gpu}, device {args.device}")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    with open(args.results, "a", encoding="utf8") as fh:
        for row in rows:
            fh.write(json.dumps({"bench": "gpu_greedy", "gpu": gpu, "device": args.device, **row}) + "\n")
    print(f"appended {len(rows)} rows to {args.results}")


if __name__ == "__main__":
    main()
