"""``applyInPandas`` functions of stage 2: each runs one step of the stage-2 plan on the rows it is given.

The plan (:class:`smart_spark.core.stage2_plan.Stage2Plan`) says how many picks every greedy makes; these
functions only sort rows by id (so ties go to the smallest id), call the numpy core and label the picks.
A call holds one partition or one union of a large group (at most P rows each), or a bucket of whole
EXACT groups (each at most P rows, one greedy per group): no greedy ever holds more than P rows.

Frames in carry ``group_id`` (the plan's group index), ``id`` and ``embedding`` (array<float>);
partition steps add ``partition``, and their picks carry ``local_rank`` / ``local_gain``. Selections come
out as :data:`RESULT_SCHEMA`: ``rank`` (0-based pick order) and ``gain`` (the greedy's marginal gain).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from smart_spark.core.greedy import greedy_select, normalize_rows
from smart_spark.core.partitioned import merge_union
from smart_spark.core.stage2_plan import Stage2Plan
from smart_spark.embed.device import resolve_device, task_gpu
from smart_spark.errors import SmartError
from smart_spark.failpoints import worker_failpoint

RESULT_SCHEMA = "group_id int, id string, rank int, gain double"
LOCAL_SCHEMA = ("group_id int, partition int, id string, embedding array<float>, local_rank int, "
                "local_gain double")


def fl_device(device: str, fn: str = "fl") -> str:
    """Where this Spark task runs the greedy of ``fn``, for the job's ``--device``: ``cpu`` for GC, LogDet
    and ``--device cpu``; for FL with ``auto``: the task's assigned GPU (``spark.task.resource.gpu.amount``),
    else ``cpu``; with ``cuda`` / ``cuda:N``: that GPU (an error without CUDA). torch is imported only
    when a GPU may be used."""
    if fn != "fl" or device == "cpu":
        return "cpu"
    if device == "auto" and task_gpu() is None:
        return "cpu"
    return resolve_device(device)


def bind(func: Callable[..., pd.DataFrame], /, **kwargs: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """``func`` with ``kwargs`` bound, as the plain typed function ``applyInPandas`` expects (it reads the
    type hints of what it is given; a ``functools.partial`` has none it can read, and pyspark warns)."""

    def run(pdf: pd.DataFrame) -> pd.DataFrame:
        worker_failpoint("select_task")
        return func(pdf, **kwargs)

    return run


def _by_id(pdf: pd.DataFrame) -> pd.DataFrame:
    return pdf.sort_values("id", kind="stable").reset_index(drop=True)


def _matrix(pdf: pd.DataFrame) -> np.ndarray:
    """(n, d) float32 embeddings of the frame's rows."""
    return np.stack(pdf["embedding"].to_numpy()).astype(np.float32, copy=False)


def _greedy(pdf: pd.DataFrame, plan: Stage2Plan, budget: int, device: str) -> tuple[np.ndarray, np.ndarray]:
    """(order, gains) of the greedy over the (id-sorted) frame's rows for ``budget`` picks."""
    return greedy_select(_matrix(pdf), plan.fn, budget, gc_lambda=plan.gc_lambda,
                         logdet_lambda=plan.logdet_lambda, device=fl_device(device, plan.fn))


def _picks(pdf: pd.DataFrame, order: np.ndarray, gains: np.ndarray) -> pd.DataFrame:
    """The picked rows as :data:`RESULT_SCHEMA`."""
    out = pdf.iloc[order][["group_id", "id"]].reset_index(drop=True)
    out["rank"] = np.arange(len(order), dtype=np.int32)
    out["gain"] = np.asarray(gains, dtype=np.float64)
    return out


def greedy_on_groups(pdf: pd.DataFrame, *, plan: Stage2Plan, device: str = "cpu") -> pd.DataFrame:
    """The greedy of every group in the frame for its planned budget, concatenated.

    The frame is a bucket of EXACT groups (one call instead of one per group: thousands of small groups
    each paid the per-call conversion and scheduling overhead), or the union of one SHARES group whose
    b <= P picks one greedy re-orders (:attr:`~smart_spark.core.stage2_plan.Finish.REORDER`).
    """
    outs = []
    for group_id, rows in pdf.groupby("group_id", sort=True):
        rows = _by_id(rows)
        outs.append(_picks(rows, *_greedy(rows, plan, plan.group(int(group_id)).budget, device)))
    if not outs:
        return pd.DataFrame({"group_id": pd.Series(dtype=np.int32), "id": pd.Series(dtype=object),
                             "rank": pd.Series(dtype=np.int32), "gain": pd.Series(dtype=np.float64)})
    return pd.concat(outs, ignore_index=True)


def local_greedy(pdf: pd.DataFrame, *, plan: Stage2Plan, step: int, device: str = "cpu") -> pd.DataFrame:
    """One partition of one group in round ``step`` of its plan: its planned picks (:data:`LOCAL_SCHEMA`).

    The picks keep their embedding for the next round or the group's finish.
    """
    pdf = _by_id(pdf)
    group_id, partition = int(pdf["group_id"].iloc[0]), int(pdf["partition"].iloc[0])
    this_round = plan.group(group_id).rounds[step]
    if len(pdf) != this_round.sizes[partition]:
        raise SmartError(f"stage 2: partition {partition} of group {group_id} holds {len(pdf)} rows in round "
                         f"{step}, the plan expects {this_round.sizes[partition]}")
    order, gains = _greedy(pdf, plan, this_round.picks[partition], device)
    out = pdf.iloc[order][["group_id", "partition", "id", "embedding"]].reset_index(drop=True)
    out["local_rank"] = np.arange(len(order), dtype=np.int32)
    out["local_gain"] = np.asarray(gains, dtype=np.float64)
    return out


def merge_on_union(pdf: pd.DataFrame, *, plan: Stage2Plan, device: str = "cpu") -> pd.DataFrame:
    """:func:`smart_spark.core.partitioned.merge_union` on one ROUNDS group's last union (|U| <= P rows,
    the :func:`local_greedy` picks of its last round)."""
    pdf = _by_id(pdf)
    group = plan.group(int(pdf["group_id"].iloc[0]))
    locals_ = [rows.index.to_numpy()[np.argsort(rows["local_rank"].to_numpy(), kind="stable")]
               for _, rows in pdf.groupby("partition", sort=True)]
    order, gains = merge_union(normalize_rows(_matrix(pdf)), plan.fn, group.budget, locals_,
                               [pdf.loc[local, "local_gain"].to_numpy() for local in locals_],
                               gc_lambda=plan.gc_lambda, logdet_lambda=plan.logdet_lambda,
                               device=fl_device(device, plan.fn))
    return _picks(pdf, order, gains)
