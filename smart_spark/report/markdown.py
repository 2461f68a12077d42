"""The run's report.md (and, through :func:`write_report`, the budgets chart beside it).

Pure pandas; no Spark. The chart is :mod:`smart_spark.report.chart`, the console lines
:mod:`smart_spark.report.console`.
The inputs are the job's ``summary`` dict and the ``task_weights`` table (docs/tables.md; as pandas).

``summary`` keys (all present; extra keys are ignored):

- ``run_id`` (str): the run id.
- ``input`` (str): the input path or table name; ``input_version`` (int or None): its Delta version.
- ``input_rows`` (int), ``num_tasks_total`` (int, M), ``num_tasks_selected`` (int, M'),
  ``num_instances`` (int, N' asked for), ``mixture_rows`` (int, rows written).
- ``task_fn``, ``instance_fn`` (str): the stage-1 and stage-2 functions; ``strata`` (str or None).
- ``partition_size`` (int), ``seed`` (int).
- ``stage_seconds`` (dict stage -> seconds, e.g. read / embed / weigh / select / write).
- ``embed_stats`` (dict with ``texts``, ``cache_hits``, ``embedded`` and, from the job, ``truncated_rows``,
  ``truncated_share``, ``max_tokens``, ``repeated_in_task``, ``texts_in_several_tasks``, ``distinct_texts``;
  None when embeddings were given); ``empty_prompts`` (int, optional).
- ``output`` (str): the output folder or schema.
- ``group_col`` (str, optional): the ``--group-col`` that ``families`` come from.

``families`` (optional, task -> family): the view by family groups tasks by it
(:func:`~smart_spark.report.tasks.task_family`). Everything is bounded for thousands of tasks: the kept
tasks' table is complete, the family table shows the largest entries.

Optional keys: ``decontamination`` (dict: ``eval_prompts``, ``threshold``, ``removed``, ``exact``,
``per_task`` task -> rows, ``examples`` list of dicts with task, id, prompt, eval_id, eval_prompt,
similarity, match) and ``cluster_info`` (cluster task -> dict with ``cluster``, ``parent_task``,
``size`` and ``nearest``: the prompts nearest its centre, dicts with ``text`` and ``similarity``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import pandas as pd

from smart_spark.delta.refs import path_under
from smart_spark.report.cells import cell, code, count, number, percent, seconds
from smart_spark.report.chart import draw_chart
from smart_spark.report.quality import quality_chart, quality_section
from smart_spark.report.tasks import (
    WARN_SHARE,
    budget_mark,
    capped_tasks,
    family_table,
    first_pick,
    has_families,
    kept_tasks,
    not_kept,
    whole_tasks,
)

__all__ = ["build_report", "write_report"]

MAX_FAMILIES = 30
MAX_LISTED_UNSELECTED = 40
MAX_LISTED_CLUSTERS = 200
MAX_PROMPT_CHARS = 160


def _strata(value: Any) -> dict[str, int] | None:
    """stratum_budgets as a dict: accepts a dict, a list of (key, value) pairs (Arrow maps), or null."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, Mapping):
        return {str(k): int(v) for k, v in value.items()}
    try:
        return {str(k): int(v) for k, v in value}
    except (TypeError, ValueError):
        return None


def _strata_text(value: Any) -> str:
    d = _strata(value)
    if not d:
        return ""
    return ", ".join(f"{k} {v:,}" for k, v in sorted(d.items()))


LEGEND = [
    "## How to read this report",
    "",
    "- **gain**: the stage-1 greedy's marginal gain when it picked the task: how much the task's mean "
    "embedding added to the set function given the tasks picked before it. Earlier picks have larger "
    "gains.",
    "- **weight**: the task's share from a second-order Taylor softmax of the gains, "
    "(1 + g/T + (g/T)²/2) normalised over the kept tasks (T: `--temperature`). Raw gains are used, so "
    "the first pick often dominates.",
    "- **initial budget**: floor(N' × weight), then the units still missing to reach N' go one each to "
    "the tasks in pick order.",
    "- **budget** (final): a task cannot give more rows than it has. An initial budget above the task's "
    "size is cut to the size (**capped**); the excess goes one unit at a time, in pick order, to tasks "
    "still below their size. **whole task**: the final budget equals the task's size, so every row of "
    "the task is in the mixture (capped tasks always are; others get there through the excess).",
    "- **rows and texts**: budgets, sizes and N' count rows (instances). Embedding works per distinct "
    "prompt text, and the same prompt can appear in several rows, so there can be fewer texts than rows.",
    "- With strata, each task's budget is split over its strata in proportion to their rows (or as "
    "`--strata` says), with the same rounding and capping.",
    "",
]


def _share_sentences(fp: dict[str, Any], n_prime: int) -> tuple[str, str | None]:
    """(the share line, the warning or None)."""
    line = (f"The first-picked task, {code(fp['task'])}, got {percent(fp['initial_share'])} of N' "
            "before capping "
            f"({fp['initial']:,} of {n_prime:,}) and {percent(fp['final_share'])} after "
            f"({fp['budget']:,} of {n_prime:,}; its size is {fp['size']:,}).")
    if not (fp["initial_share"] > WARN_SHARE or fp["final_share"] > WARN_SHARE):
        return line, None
    share = max(fp["initial_share"], fp["final_share"])
    warning = (f"Warning: one task took {percent(share)} of the budget "
               f"({'before' if fp['initial_share'] >= fp['final_share'] else 'after'} capping). This is the "
               "published SMART behaviour with raw gains: the Taylor-softmax weights follow the greedy's "
               "marginal gains, and the first gain dwarfs the rest (with facility location at FLAN scale the "
               "first task gets over 99% before capping). A higher --temperature flattens the weights.")
    if fp["initial"] > fp["size"]:
        warning += (f" Here the cap to its size ({fp['size']:,}) brought it down to "
                    f"{percent(fp['final_share'])}, and the excess went round-robin to the other kept tasks, "
                    "so the cap shapes the mixture.")
    if fp["final_share"] > WARN_SHARE:
        warning += " Even after capping, this task holds more than half of the mixture."
    return line, warning


def _prompt_sentence(summary: dict) -> str:
    """Empty, truncated and repeated prompts, from ``empty_prompts`` and ``embed_stats``."""
    stats = summary.get("embed_stats") or {}
    parts = [f"{count(summary.get('empty_prompts', 0))} empty or whitespace-only (embedded as they are)"]
    if "truncated_rows" in stats:
        parts.append(f"{count(stats['truncated_rows'])} ({percent(stats['truncated_share'])}) longer "
                     f"than the encoder's {count(stats['max_tokens'])} tokens and truncated")
    if "repeated_in_task" in stats:
        parts.append(f"{count(stats['repeated_in_task'])} rows repeat a prompt of their own task; "
                     f"{count(stats['texts_in_several_tasks'])} distinct prompts appear in several tasks "
                     f"({count(stats['distinct_texts'])} distinct prompts in all, each embedded and cached "
                     "once)")
    return "; ".join(parts)


def build_report(summary: dict, task_weights: pd.DataFrame, *, chart_name: str = "budgets.png",
                 families: Mapping[str, str] | None = None, quality_chart_name: str | None = None) -> str:
    """The run's report as markdown (see the module docstring for the ``summary`` keys and ``families``).

    ``task_weights`` has the columns of the ``task_weights`` table (``run_id`` optional): task, selected,
    pick_rank, gain, weight, initial_budget, budget, task_size, stratum_budgets (dict, pairs, or None).
    """
    n_prime = int(summary["num_instances"])
    kept = kept_tasks(task_weights)
    rest = not_kept(task_weights)
    version = summary.get("input_version")
    out: list[str] = [f"# SMART mixture report: run `{summary['run_id']}`", ""]

    version_text = f"Delta version {version}" if version is not None else "no table version"
    strata = f"`{summary['strata']}`" if summary.get("strata") else "none"
    out += [
        f"- **Input:** `{summary['input']}` ({version_text}): {count(summary['input_rows'])} rows in "
        f"{count(summary['num_tasks_total'])} tasks",
        f"- **Tasks kept:** {count(summary['num_tasks_selected'])} of {count(summary['num_tasks_total'])} "
        "(M' of M)",
        f"- **Instances:** N' = {n_prime:,}; mixture rows written: {count(summary['mixture_rows'])}",
        f"- **Functions:** stage 1 (tasks) `{summary['task_fn']}`, stage 2 (instances) "
        f"`{summary['instance_fn']}`; strata: {strata}; partition size {count(summary['partition_size'])}; "
        f"seed {summary['seed']}",
    ]
    stats = summary.get("embed_stats")
    if stats:
        out.append(f"- **Embeddings:** {count(stats.get('texts'))} texts, {count(stats.get('cache_hits'))} "
                   f"from the cache, {count(stats.get('embedded'))} embedded")
        out.append(f"- **Prompts:** {_prompt_sentence(summary)}")
    else:
        out.append("- **Embeddings:** precomputed (`--embedding-col`)")
    out += [f"- **Output:** `{summary['output']}`", ""]
    out += LEGEND

    out += ["## Share of the first-picked task", ""]
    fp = first_pick(kept, n_prime)
    if fp is None:
        out += ["No task was selected.", ""]
    else:
        line, warning = _share_sentences(fp, n_prime)
        out += [f"> **{line}**", ""]
        if warning:
            out += [f"> ⚠️ **{warning}**", ""]

    capped = capped_tasks(kept)
    out += ["## Kept tasks, in pick order", ""]
    if not kept.empty:
        with_strata = "stratum_budgets" in kept.columns and any(_strata(v) for v in kept["stratum_budgets"])
        header = ["pick", "task", "gain", "weight", "initial budget", "budget", "size"]
        if with_strata:
            header.append("per-stratum budgets")
        align = ["---" if h in ("task", "per-stratum budgets") else "---:" for h in header]
        out += ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
        for _, r in kept.iterrows():
            cells = [str(int(r["pick_rank"])), code(r["task"]), number(r["gain"]),
                     percent(float(r["weight"])), count(r["initial_budget"]), count(r["budget"]),
                     count(r["task_size"])]
            cells[5] += budget_mark(int(r["initial_budget"]), int(r["budget"]), int(r["task_size"]))
            if with_strata:
                cells.append(cell(_strata_text(r["stratum_budgets"])))
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    names = " (" + ", ".join(code(t) for t in capped["task"]) + ")" if 0 < len(capped) <= 10 else ""
    out += [f"Tasks capped at their size: **{len(capped)}** of {len(kept)}{names}."]
    whole = whole_tasks(kept)
    names = " (" + ", ".join(code(t) for t in whole["task"]) + ")" if 0 < len(whole) <= 10 else ""
    out += [f"Tasks taken whole (final budget = size): **{len(whole)}** of {len(kept)}{names}.", ""]

    out += _family_section(task_weights, n_prime, families, summary.get("group_col"))

    out += ["## Budgets chart", "", f"![Budgets and sizes by task in pick order, and shares by family]"
            f"({chart_name})", ""]

    out += quality_section(summary, quality_chart_name)

    out += ["## Seconds per stage", "", "| stage | seconds |", "|---|---:|"]
    stages = summary.get("stage_seconds") or {}
    for stage, secs in stages.items():
        out.append(f"| {cell(stage)} | {seconds(secs)} |")
    out += [f"| **total** | **{seconds(sum(float(s) for s in stages.values()))}** |", ""]

    out += _decontamination_section(summary.get("decontamination"))
    out += _clusters_section(summary.get("cluster_info"), kept)

    out += [f"## Tasks not selected ({len(rest)})", ""]
    if not rest:
        out.append("None: every task was kept.")
    else:
        shown = rest[:MAX_LISTED_UNSELECTED]
        more = f", and {len(rest) - len(shown)} more" if len(rest) > len(shown) else ""
        out.append(", ".join(code(t) for t in shown) + more + ".")
    out.append("")
    return "\n".join(out)


def _family_section(task_weights: pd.DataFrame, n_prime: int, families: Mapping[str, str] | None,
                    group_col: str | None) -> list[str]:
    table = family_table(task_weights, n_prime, families)
    source = (f"the `--group-col` `{group_col}` value" if families is not None and group_col
              else "the given grouping" if families is not None
              else "the task name's prefix before the first `/` or `:`")
    out = ["## By family", ""]
    if not has_families(table):
        return out + [f"Family: {source}. Every task is its own family here, so the kept tasks' table "
                      "above is the view by family.", ""]
    out += [f"Family: {source}. Share of N' (final budgets) and of the kept tasks, largest first"
            + (f"; the first {MAX_FAMILIES} of {len(table)} families shown." if len(table) > MAX_FAMILIES
               else "."), "",
            "| family | tasks | kept | share of kept tasks | rows in the mixture | share of N' |",
            "|---|---:|---:|---:|---:|---:|"]
    for _, r in table.head(MAX_FAMILIES).iterrows():
        out.append(f"| `{cell(r['family'])}` | {int(r['tasks']):,} | {int(r['kept']):,} | "
                   f"{percent(float(r['kept_share']))} | {int(r['rows']):,} | {percent(float(r['share']))} |")
    rest = table.iloc[MAX_FAMILIES:]
    if len(rest):
        out.append(f"| {len(rest):,} more families | {int(rest['tasks'].sum()):,} | "
                   f"{int(rest['kept'].sum()):,} | {percent(float(rest['kept_share'].sum()))} | "
                   f"{int(rest['rows'].sum()):,} | {percent(float(rest['share'].sum()))} |")
    out.append("")
    return out


def _snippet(text: Any) -> str:
    """A prompt on one line, at most MAX_PROMPT_CHARS characters, escaped for a table cell."""
    one = " ".join(str(text).split())
    return cell(one if len(one) <= MAX_PROMPT_CHARS else one[:MAX_PROMPT_CHARS - 1] + "…")


def _decontamination_section(info: Mapping[str, Any] | None) -> list[str]:
    """Rows removed as copies of evaluation prompts: count per task and the most similar examples."""
    if not info:
        return []
    out = ["## Decontamination", "",
           f"**{info['removed']:,}** instances removed ({info['exact']:,} exact copies) as at least "
           f"{info['threshold']} cosine-similar to one of {info['eval_prompts']:,} evaluation prompts; "
           "they are in the `decontaminated` table.", ""]
    if info["per_task"]:
        out += ["| task | removed |", "|---|---:|"]
        for task, n in sorted(info["per_task"].items(), key=lambda kv: (-kv[1], kv[0])):
            out.append(f"| `{cell(task)}` | {n:,} |")
        out.append("")
    if info.get("examples"):
        out += ["| similarity | match | instance | evaluation prompt |", "|---:|---|---|---|"]
        for e in info["examples"]:
            out.append(f"| {e['similarity']:.3f} | {e['match']} | `{cell(e['id'])}`: "
                       f"{_snippet(e['prompt'])} | `{cell(e['eval_id'])}`: {_snippet(e['eval_prompt'])} |")
        out.append("")
    return out


def _clusters_section(info: Mapping[str, Mapping[str, Any]] | None, kept: pd.DataFrame) -> list[str]:
    """Per kept cluster task, in pick order: its size and the three prompts nearest its centre."""
    if not info:
        return []
    out = ["## Cluster tasks", "",
           f"{len(info):,} k-means clusters are the tasks (every row's cluster is in the `clusters` table). "
           "Kept clusters in pick order, with the prompts nearest each centre:", "",
           "| pick | cluster task | size | prompts nearest the centre (cosine) |", "|---:|---|---:|---|"]
    for _, r in kept.head(MAX_LISTED_CLUSTERS).iterrows():
        c = info.get(str(r["task"]))
        if c is None:
            continue
        near = " · ".join(f"{_snippet(p['text'])} ({p['similarity']:.2f})" for p in c["nearest"])
        out.append(f"| {int(r['pick_rank'])} | `{cell(r['task'])}` | {c['size']:,} | {near} |")
    if len(kept) > MAX_LISTED_CLUSTERS:
        out.append(f"| | … {len(kept) - MAX_LISTED_CLUSTERS:,} more kept clusters | | |")
    return out + [""]


def write_report(out_dir: str, summary: dict, task_weights: pd.DataFrame, *,
                 chart_name: str = "budgets.png", families: Mapping[str, str] | None = None
                 ) -> tuple[str, str]:
    """Write ``out_dir/report.md`` and the chart ``out_dir/<chart_name>``; return both paths."""
    md_path = path_under(out_dir, "report.md")
    png_path = path_under(out_dir, chart_name)
    os.makedirs(out_dir, exist_ok=True)
    draw_chart(task_weights, summary, png_path, families)
    runs = (summary.get("quality_report") or {}).get("runs")
    quality_png = None
    if summary.get("quality") and runs:
        quality_png = "quality.png"
        quality_chart(runs, summary["run_id"], path_under(out_dir, quality_png))
    text = build_report(summary, task_weights, chart_name=chart_name, families=families,
                        quality_chart_name=quality_png)
    with open(md_path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return md_path, png_path
