"""A run's life in the ``runs`` table: ``running`` from before its first commit, ``succeeded`` at its last;
the runs a killed driver left ``running`` are put back by the next run (or ``smart-mixture recover``).

While a run works, its ``runs`` row says ``status = 'running'``; ``finished_at`` is then the time it was
last heard from, and ``metrics`` (JSON) holds ``heartbeat_at`` (Unix seconds), ``stale_after``, the host
and pid, and ``versions_before``: each output table's version before the run's first commit. A background
thread rewrites that row every ``stale_after / 4`` seconds (the heartbeat). The run's last commit replaces
it with the ``succeeded`` row.

A run is dead when its heartbeat is older than ``stale_after`` seconds (the larger of the recovering
side's and the run's own setting). Recovery puts its rows in ``mixture``, ``task_weights`` and the optional
``decontaminated`` and ``clusters`` back as they were at ``versions_before`` (the compensating commits of
a failed run) and marks its ``runs`` row ``abandoned`` with the reason, or, for a killed rerun of a run id
that had succeeded before, puts that earlier row back. The mark comes first, so a run that was merely
frozen finds itself ``abandoned`` at its next heartbeat or commit and stops; a recovery killed halfway
leaves ``rows_put_back: false`` in the mark, and the next recovery finishes it. docs/reliability.md says
why this is safe.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from smart_spark.delta import tables as delta_io
from smart_spark.errors import SmartError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Row, SparkSession

RUNNING, SUCCEEDED, ABANDONED = "running", "succeeded", "abandoned"
RUNS_SCHEMA = (
    "run_id string, status string, started_at timestamp, finished_at timestamp, config string, "
    "input string, input_version long, code_version string, metrics string"
)
# What a run commits, in commit order; the optional tables only when the run has them.
RUN_TABLES = ("mixture", "decontaminated", "clusters", "task_weights", "runs")
OPTIONAL_TABLES = ("decontaminated", "clusters")
SUCCEEDED_VIEW = "smart_mixture_succeeded"


def runs_row(spark: SparkSession, *, run_id: str, status: str, started_at: datetime, finished_at: datetime,
             config_json: str, input_desc: str, input_version: int | None, code_version: str,
             metrics: dict) -> DataFrame:
    """One ``runs`` row as a frame."""
    row = (run_id, status, started_at, finished_at, config_json, input_desc, input_version, code_version,
           json.dumps(metrics, sort_keys=True, default=str))
    return spark.createDataFrame([row], RUNS_SCHEMA)


def put_back(spark: SparkSession, ref: delta_io.TableRef, *, run_id: str, version: int | None,
             info: dict[str, str]) -> None:
    """Compensating commit: this run id's rows as they were at ``version`` (none if no table then)."""
    if version is None:
        if not delta_io.exists(spark, ref):
            return
        old = spark.createDataFrame([], delta_io.read(spark, ref).schema)
    else:
        old = delta_io.read(spark, ref, version=version).where(F.col("run_id") == run_id)
    delta_io.replace_where(spark, old, ref, column="run_id", value=run_id, partition_by=["run_id"],
                           commit_info=info)


class RunLedger:
    """The ``running`` rows of one job (one per run id of a sweep), their heartbeat, and the put-back.

    ``with RunLedger(...) as ledger:`` writes the rows and starts the heartbeat; an exception leaving the
    block puts back every table this job committed (``running`` rows included) unless :meth:`finished`
    was called after the last commit.
    """

    def __init__(self, spark: SparkSession, refs: dict[str, delta_io.TableRef], rows: dict[str, dict],
                 *, stale_after: float) -> None:
        """``rows``: run id -> the keyword arguments of :func:`runs_row` but status, finished_at, metrics."""
        self.spark, self.refs, self.rows, self.stale_after = spark, refs, rows, stale_after
        self.before: dict[str, int | None] = {}
        self.committed: list[tuple[str, str]] = []  # (table, run id), in commit order
        self.lost: str | None = None  # why another driver declared this run abandoned
        self._done = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RunLedger:
        self.before = {name: delta_io.version(self.spark, self.refs[name]) for name in RUN_TABLES}
        try:
            self._write_running()
        except BaseException:
            self._put_back_all()
            raise
        self._thread = threading.Thread(target=self._beat, name="smart-spark-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind, error, trace) -> None:
        self.stop_heartbeat()
        if kind is not None and not self._done:
            self._put_back_all()

    # ------------------------------------------------------------------------------------- heartbeat

    def _write_running(self) -> None:
        now = time.time()
        metrics = {"heartbeat_at": now, "stale_after": self.stale_after, "host": socket.gethostname(),
                   "pid": os.getpid(), "versions_before": self.before}
        for run_id, row in self.rows.items():
            frame = runs_row(self.spark, run_id=run_id, status=RUNNING,
                             finished_at=datetime.fromtimestamp(now, timezone.utc), metrics=metrics, **row)
            delta_io.replace_where(self.spark, frame, self.refs["runs"], column="run_id", value=run_id,
                                   partition_by=["run_id"],
                                   commit_info={"smartspark.run_id": run_id, "smartspark.status": RUNNING})
            if ("runs", run_id) not in self.committed:
                self.committed.append(("runs", run_id))

    def _beat(self) -> None:
        interval = max(self.stale_after / 4, 0.5)
        while not self._stop.wait(interval):
            try:
                self.check_alive()
                self._write_running()
            except Exception:  # noqa: BLE001 -- a failed beat (a commit conflict) is retried
                if self.lost is not None:
                    return  # declared abandoned: the main thread stops at its next check_alive

    def stop_heartbeat(self) -> None:
        """Stop the heartbeat thread and wait for a beat in flight (before the final ``runs`` commit)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def check_alive(self) -> None:
        """SmartError when another driver has declared one of this job's runs abandoned (fencing)."""
        for row in _rows_with_status(self.spark, self.refs["runs"], [ABANDONED], self.rows):
            self.lost = json.loads(row["metrics"] or "{}").get("abandoned_reason", "abandoned")
            raise SmartError(f"run {row['run_id']} was declared abandoned meanwhile ({self.lost}); its rows "
                             "are put back; run it again")

    # ------------------------------------------------------------------------------------ committing

    def record(self, table: str, run_id: str) -> None:
        """Note a commit of ``run_id``'s rows to ``table`` (put back if the job fails)."""
        self.committed.append((table, run_id))

    def finished(self) -> None:
        """The last commit is done: nothing is put back any more."""
        self._done = True

    def _put_back_all(self) -> None:
        for name, run_id in reversed(self.committed):
            put_back(self.spark, self.refs[name], run_id=run_id, version=self.before.get(name),
                     info={"smartspark.run_id": run_id, "smartspark.rollback": "true"})
        self.committed.clear()


def _rows_with_status(spark: SparkSession, ref: delta_io.TableRef, statuses: list[str],
                      run_ids: Iterable[str] | None = None) -> list[Row]:
    if not delta_io.exists(spark, ref):
        return []
    rows = delta_io.read(spark, ref).where(F.col("status").isin(statuses))
    if run_ids is not None:
        rows = rows.where(F.col("run_id").isin(list(run_ids)))
    return rows.collect()


def recover(spark: SparkSession, refs: dict[str, delta_io.TableRef], *, stale_after: float, by: str,
            own_run_ids: Iterable[str] = ()) -> list[tuple[str, str]]:
    """Put back every dead run of this output (module doc); returns (run id, reason) per run put back.

    A run still heartbeating is left alone; if it has one of ``own_run_ids``, SmartError (one run id, two
    live drivers). A run whose recovery fails (another driver recovering it at the same moment) is left for
    the next recovery and not returned.
    """
    done = []
    for row in _rows_with_status(spark, refs["runs"], [RUNNING, ABANDONED]):
        metrics = json.loads(row["metrics"] or "{}")
        if row["status"] == ABANDONED and metrics.get("rows_put_back", True):
            continue  # an earlier recovery finished this one
        age = time.time() - float(metrics.get("heartbeat_at", 0.0))
        limit = max(stale_after, float(metrics.get("stale_after", 0.0)))
        if row["status"] == RUNNING and age <= limit:
            if row["run_id"] in set(own_run_ids):
                raise SmartError(f"run id {row['run_id']!r} is running in another driver (heard from "
                                 f"{age:.0f} s ago); wait for it or choose another --run-id")
            continue
        reason = metrics.get("abandoned_reason") or (
            f"no heartbeat for {age:.0f} s (stale after {limit:g} s; last from {metrics.get('host')} pid "
            f"{metrics.get('pid')}); put back by {by}")
        try:
            _abandon(spark, refs, row, metrics, reason, by)
        except Exception as error:  # noqa: BLE001 -- e.g. a concurrent recovery won the commit
            print(f"smart_mixture: could not recover run {row['run_id']} now ({error}); the next run will")
            continue
        done.append((row["run_id"], reason))
    return done


def _abandon(spark: SparkSession, refs: dict[str, delta_io.TableRef], row: Row, metrics: dict,
             reason: str, by: str) -> None:
    """Mark the run abandoned, put its rows back, then record that they are back (idempotent)."""
    run_id, before = row["run_id"], metrics.get("versions_before", {})
    info = {"smartspark.run_id": run_id, "smartspark.rollback": "true", "smartspark.recovered_by": by}
    fields = {k: row[k] for k in ("started_at", "config", "input", "input_version", "code_version")}
    mark = {**metrics, "abandoned_reason": reason, "abandoned_by": by, "rows_put_back": False}

    def write(status_metrics: dict) -> None:
        frame = runs_row(spark, run_id=run_id, status=ABANDONED, started_at=fields["started_at"],
                         finished_at=datetime.now(timezone.utc), config_json=fields["config"],
                         input_desc=fields["input"], input_version=fields["input_version"],
                         code_version=fields["code_version"], metrics=status_metrics)
        delta_io.replace_where(spark, frame, refs["runs"], column="run_id", value=run_id,
                               partition_by=["run_id"], commit_info={**info, "smartspark.status": ABANDONED})

    if row["status"] == RUNNING:
        write(mark)  # first: a frozen driver that wakes up finds this and stops
    for name in RUN_TABLES[:-1]:
        if name in OPTIONAL_TABLES and name not in before:
            continue  # a run recorded before these tables existed never wrote them
        put_back(spark, refs[name], run_id=run_id, version=before.get(name), info=info)
    earlier = before.get("runs")
    had_row = earlier is not None and delta_io.read(spark, refs["runs"], version=earlier).where(
        F.col("run_id") == run_id).limit(1).count() > 0
    if had_row:  # a killed rerun: the earlier run's rows are back, and so is its runs row
        put_back(spark, refs["runs"], run_id=run_id, version=earlier, info=info)
    else:
        write({**mark, "rows_put_back": True})


def create_succeeded_view(spark: SparkSession, output: str) -> None:
    """Where ``output`` is a catalog schema: the view ``<schema>.smart_mixture_succeeded`` (finished runs)."""
    if not delta_io.is_schema(output):
        return
    refs = delta_io.output_tables(output)
    spark.sql(
        f"CREATE OR REPLACE VIEW {output}.{SUCCEEDED_VIEW} AS SELECT * FROM {refs['mixture'].name} "
        f"WHERE run_id IN (SELECT run_id FROM {refs['runs'].name} WHERE status = '{SUCCEEDED}')"
    ).collect()
