"""Faults on a real standalone cluster: the job survives a killed Python worker and a killed Spark worker.

A master and two 1-core workers run on 127.0.0.1 (tests/standalone.py); the job runs in a driver subprocess
against that master. Stage-2 selection has one large exact group (8,000 rows, FL):
while its greedy runs, the Python worker holding the group's kernel is visibly large (its RSS grows by
the 8,000 x 8,000 float32 kernel, 244 MiB; a warm idle worker is about 90 MiB above its daemon), and only
that UDF ever allocates that much. That is the
signal the faults wait for, so each lands mid-UDF inside selection:

1. ``pykill``: SIGKILL that Python worker. The task fails ("Python worker exited unexpectedly") and Spark
   retries it (``spark.task.maxFailures`` 4); the run succeeds.
2. ``workerkill``: SIGKILL the Worker JVM that hosts it and everything under it (executor JVM,
   ``pyspark.daemon``, Python workers). The executor is lost with its cached blocks and shuffle files;
   Spark reruns the lost tasks on the surviving worker; the run succeeds.

Each run's mixture and task_weights must equal, row for row, those of the same run done without faults
(in local mode), and each output holds exactly one run.
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from standalone import (
    TABLE_KEYS,
    JobDriver,
    StandaloneCluster,
    canon,
    kill_pids,
    logs_on_failure,
    process_table,
    python_workers,
    read_table,
    running_in,
    status_kib,
)

from smart_spark.cli.settings import make_config
from smart_spark.jobs.smart_mixture import run

pytestmark = [pytest.mark.spark, pytest.mark.slow]

BIG, SMALL, DIM = 8000, 200, 16
KERNEL_KIB = BIG * BIG * 4 // 1024  # the FL kernel of the big group, float32


def fault_input(path) -> str:
    """One 8,000-row task and four 200-row tasks (taken whole), 16-d embeddings, as one Parquet file."""
    rng = np.random.default_rng(11)
    ids, tasks, blocks = [], [], []
    for task, n in [("big", BIG), *((f"small{i}", SMALL) for i in range(4))]:
        ids += [f"{task}-{i:05d}" for i in range(n)]
        tasks += [task] * n
        blocks.append(rng.standard_normal(DIM) + rng.standard_normal((n, DIM)))
    emb = np.concatenate(blocks).astype(np.float32)
    pq.write_table(pa.table({
        "id": ids, "task": tasks, "prompt": [f"prompt of {i}" for i in ids],
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel()), DIM).cast(
            pa.list_(pa.float32())),
    }), path)
    return str(path)


def job_values(input_path: str, output: str) -> dict:
    return dict(input=input_path, output=output, id_col="id", embedding_col="embedding", num_instances=3000,
                run_id="c1", report=False)


def outputs(out: str) -> tuple[list, list, object]:
    mixture = canon(read_table(f"{out}/mixture"), TABLE_KEYS["mixture"])
    weights = canon(read_table(f"{out}/task_weights"), TABLE_KEYS["task_weights"])
    return mixture, weights, read_table(f"{out}/runs")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = StandaloneCluster(tmp_path_factory.mktemp("cluster"), workers=2, cores=1, memory="2g")
    try:
        c.start()
        yield c
    finally:
        c.stop()  # every process by pid, also when start() or a test failed
        table = process_table()
        assert not [p for p in c.procs if p.pid in table], "a cluster process survived stop()"
        assert not running_in(c.root), "a process started by the cluster survived stop()"


def wait_for_big_kernel(cluster: StandaloneCluster, driver: JobDriver, timeout: float) -> tuple[str, int]:
    """(executor id, Python worker pid) once a Python worker of an executor holds most of the big kernel."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.proc.poll() is not None:
            raise RuntimeError(f"driver exited ({driver.proc.returncode}) before selection was seen")
        table = process_table()
        for executor, (pid, _) in cluster.executors().items():
            daemons, workers = python_workers(pid, table)
            base = min((status_kib(d, "VmRSS") or 0) for d in daemons) if daemons else 0
            for worker in workers:
                rss = status_kib(worker, "VmRSS") or 0
                if rss - base > KERNEL_KIB * 0.75:  # an idle warm worker: ~0.35 kernels
                    return executor, worker
        time.sleep(0.03)
    raise TimeoutError("no Python worker ever held the big group's kernel")


def test_job_survives_killed_python_worker_and_killed_worker(spark, cluster, tmp_path):
    data = fault_input(tmp_path / "input.parquet")
    # The fault-free run, in local mode.
    run(spark, make_config(job_values(data, str(tmp_path / "reference"))))
    want_mixture, want_weights, _ = outputs(str(tmp_path / "reference"))
    assert len(want_mixture) == 3000

    spec = {
        "master": cluster.master_url,
        "conf": {"spark.executor.memory": "1g", "spark.executor.cores": "1", "spark.cores.max": "2",
                 "spark.task.maxFailures": "4", "spark.sql.shuffle.partitions": "4",
                 "spark.default.parallelism": "2", "spark.ui.showConsoleProgress": "false",
                 "spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"},
        "phases": [{"name": name, "config": job_values(data, str(tmp_path / name))}
                   for name in ("pykill", "workerkill")],
    }
    driver = JobDriver(tmp_path / "driver", spec).start()
    try:
        with logs_on_failure(driver, cluster):
            # 1. A Python worker killed mid-UDF.
            driver.wait_for("START", "pykill", timeout=240)
            executor, worker = wait_for_big_kernel(cluster, driver, timeout=240)
            mark = len(driver.log())
            assert kill_pids([worker]) == [worker], "the Python worker was gone before the kill"
            driver.wait_for("DONE", "pykill", timeout=300)
            pykill_log = driver.log()[mark:]
            crash = ("Python worker exited unexpectedly", "EOFException", "Connection reset")
            assert "Lost task" in pykill_log and any(c in pykill_log for c in crash), pykill_log
            assert "ExecutorLostFailure" not in pykill_log

            # 2. A whole worker killed (Worker JVM, executor JVM, its Python processes) mid-selection.
            driver.wait_for("START", "workerkill", timeout=60)
            executor, _ = wait_for_big_kernel(cluster, driver, timeout=240)
            index = cluster.executors()[executor][1]
            mark = len(driver.log())
            killed = cluster.kill_worker(index)
            assert len(killed) >= 3  # Worker JVM, executor JVM, pyspark.daemon (and its workers)
            driver.wait_for("DONE", "workerkill", timeout=300)
            lost_log = driver.log()[mark:]
            assert f"Lost executor {executor}" in lost_log or "ExecutorLostFailure" in lost_log, lost_log
            assert driver.wait(timeout=60) == 0

            for name in ("pykill", "workerkill"):
                mixture, weights, runs = outputs(str(tmp_path / name))
                assert mixture == want_mixture, f"{name}: the mixture differs from the fault-free run's"
                assert weights == want_weights, f"{name}: task_weights differ from the fault-free run's"
                assert runs["run_id"].tolist() == ["c1"] and runs["status"].tolist() == ["succeeded"]
            assert cluster.master_json()["aliveworkers"] == 1
    finally:
        driver.stop()
