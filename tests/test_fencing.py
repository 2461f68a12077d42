"""Fencing, liveness and exit codes (real Spark, real Delta tables, real driver processes and signals).

A driver frozen (SIGSTOP) right after its ``mixture`` commit, recovered meanwhile and then continued, exits
non-zero and commits nothing more; a driver killed (SIGKILL) is put back by the very next run with default
settings, because its pid is gone. In process: a fenced Delta commit conflicts with a later commit carrying
the same run id's application transaction; a heartbeat that finds its row taken over stops with a warning;
export refuses unfinished runs; a failure after the final ``runs`` commit exits 0 with a warning.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone

import pyarrow.parquet as pq
import pytest
from standalone import read_table
from test_crash_recovery import Driver, rows_of, runs_table

from smart_spark.cli.settings import JobConfig, make_config
from smart_spark.datasets.synthetic import synthetic_table
from smart_spark.delta import delta_io
from smart_spark.delta.delta_io import Fence
from smart_spark.errors import SmartError
from smart_spark.jobs.smart_mixture import main, run
from smart_spark.spark.run_state import RunLedger, app_id, driver_gone, process_start, recover, runs_row

pytestmark = pytest.mark.spark

STALE = 3.0  # the frozen driver's heartbeat timeout (it beats every 0.5 s)
TABLES = ("mixture", "task_weights", "runs")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("fencing") / "input.parquet"
    pq.write_table(synthetic_table(600, 3, dim=8, families=1, seed=11), path)
    return str(path)


@pytest.fixture
def job_logging():
    """Remove the job's console handler after a test that ran ``main`` in this process."""
    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_smart_spark", False)]:
        root.removeHandler(handler)


def settings(data: str, output, run_id: str, n: int, stale: float | None = None) -> dict:
    """The job's settings for ``run_id`` (``stale``: ``--stale-after``; None: the default)."""
    out = dict(input=data, output=str(output), id_col="id", embedding_col="embedding", num_instances=n,
               run_id=run_id, report=False)
    return out if stale is None else {**out, "stale_after": stale}


def versions(output) -> dict[str, int]:
    from deltalake import DeltaTable

    return {name: DeltaTable(str(output / name)).version() for name in TABLES}


def rows(output) -> dict[str, list[tuple]]:
    return {table: rows_of(output, table, "r") for table in TABLES}


def ledger_row(data: str) -> dict:
    return dict(started_at=datetime.now(timezone.utc), config_json="{}", input_desc=data, input_version=None,
                code_version="test")


# ------------------------------------------------------------------------------- real driver processes

def test_frozen_rerun_is_fenced(spark, data, tmp_path):
    """A rerun of a succeeded run id, frozen right after its ``mixture`` commit, recovered, continued: it
    exits 1, commits nothing more, and the earlier run's rows read exactly as before the rerun."""
    out = tmp_path / "out"
    run(spark, make_config(settings(data, out, "r", 100)))
    before = rows(out)
    driver = Driver(tmp_path / "driver", settings(data, out, "r", 60, STALE), "after_mixture")
    try:
        driver.wait_paused()
        assert len(rows_of(out, "mixture", "r")) == 60  # the rerun's mixture is committed
        assert runs_table(out)["r"]["status"] == "running"
        os.killpg(driver.proc.pid, signal.SIGSTOP)  # frozen: no heartbeat, no commit
        time.sleep(STALE + 1.5)
        assert main(["recover", "--output", str(out), "--stale-after", "1"]) == 0
        recovered = versions(out)
        assert rows(out) == before  # recovery put the earlier run back
        (driver.root / "after_mixture.release").write_text("go")
        os.killpg(driver.proc.pid, signal.SIGCONT)
        code = driver.proc.wait(timeout=300)
        driver.log.close()
    finally:
        if driver.proc.poll() is None:
            os.killpg(driver.proc.pid, signal.SIGCONT)
            driver.kill()
    log = driver.log_text()
    assert code == 1, log
    assert "smart_mixture: error: this attempt was taken over by another driver (run r: its runs row is " \
           "succeeded from attempt" in log, log
    assert versions(out) == recovered, "the woken driver committed"
    assert rows(out) == before


def test_killed_driver_is_put_back_by_the_very_next_run(spark, data, tmp_path):
    """Default settings: a driver killed right after its ``mixture`` commit is dead at once (its pid is
    gone), so the very next run on the output puts it back, well within the default ``--stale-after``."""
    assert JobConfig.stale_after == 120.0
    out = tmp_path / "out"
    run(spark, make_config(settings(data, out, "base", 100)))
    base = {t: rows_of(out, t, "base") for t in TABLES}
    driver = Driver(tmp_path / "driver", settings(data, out, "killed", 120), "after_mixture")
    try:
        driver.wait_paused()
        assert len(rows_of(out, "mixture", "killed")) == 120
        metrics = json.loads(runs_table(out)["killed"]["metrics"])
    finally:
        driver.kill()
    assert metrics["pid"] == driver.proc.pid and metrics["host"] == socket.gethostname()
    assert metrics["stale_after"] == 120.0 and isinstance(metrics["pid_start"], int)

    run(spark, make_config(settings(data, out, "next", 80)))
    assert time.time() - metrics["heartbeat_at"] < 120  # its heartbeat was not stale yet
    assert read_table(f"{out}/mixture")["run_id"].value_counts().to_dict() == {"base": 100, "next": 80}
    assert set(read_table(f"{out}/task_weights")["run_id"]) == {"base", "next"}
    assert {t: rows_of(out, t, "base") for t in TABLES} == base
    killed = runs_table(out)["killed"]
    reason = json.loads(killed["metrics"])
    assert killed["status"] == "abandoned" and reason["rows_put_back"] is True
    assert reason["abandoned_reason"].startswith(
        f"driver gone: pid {driver.proc.pid} no longer runs on {socket.gethostname()} (last heartbeat ")
    assert reason["abandoned_reason"].endswith("s ago); put back by run next")


# -------------------------------------------------------------------------------------- in this process

def test_fenced_commit_conflicts_with_a_later_commit_of_its_run_id(spark, tmp_path):
    """delta-rs: a commit whose snapshot predates another commit carrying the same run id's application
    transaction conflicts even when that commit changed no file (a recovery's put-back of a new run id);
    it is retried on a new snapshot only after its check runs again. Another run id's commit does not
    conflict."""
    assert delta_io.fences_commits(spark)
    ref = delta_io.table_ref(str(tmp_path / "t"))
    schema = "run_id string, x int"

    def put(run_id: str, values: list[int], fence: Fence | None = None) -> None:
        frame = spark.createDataFrame([(run_id, x) for x in values], schema)
        delta_io.replace_where(spark, frame, ref, column="run_id", value=run_id, partition_by=["run_id"],
                               fence=fence)

    put("old", [1])
    for other, refused in (("new", True), ("other", False)):
        calls: list[str] = []

        def check(other: str = other, calls: list[str] = calls) -> None:
            calls.append(other)
            if len(calls) == 1:  # right after this check: an empty commit to `other` (no file changes)
                put(other, [], Fence(app_id(other)))
            elif other == "new":
                raise SmartError("taken over")

        if refused:
            with pytest.raises(SmartError, match="taken over"):
                put("new", [7], Fence(app_id("new"), check))
            assert calls == ["new", "new"]  # conflicted, checked again, refused
        else:
            put("new", [8], Fence(app_id("new"), check))
            assert calls == ["other"]  # rebased over the other run id's commit: no second check
    table = read_table(str(tmp_path / "t"))
    assert sorted(zip(table["run_id"], table["x"])) == [("new", 8), ("old", 1)]


def test_liveness_from_the_pid_and_its_start_time():
    me = {"host": socket.gethostname(), "pid": os.getpid(), "pid_start": process_start(os.getpid())}
    assert isinstance(me["pid_start"], int) and driver_gone(me) is None
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert driver_gone({**me, "pid": child.pid}) == f"pid {child.pid} no longer runs on {me['host']}"
    reused = {**me, "pid_start": me["pid_start"] - 1}  # the pid now belongs to a later process
    assert driver_gone(reused) == f"pid {os.getpid()} on {me['host']} is another process now"
    assert driver_gone({**me, "pid": child.pid, "host": me["host"] + "-elsewhere"}) is None
    assert driver_gone({"host": me["host"], "pid": child.pid}) == driver_gone({**me, "pid": child.pid})


def test_taken_over_attempt_stops_beating_and_commits_nothing(spark, data, tmp_path, caplog):
    """The row of a heartbeating attempt is replaced by an earlier run's ``succeeded`` row (what recovery
    does for a rerun): the heartbeat logs a warning and stops without writing ``running`` over it; the
    attempt's next commit is refused; leaving the ledger puts nothing back."""
    caplog.set_level(logging.WARNING, logger="smart_spark.spark.run_state")
    refs = delta_io.output_tables(str(tmp_path / "out"))
    ledger = RunLedger(spark, refs, {"hb": ledger_row(data)}, stale_after=1.0).__enter__()
    running = runs_table(tmp_path / "out")["hb"]
    metrics = json.loads(running["metrics"])
    assert running["status"] == "running" and metrics["attempt"] == ledger.attempt
    assert (metrics["pid"], metrics["pid_start"]) == (os.getpid(), process_start(os.getpid()))

    earlier = runs_row(spark, run_id="hb", status="succeeded", finished_at=datetime.now(timezone.utc),
                       metrics={"attempt": "earlier"}, **ledger_row(data))
    delta_io.replace_where(spark, earlier, refs["runs"], column="run_id", value="hb", partition_by=["run_id"],
                           fence=Fence(app_id("hb")))
    restored = rows_of(tmp_path / "out", "runs", "hb")
    ledger._thread.join(timeout=60)
    assert not ledger._thread.is_alive(), "the heartbeat did not stop"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["heartbeat stopped: this attempt was taken over by another driver (run hb: its runs "
                        "row is succeeded from attempt earlier); it commits nothing more; run it again"]
    stray = spark.createDataFrame([("hb", 1)], "run_id string, x int")
    with pytest.raises(SmartError, match="taken over"):
        ledger.commit("mixture", "hb", stray, {})
    runs_version = delta_io.version(spark, refs["runs"])
    ledger.__exit__(SmartError, SmartError("stop"), None)
    assert delta_io.version(spark, refs["runs"]) == runs_version
    assert not delta_io.exists(spark, refs["mixture"])
    assert rows_of(tmp_path / "out", "runs", "hb") == restored


def test_export_refuses_unfinished_runs(spark, data, tmp_path, capsys):
    from smart_spark.jobs.export_mixture import main as export_main

    out = tmp_path / "out"
    refs = delta_io.output_tables(str(out))
    gone = RunLedger(spark, refs, {"gone": ledger_row(data)}, stale_after=1.0).__enter__()
    gone.stop_heartbeat()  # silent from now on, like a frozen driver
    time.sleep(1.5)
    assert [r for r, _ in recover(spark, refs, stale_after=1.0, by="test")] == ["gone"]
    live = RunLedger(spark, refs, {"live": ledger_row(data)}, stale_after=600.0).__enter__()
    live.stop_heartbeat()
    picks = [(f"p{i}", f"r{i}", "live", "t", None, f"id{i}", i, None) for i in range(5)]
    frame = spark.createDataFrame(picks, "prompt string, response string, run_id string, task string, "
                                         "stratum string, id string, selection_rank int, "
                                         "selection_gain double")
    live.commit("mixture", "live", frame, {})
    capsys.readouterr()
    for run_id, status in (("live", "running"), ("gone", "abandoned")):
        code = export_main(["--output", str(out), "--run-id", run_id, "--dest", str(tmp_path / run_id)])
        assert code == 1
        assert capsys.readouterr().err.splitlines() == [
            f"export_mixture: error: run {run_id} is {status}, not finished (its runs row in {out}); "
            "export a succeeded run, or pass --allow-unfinished"]
        assert not (tmp_path / run_id).exists()
    dest = tmp_path / "allowed"
    flags = ["--output", str(out), "--run-id", "live", "--dest", str(dest), "--allow-unfinished"]
    assert export_main(flags) == 0
    assert json.loads((dest / "manifest.json").read_text())["rows"] == 5


def test_exit_codes(spark, data, tmp_path, capsys, job_logging):
    """2 for bad settings; 0 with one warning line when the report fails after the final ``runs``
    commit (the run is finished)."""
    out = tmp_path / "out"
    flags = ["--input", data, "--output", str(out), "--id-col", "id", "--embedding-col", "embedding",
             "--run-id", "rep"]
    assert main([*flags, "--num-instances", "0"]) == 2
    assert capsys.readouterr().err.startswith("smart_mixture: error: ")
    (out / "report.md").mkdir(parents=True)  # the report cannot be written there
    assert main([*flags, "--num-instances", "50", "--quiet"]) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if " WARNING " in line]
    assert len(warnings) == 1 and warnings[0].endswith(
        "run rep succeeded (its runs rows are committed), but its report failed: IsADirectoryError: "
        f"[Errno 21] Is a directory: '{out}/report.md'"), err
    assert runs_table(out)["rep"]["status"] == "succeeded"
    assert len(rows_of(out, "mixture", "rep")) == 50


def test_taken_over_attempt_is_refused_on_sail(sail, data, tmp_path, monkeypatch):
    """Spark's Delta source (Sail, no application transactions): the check before each commit refuses an
    attempt whose ``runs`` row was taken over; nothing is written."""
    monkeypatch.setenv("SPARK_CONNECT_MODE_ENABLED", "1")
    assert not delta_io.fences_commits(sail)
    refs = delta_io.output_tables(str(tmp_path / "out"))
    ledger = RunLedger(sail, refs, {"s": ledger_row(data)}, stale_after=600.0).__enter__()
    ledger.stop_heartbeat()
    earlier = runs_row(sail, run_id="s", status="succeeded", finished_at=datetime.now(timezone.utc),
                       metrics={"attempt": "earlier"}, **ledger_row(data))
    delta_io.replace_where(sail, earlier, refs["runs"], column="run_id", value="s", partition_by=["run_id"])
    with pytest.raises(SmartError, match=r"taken over by another driver \(run s: its runs row is succeeded "
                                         r"from attempt earlier\)"):
        ledger.commit("task_weights", "s", sail.createDataFrame([("s", 1)], "run_id string, x int"), {})
    assert not delta_io.exists(sail, refs["task_weights"])
    assert runs_table(tmp_path / "out")["s"]["status"] == "succeeded"
