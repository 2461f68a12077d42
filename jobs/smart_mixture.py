"""spark-submit entry point: build a SMART data mixture and write it as Delta tables.

    spark-submit jobs/smart_mixture.py --input data.jsonl --output out/ --num-instances 1000

The data path, top to bottom: read, build the mixture (prepare, embed, [decontaminate, cluster into
tasks,] weigh tasks, select:
:func:`smart_spark.api.mixture.build_mixture`, the same call a notebook makes), write. Each stage logs
its start and end. Flags: docs/usage.md (``--help``). Exit status (docs/usage.md): 0 finished (its ``runs``
rows say ``succeeded``; a failure after that, in the report or the view, is a warning line), 1 failed (and
whatever it committed put back), 2 bad settings; otherwise one line on stderr names the problem (an
unexpected error also shows its traceback).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Sequence

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pyspark.sql import SparkSession

from smart_spark.api.mixture import build_mixture
from smart_spark.cli.logs import configure_logging, log_level
from smart_spark.cli.settings import JobConfig, load_config
from smart_spark.delta import delta_io
from smart_spark.errors import SmartError
from smart_spark.failpoints import InjectedFailure
from smart_spark.spark.reader import read_input
from smart_spark.spark.session import get_spark
from smart_spark.spark.worker_python import check_worker_python

log = logging.getLogger(__name__)


def run(spark: SparkSession, config: JobConfig) -> dict:
    """Run the whole job once; returns the run's summary (also recorded in ``runs.metrics``).

    A budget sweep (lists of M' or N') writes one mixture per pair under ``<run-id>/m<M'>-n<N'>``;
    its summary lists them under ``"mixtures"``. Each stage logs its start and end (``smart_spark`` loggers,
    INFO) and labels its Spark jobs.
    """
    delta_io.output_tables(config.output)  # a bad --output fails now, not after the work

    # 1. Read: the input table (lazy; checked by the first step of build_mixture), once Spark's Python
    #    workers are known to run this package.
    check_worker_python(spark, encoder=config.embedding_col is None)
    raw, input_version = read_input(spark, config.input_spec())

    # 2-5. Build the mixture (smart_spark.api.mixture): prepare and check the derived columns ("read"),
    #      embed (cache), [decontaminate, cluster into tasks,] weigh tasks (stage 1), select (stage 2,
    #      partitioned greedy per group).
    result = build_mixture(raw, config=config, input_version=input_version)

    # 6. Write: mixture, [decontaminated, clusters,] task_weights, then runs, for every mixture; all or
    #    nothing; then the report.
    try:
        return result.write(config.output, report=config.report)
    finally:
        try:
            result.unpersist()
        except Exception as error:  # noqa: BLE001 -- only cached blocks stay behind
            log.warning("could not release the cached frames: %s", error)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, run, and turn any failure into one clear stderr line and a non-zero status.

    ``recover --output OUT`` instead puts back unfinished runs and exits (:mod:`smart_spark.jobs.recover`).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["recover"]:
        from smart_spark.jobs.recover import main as recover_main

        return recover_main(args[1:])
    try:
        config = load_config(args)
        delta_io.output_tables(config.output)  # --output's spelling: a folder or a catalog schema
        if config.embeddings_table:
            delta_io.table_ref(config.embeddings_table)  # likewise: a folder or db.table
    except SmartError as exc:
        print(f"smart_mixture: error: {exc}", file=sys.stderr)
        return 2
    configure_logging(log_level(config.quiet, config.verbose))
    spark = get_spark("smart-mixture", quiet_jvm=not config.verbose)
    try:
        run(spark, config)
    except (SmartError, InjectedFailure) as exc:
        print(f"smart_mixture: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # Spark, I/O, ...: the traceback above, one naming line last
        traceback.print_exc()
        first = (str(exc).strip().splitlines() or [""])[0]
        print(f"smart_mixture: error: {type(exc).__name__}: {first}", file=sys.stderr)
        return 1
    return 0


def cli() -> None:
    """Console-script entry point (``smart-mixture``): exits with :func:`main`'s status."""
    sys.exit(main())


if __name__ == "__main__":
    cli()
