"""A killed driver leaves no half run behind (real driver processes, real Delta tables, SIGKILL).

``jobs/smart_mixture.py`` runs as its own process (its own JVM, in its own process group) and pauses,
alive, at a commit point (``SMART_SPARK_FAILPOINT=<point>:pause``); the test then SIGKILLs the whole group
(Python and JVM: no ``finally``, no rollback). The next run on the output, with another run id, must put
the killed run back: afterwards no table holds its rows except its ``runs`` row, ``abandoned`` with the
reason; the other runs' rows are untouched; rerunning the killed run id gives the mixture of a clean run.
A driver that is slow but alive (paused, heartbeating) is never put back by a run that starts meanwhile.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F
from standalone import REPO, TABLE_KEYS, canon, kill_pids, read_table, running_in

from smart_spark.cli.settings import make_config
from smart_spark.datasets.synthetic import synthetic_table
from smart_spark.jobs.smart_mixture import run

pytestmark = pytest.mark.spark

N_TASKS = 3
STALE = 8.0  # seconds: the heartbeat timeout of every run here (beats every STALE / 8)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("crash") / "input.parquet"
    pq.write_table(synthetic_table(600, N_TASKS, dim=8, families=1, seed=5), path)
    return str(path)


def values(data: str, output, run_id: str, n: int, stale: float = STALE) -> dict:
    return dict(input=data, output=str(output), id_col="id", embedding_col="embedding", num_instances=n,
                run_id=run_id, report=False, stale_after=stale)


@pytest.fixture(scope="module")
def clean_killed(spark, data, tmp_path_factory) -> list[tuple]:
    """The mixture rows of run ``killed`` (N' = 120) made by a clean run on an empty output."""
    out = tmp_path_factory.mktemp("clean") / "out"
    run(spark, make_config(values(data, out, "killed", 120)))
    return rows_of(out, "mixture", "killed")


def rows_of(output, table: str, run_id: str) -> list[tuple]:
    frame = read_table(f"{output}/{table}")
    return canon(frame[frame["run_id"] == run_id], TABLE_KEYS[table])


class Driver:
    """``python jobs/smart_mixture.py FLAGS`` in its own session (process group), paused at ``point``."""

    def __init__(self, root: Path, config: dict, point: str) -> None:
        self.root, self.point = Path(root), point
        self.root.mkdir(parents=True, exist_ok=True)
        flags = []
        for key, value in config.items():
            if key == "report":
                flags.append("--no-report")
            else:
                flags += [f"--{key.replace('_', '-')}", str(value)]
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "PYTHONPATH": path,
               "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1",
               "PYSPARK_SUBMIT_ARGS": "--master local[1] --conf spark.ui.enabled=false "
                                      "--conf spark.sql.shuffle.partitions=4 pyspark-shell",
               "SMART_SPARK_FAILPOINT": f"{point}:pause", "SMART_SPARK_FAILPOINT_DIR": str(self.root)}
        env.pop("SPARK_HOME", None)
        self.log = open(self.root / "driver.log", "wb")  # noqa: SIM115 -- closed in finish()
        self.proc = subprocess.Popen([sys.executable, str(REPO / "jobs" / "smart_mixture.py"), *flags],
                                     stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, cwd=self.root, start_new_session=True)

    def wait_paused(self, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while not (self.root / f"{self.point}.paused").exists():
            if self.proc.poll() is not None:
                raise AssertionError(f"driver exited ({self.proc.returncode}) before {self.point}:\n"
                                     + self.log_text())
            assert time.monotonic() < deadline, f"driver never reached {self.point}:\n{self.log_text()}"
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL the driver's whole process group (Python, its JVM, its Python workers)."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        kill_pids(running_in(self.root))  # anything that left the group
        self.log.close()

    def release(self) -> int:
        (self.root / f"{self.point}.release").write_text("go")
        code = self.proc.wait(timeout=600)
        self.log.close()
        return code

    def log_text(self) -> str:
        return (self.root / "driver.log").read_text(errors="replace")[-6000:]


def runs_table(output) -> dict[str, dict]:
    frame = read_table(f"{output}/runs")
    return {r["run_id"]: r for r in frame.to_dict("records")}


@pytest.mark.parametrize("point", ["after_mixture", "after_task_weights", "before_runs"])
def test_killed_driver_is_put_back_by_the_next_run(spark, data, clean_killed, tmp_path, point):
    out = tmp_path / "out"
    run(spark, make_config(values(data, out, "base", 100)))
    base = {t: rows_of(out, t, "base") for t in ("mixture", "task_weights", "runs")}

    driver = Driver(tmp_path / "driver", values(data, out, "killed", 120), point)
    try:
        driver.wait_paused()
        running = runs_table(out)["killed"]
        assert running["status"] == "running"
        assert json.loads(running["metrics"])["heartbeat_at"] > time.time() - 60
        if point != "after_mixture":  # both committed
            assert len(rows_of(out, "task_weights", "killed")) == N_TASKS
        assert len(rows_of(out, "mixture", "killed")) == 120
    finally:
        driver.kill()
    time.sleep(STALE + 1)  # its last heartbeat is now older than the timeout

    run(spark, make_config(values(data, out, "next", 80)))
    for table in ("mixture", "task_weights"):
        frame = read_table(f"{out}/{table}")
        assert set(frame["run_id"]) == {"base", "next"}, f"{point}: {table} keeps rows of the killed run"
        assert rows_of(out, table, "base") == base[table]
    runs = runs_table(out)
    assert {r: runs[r]["status"] for r in runs} == {"base": "succeeded", "next": "succeeded",
                                                   "killed": "abandoned"}
    assert rows_of(out, "runs", "base") == base["runs"]
    reason = json.loads(runs["killed"]["metrics"])
    assert reason["abandoned_reason"].startswith("driver gone: pid") and reason["abandoned_by"] == "run next"
    assert reason["rows_put_back"] is True

    run(spark, make_config(values(data, out, "killed", 120)))  # the rerun of the killed run id
    assert rows_of(out, "mixture", "killed") == clean_killed
    assert runs_table(out)["killed"]["status"] == "succeeded"
    assert rows_of(out, "mixture", "base") == base["mixture"]


def test_slow_driver_is_not_put_back(spark, data, tmp_path):
    """A driver paused (alive, heartbeating) past the timeout while another run starts and finishes."""
    out, stale = tmp_path / "out", 20.0
    driver = Driver(tmp_path / "driver", values(data, out, "slow", 120, stale), "after_mixture")
    try:
        driver.wait_paused()
        time.sleep(stale + 2)  # its running row is older than the timeout: only its heartbeat is fresh
        run(spark, make_config(values(data, out, "fast", 80, stale)))
        runs = runs_table(out)
        assert runs["slow"]["status"] == "running" and runs["fast"]["status"] == "succeeded"
        assert len(rows_of(out, "mixture", "slow")) == 120
        assert driver.release() == 0, driver.log_text()
    finally:
        if driver.proc.poll() is None:
            driver.kill()
    runs = runs_table(out)
    assert {r: runs[r]["status"] for r in runs} == {"slow": "succeeded", "fast": "succeeded"}
    mixture = read_table(f"{out}/mixture")
    assert mixture["run_id"].value_counts().to_dict() == {"slow": 120, "fast": 80}


def test_recover_command(spark, data, tmp_path, capsys):
    """``smart-mixture recover``: a run that stopped beating (in this process: its heartbeat stopped, its
    ``mixture`` committed, no rollback) is left alone while its heartbeat is fresh, and put back after."""
    from smart_spark.delta import delta_io
    from smart_spark.errors import SmartError
    from smart_spark.jobs.smart_mixture import main
    from smart_spark.spark.run_state import RunLedger

    out = tmp_path / "out"
    run(spark, make_config(values(data, out, "base", 100)))
    base = {t: rows_of(out, t, "base") for t in ("mixture", "task_weights", "runs")}
    refs = delta_io.output_tables(str(out))
    row = dict(started_at=datetime.now(timezone.utc), config_json="{}", input_desc=data, input_version=None,
               code_version="test")
    ledger = RunLedger(spark, refs, {"dead": row}, stale_after=1.0).__enter__()
    ledger.stop_heartbeat()  # from now on it is silent, like a killed driver
    stray = delta_io.read(spark, refs["mixture"]).withColumn("run_id", F.lit("dead"))
    delta_io.replace_where(spark, stray, refs["mixture"], column="run_id", value="dead")
    with pytest.raises(SmartError, match="running in another driver"):  # one run id, two live drivers
        run(spark, make_config(values(data, out, "dead", 100, stale=600)))

    assert main(["recover", "--output", str(out), "--stale-after", "600"]) == 0  # heard from just now
    assert runs_table(out)["dead"]["status"] == "running"
    time.sleep(1.5)
    assert main(["recover", "--output", str(out), "--stale-after", "1"]) == 0
    assert "put back run dead" in capsys.readouterr().out
    runs = runs_table(out)
    assert runs["dead"]["status"] == "abandoned"
    assert json.loads(runs["dead"]["metrics"])["abandoned_by"] == "smart-mixture recover"
    assert set(read_table(f"{out}/mixture")["run_id"]) == {"base"}
    assert all(rows_of(out, t, "base") == base[t] for t in base)


def test_recovery_puts_back_the_optional_tables(spark, data, tmp_path):
    """A dead run's rows in ``clusters`` (a table that existed before it) and ``decontaminated`` (one it
    created) are put back too: ``clusters`` as it was, ``decontaminated`` without the dead run's rows."""
    from smart_spark.delta import delta_io
    from smart_spark.jobs.smart_mixture import main
    from smart_spark.spark.run_state import RunLedger

    out = tmp_path / "out"
    run(spark, make_config(values(data, out, "base", 100)))
    refs = delta_io.output_tables(str(out))
    schema = "run_id string, id string, task string, parent_task string, cluster int, similarity double"
    earlier = spark.createDataFrame([("base", "a", "t/c00", "t", 0, 0.9)], schema)
    delta_io.replace_where(spark, earlier, refs["clusters"], column="run_id", value="base",
                           partition_by=["run_id"])
    before = rows_of(out, "clusters", "base")
    row = dict(started_at=datetime.now(timezone.utc), config_json="{}", input_desc=data, input_version=None,
               code_version="test")
    ledger = RunLedger(spark, refs, {"dead": row}, stale_after=1.0).__enter__()
    ledger.stop_heartbeat()  # silent from now on, like a killed driver
    assert "decontaminated" in json.loads(runs_table(out)["dead"]["metrics"])["versions_before"]
    stray = {"clusters": spark.createDataFrame([("dead", "b", "t/c01", "t", 1, 0.5)], schema),
             "decontaminated": spark.createDataFrame([("dead", "b", 0.95)],
                                                     "run_id string, id string, similarity double")}
    for table, frame in stray.items():
        delta_io.replace_where(spark, frame, refs[table], column="run_id", value="dead",
                               partition_by=["run_id"])
    time.sleep(1.5)
    assert main(["recover", "--output", str(out), "--stale-after", "1"]) == 0
    assert runs_table(out)["dead"]["status"] == "abandoned"
    clusters = read_table(f"{out}/clusters")
    assert set(clusters["run_id"]) == {"base"} and rows_of(out, "clusters", "base") == before
    assert "dead" not in set(read_table(f"{out}/decontaminated")["run_id"])
