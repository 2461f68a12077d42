"""What a long run says while it works: one log line per stage start and end, and progress in between.

:func:`stage` wraps one stage of the job (read, embed, weigh, select, write): every Spark job started
inside it carries the stage's description (``SparkContext.setJobGroup``; the Spark UI and Databricks show
"embed 3,493 prompts" instead of ``collect at ...``), and its end line gives the seconds and whatever
counts the stage filled in. :func:`watch` polls Spark's status tracker from a driver thread and logs, at
most every ``interval`` seconds, how far the stage's running Spark stages are: tasks done, and for work
measured in rows (embedding) rows done, rows/s and an ETA, estimated from the finished tasks' share.

Over Spark Connect there is no SparkContext and no status tracker: jobs are tagged
(``SparkSession.addTag``) and no progress lines are logged; nothing else changes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

#: Seconds between two progress lines of one stage (a line is skipped when nothing moved); the
#: environment variable ``SMART_SPARK_PROGRESS_SECONDS`` overrides it.
PROGRESS_INTERVAL = 5.0
_QUIET_REPEAT = 30.0  # a line is logged even without progress after this many seconds


def spark_context(spark: SparkSession) -> SparkContext | None:
    """The session's SparkContext, or None over Spark Connect."""
    try:
        return spark.sparkContext
    except Exception:  # Spark Connect: no JVM on this side
        return None


def _fmt_seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 90:
        return f"{minutes} min {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _counts(counts: dict[str, Any]) -> str:
    parts = []
    for key, value in counts.items():
        if isinstance(value, int) and not isinstance(value, bool):
            parts.append(f"{key} {value:,}")
        elif value is not None:
            parts.append(f"{key} {value}")
    return ", ".join(parts)


class Stage:
    """One stage in progress: ``counts`` (filled by the caller) go into its end line."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.counts: dict[str, Any] = {}
        self.seconds: float | None = None


@contextlib.contextmanager
def stage(spark: SparkSession, name: str, description: str, clock: dict[str, float] | None = None
          ) -> Iterator[Stage]:
    """Log ``name`` starting (with ``description``), label its Spark jobs, and log its end with seconds.

    ``clock``: a dict that gets ``clock[name] = seconds``. The Spark job description is cleared on exit.
    """
    current = Stage(name)
    log.info("%s: started: %s", name, description)
    started = time.perf_counter()
    _label(spark, name, description)
    try:
        yield current
    finally:
        _unlabel(spark, name)
    current.seconds = round(time.perf_counter() - started, 3)
    if clock is not None:
        clock[name] = current.seconds
    counts = _counts(current.counts)
    log.info("%s: done in %.1f s%s", name, current.seconds, f": {counts}" if counts else "")


def describe(spark: SparkSession, name: str, description: str) -> None:
    """Relabel the Spark jobs that follow (inside a :func:`stage`) with a more precise description."""
    _label(spark, name, description)


def _label(spark: SparkSession, name: str, description: str) -> None:
    sc = spark_context(spark)
    if sc is not None:
        sc.setJobGroup(f"smart-spark:{name}", f"smart-spark {description}", interruptOnCancel=False)
        return
    with contextlib.suppress(Exception):  # Spark Connect: tags name the operations
        spark.addTag(f"smart-spark-{name}")


def _unlabel(spark: SparkSession, name: str) -> None:
    sc = spark_context(spark)
    if sc is not None:
        sc.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
        sc.setLocalProperty("spark.job.description", None)  # type: ignore[arg-type]
        return
    with contextlib.suppress(Exception):
        spark.removeTag(f"smart-spark-{name}")


class _Watcher(threading.Thread):
    """Polls the status tracker for the jobs of one job group and logs their progress."""

    def __init__(self, sc: SparkContext, name: str, rows: int | None, unit: str, tasks: int | None,
                 interval: float) -> None:
        super().__init__(name=f"smart-spark-progress-{name}", daemon=True)
        self.sc, self.stage_name, self.rows, self.unit = sc, name, rows, unit
        self.tasks, self.interval = tasks, interval
        self.stopped = threading.Event()
        self.started_at = time.perf_counter()

    def _progress(self) -> tuple[int, int, bool] | None:
        """(tasks done, tasks in all, measured) over the running stages of this group's jobs: the stages
        with ``self.tasks`` tasks when there are such (measured: they do the work counted in rows), else
        all."""
        tracker = self.sc.statusTracker()
        running: list[tuple[int, int]] = []
        for job_id in tracker.getJobIdsForGroup(f"smart-spark:{self.stage_name}"):
            job = tracker.getJobInfo(job_id)
            if job is None or job.status != "RUNNING":
                continue
            for stage_id in job.stageIds:
                info = tracker.getStageInfo(stage_id)
                if info is None or info.numTasks == 0:
                    continue
                if info.numActiveTasks == 0 and info.numCompletedTasks in (0, info.numTasks):
                    continue  # not started, or finished
                running.append((info.numCompletedTasks, info.numTasks))
        measured = [r for r in running if r[1] == self.tasks]
        counted = measured or running
        if not counted:
            return None
        return sum(r[0] for r in counted), sum(r[1] for r in counted), self.tasks is None or bool(measured)

    def _line(self, done: int, total: int, measured: bool) -> str:
        elapsed = time.perf_counter() - self.started_at
        if not measured:
            return (f"{self.stage_name}: preparing the {self.rows:,} {self.unit} ({done:,} of {total:,} "
                    f"Spark tasks done), {_fmt_seconds(elapsed)}")
        if self.rows is None:
            return f"{self.stage_name}: {done:,} of {total:,} Spark tasks done, {_fmt_seconds(elapsed)}"
        rows_done = int(round(self.rows * done / total))
        text = (f"{self.stage_name}: ~{rows_done:,} of {self.rows:,} {self.unit} done ({done} of {total} "
                f"Spark tasks), {_fmt_seconds(elapsed)}")
        if rows_done:
            rate = rows_done / elapsed
            text += f", {rate:,.1f} {self.unit}/s, ETA {_fmt_seconds((self.rows - rows_done) / rate)}"
        return text

    def run(self) -> None:
        last: tuple[int, int, bool] | None = None
        last_at = 0.0
        while not self.stopped.wait(self.interval):
            try:
                progress = self._progress()
            except Exception:  # the context is stopping: say nothing
                return
            now = time.perf_counter()
            if progress is None or (progress == last and now - last_at < _QUIET_REPEAT):
                continue
            log.info("%s", self._line(*progress))
            last, last_at = progress, now


@contextlib.contextmanager
def watch(spark: SparkSession, name: str, *, rows: int | None = None, unit: str = "rows",
          tasks: int | None = None, interval: float | None = None) -> Iterator[None]:
    """Log progress of the Spark jobs of stage ``name`` (run inside :func:`stage`) while the block runs.

    ``rows``: the work measured in ``unit`` (e.g. texts to embed), spread evenly over the ``tasks`` tasks
    of the Spark stage that does it; without ``rows`` the lines count tasks. No-op over Spark Connect.
    """
    sc = spark_context(spark)
    if sc is None or not log.isEnabledFor(logging.INFO):
        yield
        return
    if interval is None:
        interval = float(os.environ.get("SMART_SPARK_PROGRESS_SECONDS") or PROGRESS_INTERVAL)
    watcher = _Watcher(sc, name, rows, unit, tasks, interval)
    watcher.start()
    try:
        yield
    finally:
        watcher.stopped.set()
        watcher.join(timeout=5)
