"""The run's readable report: markdown, a budgets chart (PNG) and a short console summary.

Pure pandas and matplotlib (the Agg canvas, without pyplot, so no global backend is switched); no Spark.
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

``families`` (optional, task -> family): the view by family groups tasks by it; without it a task's
family is its name's prefix before the first ``/`` or ``:`` (FLAN-style ``<family>/<subtask>`` names).
Everything is bounded for thousands of tasks: the kept tasks' table is complete, the chart, the family
table and the console summary show the largest entries.

Optional keys: ``decontamination`` (dict: ``eval_prompts``, ``threshold``, ``removed``, ``exact``,
``per_task`` task -> rows, ``examples`` list of dicts with task, id, prompt, eval_id, eval_prompt,
similarity, match) and ``cluster_info`` (cluster task -> dict with ``cluster``, ``parent_task``,
``size`` and ``nearest``: the prompts nearest its centre, dicts with ``text`` and ``similarity``).
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Mapping
from typing import Any

import pandas as pd

from smart_spark.delta.refs import path_under
from smart_spark.report.quality import console_line, quality_chart, quality_section

__all__ = ["build_report", "code", "format_console", "write_report"]

MAX_CHART_TASKS = 50
MAX_CHART_FAMILIES = 20
MAX_FAMILIES = 30
MAX_CONSOLE_FAMILIES = 3
MAX_LISTED_UNSELECTED = 40
MAX_LISTED_CLUSTERS = 200
MAX_PROMPT_CHARS = 160
WARN_SHARE = 0.5
_FAMILY_SEPARATOR = re.compile(r"[/:]")


# ----------------------------------------------------------------------------------------------------
# Small formatting helpers


def _int(x: Any) -> str:
    """1234 -> '1,234'; None/NaN -> 'n/a'."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{int(x):,}"


def _pct(x: float) -> str:
    """A share as a percentage with two decimals ('99.50%'); tiny positive shares as '<0.01%'."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if 0 < x < 0.0001:
        return "<0.01%"
    return f"{x * 100:.2f}%"


def _num(x: Any) -> str:
    """A gain: four significant digits."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{float(x):.4g}"


def _share(part: Any, whole: Any) -> float:
    return float(part) / float(whole) if whole else float("nan")


def _md(text: Any) -> str:
    """Escape a cell for a markdown table."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def code(text: Any) -> str:
    """``text`` as a markdown code span that survives backticks, pipes and newlines in task names
    (safe inside table cells too)."""
    s = _md(text)
    if "`" not in s:
        return f"`{s}`"
    return f"`` {s} ``"


def _plain(text: Any) -> str:
    """A task name as matplotlib text: ``$`` escaped so names never turn into mathtext."""
    return str(text).replace("$", "\\$").replace("\n", " ")


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


def _seconds(x: Any) -> str:
    return f"{float(x):,.1f}"


# ----------------------------------------------------------------------------------------------------
# What the report is made of


def _kept(task_weights: pd.DataFrame) -> pd.DataFrame:
    """Selected tasks in pick order."""
    sel = task_weights[task_weights["selected"].fillna(False).astype(bool)]
    return sel.sort_values(["pick_rank", "task"], kind="stable").reset_index(drop=True)


def _not_kept(task_weights: pd.DataFrame) -> list[str]:
    rest = task_weights[~task_weights["selected"].fillna(False).astype(bool)]
    return sorted(str(t) for t in rest["task"])


def _first_pick(kept: pd.DataFrame, n_prime: int) -> dict[str, Any] | None:
    """The first-picked task with its share of N' before and after capping."""
    if kept.empty:
        return None
    row = kept.iloc[0]
    return {
        "task": str(row["task"]),
        "initial": int(row["initial_budget"]),
        "budget": int(row["budget"]),
        "size": int(row["task_size"]),
        "initial_share": _share(row["initial_budget"], n_prime),
        "final_share": _share(row["budget"], n_prime),
    }


def _capped(kept: pd.DataFrame) -> pd.DataFrame:
    """Kept tasks whose budget before capping was above their size."""
    return kept[kept["initial_budget"].astype("int64") > kept["task_size"].astype("int64")]


def _whole(kept: pd.DataFrame) -> pd.DataFrame:
    """Kept tasks whose final budget is their size: every row of the task is in the mixture."""
    return kept[kept["budget"].astype("int64") >= kept["task_size"].astype("int64")]


def _budget_mark(initial: int, budget: int, size: int) -> str:
    """The note after a final budget: '(capped; whole task)', '(whole task)' or ''."""
    if budget >= size:
        return " (capped; whole task)" if initial > size else " (whole task)"
    return ""


def task_family(task: str, families: Mapping[str, str] | None = None) -> str:
    """``families[task]`` when given, else the name's prefix before the first ``/`` or ``:`` (the whole
    name when it has neither)."""
    if families is not None and task in families:
        return str(families[task])
    head = _FAMILY_SEPARATOR.split(str(task), maxsplit=1)[0]
    return head or str(task)


def family_table(task_weights: pd.DataFrame, n_prime: int,
                 families: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per family, largest share of N' first: family, tasks, kept, rows (final budgets),
    share (of N'), kept_share (of the kept tasks)."""
    frame = task_weights.assign(
        family=[task_family(t, families) for t in task_weights["task"]],
        kept=task_weights["selected"].fillna(False).astype(bool),
        rows=task_weights["budget"].fillna(0).astype("int64"),
    )
    out = frame.groupby("family", sort=True).agg(tasks=("task", "size"), kept=("kept", "sum"),
                                                 rows=("rows", "sum")).reset_index()
    total_kept = max(int(out["kept"].sum()), 1)
    out["share"] = out["rows"] / n_prime if n_prime else float("nan")
    out["kept_share"] = out["kept"] / total_kept
    out = out.sort_values(["rows", "kept", "family"], ascending=[False, False, True], kind="stable")
    return out.reset_index(drop=True)


def _has_families(table: pd.DataFrame) -> bool:
    """Whether grouping says anything: some family holds more than one task."""
    return bool(len(table)) and int(table["tasks"].max()) > 1


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
    line = (f"The first-picked task, {code(fp['task'])}, got {_pct(fp['initial_share'])} of N' "
            "before capping "
            f"({fp['initial']:,} of {n_prime:,}) and {_pct(fp['final_share'])} after "
            f"({fp['budget']:,} of {n_prime:,}; its size is {fp['size']:,}).")
    if not (fp["initial_share"] > WARN_SHARE or fp["final_share"] > WARN_SHARE):
        return line, None
    share = max(fp["initial_share"], fp["final_share"])
    warning = (f"Warning: one task took {_pct(share)} of the budget "
               f"({'before' if fp['initial_share'] >= fp['final_share'] else 'after'} capping). This is the "
               "published SMART behaviour with raw gains: the Taylor-softmax weights follow the greedy's "
               "marginal gains, and the first gain dwarfs the rest (with facility location at FLAN scale the "
               "first task gets over 99% before capping). A higher --temperature flattens the weights.")
    if fp["initial"] > fp["size"]:
        warning += (f" Here the cap to its size ({fp['size']:,}) brought it down to "
                    f"{_pct(fp['final_share'])}, and the excess went round-robin to the other kept tasks, "
                    "so the cap shapes the mixture.")
    if fp["final_share"] > WARN_SHARE:
        warning += " Even after capping, this task holds more than half of the mixture."
    return line, warning


def _prompt_sentence(summary: dict) -> str:
    """Empty, truncated and repeated prompts, from ``empty_prompts`` and ``embed_stats``."""
    stats = summary.get("embed_stats") or {}
    parts = [f"{_int(summary.get('empty_prompts', 0))} empty or whitespace-only (embedded as they are)"]
    if "truncated_rows" in stats:
        parts.append(f"{_int(stats['truncated_rows'])} ({_pct(stats['truncated_share'])}) longer "
                     f"than the encoder's {_int(stats['max_tokens'])} tokens and truncated")
    if "repeated_in_task" in stats:
        parts.append(f"{_int(stats['repeated_in_task'])} rows repeat a prompt of their own task; "
                     f"{_int(stats['texts_in_several_tasks'])} distinct prompts appear in several tasks "
                     f"({_int(stats['distinct_texts'])} distinct prompts in all, each embedded and cached "
                     "once)")
    return "; ".join(parts)


# ----------------------------------------------------------------------------------------------------
# Public API


def build_report(summary: dict, task_weights: pd.DataFrame, *, chart_name: str = "budgets.png",
                 families: Mapping[str, str] | None = None, quality_chart_name: str | None = None) -> str:
    """The run's report as markdown (see the module docstring for the ``summary`` keys and ``families``).

    ``task_weights`` has the columns of the ``task_weights`` table (``run_id`` optional): task, selected,
    pick_rank, gain, weight, initial_budget, budget, task_size, stratum_budgets (dict, pairs, or None).
    """
    n_prime = int(summary["num_instances"])
    kept = _kept(task_weights)
    rest = _not_kept(task_weights)
    version = summary.get("input_version")
    out: list[str] = [f"# SMART mixture report: run `{summary['run_id']}`", ""]

    version_text = f"Delta version {version}" if version is not None else "no table version"
    strata = f"`{summary['strata']}`" if summary.get("strata") else "none"
    out += [
        f"- **Input:** `{summary['input']}` ({version_text}): {_int(summary['input_rows'])} rows in "
        f"{_int(summary['num_tasks_total'])} tasks",
        f"- **Tasks kept:** {_int(summary['num_tasks_selected'])} of {_int(summary['num_tasks_total'])} "
        "(M' of M)",
        f"- **Instances:** N' = {n_prime:,}; mixture rows written: {_int(summary['mixture_rows'])}",
        f"- **Functions:** stage 1 (tasks) `{summary['task_fn']}`, stage 2 (instances) "
        f"`{summary['instance_fn']}`; strata: {strata}; partition size {_int(summary['partition_size'])}; "
        f"seed {summary['seed']}",
    ]
    stats = summary.get("embed_stats")
    if stats:
        out.append(f"- **Embeddings:** {_int(stats.get('texts'))} texts, {_int(stats.get('cache_hits'))} "
                   f"from the cache, {_int(stats.get('embedded'))} embedded")
        out.append(f"- **Prompts:** {_prompt_sentence(summary)}")
    else:
        out.append("- **Embeddings:** precomputed (`--embedding-col`)")
    out += [f"- **Output:** `{summary['output']}`", ""]
    out += LEGEND

    out += ["## Share of the first-picked task", ""]
    fp = _first_pick(kept, n_prime)
    if fp is None:
        out += ["No task was selected.", ""]
    else:
        line, warning = _share_sentences(fp, n_prime)
        out += [f"> **{line}**", ""]
        if warning:
            out += [f"> ⚠️ **{warning}**", ""]

    capped = _capped(kept)
    out += ["## Kept tasks, in pick order", ""]
    if not kept.empty:
        with_strata = "stratum_budgets" in kept.columns and any(_strata(v) for v in kept["stratum_budgets"])
        header = ["pick", "task", "gain", "weight", "initial budget", "budget", "size"]
        if with_strata:
            header.append("per-stratum budgets")
        align = ["---" if h in ("task", "per-stratum budgets") else "---:" for h in header]
        out += ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
        for _, r in kept.iterrows():
            cells = [str(int(r["pick_rank"])), code(r["task"]), _num(r["gain"]),
                     _pct(float(r["weight"])), _int(r["initial_budget"]), _int(r["budget"]),
                     _int(r["task_size"])]
            cells[5] += _budget_mark(int(r["initial_budget"]), int(r["budget"]), int(r["task_size"]))
            if with_strata:
                cells.append(_md(_strata_text(r["stratum_budgets"])))
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    names = " (" + ", ".join(code(t) for t in capped["task"]) + ")" if 0 < len(capped) <= 10 else ""
    out += [f"Tasks capped at their size: **{len(capped)}** of {len(kept)}{names}."]
    whole = _whole(kept)
    names = " (" + ", ".join(code(t) for t in whole["task"]) + ")" if 0 < len(whole) <= 10 else ""
    out += [f"Tasks taken whole (final budget = size): **{len(whole)}** of {len(kept)}{names}.", ""]

    out += _family_section(task_weights, n_prime, families, summary.get("group_col"))

    out += ["## Budgets chart", "", f"![Budgets and sizes by task in pick order, and shares by family]"
            f"({chart_name})", ""]

    out += quality_section(summary, quality_chart_name)

    out += ["## Seconds per stage", "", "| stage | seconds |", "|---|---:|"]
    stages = summary.get("stage_seconds") or {}
    for stage, secs in stages.items():
        out.append(f"| {_md(stage)} | {_seconds(secs)} |")
    out += [f"| **total** | **{_seconds(sum(float(s) for s in stages.values()))}** |", ""]

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
    if not _has_families(table):
        return out + [f"Family: {source}. Every task is its own family here, so the kept tasks' table "
                      "above is the view by family.", ""]
    out += [f"Family: {source}. Share of N' (final budgets) and of the kept tasks, largest first"
            + (f"; the first {MAX_FAMILIES} of {len(table)} families shown." if len(table) > MAX_FAMILIES
               else "."), "",
            "| family | tasks | kept | share of kept tasks | rows in the mixture | share of N' |",
            "|---|---:|---:|---:|---:|---:|"]
    for _, r in table.head(MAX_FAMILIES).iterrows():
        out.append(f"| `{_md(r['family'])}` | {int(r['tasks']):,} | {int(r['kept']):,} | "
                   f"{_pct(float(r['kept_share']))} | {int(r['rows']):,} | {_pct(float(r['share']))} |")
    rest = table.iloc[MAX_FAMILIES:]
    if len(rest):
        out.append(f"| {len(rest):,} more families | {int(rest['tasks'].sum()):,} | "
                   f"{int(rest['kept'].sum()):,} | {_pct(float(rest['kept_share'].sum()))} | "
                   f"{int(rest['rows'].sum()):,} | {_pct(float(rest['share'].sum()))} |")
    out.append("")
    return out


def _snippet(text: Any) -> str:
    """A prompt on one line, at most MAX_PROMPT_CHARS characters, escaped for a table cell."""
    one = " ".join(str(text).split())
    return _md(one if len(one) <= MAX_PROMPT_CHARS else one[:MAX_PROMPT_CHARS - 1] + "…")


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
            out.append(f"| `{_md(task)}` | {n:,} |")
        out.append("")
    if info.get("examples"):
        out += ["| similarity | match | instance | evaluation prompt |", "|---:|---|---|---|"]
        for e in info["examples"]:
            out.append(f"| {e['similarity']:.3f} | {e['match']} | `{_md(e['id'])}`: "
                       f"{_snippet(e['prompt'])} | `{_md(e['eval_id'])}`: {_snippet(e['eval_prompt'])} |")
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
        out.append(f"| {int(r['pick_rank'])} | `{_md(r['task'])}` | {c['size']:,} | {near} |")
    if len(kept) > MAX_LISTED_CLUSTERS:
        out.append(f"| | … {len(kept) - MAX_LISTED_CLUSTERS:,} more kept clusters | | |")
    return out + [""]


def _chart(task_weights: pd.DataFrame, summary: dict, path: str,
           families: Mapping[str, str] | None = None) -> None:
    """Horizontal bars per kept task in pick order: the task's size (outline), the initial budget (light)
    and the final budget (dark); at most MAX_CHART_TASKS tasks (the title says when more were kept).
    Below, when tasks fall into families, each family's share of N' (at most MAX_CHART_FAMILIES)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    kept = _kept(task_weights)
    total = len(kept)
    kept = kept.head(MAX_CHART_TASKS)
    n = max(len(kept), 1)
    n_prime = int(summary["num_instances"])
    table = family_table(task_weights, n_prime, families)
    table = table[table["rows"] > 0]
    show_families = _has_families(family_table(task_weights, n_prime, families)) and len(table) > 0
    fam = table.head(MAX_CHART_FAMILIES)
    rows_fam = len(fam) if show_families else 0
    fig = Figure(figsize=(9.0, 1.5 + 0.27 * n + (1.2 + 0.27 * rows_fam if show_families else 0)), dpi=110)
    FigureCanvasAgg(fig)
    if show_families:
        ax, ax_fam = fig.subplots(2, 1, height_ratios=[n + 1, rows_fam + 2])
    else:
        ax, ax_fam = fig.add_subplot(1, 1, 1), None
    y = list(range(len(kept)))
    labels = [f"{int(r)}  {_plain(t)}" for r, t in zip(kept["pick_rank"], kept["task"], strict=True)]
    initial = kept["initial_budget"].astype(float).tolist()
    final = kept["budget"].astype(float).tolist()
    sizes = kept["task_size"].astype(float).tolist()
    ax.barh(y, sizes, height=0.8, fill=False, edgecolor="#777777", linewidth=0.8, label="task size")
    ax.barh(y, initial, height=0.6, color="#a6c8e8", label="initial budget (before capping)")
    ax.barh(y, final, height=0.35, color="#1f5f99", label="final budget")
    for yi, b, ini, size in zip(y, final, initial, sizes, strict=True):
        note = f"{int(b):,}" + _budget_mark(int(ini), int(b), int(size))
        ax.annotate(note, (max(b, ini, size), yi), xytext=(3, 0), textcoords="offset points",
                    va="center", fontsize=7)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_ylim(n - 0.5, -0.5)  # pick order from the top
    top = max(initial + final + sizes + [1.0])
    positive = [v for v in final + initial + sizes if v > 0]
    if positive and max(positive) / max(min(positive), 1.0) > 50:
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlim(0, top * 30)  # room for the labels
        ax.set_xlabel("instances (symmetric log scale)")
    else:
        ax.set_xlim(0, top * 1.45)
        ax.set_xlabel("instances")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=3, fontsize=8, frameon=False)
    shown = f"; first {len(kept)} of {total} kept tasks shown" if total > len(kept) else ""
    fig.suptitle(f"Run {summary['run_id']}: budgets and sizes by task in pick order "
                 f"(N' = {n_prime:,}{shown})", fontsize=10)
    if kept.empty:
        ax.text(0.5, 0.5, "no task selected", transform=ax.transAxes, ha="center")
    if ax_fam is not None:
        yf = list(range(len(fam)))
        shares = (fam["share"] * 100).tolist()
        ax_fam.barh(yf, shares, height=0.6, color="#5f9e6e")
        for yi, share, k, t in zip(yf, shares, fam["kept"], fam["tasks"], strict=True):
            ax_fam.annotate(f"{share:.1f}% ({int(k)} of {int(t)} tasks kept)", (share, yi), xytext=(3, 0),
                            textcoords="offset points", va="center", fontsize=7)
        ax_fam.set_yticks(yf)
        ax_fam.set_yticklabels([str(f) for f in fam["family"]], fontsize=8)
        ax_fam.set_ylim(len(fam) - 0.5, -0.5)
        ax_fam.set_xlim(0, max(shares + [1.0]) * 1.6)
        more = f" (largest {len(fam)} of {len(table)})" if len(table) > len(fam) else ""
        ax_fam.set_xlabel(f"share of N' by family{more}, %")
        ax_fam.grid(axis="x", alpha=0.3)
    with warnings.catch_warnings():  # a glyph the font lacks (CJK, emoji) is drawn as a box: not news
        warnings.filterwarnings("ignore", message=r"Glyph .* missing from (current )?font")
        fig.tight_layout()
        fig.savefig(path, format="png")


def write_report(out_dir: str, summary: dict, task_weights: pd.DataFrame, *,
                 chart_name: str = "budgets.png", families: Mapping[str, str] | None = None
                 ) -> tuple[str, str]:
    """Write ``out_dir/report.md`` and the chart ``out_dir/<chart_name>``; return both paths."""
    md_path = path_under(out_dir, "report.md")
    png_path = path_under(out_dir, chart_name)
    os.makedirs(out_dir, exist_ok=True)
    _chart(task_weights, summary, png_path, families)
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


def format_console(summary: dict, task_weights: pd.DataFrame,
                   families: Mapping[str, str] | None = None) -> str:
    """A few plain-text lines for the job to print at the end (bounded whatever the number of tasks)."""
    n_prime = int(summary["num_instances"])
    kept = _kept(task_weights)
    lines = [
        f"SMART run {summary['run_id']}: kept {_int(summary['num_tasks_selected'])} of "
        f"{_int(summary['num_tasks_total'])} tasks, N' = {n_prime:,}, "
        f"mixture rows {_int(summary['mixture_rows'])}",
        f"  input {summary['input']} ({_int(summary['input_rows'])} rows); functions {summary['task_fn']} / "
        f"{summary['instance_fn']}; strata {summary.get('strata') or 'none'}",
    ]
    fp = _first_pick(kept, n_prime)
    if fp is not None:
        lines.append(f"  first pick {fp['task']}: {_pct(fp['initial_share'])} of N' before capping, "
                     f"{_pct(fp['final_share'])} after")
        if fp["initial_share"] > WARN_SHARE or fp["final_share"] > WARN_SHARE:
            lines.append("  WARNING: one task dominates the weights (published SMART behaviour with raw "
                         "gains; see the report)")
    lines.append(f"  tasks capped at their size: {len(_capped(kept))}; taken whole: {len(_whole(kept))}")
    table = family_table(task_weights, n_prime, families)
    if _has_families(table):
        top = table.head(MAX_CONSOLE_FAMILIES)
        lines.append(f"  largest families ({len(table)} in all): " + ", ".join(
            f"{r['family']} {_pct(float(r['share']))} of N' ({int(r['kept'])} of {int(r['tasks'])} tasks)"
            for _, r in top.iterrows()))
    stats = summary.get("embed_stats") or {}
    if "truncated_rows" in stats:
        lines.append(f"  prompts: {_int(summary.get('empty_prompts', 0))} empty, "
                     f"{_int(stats['truncated_rows'])} truncated ({_pct(stats['truncated_share'])}) "
                     f"at {stats['max_tokens']} tokens, "
                     f"{_int(stats.get('repeated_in_task'))} repeated within a task, "
                     f"{_int(stats.get('texts_in_several_tasks'))} shared across tasks")
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
