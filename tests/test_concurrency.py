"""Concurrent runs writing to the same output, and readers during a run (real Spark, real Delta tables).

Two runs with different run ids commit to the same tables at once. Each must either succeed or fail with
one clear error (a commit conflict) and then succeed when rerun; afterwards every table reads with
delta-rs and holds each run complete (N' mixture rows, one task_weights row per task, one runs row).
Meanwhile a reader polls the mixture table's latest snapshot: every run id it ever sees has either 0 or
N' rows (the old snapshot or the new one, never a partial run), and the earlier run's rows never change.
"""

from __future__ import annotations

import threading
import time

import pyarrow.parquet as pq
import pytest
from standalone import JobDriver, logs_on_failure, read_table

from smart_spark.cli.settings import make_config
from smart_spark.datasets.synthetic import synthetic_table
from smart_spark.jobs.smart_mixture import run

pytestmark = [pytest.mark.spark, pytest.mark.slow]

N_TASKS = 3
CONFLICT_WORDS = ("conflict", "concurrent", "commit failed", "already exists", "meanwhile")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("concurrency") / "input.parquet"
    pq.write_table(synthetic_table(600, N_TASKS, dim=8, families=1, seed=2), path)
    return str(path)


def values(data: str, output, run_id: str, n: int) -> dict:
    return dict(input=data, output=str(output), id_col="id", embedding_col="embedding", num_instances=n,
                run_id=run_id, report=False)


class Reader(threading.Thread):
    """Reads the mixture table's latest snapshot (delta-rs) in a loop; records rows per run id."""

    def __init__(self, path: str) -> None:
        super().__init__(daemon=True)
        self.path, self.seen, self.errors = path, [], []
        self.stop = threading.Event()

    def run(self) -> None:
        from deltalake import DeltaTable

        while not self.stop.is_set():
            try:
                if DeltaTable.is_deltatable(self.path):
                    table = DeltaTable(self.path)
                    counts = table.to_pandas(columns=["run_id"])["run_id"].value_counts().to_dict()
                    self.seen.append((table.version(), counts))
            except Exception as exc:  # a reader must never fail on a committed table
                self.errors.append(repr(exc))
            time.sleep(0.05)


def history(path: str) -> list[dict]:
    import json

    from deltalake import DeltaTable

    commits = []
    for commit in DeltaTable(path).history():
        info = json.loads(commit.get("userMetadata") or "{}")
        commits.append({**info, "version": commit["version"]})
    return sorted(commits, key=lambda c: c["version"])


def check_reads(reader: Reader, expected: dict[str, int]) -> None:
    assert not reader.errors, reader.errors[:3]
    assert reader.seen, "the reader never saw the table"
    for version, counts in reader.seen:
        for run_id, rows in counts.items():
            assert rows in (0, expected[run_id]), f"version {version}: run {run_id} has {rows} rows"


def check_final(output, expected: dict[str, int], overlapping: tuple[str, str] | None) -> None:
    """Every table complete per run; ``overlapping``: two run ids whose runs must have overlapped in time."""
    mixture, weights, runs = (read_table(f"{output}/{t}") for t in ("mixture", "task_weights", "runs"))
    assert mixture["run_id"].value_counts().to_dict() == expected
    assert weights["run_id"].value_counts().to_dict() == {r: N_TASKS for r in expected}
    assert sorted(runs["run_id"]) == sorted(expected) and set(runs["status"]) == {"succeeded"}
    assert not mixture.duplicated(["run_id", "id"]).any()
    print("mixture commits (version, run id, rollback):",
          [(c["version"], c.get("smartspark.run_id"), c.get("smartspark.rollback")) for c in
           history(f"{output}/mixture")])
    if overlapping:  # both runs succeeded at once: their [started_at, finished_at] intervals overlap
        one, two = (runs[runs["run_id"] == r].iloc[0] for r in overlapping)
        assert one["started_at"] < two["finished_at"] and two["started_at"] < one["finished_at"]


def test_two_run_processes_same_output(spark, data, tmp_path):
    """Two driver processes (own JVMs, local[1]) commit runs c1 and c2 to an output that holds run base."""
    out = tmp_path / "out"
    run(spark, make_config(values(data, out, "base", 100)))
    expected = {"base": 100, "c1": 150, "c2": 80}
    reader = Reader(str(out / "mixture"))
    drivers, codes = {}, {}
    for run_id in ("c1", "c2"):
        spec = {"master": "local[1]",
                "conf": {"spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false",
                         "spark.ui.showConsoleProgress": "false"},
                "phases": [{"name": run_id, "config": values(data, out, run_id, expected[run_id])}]}
        drivers[run_id] = JobDriver(tmp_path / run_id, spec)
    reader.start()
    try:
        with logs_on_failure(*drivers.values()):
            for driver in drivers.values():
                driver.start()
            codes = {run_id: driver.wait(timeout=400) for run_id, driver in drivers.items()}
            for run_id, driver in drivers.items():
                if codes[run_id] == 0:
                    assert driver.summary(run_id)["mixture_rows"] == expected[run_id]
                    continue
                # Allowed: one clear error naming the conflict; then the rerun succeeds.
                error = driver.event("FAILED", run_id) or ""
                assert any(w in error.lower() for w in CONFLICT_WORDS), error
                assert sum(c != 0 for c in codes.values()) == 1, f"both runs failed: {codes}"
                run(spark, make_config(values(data, out, run_id, expected[run_id])))
    finally:
        reader.stop.set()
        reader.join(10)
        for driver in drivers.values():
            driver.stop()
    check_reads(reader, expected)
    assert all(counts.get("base") == 100 for _, counts in reader.seen)
    print("exit codes:", codes)
    check_final(out, expected, ("c1", "c2") if not any(codes.values()) else None)


def test_two_run_threads_create_the_output(spark, data, tmp_path):
    """Two threads of one session race to create the output tables (empty output folder)."""
    out = tmp_path / "out"
    expected = {"t1": 120, "t2": 60}
    reader = Reader(str(out / "mixture"))
    reader.start()
    errors: dict[str, BaseException] = {}

    def one(run_id: str) -> None:
        try:
            run(spark, make_config(values(data, out, run_id, expected[run_id])))
        except BaseException as exc:  # noqa: BLE001 -- reported below
            errors[run_id] = exc

    threads = [threading.Thread(target=one, args=(r,)) for r in expected]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        assert len(errors) < 2, f"both runs failed: {errors}"
        for run_id, exc in errors.items():
            text = f"{type(exc).__name__}: {exc}".lower()
            assert any(w in text for w in CONFLICT_WORDS), text
            run(spark, make_config(values(data, out, run_id, expected[run_id])))
    finally:
        reader.stop.set()
        reader.join(10)
    check_reads(reader, expected)
    print("errors:", errors)
    check_final(out, expected, None if errors else ("t1", "t2"))
