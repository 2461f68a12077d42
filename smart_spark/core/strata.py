"""Split one task's budget over its strata (docs/algorithm.md, stage 1, step 7).

A split is a tree walk: at each level the budget is divided over the children (a stratum, or a group of
strata counted together) with :func:`~smart_spark.core.budgets.split_floor_cycle`, then capped at each child's
count with :func:`~.budgets.cap_budgets`, both in the level's order; each group's share is then
split over its own children the same way.

- ``proportional`` (default): shares in proportion to the counts.
- ``equal``: equal shares over the children that have rows, capped and redistributed.
- ``flan``: proportional over :data:`FLAN_HIERARCHY`, the published two-level split: zero-shot vs
  few-shot by the counts ``zs_opt + zs_noopt`` vs ``fs_opt + fs_noopt``, then each half over its two
  template types. Order: ``zs`` before ``fs``, ``opt`` before ``noopt`` -- the authors' scripts split
  ``[zs, fs]`` and ``[opt, noopt]`` with the remainder going to the first entry, in their
  ``TEMPLATE_TYPES`` order ``zs_opt, zs_noopt, fs_opt, fs_noopt``.

Without a hierarchy the split is flat and its order is the stratum names sorted. Children with no rows
get 0 and take no part in the cycling: a task with only zero-shot (or only few-shot) rows puts its whole
budget in the half it has (the published scripts crash on a task with few-shot rows and no zero-shot
rows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from smart_spark.core.budgets import cap_budgets, split_floor_cycle
from smart_spark.errors import SmartError

__all__ = ["FLAN_HIERARCHY", "STRATA_MODES", "Hierarchy", "split_strata"]

#: A hierarchy: stratum names in cycling order, or named groups (in cycling order) of sub-hierarchies.
Hierarchy = Sequence[str] | Mapping[str, "Hierarchy"]

#: The published FLAN 2022 split: zero-shot vs few-shot, then options vs no options.
FLAN_HIERARCHY: Mapping[str, Sequence[str]] = {"zs": ("zs_opt", "zs_noopt"), "fs": ("fs_opt", "fs_noopt")}

STRATA_MODES = ("proportional", "equal", "flan")

# A parsed tree node: a list of children, each a leaf name (str) or a nested list.
_Node = list


def _parse(spec: object, path: str, leaves: list[str]) -> _Node:
    """Parse a hierarchy spec into nested lists, appending its leaf names to ``leaves`` in order."""
    if isinstance(spec, Mapping):
        if not spec:
            raise SmartError(f"strata hierarchy group {path or '<root>'} is empty")
        node: _Node = []
        for key, child in spec.items():
            node.append(_parse(child, f"{path}/{key}", leaves))
        return node
    if isinstance(spec, Sequence) and not isinstance(spec, str | bytes):
        if not spec:
            raise SmartError(f"strata hierarchy group {path or '<root>'} is empty")
        for name in spec:
            if not isinstance(name, str):
                raise SmartError(f"strata hierarchy {path or '<root>'} holds a non-string stratum {name!r}")
            leaves.append(name)
        return list(spec)
    raise SmartError(
        f"strata hierarchy {path or '<root>'} must be a list of stratum names or a mapping of groups, "
        f"got {spec!r}"
    )


def _total(node: _Node | str, counts: Mapping[str, int]) -> int:
    if isinstance(node, str):
        return counts.get(node, 0)
    return sum(_total(child, counts) for child in node)


def _split(node: _Node, budget: int, counts: Mapping[str, int], equal: bool, out: dict[str, int]) -> None:
    totals = np.array([_total(child, counts) for child in node], dtype=np.int64)
    weights = (totals > 0).astype(np.int64) if equal else totals
    shares = cap_budgets(split_floor_cycle(budget, weights), totals)
    for child, share in zip(node, shares.tolist(), strict=True):
        if isinstance(child, str):
            out[child] = share
        else:
            _split(child, share, counts, equal, out)


def split_strata(
    budget: int,
    counts: Mapping[str, int],
    mode: str = "proportional",
    *,
    hierarchy: Hierarchy | None = None,
) -> dict[str, int]:
    """Split a task's budget over its strata.

    Args:
        budget: the task's final budget (instances), 0 <= budget <= sum(counts).
        counts: rows per stratum of this task (stratum name -> count >= 0).
        mode: ``proportional``, ``equal`` or ``flan`` (proportional over :data:`FLAN_HIERARCHY`).
        hierarchy: optional nesting that fixes the levels and their cycling order, e.g.
            ``{"zs": ["zs_opt", "zs_noopt"], "fs": ["fs_opt", "fs_noopt"]}``; every stratum in ``counts``
            must appear in it (strata it names that are missing from ``counts`` count 0). Not with
            ``flan``, which is this preset.

    Returns:
        stratum name -> budget for every stratum in ``counts``, in splitting order; the values sum to
        ``budget``, each is <= its count, and strata with count 0 get 0.
    """
    if mode not in STRATA_MODES:
        raise SmartError(f"strata must be one of {', '.join(STRATA_MODES)}, got {mode!r}")
    if isinstance(budget, bool) or not isinstance(budget, int | np.integer):
        raise SmartError(f"stratum budget must be an integer, got {budget!r}")
    budget = int(budget)
    clean: dict[str, int] = {}
    for name, count in counts.items():
        if not isinstance(name, str):
            raise SmartError(f"stratum names must be strings, got {name!r}")
        if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 0:
            raise SmartError(f"stratum {name!r} count must be an integer >= 0, got {count!r}")
        clean[name] = int(count)
    held = sum(clean.values())
    if budget < 0 or budget > held:
        raise SmartError(f"stratum budget {budget} is outside 0..{held}, the rows its strata hold ({clean})")

    if mode == "flan":
        if hierarchy is not None:
            raise SmartError("strata flan is a fixed hierarchy; give either it or a hierarchy, not both")
        hierarchy = FLAN_HIERARCHY
    if hierarchy is None:
        tree: _Node = sorted(clean)
    else:
        leaves: list[str] = []
        tree = _parse(hierarchy, "", leaves)
        dupes = sorted({name for name in leaves if leaves.count(name) > 1})
        if dupes:
            raise SmartError(f"strata hierarchy names these strata more than once: {', '.join(dupes)}")
        unknown = sorted(set(clean) - set(leaves))
        if unknown:
            kind = "FLAN template types" if mode == "flan" else "strata"
            raise SmartError(
                f"unknown {kind}: {', '.join(map(repr, unknown))}; expected {', '.join(map(repr, leaves))}"
            )

    placed: dict[str, int] = {}
    if tree:
        _split(tree, budget, clean, mode == "equal", placed)
    return {name: placed[name] for name in placed if name in clean}
