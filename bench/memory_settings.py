"""The same mixture under memory-saving settings as with enough memory (issue 25's 4M-row comparison).

Run: ``python bench/memory_settings.py`` (FLAN-shaped, 4M rows, 256-d, N' = 100,000) or e.g.
``python bench/memory_settings.py --size 1000000 --runs 8g:MEMORY_AND_DISK_DESER,3g:DISK_ONLY``.

Each ``--runs`` entry is ``<spark.driver.memory>:<--instance-storage>``; the first is the reference. Every
run is ``bench/scaling.py``'s child (a fresh JVM, local[2], the collection written once by
``bench/scaling.py``'s ``ensure_data``), with the job's flags plus ``--instance-storage`` and any flags
after ``--``. Printed per run: seconds per stage, peak memory per process kind, bytes spilled; then, per
run against the reference, whether the mixtures are the same rows in the same order (task, stratum,
selection_rank, id) and the share of the reference's ids it holds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from deltalake import DeltaTable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scaling import run_size  # noqa: E402  (bench/ is not a package)


def mixture_rows(output: str) -> list[tuple]:
    """The mixture table's (task, stratum, selection_rank, id) rows, sorted."""
    frame = DeltaTable(os.path.join(output, "mixture")).to_pandas(
        columns=["task", "stratum", "selection_rank", "id"])
    return sorted(frame.itertuples(index=False, name=None), key=lambda r: (r[0], str(r[1]), r[2]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=lambda s: int(float(s)), default=4_000_000)
    parser.add_argument("--tasks", type=int, default=1840)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--num-instances", type=int, default=100_000)
    parser.add_argument("--runs", default="12g:MEMORY_AND_DISK_DESER,4g:DISK_ONLY",
                        help="comma-separated <driver memory>:<instance storage>; the first is the reference")
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "smart-bench-data"))
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("job_flags", nargs="*", help="after --: more job flags")
    args = parser.parse_args()

    results = []
    try:
        for entry in args.runs.split(","):
            memory, _, storage = entry.partition(":")
            ns = argparse.Namespace(
                data_dir=args.data_dir, tasks=args.tasks, dim=args.dim, seed=0, task_rows=None, shape="flan",
                num_instances=args.num_instances, fraction=0.1, work_dir=None, conf=[], profile=True,
                cores=2, driver_memory=memory, verbose=args.verbose,
                job_flags=["--instance-storage", storage, *args.job_flags])
            print(f"\n== driver memory {memory}, --instance-storage {storage}", flush=True)
            results.append((entry, run_size(ns, args.size, keep_output=True)))
        reference = mixture_rows(results[0][1]["output"])
        ref_ids = {r[3] for r in reference}
        print(f"\nsummary ({args.size:,} rows, N' = {args.num_instances:,}; reference {results[0][0]})")
        for entry, r in results:
            rows = mixture_rows(r["output"])
            same = rows == reference
            overlap = len({x[3] for x in rows} & ref_ids) / max(1, len(ref_ids))
            stages = ", ".join(f"{k} {v:.1f}" for k, v in r["stage_seconds"].items())
            print(f"  {entry:<28} run {r['run_seconds']:7.1f}s ({stages}); JVM {r['jvm_hwm_mb']:,.0f} MB, "
                  f"workers' sum {r['workers_rss_sum_mb']:,.0f} MB, all {r['all_rss_sum_mb']:,.0f} MB; spill "
                  f"{r.get('spill_disk_mb', 0):,} MiB; mixture {len(rows):,} rows, same as the reference: "
                  f"{'yes' if same else 'NO'} (ids shared {overlap:.4%})")
    finally:
        for _, r in results:
            shutil.rmtree(r["output"], ignore_errors=True)


if __name__ == "__main__":
    main()
