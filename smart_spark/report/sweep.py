"""A budget sweep's index (``report.md`` at the output's root): one row per mixture of the sweep."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from smart_spark.report.cells import code
from smart_spark.report.quality import figure


def sweep_index(run_id: str, mixtures: Sequence[tuple[dict, pd.DataFrame]]) -> list[str]:
    """The index's markdown lines: per mixture (its ``summary`` and ``task_weights``, as for
    :func:`~smart_spark.report.markdown.build_report`) its run id, M' kept, N', rows written and the
    first-picked task's share of N' before and after capping, and what it covers (``--quality``)."""
    index = ["# SMART budget sweep: run `" + run_id + "`", "",
             "| mixture | M' kept | N' | rows | first task's share before / after capping | coverage | "
             "redundancy | Vendi score |", "|---|---:|---:|---:|---|---:|---:|---:|"]
    for summary, task_weights in mixtures:
        first = task_weights[task_weights["selected"]].sort_values("pick_rank").iloc[0]
        n = summary["num_instances"]
        index.append(f"| `{summary['run_id']}` | {summary['num_tasks_selected']} | {n:,} | "
                     f"{summary['mixture_rows']:,} | {code(first['task'])} "
                     f"{first['initial_budget'] / n:.2%} / "
                     f"{first['budget'] / n:.2%} | " + " | ".join(
                         figure((summary.get("quality") or {}).get(k), 1 if k == "vendi" else 3)
                         for k in ("coverage", "redundancy", "vendi")) + " |")
    return index + ["", "Each mixture's report: `reports/<mixture>/report.md`."]
