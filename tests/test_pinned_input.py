"""The mixture comes from the input version it records: a catalog table and a Delta folder, on Sail.

The job (over Spark Connect, a Sail server) pauses after selection (``SMART_SPARK_FAILPOINT=
during_select:pause``, in a thread of this process); meanwhile an append lands in the input, repeating
every id with another response. The mixture's rows are joined from the input again at write time, so an
unpinned read writes the appended rows too (it did for a catalog table read with ``spark.table``: 350
rows, half of them appended); pinned, the mixture holds exactly N' rows of the version ``runs`` records.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from standalone import read_table

from smart_spark.cli.settings import make_config
from smart_spark.datasets.synthetic import synthetic_table
from smart_spark.delta import delta_io
from smart_spark.jobs.smart_mixture import run

pytestmark = pytest.mark.spark

SCHEMA = "smartspark_pinned"
N_PRIME = 120


def run_paused(sail, config, folder: Path, during_pause) -> None:
    """``run(sail, config)`` in a thread, paused at ``during_select``; ``during_pause()`` runs meanwhile."""
    failure: list[BaseException] = []

    def job() -> None:
        try:
            run(sail, config)
        except BaseException as exc:  # noqa: BLE001 -- re-raised in the test's thread
            failure.append(exc)

    thread = threading.Thread(target=job, daemon=True)
    thread.start()
    deadline = time.monotonic() + 300
    while not (folder / "during_select.paused").exists():
        assert thread.is_alive() and time.monotonic() < deadline, failure or "the job never paused"
        time.sleep(0.1)
    try:
        during_pause()
    finally:
        (folder / "during_select.release").write_text("go")
        thread.join(300)
    assert not thread.is_alive(), "the job did not finish after the pause"
    if failure:
        raise failure[0]


@pytest.mark.parametrize("kind", ["table", "folder"])
def test_input_is_read_at_its_recorded_version(sail, tmp_path, monkeypatch, kind):
    """A catalog table (``spark.table`` before) and a Delta folder, each appended to during the run."""
    source = synthetic_table(300, 3, dim=8, families=1, seed=7).to_pandas()
    if kind == "table":
        where = f"{SCHEMA}.instructions"
        ref = delta_io.TableRef(name=where)
        sail.sql(f"CREATE DATABASE {SCHEMA} LOCATION '{tmp_path / SCHEMA}'").collect()
    else:
        where = str(tmp_path / "instructions")
        ref = delta_io.TableRef(path=where)
    monkeypatch.setenv("SPARK_CONNECT_MODE_ENABLED", "1")  # pyspark's functions build Connect columns
    monkeypatch.setenv("SMART_SPARK_FAILPOINT", "during_select:pause")
    monkeypatch.setenv("SMART_SPARK_FAILPOINT_DIR", str(tmp_path))

    def save(frame, mode: str) -> None:
        writer = frame.write.format("delta").mode(mode)
        writer.saveAsTable(where) if kind == "table" else writer.save(where)

    def append() -> None:  # every id again, with another response: a later version of the input
        from pyspark.sql import functions as F

        save(delta_io.read(sail, ref).withColumn("response", F.lit("appended")), "append")

    try:
        save(sail.createDataFrame(source), "error")
        assert delta_io.version(sail, ref) == 0
        out = tmp_path / "out"
        config = make_config(dict(input=where, output=str(out), id_col="id", embedding_col="embedding",
                                  num_instances=N_PRIME, run_id="pinned", report=False))
        run_paused(sail, config, tmp_path, append)
        assert delta_io.version(sail, ref) == 1  # the append landed during the run
        assert delta_io.read(sail, ref).count() == 2 * len(source)
    finally:
        if kind == "table":
            sail.sql(f"DROP TABLE IF EXISTS {where}").collect()
            sail.sql(f"DROP DATABASE IF EXISTS {SCHEMA}").collect()

    mixture = read_table(str(out / "mixture"))
    assert len(mixture) == N_PRIME and mixture["id"].is_unique
    assert "appended" not in set(mixture["response"])
    expected = source.set_index("id").loc[mixture["id"], ["task", "prompt", "response"]].reset_index()
    assert mixture[["id", "task", "prompt", "response"]].reset_index(drop=True).equals(expected)
    runs = read_table(str(out / "runs"))
    assert runs[["run_id", "status", "input", "input_version"]].values.tolist() == [
        ["pinned", "succeeded", where, 0]]
