"""The budgets chart (PNG): per kept task its size, initial and final budget; below, the shares by family.

matplotlib's Agg canvas, without pyplot, so no global backend is switched.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import pandas as pd

from smart_spark.report.tasks import budget_mark, family_table, has_families, kept_tasks

MAX_CHART_TASKS = 50
MAX_CHART_FAMILIES = 20


def _plain(text: Any) -> str:
    """A task name as matplotlib text: ``$`` escaped so names never turn into mathtext."""
    return str(text).replace("$", "\\$").replace("\n", " ")


def draw_chart(task_weights: pd.DataFrame, summary: dict, path: str,
               families: Mapping[str, str] | None = None) -> None:
    """Horizontal bars per kept task in pick order: the task's size (outline), the initial budget (light)
    and the final budget (dark); at most MAX_CHART_TASKS tasks (the title says when more were kept).
    Below, when tasks fall into families, each family's share of N' (at most MAX_CHART_FAMILIES)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    kept = kept_tasks(task_weights)
    total = len(kept)
    kept = kept.head(MAX_CHART_TASKS)
    n = max(len(kept), 1)
    n_prime = int(summary["num_instances"])
    table = family_table(task_weights, n_prime, families)
    table = table[table["rows"] > 0]
    show_families = has_families(family_table(task_weights, n_prime, families)) and len(table) > 0
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
        note = f"{int(b):,}" + budget_mark(int(ini), int(b), int(size))
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
