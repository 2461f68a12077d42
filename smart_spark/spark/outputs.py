"""The run's output tables (``mixture``, ``task_weights``, ``runs``; with ``--decontaminate`` also
``decontaminated``, with cluster tasks ``clusters``, with ``--quality`` ``mixture_quality``), committed all
or nothing.

Each table is partitioned by ``run_id``; a run replaces only its own partition. Before them, the run's
``running`` row (:mod:`smart_spark.spark.run_state`); then the commits in the order mixture,
decontaminated, clusters, mixture_quality, task_weights, runs (``succeeded``: a run id without that row
did not finish); a run without the optional tables leaves them alone. If one fails, the tables already
committed get a compensating commit that puts this run id's rows back as they were before the run (read
by time travel): unlike a whole-table RESTORE, that never undoes a concurrent run's commit to the same
table.
"""

from __future__ import annotations

import subprocess
from datetime import datetime
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

import smart_spark
from smart_spark.delta import delta_io
from smart_spark.failpoints import failpoint
from smart_spark.spark.reader import OUTPUT_COLUMNS, PROMPT_COLUMN
from smart_spark.spark.run_state import OPTIONAL_TABLES, RUN_TABLES, SUCCEEDED, RunLedger, runs_row

TASK_WEIGHTS_SCHEMA = (
    "run_id string, task string, selected boolean, pick_rank int, gain double, weight double, "
    "initial_budget int, budget int, task_size int, stratum_budgets map<string,int>"
)


def code_version() -> str:
    """The package version, plus the git commit when the code runs from a checkout."""
    version = smart_spark.__version__
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        return f"{version}+g{sha}" if sha else version
    except (OSError, subprocess.SubprocessError):
        return version


def mixture_frame(prepared: DataFrame, selected: DataFrame, *, run_id: str,
                  embedding_col: str | None) -> DataFrame:
    """Every input column except the embedding column, then run_id, task, stratum, id, rank, gain.

    ``task`` is the selection's (the cluster task with ``--tasks-from clusters``); a ``cluster`` column
    of ``selected`` (cluster index) goes in after the input's columns.
    """
    extra = ["cluster"] if "cluster" in selected.columns else []
    dropped = (*OUTPUT_COLUMNS, PROMPT_COLUMN, embedding_col, *extra)
    keep = [c for c in prepared.columns if c not in dropped]
    picks = selected.select("id", "task", *extra, "selection_rank", "selection_gain")
    return (prepared.drop("task", *extra).join(picks, "id").withColumn("run_id", F.lit(run_id))
            .select(*keep, *extra, *OUTPUT_COLUMNS)
            .orderBy("task", "stratum", "selection_rank"))


def task_weights_frame(spark: SparkSession, task_weights: pd.DataFrame, run_id: str) -> DataFrame:
    """The stage-1 table as a Spark frame with the ``task_weights`` schema."""
    rows = []
    for r in task_weights.to_dict("records"):
        rows.append((
            run_id, r["task"], bool(r["selected"]),
            None if pd.isna(r["pick_rank"]) else int(r["pick_rank"]),
            None if r["gain"] is None or pd.isna(r["gain"]) else float(r["gain"]),
            None if r["weight"] is None or pd.isna(r["weight"]) else float(r["weight"]),
            int(r["initial_budget"]), int(r["budget"]), int(r["task_size"]),
            None if r["stratum_budgets"] is None
            else {str(k): int(v) for k, v in r["stratum_budgets"].items()},
        ))
    return spark.createDataFrame(rows, TASK_WEIGHTS_SCHEMA)


def runs_frame(spark: SparkSession, *, run_id: str, started_at: datetime, finished_at: datetime,
               config_json: str, input_desc: str, input_version: int | None, metrics: dict) -> DataFrame:
    """The run's one ``runs`` row (status ``succeeded``)."""
    return runs_row(spark, run_id=run_id, status=SUCCEEDED, started_at=started_at, finished_at=finished_at,
                    config_json=config_json, input_desc=input_desc, input_version=input_version,
                    code_version=code_version(), metrics=metrics)


def stale_rows(spark: SparkSession, refs: dict[str, delta_io.TableRef], run_id: str,
               frames: dict[str, DataFrame]) -> dict[str, DataFrame]:
    """Empty frames for the optional tables (``decontaminated``, ``clusters``, ``mixture_quality``) this
    run does not write but that hold rows of its run id from an earlier run of it: committing them
    removes those rows, so a rerun replaces the whole run."""
    out = {}
    for name in OPTIONAL_TABLES:
        if name in frames or not delta_io.exists(spark, refs[name]):
            continue
        table = delta_io.read(spark, refs[name])
        if table.where(F.col("run_id") == run_id).limit(1).count():
            out[name] = spark.createDataFrame([], table.schema)
    return out


def commit_run(spark: SparkSession, refs: dict[str, delta_io.TableRef],
               runs: list[tuple[str, dict[str, DataFrame]]], *, config_json: str, ledger: RunLedger) -> None:
    """Commit every run's frames (mixture, [decontaminated], [clusters], [mixture_quality], task_weights,
    runs, in that order per table; the optional tables where a run has them, or emptied of its rows
    (:func:`stale_rows`)), all or nothing.

    ``runs`` holds (run id, frames by table); a sweep has several. ``ledger`` holds their ``running``
    rows: each commit goes through it, fenced (only while the ``runs`` row still holds this attempt's token
    with status ``running``: :meth:`RunLedger.commit`) and recorded, so a failure puts back every commit
    made (the ledger does, as the error leaves its block). The ``runs`` commit, last, turns ``running``
    into ``succeeded``.
    """
    runs = [(run_id, {**stale_rows(spark, refs, run_id, frames), **frames}) for run_id, frames in runs]
    present = [name for name in RUN_TABLES if any(name in frames for _, frames in runs)]
    for name in present:
        if name == "task_weights":
            failpoint("after_mixture")
        if name == "runs":
            failpoint("after_task_weights")
            ledger.stop_heartbeat()  # its beats rewrite the same runs rows
            failpoint("before_runs")
        for run_id, frames in runs:
            if name not in frames:
                continue
            info = {"smartspark.run_id": run_id, "smartspark.config": config_json}
            ledger.commit(name, run_id, frames[name], info)  # fenced: only while the attempt holds its run
    ledger.finished()
