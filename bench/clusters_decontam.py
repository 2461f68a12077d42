"""Benchmark: semantic decontamination and k-means cluster tasks on precomputed embeddings.

    PYTHONPATH=$PWD .venv/bin/python bench/clusters_decontam.py --rows 1000000 --evals 50000 --k 1000

Generates ``--rows`` 384-d embeddings (``--groups`` hidden groups plus noise) as Parquet and ``--evals``
evaluation embeddings (1% of them planted copies of instances), then times, on a local[N] Spark session:

1. decontamination: :func:`smart_spark.spark.decontaminate.find_matches` over every row (blocked matrix
   products against the broadcast evaluation set), counting the matches;
2. k-means: :func:`smart_spark.spark.clusters.fit_centres` (Spark ML KMeans, k-means||, K = ``--k``,
   ``--max-iter`` iterations) and the assignment of every row to its nearest centre.

Each stage runs at ``--rows`` and at a reference size (``--rows / --ref-ratio``) in the same command and
the ratio of seconds is printed (linear scaling gives ``--ref-ratio``). Peak memory: the highest summed
RSS of the Spark JVM and its Python workers, sampled every 0.2 s during the stage.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from smart_spark.core.greedy import normalize_rows  # noqa: E402
from smart_spark.spark.clusters import ASSIGN_SCHEMA, assign_clusters, fit_centres  # noqa: E402
from smart_spark.spark.decontaminate import EvalSet, find_matches  # noqa: E402
from smart_spark.spark.session import get_spark  # noqa: E402

DIM = 384


def write_rows(path: str, rows: int, groups: int, seed: int) -> np.ndarray:
    """Write ``rows`` (id, embedding) rows to ``path`` in 50,000-row files; return 1% of them (copies)."""
    rng = np.random.default_rng(seed)
    centres = normalize_rows(rng.normal(size=(groups, DIM)))
    os.makedirs(path, exist_ok=True)
    sample = []
    for start in range(0, rows, 50_000):
        n = min(50_000, rows - start)
        X = centres[rng.integers(0, groups, n)] + rng.normal(scale=0.05, size=(n, DIM)).astype(np.float32)
        X = X.astype(np.float32)
        sample.append(X[: max(1, n // 100)])
        flat = pa.array(X.ravel())
        emb = pa.ListArray.from_arrays(pa.array(np.arange(0, (n + 1) * DIM, DIM, dtype=np.int32)), flat)
        ids = pa.array([f"r{i:09d}" for i in range(start, start + n)])
        pq.write_table(pa.table({"id": ids, "embedding": emb}), f"{path}/part-{start // 50_000:05d}.parquet")
    return np.concatenate(sample)


class PeakRSS:
    """Peak summed RSS (MB) of the JVM (this process's children) and their descendants, sampled."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _tree(self) -> list[int]:
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat", "rb") as fh:
                        stat = fh.read().decode(errors="replace")
                    parents[int(entry)] = int(stat[stat.rindex(")") + 2:].split()[1])
                except (OSError, ValueError):
                    continue
        out, todo = [], [os.getpid()]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo += [c for c, p in parents.items() if p == pid]
        return out

    def _rss(self) -> float:
        total = 0.0
        for pid in self._tree():
            try:
                with open(f"/proc/{pid}/status") as fh:
                    for line in fh:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1]) / 1024
            except OSError:
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.2)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def timed(label: str, call):
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        result = call()
        seconds = time.perf_counter() - t0
    print(f"  {label}: {seconds:,.1f} s, peak RSS (driver JVM + Python workers + this process) "
          f"{mem.peak:,.0f} MB", flush=True)
    return result, seconds


def run_size(spark: SparkSession, folder: str, rows: int, args) -> dict[str, float]:
    print(f"rows = {rows:,}", flush=True)
    copies = write_rows(f"{folder}/rows-{rows}", rows, args.groups, seed=rows)
    rng = np.random.default_rng(7)
    planted = copies[rng.choice(len(copies), min(len(copies), args.evals // 100), replace=False)]
    fresh = rng.normal(size=(args.evals - len(planted), DIM)).astype(np.float32)
    evals = EvalSet(ids=[f"e{i:06d}" for i in range(args.evals)], prompts=[""] * args.evals,
                    embeddings=normalize_rows(np.concatenate([planted, fresh])))
    df = spark.read.parquet(f"{folder}/rows-{rows}")
    out = {}
    matches, out["decontaminate"] = timed(
        f"decontaminate vs {args.evals:,} evaluation prompts",
        lambda: find_matches(df, evals, threshold=args.threshold).count())
    print(f"    matches: {matches:,} (planted copies: {len(planted):,})")
    centres, out["kmeans_fit"] = timed(
        f"k-means fit, K = {args.k:,}, up to {args.max_iter} iterations, "
        f"{args.restarts or 'default number of'} fit(s)",
        lambda: fit_centres(df, rows, k=args.k, seed=23, max_iter=args.max_iter, restarts=args.restarts))
    import functools

    assign = functools.partial(assign_clusters, centres={None: centres})
    _, out["kmeans_assign"] = timed(
        "assign every row to its nearest centre",
        lambda: df.mapInArrow(assign, ASSIGN_SCHEMA).agg(F.countDistinct("cluster")).first())
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--evals", type=int, default=50_000)
    p.add_argument("--k", type=int, default=1_000)
    p.add_argument("--groups", type=int, default=2_000)
    p.add_argument("--max-iter", type=int, default=20, help="Lloyd iterations at most (the job's 20)")
    p.add_argument("--threshold", type=float, default=0.8)
    p.add_argument("--restarts", type=int, default=None,
                   help="k-means fits (default: the job's, 3 for K <= 100, else 1)")
    p.add_argument("--ref-ratio", type=int, default=10)
    p.add_argument("--master", default="local[2]")
    p.add_argument("--driver-memory", default="6g")
    args = p.parse_args()
    spark = get_spark("bench-clusters-decontam", master=args.master,
                      conf={"spark.driver.memory": args.driver_memory, "spark.ui.enabled": "false",
                            "spark.ui.showConsoleProgress": "false", "spark.sql.shuffle.partitions": "8"})
    spark.sparkContext.setLogLevel("ERROR")
    with tempfile.TemporaryDirectory() as folder:
        ref = run_size(spark, folder, args.rows // args.ref_ratio, args)
        big = run_size(spark, folder, args.rows, args)
    print(f"ratio of seconds, {args.rows:,} rows / {args.rows // args.ref_ratio:,} rows "
          f"(linear = {args.ref_ratio}):")
    for stage in big:
        print(f"  {stage}: {big[stage] / ref[stage]:.1f}")
    spark.stop()


if __name__ == "__main__":
    main()
