"""``smart-mixture recover --output OUT``: put back the runs a killed driver left unfinished, and exit.

    smart-mixture recover --output out/ [--stale-after 120]
    spark-submit jobs/recover.py --output main.mixtures

A run is put back when its driver ran on this host and its process is gone, or when its heartbeat is older
than ``--stale-after`` seconds (or its own, if larger); a run still heartbeating is left alone
(docs/reliability.md). Prints one line per run put back on stdout; warnings (a run that could not be
recovered now) are logged on stderr. Exit status 0; 2 for a bad flag; 1 with one line on stderr naming
the problem.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from smart_spark.cli.logs import configure_logging
from smart_spark.cli.settings import JobConfig
from smart_spark.delta import delta_io
from smart_spark.errors import SmartError
from smart_spark.spark.run_state import create_succeeded_view, recover
from smart_spark.spark.session import get_spark


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smart-mixture recover", description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="the job's --output (folder or catalog schema)")
    parser.add_argument("--stale-after", type=float, default=JobConfig.stale_after,
                        help="seconds without a heartbeat after which an unfinished run is dead (a run "
                             "of a driver on this host whose process is gone is dead at once)")
    args = parser.parse_args(argv)
    configure_logging()
    if not args.stale_after > 0:
        print(f"smart-mixture recover: error: --stale-after must be positive, got {args.stale_after}",
              file=sys.stderr)
        return 2
    try:
        refs = delta_io.output_tables(args.output)  # --output's spelling: a folder or a catalog schema
    except SmartError as exc:
        print(f"smart-mixture recover: error: {exc}", file=sys.stderr)
        return 2
    spark = get_spark("smart-mixture-recover")
    try:
        done = recover(spark, refs, stale_after=args.stale_after,
                       by="smart-mixture recover")
        create_succeeded_view(spark, args.output)
    except SmartError as exc:
        print(f"smart-mixture recover: error: {exc}", file=sys.stderr)
        return 1
    for run_id, reason in done:
        print(f"put back run {run_id}: {reason}")
    print(f"{len(done)} unfinished run(s) put back in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
