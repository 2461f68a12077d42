"""Export one run of the ``mixture`` table as shuffled, sharded training files (JSON Lines and/or Parquet).

    python jobs/export_mixture.py --output out/ --run-id RUN --dest export/ --shards 4 [--chat]

Reads the run's rows from the job's ``mixture`` table (``--output`` is the job's output folder or catalog
schema), shuffles them deterministically with ``--seed`` and writes ``train-0000i-of-0000N.jsonl`` and/or
``parquet/train-0000i-of-0000N.parquet`` plus ``manifest.json`` under ``--dest`` (see
``smart_spark/export.py``). A run whose ``runs`` row says ``running`` or ``abandoned`` is not finished and
is refused unless ``--allow-unfinished`` asks for it. Exit status 0 on success; otherwise one line on stderr
that names the problem (2: bad flags).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from smart_spark.errors import SmartError
from smart_spark.export.shards import FORMATS, ExportOptions, export_mixture

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

PROG = "export_mixture"


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags."""
    parser = argparse.ArgumentParser(
        prog="export_mixture.py",
        description="Export one run of the SMART mixture as shuffled, sharded JSON Lines / Parquet files.",
    )
    parser.add_argument("--output", required=True,
                        help="the job's --output: folder of the Delta tables, or catalog schema (catalog.db)")
    parser.add_argument("--run-id", required=True, help="the run to export")
    parser.add_argument("--dest", required=True,
                        help="folder for the files (local path, /Volumes/... or a URI the driver can reach)")
    parser.add_argument("--format", choices=FORMATS, default="jsonl", help="what to write (default jsonl)")
    parser.add_argument("--chat", action="store_true",
                        help='JSON Lines as {"messages": [...]}: the mixture\'s --messages-col unchanged '
                             '(chat input), else [system?, user, assistant] from --prompt-col/--response-col')
    parser.add_argument("--messages-col", default="messages",
                        help="mixture column of chat turns written back by --chat (default messages)")
    parser.add_argument("--shards", type=int, default=1, help="number of files per format (default 1)")
    parser.add_argument("--seed", type=int, default=23, help="shuffle seed (default 23)")
    parser.add_argument("--prompt-col", default="prompt",
                        help="mixture column of the prompt (default prompt)")
    parser.add_argument("--response-col", default="response",
                        help="mixture column of the response (default response)")
    parser.add_argument("--system", default=None, help="system message of every chat (needs --chat)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier export in --dest (its manifest and train-* files)")
    parser.add_argument("--allow-unfinished", action="store_true",
                        help="export a run whose runs row says running or abandoned (refused otherwise)")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> tuple[ExportOptions, bool]:
    """Flags to validated :class:`ExportOptions` and ``--allow-unfinished`` (argparse exits 2 on a malformed
    command line)."""
    args = vars(build_parser().parse_args(argv))
    allow_unfinished = bool(args.pop("allow_unfinished"))
    options = ExportOptions(**args)
    options.validate()
    return options, allow_unfinished


def parse_options(argv: Sequence[str] | None = None) -> ExportOptions:
    """Flags to validated :class:`ExportOptions` (argparse exits 2 on a malformed command line)."""
    return parse_args(argv)[0]


def check_finished(spark: SparkSession, output: str, run_id: str) -> None:
    """SmartError when ``run_id``'s ``runs`` row says ``running`` or ``abandoned`` (not finished).

    A run without a ``runs`` row (a ``mixture`` table written by other means) is not refused."""
    from pyspark.sql import functions as F

    from smart_spark.delta import delta_io
    from smart_spark.spark.run_state import ABANDONED, RUNNING

    runs = delta_io.output_tables(output)["runs"]
    if not delta_io.exists(spark, runs):
        return
    rows = delta_io.read(spark, runs).where(F.col("run_id") == run_id).select("status").collect()
    status = rows[0]["status"] if rows else None
    if status in (RUNNING, ABANDONED):
        raise SmartError(f"run {run_id} is {status}, not finished (its runs row in {output}); export a "
                         "succeeded run, or pass --allow-unfinished")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, export, and turn any failure into one clear stderr line and a non-zero status."""
    try:
        options, allow_unfinished = parse_args(argv)
    except SmartError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    from smart_spark.spark.session import get_spark

    spark = get_spark("smart-export")
    try:
        if not allow_unfinished:
            check_finished(spark, options.output, options.run_id)
        manifest = export_mixture(spark, options)
    except SmartError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # Spark, I/O, ...: the traceback above, one naming line last
        traceback.print_exc()
        first = (str(exc).strip().splitlines() or [""])[0]
        print(f"{PROG}: error: {type(exc).__name__}: {first}", file=sys.stderr)
        return 1
    print(f"{PROG}: {manifest['rows']} rows of run {options.run_id} in {len(manifest['files'])} files "
          f"under {options.dest}")
    return 0


def cli() -> None:
    """Console-script / Databricks wheel entry point: returns on success, raises SystemExit otherwise."""
    code = main()
    if code:
        raise SystemExit(code)


if __name__ == "__main__":
    sys.exit(main())
