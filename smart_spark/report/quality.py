"""The report's "What the mixture covers" section, its chart and the console line (docs/quality.md).

``summary["quality"]``: scope ``all``'s figures of this run (coverage, redundancy, vendi, task_coverage,
sample_rows, vendi_rows); ``summary["quality_report"]``: ``runs``, the scope ``all`` rows of every
finished run of the same output with the same N' (this one included; keys run_id, strategy, coverage,
redundancy, vendi, task_coverage, rows), and ``tasks``, the least-covered kept tasks of this run (task,
rows, input_rows, coverage, redundancy, vendi).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

#: Kept tasks listed as the least covered.
LEAST_COVERED = 10
#: The measures shown per run: column, heading, how to read it.
MEASURES = (
    ("coverage", "coverage", "higher: more of the collection has a close mixture row"),
    ("redundancy", "redundancy", "lower: fewer near-copies inside the mixture"),
    ("vendi", "Vendi score", "higher: more distinct directions (1 to rows)"),
)


def least_covered(quality: pd.DataFrame, task_weights: pd.DataFrame, k: int = LEAST_COVERED) -> list[dict]:
    """The ``k`` kept tasks (``task_weights.selected``) of lowest coverage, from :func:`measure_quality`'s
    per-task rows; ties by task name."""
    kept = set(task_weights.loc[task_weights["selected"].astype(bool), "task"])
    tasks = quality[(quality.index > 0) & quality["scope"].isin(kept)]
    tasks = tasks.sort_values(["coverage", "scope"], kind="stable").head(k)
    return [{"task": r["scope"], "rows": int(r["rows"]), "input_rows": int(r["input_rows"]),
             "coverage": _num(r["coverage"]), "redundancy": _num(r["redundancy"]), "vendi": _num(r["vendi"])}
            for r in tasks.to_dict("records")]


def console_line(quality: Mapping[str, Any] | None) -> str | None:
    """``  covers: coverage 0.700, redundancy 0.690, Vendi 83.5; 24 of 37 tasks`` (None without figures)."""
    if not quality:
        return None
    return (f"  covers: coverage {figure(quality.get('coverage'))}, "
            f"redundancy {figure(quality.get('redundancy'))}, Vendi {figure(quality.get('vendi'), 1)}; "
            f"tasks with a mixture row {figure(quality.get('task_coverage'), pct=True)}")


def quality_section(summary: Mapping[str, Any], chart_name: str | None) -> list[str]:
    """The markdown lines of the section (empty without ``summary["quality"]``)."""
    quality, extra = summary.get("quality"), summary.get("quality_report") or {}
    if not quality:
        return []
    runs = list(extra.get("runs") or [])
    out = ["## What the mixture covers", "",
           "Measured on the embeddings the run used, without training a model (docs/quality.md): "
           + "; ".join(f"**{head}**, {how}" for _, head, how in MEASURES) + ". "
           f"Coverage over {quality['sample_rows']:,} input rows, Vendi over {quality['vendi_rows']:,} "
           "mixture rows.", ""]
    if len(runs) > 1:
        out.append(f"This run next to every finished run in the same output with N' = "
                   f"{int(summary['num_instances']):,}:")
    out += ["", "| run | strategy | coverage | redundancy | Vendi score | tasks with a row |",
            "|---|---|---:|---:|---:|---:|"]
    for r in runs or [{"run_id": summary["run_id"], "strategy": summary.get("strategy"), **quality}]:
        mark = " (this run)" if r["run_id"] == summary["run_id"] else ""
        out.append(f"| `{r['run_id']}`{mark} | {r.get('strategy') or ''} | {figure(r.get('coverage'))} | "
                   f"{figure(r.get('redundancy'))} | {figure(r.get('vendi'), 1)} | "
                   f"{figure(r.get('task_coverage'), pct=True)} |")
    out.append("")
    if len(runs) <= 1:
        out += ["No other run with the same N' in this output: run a baseline into it to compare "
                "(`--strategy epm` or `--strategy em`, same `--num-instances`).", ""]
    if chart_name:
        out += [f"![Coverage, redundancy and Vendi score per run]({chart_name})", ""]
    tasks = extra.get("tasks") or []
    if tasks:
        out += [f"Least-covered kept tasks ({len(tasks)}): a small budget for a task whose rows spread wide.",
                "", "| task | mixture rows | input rows | coverage | redundancy | Vendi score |",
                "|---|---:|---:|---:|---:|---:|"]
        out += [f"| `{t['task']}` | {t['rows']:,} | {t['input_rows']:,} | {figure(t['coverage'])} | "
                f"{figure(t['redundancy'])} | {figure(t['vendi'], 1)} |" for t in tasks]
        out.append("")
    return out


def quality_chart(runs: Sequence[Mapping[str, Any]], run_id: str, path: str) -> None:
    """One panel per measure, one bar per run (this run highlighted), saved as PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [str(r["run_id"]) + ("" if r.get("strategy") in (None, r["run_id"]) else f"\n{r['strategy']}")
              for r in runs]
    fig, axes = plt.subplots(1, len(MEASURES), figsize=(4 + 1.2 * len(runs) * len(MEASURES) / 2, 3.6))
    try:
        for ax, (key, head, how) in zip(axes, MEASURES):
            values = [float("nan") if r.get(key) is None else float(r[key]) for r in runs]
            colors = ["#c0392b" if r["run_id"] == run_id else "#7f8c8d" for r in runs]
            ax.bar(range(len(runs)), values, color=colors)
            ax.set_xticks(range(len(runs)), labels, fontsize=7, rotation=30, ha="right")
            ax.set_title(f"{head} ({'higher' if how.startswith('higher') else 'lower'}: wider mixture)",
                         fontsize=9)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)


def _num(x: Any) -> float | None:
    return None if x is None or pd.isna(x) else float(x)


def figure(x: Any, digits: int = 3, *, pct: bool = False) -> str:
    """A figure as the report writes it: ``digits`` decimals, or a percentage; ``-`` for none."""
    if x is None or pd.isna(x):
        return "-"
    return f"{float(x):.1%}" if pct else f"{float(x):.{digits}f}"
