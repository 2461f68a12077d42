"""A run's life in the ``runs`` table: ``running`` from before its first commit, ``succeeded`` at its last;
the runs a killed driver left ``running`` are put back by the next run (or ``smart-mixture recover``).

While a run works, its ``runs`` row says ``status = 'running'``; ``finished_at`` is then the time it was
last heard from, and ``metrics`` (JSON) holds ``attempt`` (a token of this attempt: fencing),
``heartbeat_at`` (Unix seconds), ``stale_after``, ``host``, ``pid`` and ``pid_start`` (the process start
time, from ``/proc/<pid>/stat``) and ``versions_before``: each output table's version before the run's
first commit. A background thread rewrites that row every ``stale_after / 8`` seconds (at most 10 s: the
heartbeat). The run's last commit replaces it with the ``succeeded`` row (``metrics.attempt`` kept).

Fencing: every commit of an attempt (its heartbeats, its tables, its final ``runs`` row) proceeds only
while the ``runs`` row holds its token with status ``running``; every commit to a run id's rows, by its
driver or by a recovery, carries the Delta application-transaction id :func:`app_id`, so on an engine that
fences commits (delta-rs) one whose snapshot predates another's conflicts instead of landing
(docs/reliability.md says what each engine guarantees).

A run is dead when its driver ran on this host and its pid is gone (or is another process now), or when
its heartbeat is older than ``stale_after`` seconds (the larger of the recovering side's and the run's
own). Recovery first marks its ``runs`` row ``abandoned`` (only if the row is still the one it judged),
then puts its rows in ``mixture``, ``task_weights`` and the optional ``decontaminated``, ``clusters`` and
``mixture_quality`` back as they were at ``versions_before``, then records ``rows_put_back`` or, for a
killed rerun of a run id that had succeeded before, puts that earlier row back. A recovery killed halfway
leaves ``rows_put_back: false``, and the next recovery finishes it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from smart_spark.delta import delta_io
from smart_spark.delta.delta_io import Fence
from smart_spark.errors import SmartError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Row, SparkSession

log = logging.getLogger(__name__)

RUNNING, SUCCEEDED, ABANDONED = "running", "succeeded", "abandoned"
RUNS_SCHEMA = (
    "run_id string, status string, started_at timestamp, finished_at timestamp, config string, "
    "input string, input_version long, code_version string, metrics string"
)
# What a run commits, in commit order; the optional tables only when the run has them.
RUN_TABLES = ("mixture", "decontaminated", "clusters", "mixture_quality", "task_weights", "runs")
OPTIONAL_TABLES = ("decontaminated", "clusters", "mixture_quality")
SUCCEEDED_VIEW = "smart_mixture_succeeded"
MAX_BEAT_SECONDS = 10.0


def new_attempt() -> str:
    """A fresh attempt token (``metrics.attempt`` of the ``runs`` row)."""
    return uuid.uuid4().hex


def app_id(run_id: str) -> str:
    """The Delta application-transaction id that every commit to ``run_id``'s rows carries (fencing)."""
    return f"smartspark.run_id={run_id}"


def beat_interval(stale_after: float) -> float:
    """Seconds between heartbeats: an eighth of the timeout, at most 10 s, at least 0.5 s."""
    return max(min(stale_after / 8, MAX_BEAT_SECONDS), 0.5)


def runs_row(spark: SparkSession, *, run_id: str, status: str, started_at: datetime, finished_at: datetime,
             config_json: str, input_desc: str, input_version: int | None, code_version: str,
             metrics: dict) -> DataFrame:
    """One ``runs`` row as a frame."""
    row = (run_id, status, started_at, finished_at, config_json, input_desc, input_version, code_version,
           json.dumps(metrics, sort_keys=True, default=str))
    return spark.createDataFrame([row], RUNS_SCHEMA)


def put_back(spark: SparkSession, ref: delta_io.TableRef, *, run_id: str, version: int | None,
             info: dict[str, str], check: Callable[[], None] | None = None) -> None:
    """Compensating commit: this run id's rows as they were at ``version`` (none if no table then).

    The commit is fenced (:func:`app_id`); ``check`` runs right before it and raises to refuse it."""
    if version is None:
        if not delta_io.exists(spark, ref):
            return
        old = spark.createDataFrame([], delta_io.read(spark, ref).schema)
    else:
        old = delta_io.read(spark, ref, version=version).where(F.col("run_id") == run_id)
    delta_io.replace_where(spark, old, ref, column="run_id", value=run_id, partition_by=["run_id"],
                           commit_info=info, fence=Fence(app_id(run_id), check))


def current_row(spark: SparkSession, ref: delta_io.TableRef, run_id: str) -> Row | None:
    """``run_id``'s row in the latest snapshot of ``runs`` (None if none)."""
    if not delta_io.exists(spark, ref):
        return None
    rows = delta_io.read(spark, ref).where(F.col("run_id") == run_id).limit(1).collect()
    return rows[0] if rows else None


def _metrics(row: Row | None) -> dict:
    return {} if row is None else json.loads(row["metrics"] or "{}")


def _describe(row: Row | None) -> str:
    """What a ``runs`` row that is no longer this attempt's says now."""
    if row is None:
        return "its runs row is gone"
    metrics = _metrics(row)
    if row["status"] == ABANDONED:
        return f"declared abandoned: {metrics.get('abandoned_reason', 'no reason given')}"
    return f"its runs row is {row['status']} from attempt {metrics.get('attempt') or 'of an earlier version'}"


# ------------------------------------------------------------------------------------------- liveness

def process_start(pid: int) -> int | None:
    """Start time of process ``pid`` (clock ticks after boot, field 22 of ``/proc/<pid>/stat``); None when
    there is no such process or no ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2:].split()  # after "pid (comm) ": field 3 on
    return int(fields[19])


def driver_gone(metrics: dict) -> str | None:
    """Why the driver that wrote a ``running`` row is certainly dead, judged on its own host; else None.

    Only a row written on this host (same host name) is judged: its pid no longer exists, or belongs to a
    process started at another time than the one recorded (the pid was reused)."""
    host, pid = metrics.get("host"), metrics.get("pid")
    if host != socket.gethostname() or not pid:
        return None
    pid = int(pid)
    if not os.path.isdir("/proc"):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return f"pid {pid} no longer runs on {host}"
        except OSError:
            return None
        return None
    start = process_start(pid)
    if start is None:
        return f"pid {pid} no longer runs on {host}"
    recorded = metrics.get("pid_start")
    if recorded is not None and int(recorded) != start:
        return f"pid {pid} on {host} is another process now"
    return None


# ------------------------------------------------------------------------------------------ the ledger

class RunLedger:
    """The ``running`` rows of one job attempt (one per run id of a sweep), their heartbeat, the fenced
    commits, and the put-back.

    ``with RunLedger(...) as ledger:`` writes the rows and starts the heartbeat; an exception leaving the
    block puts back every table this attempt committed (``running`` rows included) unless :meth:`finished`
    was called after the last commit. A run id another driver took over (recovery) is left to that driver
    where commits are fenced.
    """

    def __init__(self, spark: SparkSession, refs: dict[str, delta_io.TableRef], rows: dict[str, dict],
                 *, stale_after: float, attempt: str | None = None) -> None:
        """``rows``: run id -> the keyword arguments of :func:`runs_row` but status, finished_at, metrics.
        ``attempt``: this attempt's token (default a fresh one); the ``succeeded`` rows carry it too."""
        self.spark, self.refs, self.rows, self.stale_after = spark, refs, rows, stale_after
        self.attempt = attempt or new_attempt()
        self.fenced = delta_io.fences_commits(spark)
        self.before: dict[str, int | None] = {}
        self.committed: list[tuple[str, str]] = []  # (table, run id), in commit order
        self.lost: str | None = None  # why this attempt no longer owns its runs (taken over)
        self._done = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RunLedger:
        self.before = {name: delta_io.version(self.spark, self.refs[name]) for name in RUN_TABLES}
        try:
            self._write_running(claim=True)
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

    # ------------------------------------------------------------------------------- fencing checks

    def _check_claim(self, run_id: str) -> None:
        """Before the first ``running`` row: no other live attempt holds this run id."""
        row = current_row(self.spark, self.refs["runs"], run_id)
        if row is not None and row["status"] == RUNNING and _metrics(row).get("attempt") != self.attempt:
            raise SmartError(f"run id {run_id!r} is running in another driver; wait for it or choose "
                             "another --run-id")

    def check_own(self, run_id: str, status: str = RUNNING) -> None:
        """SmartError unless ``run_id``'s ``runs`` row holds this attempt's token with ``status``."""
        if self.lost is None:
            row = current_row(self.spark, self.refs["runs"], run_id)
            if row is not None and row["status"] == status and _metrics(row).get("attempt") == self.attempt:
                return
            self.lost = f"run {run_id}: {_describe(row)}"
        raise SmartError(f"this attempt was taken over by another driver ({self.lost}); it commits nothing "
                         "more; run it again")

    def check_alive(self) -> None:
        """SmartError when another driver has taken over one of this attempt's runs (fencing)."""
        for run_id in self.rows:
            self.check_own(run_id)

    def _owns(self, run_id: str) -> bool:
        try:
            row = current_row(self.spark, self.refs["runs"], run_id)
        except Exception:  # noqa: BLE001 -- cannot tell: try the (fenced) put-back anyway
            return True
        return row is not None and _metrics(row).get("attempt") == self.attempt

    def _check_not_taken(self, run_id: str) -> None:
        """Before a put-back: no newer attempt of this run id is running (its rows are its own)."""
        row = current_row(self.spark, self.refs["runs"], run_id)
        if row is not None and row["status"] == RUNNING and _metrics(row).get("attempt") != self.attempt:
            raise SmartError(f"run {run_id} is running again in another driver; its rows are left to it")

    # ------------------------------------------------------------------------------------- heartbeat

    def _write_running(self, *, claim: bool = False) -> None:
        now = time.time()
        metrics = {"attempt": self.attempt, "heartbeat_at": now, "stale_after": self.stale_after,
                   "host": socket.gethostname(), "pid": os.getpid(), "pid_start": process_start(os.getpid()),
                   "versions_before": self.before}
        check = self._check_claim if claim else self.check_own
        for run_id, row in self.rows.items():
            frame = runs_row(self.spark, run_id=run_id, status=RUNNING,
                             finished_at=datetime.fromtimestamp(now, timezone.utc), metrics=metrics, **row)
            delta_io.replace_where(self.spark, frame, self.refs["runs"], column="run_id", value=run_id,
                                   partition_by=["run_id"],
                                   commit_info={"smartspark.run_id": run_id, "smartspark.status": RUNNING},
                                   fence=Fence(app_id(run_id), lambda r=run_id: check(r)))
            if ("runs", run_id) not in self.committed:
                self.committed.append(("runs", run_id))
            if not self.fenced:
                self.check_own(run_id)  # a check and a separate write: look again once written

    def _beat(self) -> None:
        interval = beat_interval(self.stale_after)
        while not self._stop.wait(interval):
            try:
                self._write_running()
            except Exception as error:  # noqa: BLE001 -- logged; a transient failure is retried
                first = (str(error).strip().splitlines() or [type(error).__name__])[0]
                if self.lost is not None:
                    log.warning("heartbeat stopped: %s", first)
                    return  # the main thread stops at its next commit
                log.warning("heartbeat failed (next try in %.1f s): %s", interval, first)

    def stop_heartbeat(self) -> None:
        """Stop the heartbeat thread and wait for a beat in flight (before the final ``runs`` commit)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    # ------------------------------------------------------------------------------------ committing

    def commit(self, table: str, run_id: str, frame: DataFrame, commit_info: dict) -> None:
        """Commit ``run_id``'s rows to ``table`` (replace its partition), fenced: only while the ``runs``
        row holds this attempt (``running``); recorded for the put-back."""
        delta_io.replace_where(self.spark, frame, self.refs[table], column="run_id", value=run_id,
                               partition_by=["run_id"], commit_info=commit_info,
                               fence=Fence(app_id(run_id), lambda: self.check_own(run_id)))
        self.committed.append((table, run_id))
        if not self.fenced:  # the engine cannot refuse a commit that followed a recovery: look again now
            self.check_own(run_id, SUCCEEDED if table == "runs" else RUNNING)

    def record(self, table: str, run_id: str) -> None:
        """Note a commit of ``run_id``'s rows to ``table`` (put back if the job fails)."""
        self.committed.append((table, run_id))

    def finished(self) -> None:
        """The last commit is done: nothing is put back any more."""
        self._done = True

    def _put_back_all(self) -> None:
        """Put back what this attempt committed, newest first. Where commits are fenced, a run id another
        driver took over is that driver's to put back (ours cannot have landed after its put-back)."""
        owned = {run_id for _, run_id in self.committed if self._owns(run_id)}
        for name, run_id in reversed(self.committed):
            if self.fenced and run_id not in owned:
                continue
            try:
                put_back(self.spark, self.refs[name], run_id=run_id, version=self.before.get(name),
                         info={"smartspark.run_id": run_id, "smartspark.rollback": "true"},
                         check=lambda r=run_id: self._check_not_taken(r))
            except SmartError as error:
                log.warning("run %s: %s not put back: %s", run_id, name, error)
        self.committed.clear()


def _rows_with_status(spark: SparkSession, ref: delta_io.TableRef, statuses: list[str],
                      run_ids: Iterable[str] | None = None) -> list[Row]:
    if not delta_io.exists(spark, ref):
        return []
    rows = delta_io.read(spark, ref).where(F.col("status").isin(statuses))
    if run_ids is not None:
        rows = rows.where(F.col("run_id").isin(list(run_ids)))
    return rows.collect()


# ------------------------------------------------------------------------------------------- recovery

def recover(spark: SparkSession, refs: dict[str, delta_io.TableRef], *, stale_after: float, by: str,
            own_run_ids: Iterable[str] = ()) -> list[tuple[str, str]]:
    """Put back every dead run of this output (module doc); returns (run id, reason) per run put back.

    A run still alive is left alone; if it has one of ``own_run_ids``, SmartError (one run id, two live
    drivers). A run whose recovery fails (its row changed meanwhile: it beat again, or another recovery
    won) is left for the next recovery, logged, and not returned.
    """
    done = []
    own = set(own_run_ids)
    for row in _rows_with_status(spark, refs["runs"], [RUNNING, ABANDONED]):
        metrics = json.loads(row["metrics"] or "{}")
        if row["status"] == ABANDONED and metrics.get("rows_put_back", True):
            continue  # an earlier recovery finished this one
        age = time.time() - float(metrics.get("heartbeat_at", 0.0))
        limit = max(stale_after, float(metrics.get("stale_after", 0.0)))
        where = f"last from {metrics.get('host')} pid {metrics.get('pid')}"
        reason = metrics.get("abandoned_reason")
        if row["status"] == RUNNING:
            gone = driver_gone(metrics)
            if gone is None and age <= limit:
                if row["run_id"] in own:
                    raise SmartError(f"run id {row['run_id']!r} is running in another driver (heard from "
                                     f"{age:.0f} s ago); wait for it or choose another --run-id")
                continue
            reason = (f"driver gone: {gone} (last heartbeat {age:.0f} s ago); put back by {by}" if gone else
                      f"no heartbeat for {age:.0f} s (stale after {limit:g} s; {where}); put back by {by}")
        try:
            _abandon(spark, refs, row, metrics, reason, by)
        except Exception as error:  # noqa: BLE001 -- e.g. it beat again, or a concurrent recovery won
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            log.warning("could not recover run %s now (%s); the next run will", row["run_id"], first)
            continue
        done.append((row["run_id"], reason))
    return done


def _abandon(spark: SparkSession, refs: dict[str, delta_io.TableRef], row: Row, metrics: dict,
             reason: str, by: str) -> None:
    """Mark the run abandoned, put its rows back, then record that they are back (idempotent).

    Each commit is fenced on the ``runs`` row: the mark only while the row is still the one judged dead
    (same attempt, same heartbeat), the rest only while it is this mark."""
    run_id, before = row["run_id"], metrics.get("versions_before", {})
    info = {"smartspark.run_id": run_id, "smartspark.rollback": "true", "smartspark.recovered_by": by}
    fields = {k: row[k] for k in ("started_at", "config", "input", "input_version", "code_version")}
    mark = {**metrics, "abandoned_reason": reason, "abandoned_by": by, "rows_put_back": False}
    judged = (row["status"], metrics.get("attempt"), metrics.get("heartbeat_at"))
    marked = (ABANDONED, metrics.get("attempt"), metrics.get("heartbeat_at"))

    def expect(state: tuple) -> Callable[[], None]:
        def check() -> None:
            now = current_row(spark, refs["runs"], run_id)
            got = _metrics(now)
            if now is None or (now["status"], got.get("attempt"), got.get("heartbeat_at")) != state:
                raise SmartError(f"run {run_id}: its runs row changed meanwhile ({_describe(now)})")
        return check

    def write(status_metrics: dict, state: tuple) -> None:
        frame = runs_row(spark, run_id=run_id, status=ABANDONED, started_at=fields["started_at"],
                         finished_at=datetime.now(timezone.utc), config_json=fields["config"],
                         input_desc=fields["input"], input_version=fields["input_version"],
                         code_version=fields["code_version"], metrics=status_metrics)
        delta_io.replace_where(spark, frame, refs["runs"], column="run_id", value=run_id,
                               partition_by=["run_id"], commit_info={**info, "smartspark.status": ABANDONED},
                               fence=Fence(app_id(run_id), expect(state)))

    if row["status"] == RUNNING:
        write(mark, judged)  # first: a frozen driver that wakes up finds this and stops
    for name in RUN_TABLES[:-1]:
        if name in OPTIONAL_TABLES and name not in before:
            continue  # a run recorded before these tables existed never wrote them
        put_back(spark, refs[name], run_id=run_id, version=before.get(name), info=info, check=expect(marked))
    earlier = before.get("runs")
    had_row = earlier is not None and delta_io.read(spark, refs["runs"], version=earlier).where(
        F.col("run_id") == run_id).limit(1).count() > 0
    if had_row:  # a killed rerun: the earlier run's rows are back, and so is its runs row
        put_back(spark, refs["runs"], run_id=run_id, version=earlier, info=info, check=expect(marked))
    else:
        write({**mark, "rows_put_back": True}, marked)


def create_succeeded_view(spark: SparkSession, output: str) -> None:
    """Where ``output`` is a catalog schema: the view ``<schema>.smart_mixture_succeeded`` (finished runs)."""
    if not delta_io.is_schema(output):
        return
    refs = delta_io.output_tables(output)
    schema = refs["mixture"].name.rpartition(".")[0]  # catalog:db and catalog.db alike
    spark.sql(
        f"CREATE OR REPLACE VIEW {schema}.{SUCCEEDED_VIEW} AS SELECT * FROM {refs['mixture'].name} "
        f"WHERE run_id IN (SELECT run_id FROM {refs['runs'].name} WHERE status = '{SUCCEEDED}')"
    ).collect()
