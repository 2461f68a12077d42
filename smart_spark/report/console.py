"""The few plain-text lines the job prints at the end of a run (bounded whatever the number of tasks)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from smart_spark.report.cells import count, percent
from smart_spark.report.quality import console_line
from smart_spark.report.tasks import (
    WARN_SHARE,
    capped_tasks,
    family_table,
    first_pick,
    has_families,
    kept_tasks,
    whole_tasks,
)

MAX_CONSOLE_FAMILIES = 3


def format_console(summary: dict, task_weights: pd.DataFrame,
                   families: Mapping[str, str] | None = None) -> str:
    """A few plain-text lines for the job to print at the end (bounded whatever the number of tasks)."""
    n_prime = int(summary["num_instances"])
    kept = kept_tasks(task_weights)
    lines = [
        f"SMART run {summary['run_id']}: kept {count(summary['num_tasks_selected'])} of "
        f"{count(summary['num_tasks_total'])} tasks, N' = {n_prime:,}, "
        f"mixture rows {count(summary['mixture_rows'])}",
        f"  input {summary['input']} ({count(summary['input_rows'])} rows); functions {summary['task_fn']} / "
        f"{summary['instance_fn']}; strata {summary.get('strata') or 'none'}",
    ]
    fp = first_pick(kept, n_prime)
    if fp is not None:
        lines.append(f"  first pick {fp['task']}: {percent(fp['initial_share'])} of N' before capping, "
                     f"{percent(fp['final_share'])} after")
        if fp["initial_share"] > WARN_SHARE or fp["final_share"] > WARN_SHARE:
            lines.append("  WARNING: one task dominates the weights (published SMART behaviour with raw "
                         "gains; see the report)")
    lines.append(f"  tasks capped at their size: {len(capped_tasks(kept))}; "
                 f"taken whole: {len(whole_tasks(kept))}")
    table = family_table(task_weights, n_prime, families)
    if has_families(table):
        top = table.head(MAX_CONSOLE_FAMILIES)
        lines.append(f"  largest families ({len(table)} in all): " + ", ".join(
            f"{r['family']} {percent(float(r['share']))} of N' ({int(r['kept'])} of {int(r['tasks'])} tasks)"
            for _, r in top.iterrows()))
    stats = summary.get("embed_stats") or {}
    if "truncated_rows" in stats:
        lines.append(f"  prompts: {count(summary.get('empty_prompts', 0))} empty, "
                     f"{count(stats['truncated_rows'])} truncated ({percent(stats['truncated_share'])}) "
                     f"at {stats['max_tokens']} tokens, "
                     f"{count(stats.get('repeated_in_task'))} repeated within a task, "
                     f"{count(stats.get('texts_in_several_tasks'))} shared across tasks")
    stages = summary.get("stage_seconds") or {}
    if stages:
        total = sum(float(s) for s in stages.values())
        lines.append("  seconds: " + ", ".join(f"{k} {float(v):.1f}" for k, v in stages.items())
                     + f" (total {total:.1f})")
    covers = console_line(summary.get("quality"))
    if covers:
        lines.append(covers)
    if summary.get("decontamination"):
        d = summary["decontamination"]
        lines.append(f"  decontamination: removed {d['removed']:,} instances ({d['exact']:,} exact copies) "
                     f"near {d['eval_prompts']:,} evaluation prompts (cosine >= {d['threshold']})")
    if summary.get("cluster_info"):
        lines.append(f"  tasks are {len(summary['cluster_info']):,} k-means clusters (see the report)")
    lines.append(f"  output {summary['output']}")
    if summary.get("report_path"):
        lines.append(f"  report {summary['report_path']}")
    return "\n".join(lines)
