"""Every report of a run: each mixture's report.md and chart, its console lines, and a sweep's index."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from smart_spark.delta.refs import path_under
from smart_spark.report.console import format_console
from smart_spark.report.markdown import write_report
from smart_spark.report.sweep import sweep_index


def write_reports(run_id: str, local_out: str | None, mixtures: Sequence[tuple[dict, pd.DataFrame]], *,
                  families: Mapping[str, str] | None = None, quiet: bool = False) -> None:
    """report.md (and the chart) of each mixture (its ``summary`` and ``task_weights``) under the local
    output folder ``local_out`` (None: a catalog schema or a remote folder, the console only), for a sweep
    below ``reports/<mixture run id>/`` with the index as ``report.md``; and, unless ``quiet``, the console
    text. Each written report's path is set as ``summary["report_path"]``."""
    sweep = len(mixtures) > 1
    for summary, task_weights in mixtures:
        if local_out is not None:
            # A run id is a name, not a path (check_run_id); the folder is checked to stay under output.
            folder = path_under(local_out, "reports", summary["run_id"]) if sweep else local_out
            summary["report_path"], _ = write_report(folder, summary, task_weights, families=families)
        if not quiet:
            print(format_console(summary, task_weights, families))
    if sweep and local_out is not None:
        index = sweep_index(run_id, mixtures)
        with open(path_under(local_out, "report.md"), "w", encoding="utf-8") as fh:
            fh.write("\n".join(index) + "\n")
        if not quiet:
            print("\n".join(index))
