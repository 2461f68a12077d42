"""Driver-side stage 1 (``weigh_tasks``: task greedy, budgets, stratum splits) with many tasks, against a
reference checkout, in one command.

Run: ``python bench/weigh.py --reference DIR`` where DIR holds another version of the code (e.g.
``git archive <commit> | tar -x -C DIR``). Per code version, a fresh subprocess builds the task means and
(task, stratum) sizes of the synthetic collection (``datasets.synthetic``: ``--rows`` rows, ``--tasks``
tasks in families, FLAN template types, 384-d) and times ``weigh_tasks`` (GC over all tasks, N' = 10% of
the rows, ``--strata flan``) ``--repeats`` times: wall seconds (min) and CPU seconds of the process (min).
The two versions alternate ``--rounds`` times; the printed ratio is reference / this tree of the medians.
On a shared machine wall times swing with other load: compare the ratio, and CPU next to wall (a wall time
far above the CPU time is time spent waiting, e.g. for BLAS threads to be scheduled).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = "WEIGH_RESULT "


def child(rows: int, tasks: int, repeats: int) -> None:
    import numpy as np
    import pandas as pd

    from smart_spark.core.weighting import Stage1Settings, weigh_tasks
    from smart_spark.datasets.synthetic import synthetic_table

    table = synthetic_table(rows, tasks, dim=384, seed=0)
    names = np.asarray(table.column("task").to_pylist(), dtype=object)
    strata = np.asarray(table.column("template_type").to_pylist(), dtype=object)
    X = table.column("embedding").combine_chunks().flatten().to_numpy().reshape(rows, -1).astype(np.float64)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    uniq, inverse = np.unique(names, return_inverse=True)
    sums = np.zeros((uniq.size, X.shape[1]))
    np.add.at(sums, inverse, X)
    counts = np.bincount(inverse)
    means = pd.DataFrame({"task": uniq, "n": counts, "mean": list(sums / counts[:, None])})
    sizes: dict = {}
    for task, stratum in zip(names, strata):
        sizes[(task, stratum)] = sizes.get((task, stratum), 0) + 1
    config = Stage1Settings(num_instances=rows // 10, stratified=True, strata="flan")
    walls, cpus = [], []
    for _ in range(repeats):
        c, w = time.process_time(), time.perf_counter()
        weigh_tasks(means, sizes, config)
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    print(MARKER + json.dumps({"wall": min(walls), "cpu": min(cpus)}), flush=True)


def run_version(code: Path, args: argparse.Namespace) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code)}
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", "--rows", str(args.rows),
                          "--tasks", str(args.tasks), "--repeats", str(args.repeats)],
                         env=env, capture_output=True, text=True, check=True, cwd=str(code))
    line = next(x for x in out.stdout.splitlines() if x.startswith(MARKER))
    return json.loads(line[len(MARKER):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", help="folder with the reference version of the code")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.rows, args.tasks, args.repeats)
        return
    versions = {"this tree": ROOT}
    if args.reference:
        versions["reference"] = Path(args.reference).resolve()
    results: dict[str, list[dict]] = {name: [] for name in versions}
    for _ in range(args.rounds):
        for name, code in versions.items():
            results[name].append(run_version(code, args))
    print(f"weigh_tasks: {args.rows:,} rows, {args.tasks:,} tasks, GC over all tasks, strata flan; "
          f"load average {os.getloadavg()[0]:.1f}")
    med = {}
    for name, runs in results.items():
        med[name] = {k: statistics.median(r[k] for r in runs) for k in ("wall", "cpu")}
        walls = ", ".join(f"{r['wall']:.3f}" for r in runs)
        print(f"  {name:10s} wall {med[name]['wall']:.3f} s  CPU {med[name]['cpu']:.3f} s  (walls: {walls})")
    if "reference" in med:
        print(f"  reference / this tree: wall {med['reference']['wall'] / med['this tree']['wall']:.2f}x, "
              f"CPU {med['reference']['cpu'] / med['this tree']['cpu']:.2f}x")


if __name__ == "__main__":
    main()
