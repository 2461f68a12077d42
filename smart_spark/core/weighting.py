"""Stage 1 on the driver: pick tasks, weigh them, and split N' into task and stratum budgets.

Inputs are M per-task rows (never instances): the mean embeddings and the (task, stratum) counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from smart_spark.core.baselines import em_budgets, epm_budgets, fixed_group_budgets
from smart_spark.core.budgets import mixture_budgets, split_floor_cycle
from smart_spark.core.strata import split_strata
from smart_spark.core.task_selection import select_tasks
from smart_spark.errors import SmartError

Group = tuple[str, "str | None"]
#: ``smart``, or a baseline: examples-proportional, equal, fixed weights per group of tasks.
STRATEGIES = ("smart", "epm", "em", "fixed")


@dataclass(frozen=True)
class Stage1Settings:
    """What stage 1 needs to know: N', M' (None: all tasks), the strategy and its parameters."""

    num_instances: int
    num_tasks: int | None = None
    strategy: str = "smart"
    task_fn: str = "gc"
    gc_lambda: float = 0.4
    logdet_lambda: float = 1.0
    temperature: float = 1.0
    seed: int = 23
    stratified: bool = False
    strata: str = "proportional"
    epm_cap: int | None = None
    group_weights: dict[str, float] | None = None


@dataclass
class TaskPlan:
    """Stage 1's result: one ``task_weights`` row per input task, and the budget of every group."""

    task_weights: pd.DataFrame
    group_budgets: dict[Group, int]


def weigh_tasks(means: pd.DataFrame, sizes: dict[Group, int], config: Stage1Settings,
                task_groups: dict[str, str] | None = None) -> TaskPlan:
    """Stage 1 (docs/algorithm.md) over ``means`` (columns task, n, mean; one row per task).

    ``sizes`` maps (task, stratum) to rows; stratum is None when the job has no strata.
    ``task_groups`` (strategy ``fixed`` only) maps each task to its ``group_col`` value.
    """
    names = means["task"].to_numpy(dtype=object)
    num_tasks = len(names) if config.num_tasks is None else config.num_tasks
    if num_tasks > len(names):
        raise SmartError(f"num_tasks {num_tasks} is larger than the {len(names)} tasks of the input")
    X = np.stack(means["mean"].to_numpy()).astype(np.float32)
    if config.strategy == "smart":
        order, gains = select_tasks(X, config.task_fn, num_tasks, names=names, seed=config.seed,
                                    gc_lambda=config.gc_lambda, logdet_lambda=config.logdet_lambda)
        task_sizes = means["n"].to_numpy(dtype=np.int64)[order]
        weights, initial, final = mixture_budgets(gains, task_sizes, config.num_instances,
                                                  temperature=config.temperature)
    else:
        order, gains, weights, initial, final = _baseline(X, names, means["n"].to_numpy(np.int64),
                                                          num_tasks, config, task_groups)

    by_task: dict[str, dict[str | None, int]] = {}
    for (task, stratum), n in sizes.items():
        by_task.setdefault(task, {})[stratum] = n
    rows = []
    group_budgets: dict[Group, int] = {}
    picked = {int(pos): k for k, pos in enumerate(order)}
    for pos, task in enumerate(names):
        k = picked.get(pos)
        row = {"task": task, "selected": k is not None, "pick_rank": k, "gain": None, "weight": None,
               "initial_budget": 0, "budget": 0, "task_size": int(means["n"].iloc[pos]),
               "stratum_budgets": None}
        if k is not None:
            row.update(gain=None if gains is None else float(gains[k]), weight=float(weights[k]),
                       initial_budget=int(initial[k]), budget=int(final[k]))
            counts = by_task[task]
            if not config.stratified:
                split = {None: int(final[k])}
            else:
                split = {s: int(b) for s, b in split_strata(int(final[k]), counts, config.strata).items()}
                row["stratum_budgets"] = dict(split)
            for stratum, b in split.items():
                group_budgets[(task, stratum)] = b
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame = frame.sort_values(["selected", "pick_rank", "task"], ascending=[False, True, True],
                              na_position="last").reset_index(drop=True)
    return TaskPlan(task_weights=frame, group_budgets=group_budgets)


def _baseline(X: np.ndarray, names: np.ndarray, sizes: np.ndarray, num_tasks: int, config: Stage1Settings,
              task_groups: dict[str, str] | None):
    """EPM / EM / fixed budgets over all tasks (name order) or a seeded random subset of ``num_tasks``.

    ``fixed``: each group value gets its weight's share of N' (``fixed_group_budgets``), split over the
    group's tasks in proportion to their sizes (the expectation of uniform sampling within the group).

    Returns (order, gains=None, weights, initial, final); weights are budget shares before capping.
    """
    if num_tasks == len(names):
        order = np.argsort(names.astype(str), kind="stable")
    else:
        order, _ = select_tasks(X, "random", num_tasks, names=names, seed=config.seed)
    picked_sizes = sizes[order]
    if picked_sizes.sum() < config.num_instances:
        raise SmartError(
            f"the {len(order)} picked tasks hold {int(picked_sizes.sum())} instances, fewer than "
            f"num_instances {config.num_instances}"
        )
    if config.strategy == "epm":
        capped = picked_sizes if config.epm_cap is None else np.minimum(picked_sizes, config.epm_cap)
        initial = split_floor_cycle(config.num_instances, capped)
        final = epm_budgets(picked_sizes, config.num_instances, cap=config.epm_cap)
        weights = capped / capped.sum()
    elif config.strategy == "em":
        initial = split_floor_cycle(config.num_instances, np.ones(len(order), dtype=np.int64))
        final = em_budgets(picked_sizes, config.num_instances)
        weights = np.full(len(order), 1.0 / len(order))
    else:
        groups = np.array([task_groups[str(t)] for t in names[order]], dtype=object)
        group_rows = {g: int(picked_sizes[groups == g].sum()) for g in config.group_weights
                      if (groups == g).any()}
        absent = [g for g in config.group_weights if g not in group_rows]
        if absent:
            raise SmartError(f"group_weights name group(s) with no kept task: {', '.join(absent)}")
        per_group = fixed_group_budgets(group_rows, config.group_weights, config.num_instances)
        final = np.zeros(len(order), dtype=np.int64)
        for g, b in per_group.items():
            members = np.flatnonzero(groups == g)
            if b:
                final[members] = epm_budgets(picked_sizes[members], b)
        initial = final.copy()
        weights = final / config.num_instances
    return order, None, weights, initial, final
