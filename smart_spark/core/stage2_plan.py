"""The stage-2 plan: how every (task, stratum) group is selected, decided once, executed twice.

The plan depends only on counts (group sizes, budgets, the partition size P), never on embeddings or
ids, so it is built on the driver before any row moves. :func:`smart_spark.core.partitioned.
partitioned_greedy_select` (in process) and ``smart_spark.spark.selection`` (in Spark) both execute it;
neither decides a method, a partition count or a partition's budget on its own.

Per group with budget b and n rows (docs/algorithm.md, stage 2):

- ``WHOLE``: b == n (job only): every row, ranked by id, no gain;
- ``RANDOM``: instance function ``random`` (job only): the b rows first in the seeded hash order of ids;
- ``EXACT``: n <= P: one greedy over the group;
- ``ROUNDS`` (regime A, n > P and b <= P // 2): GreeDi rounds. Each round splits its candidates into
  k = ceil(candidates / P) partitions and every partition picks min(b, its size); the union of the
  picks is the next round's candidates until it fits in P, then :attr:`Finish.MERGE`;
- ``SHARES`` (regime B, n > P and b > P // 2): one round in which every partition picks its
  proportional share of b (:func:`part_budgets`), then :attr:`Finish.REORDER` (b <= P) or
  :attr:`Finish.INTERLEAVE` (b > P).

A greedy always runs on one partition, one union of at most P rows, or one EXACT group (n <= P): none
ever holds a kernel over more than P rows. The job packs small EXACT groups into buckets of about
:data:`BUCKET_ROWS` rows, one ``applyInPandas`` call per bucket, each group still its own greedy.

A budget sweep (several mixtures in one run) is planned by :func:`plan_sweep`: which selections run and
which one serves each mixture's group.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Mapping, Sequence

import numpy as np

from smart_spark.errors import SmartError

#: The job packs consecutive EXACT groups into buckets of up to about this many rows (one call each).
BUCKET_ROWS = 4096

Group = tuple[str, "str | None"]  # (task, stratum)


class Method(enum.Enum):
    """How one group's budget is picked (values are the strings the Spark frames carry)."""

    WHOLE = "whole"
    RANDOM = "random"
    EXACT = "exact"
    ROUNDS = "rounds"  # regime A
    SHARES = "shares"  # regime B


class Finish(enum.Enum):
    """What a partitioned group does with the picks of its last round."""

    MERGE = "merge"  # greedy on the union for b, kept unless a partition's own picks score higher on it
    REORDER = "reorder"  # one greedy on the union (exactly b rows) re-orders it
    INTERLEAVE = "interleave"  # the local orderings merged by gain (:func:`partitioned.interleave`)


def num_partitions(n: int, partition_size: int) -> int:
    """ceil(n / P): the number of partitions for n rows."""
    return -(-int(n) // int(partition_size))


def partition_sizes(n: int, k: int) -> np.ndarray:
    """(k,) int64 rows of each of the k partitions of n rows: ceil((n - p) / k) for partition p."""
    sizes = np.full(k, n // k, dtype=np.int64)
    sizes[: n % k] += 1
    return sizes


def part_budgets(sizes: Sequence[int] | np.ndarray, budget: int) -> np.ndarray:
    """(k,) int64 budgets of partitions with ``sizes`` (k,) summing to ``budget``, none above its size.

    Proportional floor-then-cycle: b_p = floor(budget * size_p / n) with n = sum(sizes), then the
    remaining units one each to the partitions in partition order, cycling, skipping full ones.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    n = int(sizes.sum())
    if (sizes < 0).any():
        raise SmartError("partition sizes must be non-negative")
    if not 0 <= budget <= n:
        raise SmartError(f"budget {budget} is outside 0..{n} (the rows in all partitions)")
    if n == 0:
        return np.zeros(sizes.size, dtype=np.int64)
    out = np.array([budget * int(s) // n for s in sizes], dtype=np.int64)
    left = budget - int(out.sum())
    while left > 0:  # one pass suffices in practice (left < partitions with room); cycle to be safe
        room = np.flatnonzero(out < sizes)[:left]
        out[room] += 1
        left -= room.size
    return out


@dataclasses.dataclass(frozen=True)
class Round:
    """One partitioned round of a group: its candidates split into ``partitions`` by id hash rank."""

    candidates: int  # rows split in this round (the group, or the previous round's union)
    partitions: int  # k = ceil(candidates / P)
    picks: tuple[int, ...]  # (k,) picks of each partition's local greedy

    @property
    def sizes(self) -> tuple[int, ...]:
        """(k,) rows of each partition (``partition_sizes``)."""
        return tuple(int(s) for s in partition_sizes(self.candidates, self.partitions))

    @property
    def union(self) -> int:
        """Rows in the union of the local picks."""
        return sum(self.picks)


@dataclasses.dataclass(frozen=True)
class GroupPlan:
    """How one group is selected: ``budget`` picks of its ``size`` rows by ``method``.

    ``rounds`` and ``finish`` are set for ROUNDS and SHARES only. ``index`` (position in the job's plan),
    ``task``, ``stratum`` and ``bucket`` (EXACT groups in the job: the call that runs them) name it.
    """

    size: int
    budget: int
    method: Method
    rounds: tuple[Round, ...] = ()
    finish: Finish | None = None
    index: int = 0
    task: str | None = None
    stratum: str | None = None
    bucket: int | None = None


def plan_group(size: int, budget: int, *, partition_size: int, fn: str = "fl", whole: bool = True,
               **names: object) -> GroupPlan:
    """The plan of one group of ``size`` rows with ``budget`` picks at partition size P.

    ``whole`` (the job): b == n takes every row without a greedy; the in-process reference sets it False
    and runs the greedy there too. ``fn == "random"`` gives RANDOM. ``names``: index, task, stratum, bucket.
    """
    n, b, P = int(size), int(budget), int(partition_size)
    if not 0 <= b <= n:
        name = f"group ({names.get('task')!r}, {names.get('stratum')!r}) " if "task" in names else ""
        raise SmartError(f"{name}budget {b} is outside 0..{n} (the group's rows)")
    if whole and b == n:
        return GroupPlan(n, b, Method.WHOLE, **names)
    if fn == "random":
        return GroupPlan(n, b, Method.RANDOM, **names)
    if n <= P:
        return GroupPlan(n, b, Method.EXACT, **names)
    if b > P // 2:
        k = num_partitions(n, P)
        shares = part_budgets(partition_sizes(n, k), b)
        finish = Finish.REORDER if b <= P else Finish.INTERLEAVE
        return GroupPlan(n, b, Method.SHARES, (Round(n, k, tuple(int(s) for s in shares)),), finish, **names)
    rounds: list[Round] = []
    candidates = n
    while True:
        k = num_partitions(candidates, P)
        rounds.append(Round(candidates, k, tuple(min(b, int(s)) for s in partition_sizes(candidates, k))))
        if rounds[-1].union <= P:
            return GroupPlan(n, b, Method.ROUNDS, tuple(rounds), Finish.MERGE, **names)
        if rounds[-1].union >= candidates:  # cannot happen for b <= P // 2: each round about halves
            raise SmartError(f"GreeDi round on {candidates} rows made no progress (budget {b}, P {P})")
        candidates = rounds[-1].union


@dataclasses.dataclass(frozen=True)
class Stage2Plan:
    """The groups of a selection with a positive budget, indexed 0.. in (task, stratum) order (``only``
    keeps a subset, with their indexes).

    ``fn``, ``gc_lambda`` and ``logdet_lambda`` define the greedy; ``seed`` the id hashes that make the
    partitions and the random orders; ``partition_size`` is P.
    """

    groups: tuple[GroupPlan, ...]
    fn: str
    partition_size: int
    seed: int
    gc_lambda: float = 0.4
    logdet_lambda: float = 1.0

    def of(self, *methods: Method) -> list[GroupPlan]:
        """The groups selected by any of ``methods``, in index order."""
        return [g for g in self.groups if g.method in methods]

    def only(self, *methods: Method) -> Stage2Plan:
        """This plan with only the groups of ``methods`` (what one kind of Spark task needs to be sent)."""
        return dataclasses.replace(self, groups=tuple(self.of(*methods)))

    def group(self, index: int) -> GroupPlan:
        """The group with this ``index``."""
        try:
            return self._by_index[index]
        except KeyError:
            raise SmartError(f"no group {index} in this stage-2 plan") from None

    @functools.cached_property
    def _by_index(self) -> dict[int, GroupPlan]:
        return {g.index: g for g in self.groups}

    @property
    def rounds(self) -> int:
        """Most partitioned rounds of any group (0 without partitioned groups)."""
        return max((len(g.rounds) for g in self.groups), default=0)

    @property
    def kernel_entries(self) -> int:
        """Kernel entries the greedies of this plan compute (their work: each entry is one d-long dot
        product), summed over every greedy: n^2 for an EXACT group, every partition's rows squared per
        round, and the union's rows squared for a MERGE or REORDER finish. WHOLE and RANDOM groups: 0."""
        total = 0
        for g in self.groups:
            if g.method is Method.EXACT:
                total += g.size ** 2
            for r in g.rounds:
                total += sum(s * s for s in r.sizes)
            if g.finish in (Finish.MERGE, Finish.REORDER):
                total += g.rounds[-1].union ** 2
        return total


def plan_stage2(budgets: Mapping[Group, int], sizes: Mapping[Group, int], *, fn: str, partition_size: int,
                seed: int, gc_lambda: float = 0.4, logdet_lambda: float = 1.0,
                bucket_rows: int = BUCKET_ROWS) -> Stage2Plan:
    """The plan of every group with a positive budget; ``budgets`` and ``sizes`` keyed by (task, stratum).

    EXACT groups get buckets: consecutive ones (in index order) packed up to ``bucket_rows`` rows, a
    larger group a bucket of its own.
    """
    keys = sorted((k for k, b in budgets.items() if b > 0), key=lambda k: (k[0], k[1] or ""))
    groups: list[GroupPlan] = []
    bucket, fill = -1, bucket_rows
    for index, (task, stratum) in enumerate(keys):
        group = plan_group(sizes[(task, stratum)], budgets[(task, stratum)], partition_size=partition_size,
                           fn=fn, index=index, task=task, stratum=stratum)
        if group.method is Method.EXACT:
            if fill + group.size > bucket_rows:
                bucket, fill = bucket + 1, 0
            fill += group.size
            group = dataclasses.replace(group, bucket=bucket)
        groups.append(group)
    return Stage2Plan(tuple(groups), fn, int(partition_size), int(seed), float(gc_lambda),
                      float(logdet_lambda))


class Source(enum.Enum):
    """Where one mixture of a budget sweep takes a group's rows from."""

    SHARED = "shared"  # a prefix of the one selection to the group's largest partial budget
    WHOLE = "whole"  # the group taken whole
    APART = "apart"  # its own selection: a partitioned group with several partial budgets


@dataclasses.dataclass(frozen=True)
class SweepPlan:
    """The selections a sweep of several budget maps needs, and which one serves each mixture's group.

    Greedy and random orderings are prefixes (docs/algorithm.md, stage 2), so one selection to the largest
    partial budget (below the group's size) serves every mixture that does not take the group whole. The
    partitioned greedy is not nested: a group larger than P with several partial budgets is selected
    apart, once per mixture.
    """

    shared: Mapping[Group, int]  # budgets of the one shared selection
    whole: Mapping[Group, int]  # groups some mixture takes whole (budget = size)
    mixtures: tuple[tuple[tuple[Group, int, Source], ...], ...]  # per mixture: (group, budget, source)

    def apart(self, mixture: int) -> dict[Group, int]:
        """Budgets of the groups that ``mixture`` selects apart."""
        return {g: b for g, b, source in self.mixtures[mixture] if source is Source.APART}


def plan_sweep(budgets_list: Sequence[Mapping[Group, int]], sizes: Mapping[Group, int], *, fn: str,
               partition_size: int) -> SweepPlan:
    """The :class:`SweepPlan` of the budget maps ``budgets_list`` (keyed by (task, stratum))."""
    groups = sorted({g for budgets in budgets_list for g, b in budgets.items() if b > 0},
                    key=lambda k: (k[0], k[1] or ""))
    partial = {g: sorted({b.get(g, 0) for b in budgets_list} - {0, sizes[g]}) for g in groups}
    apart = {g for g, bs in partial.items() if len(bs) > 1 and sizes[g] > partition_size and fn != "random"}
    shared = {g: bs[-1] for g, bs in partial.items() if bs and g not in apart}
    whole = {g: sizes[g] for g in groups if any(b.get(g) == sizes[g] for b in budgets_list)}

    def source(g: Group, b: int) -> Source:
        return Source.WHOLE if b == sizes[g] else Source.APART if g in apart else Source.SHARED

    mixtures = tuple(tuple((g, int(b), source(g, b)) for g, b in budgets.items() if b > 0)
                     for budgets in budgets_list)
    return SweepPlan(shared, whole, mixtures)
