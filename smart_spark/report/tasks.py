"""What the report says about a run's ``task_weights`` table (docs/tables.md; as pandas): the kept tasks in
pick order, the first pick's share of N', capped and whole tasks, and the tasks' families.

A task's family is ``families[task]`` when a grouping is given, else its name's prefix before the first
``/`` or ``:`` (FLAN-style ``<family>/<subtask>`` names).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

#: The first pick's share of N' (before or after capping) above which the report warns.
WARN_SHARE = 0.5
_FAMILY_SEPARATOR = re.compile(r"[/:]")


def _share(part: Any, whole: Any) -> float:
    """part / whole; NaN when whole is 0 or None."""
    return float(part) / float(whole) if whole else float("nan")


def kept_tasks(task_weights: pd.DataFrame) -> pd.DataFrame:
    """Selected tasks in pick order."""
    sel = task_weights[task_weights["selected"].fillna(False).astype(bool)]
    return sel.sort_values(["pick_rank", "task"], kind="stable").reset_index(drop=True)


def not_kept(task_weights: pd.DataFrame) -> list[str]:
    """The names of the tasks not selected, sorted."""
    rest = task_weights[~task_weights["selected"].fillna(False).astype(bool)]
    return sorted(str(t) for t in rest["task"])


def first_pick(kept: pd.DataFrame, n_prime: int) -> dict[str, Any] | None:
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


def capped_tasks(kept: pd.DataFrame) -> pd.DataFrame:
    """Kept tasks whose budget before capping was above their size."""
    return kept[kept["initial_budget"].astype("int64") > kept["task_size"].astype("int64")]


def whole_tasks(kept: pd.DataFrame) -> pd.DataFrame:
    """Kept tasks whose final budget is their size: every row of the task is in the mixture."""
    return kept[kept["budget"].astype("int64") >= kept["task_size"].astype("int64")]


def budget_mark(initial: int, budget: int, size: int) -> str:
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


def has_families(table: pd.DataFrame) -> bool:
    """Whether grouping says anything: some family holds more than one task."""
    return bool(len(table)) and int(table["tasks"].max()) > 1
