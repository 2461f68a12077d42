"""What ``--quality`` adds to the job: one input run with ``--no-quality`` and ``--quality``, interleaved.

Run: ``python bench/quality_cost.py`` (1,000,000 rows, N' = 100,000, 384-d precomputed embeddings,
``local[2]``; the synthetic collection of ``bench/scaling.py``, written once to ``--data-dir``) or e.g.
``python bench/quality_cost.py --rows 200000 --num-instances 20000 --rounds 1``.

Each run is a fresh JVM (``bench/scaling.py``'s child); the rounds alternate the two settings so both
see the same machine. Printed: per run the job's seconds per stage, then the medians and the ratio of
job time (``run``, without the JVM start) with the quality stage to without it (target: at most 1.25x).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scaling import run_size  # noqa: E402  (bench/scaling.py: the data, the child job, the sampler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--num-instances", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "smart-bench-data"))
    args = parser.parse_args()
    os.makedirs(args.data_dir, exist_ok=True)
    base = dict(tasks=args.tasks, dim=args.dim, seed=0, fraction=0.1, num_instances=args.num_instances,
                task_rows=None, cores=2, driver_memory=args.driver_memory, conf=[], data_dir=args.data_dir,
                work_dir=None, verbose=False, profile=False)
    runs: dict[str, list[dict]] = {"--no-quality": [], "--quality": []}
    for r in range(args.rounds):
        for flag in (("--no-quality", "--quality") if r % 2 == 0 else ("--quality", "--no-quality")):
            print(f"round {r + 1}, {flag}", flush=True)
            runs[flag].append(run_size(argparse.Namespace(**base, job_flags=[flag]), args.rows))
    off = statistics.median(x["run_seconds"] for x in runs["--no-quality"])
    on = statistics.median(x["run_seconds"] for x in runs["--quality"])
    stage = statistics.median(x["stage_seconds"].get("quality", 0.0) for x in runs["--quality"])
    print(f"\n{args.rows:,} rows, N' = {args.num_instances:,}, {args.dim}-d, {args.rounds} round(s): job "
          f"{off:.1f} s without quality, {on:.1f} s with it; quality stage {stage:.1f} s; "
          f"ratio {on / off:.2f}x (target <= 1.25x: {'met' if on / off <= 1.25 else 'NOT met'})")


if __name__ == "__main__":
    main()
