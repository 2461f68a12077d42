"""The whole job over Apache Spark's own Spark Connect server equals the classic local run.

One server per module (pyspark's ``SparkConnectServer``, tests/standalone.py ``ApacheConnectServer``): no
Delta jars, so the server's Spark writes the Parquet files and this process commits them with delta-rs
(backend ``deltars``); the tables are real Delta tables. On a slice of the bundled sample (292 rows,
37 tasks, FLAN strata, the real encoder embedding on the server's Python workers): the sample job
writes the classic run's rows (bit for bit where ``--precision auto`` is bfloat16; where it is float32,
vectors and gains to 1e-6: see ``EXACT_ENCODER``); a budget sweep, cluster tasks (Spark ML's KMeans over
Connect) and a run whose stage-2 Python worker is SIGKILLed mid-task (Spark retries the task) select over
a copy of the classic run's embeddings and write exactly its rows. A second server that does not see
the output folder (as on another machine) makes the run fail with one clear error and commit nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from standalone import TABLE_KEYS, ApacheConnectServer, canon, read_table

from smart_spark.cli.settings import make_config
from smart_spark.datasets.synthetic import synthetic_table
from smart_spark.delta import delta_io
from smart_spark.embed.device import cpu_has_native_bf16
from smart_spark.errors import SmartError
from smart_spark.jobs.smart_mixture import run

pytestmark = [pytest.mark.spark, pytest.mark.slow]
#: Whether ``--precision auto`` embeds bit for bit alike on every worker setup: bfloat16 (CPUs with native
#: bfloat16: AVX512-BF16 or AMX) runs passes of fixed shapes; float32 (elsewhere) pads each pass to its
#: longest row, so a vector follows its batch's company in the last bits (~1e-7), and the Connect
#: server's Arrow batches are not the classic run's. Where it does not, the Connect run's embeddings and
#: gains are compared to the classic run's to 1e-6 and the rest exactly; the later runs below share the
#: classic run's embeddings (a copy), so their tables must equal classic's bit for bit on every CPU.
EXACT_ENCODER = cpu_has_native_bf16()
#: Float columns' tolerance where the encoder is not exact (measured: <= 1.8e-7 on the gains).
CLOSE = 1e-6
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KILL_POINT = "select_task"
SAMPLE = dict(id_col="id", stratum_col="template_type", strata="flan", num_tasks=12, num_instances=100,
              run_id="s", report=False)
SWEEP = dict(SAMPLE, num_tasks="12,24", num_instances="50,100", run_id="sweep")
CLUSTERS = dict(SAMPLE, tasks_from="clusters", num_clusters=8, num_tasks=6, run_id="k")


@pytest.fixture(scope="module")
def sample_slice(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("input") / "slice.jsonl"
    with open(os.path.join(ROOT, "data", "sample", "instructions.jsonl"), encoding="utf-8") as fh:
        path.write_text("".join(fh.readlines()[::12]), encoding="utf-8")  # sorted by task: all 37 kept
    return str(path)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("apache-connect")
    (root / "failpoints").mkdir()
    found = ApacheConnectServer(root, env={"SMART_SPARK_FAILPOINT": f"{KILL_POINT}:kill",
                                           "SMART_SPARK_FAILPOINT_DIR": str(root / "failpoints")})
    try:
        found.start()
        yield found
    finally:
        found.stop()


@pytest.fixture(scope="module")
def remote(server):
    """A Spark Connect session to the server (the Connect builder: a classic session runs beside it)."""
    from pyspark.sql.connect.session import SparkSession as RemoteSparkSession

    session = RemoteSparkSession.builder.remote(server.url).create()
    yield session
    session.stop()


def run_job(session, values: dict, source: str, output: str, *, connect: bool, cache: str | None = None):
    """The job's ``run`` on ``session``; over Connect, pyspark's functions build Connect columns."""
    config = make_config(dict(values, input=source, output=output, embeddings_table=cache))
    with pytest.MonkeyPatch.context() as patch:
        if connect:
            patch.setenv("SPARK_CONNECT_MODE_ENABLED", "1")
        return run(session, config)


@pytest.fixture(scope="module")
def classic(spark, sample_slice, tmp_path_factory) -> str:
    """The classic local run of the sample settings (it embeds the slice); its output folder."""
    out = str(tmp_path_factory.mktemp("classic"))
    run_job(spark, SAMPLE, sample_slice, out, connect=False)
    return out


def assert_close_rows(got: list[tuple], want: list[tuple], table: str) -> None:
    """Rows equal up to ``CLOSE`` in float cells (a vector's coordinates too), exactly elsewhere."""
    assert len(got) == len(want), table
    for mine, theirs in zip(got, want):
        for a, b in zip(mine, theirs):
            if isinstance(a, float) and isinstance(b, float):
                assert abs(a - b) <= CLOSE, (table, mine, theirs)
            elif isinstance(a, tuple) and a and isinstance(a[0], float):
                assert len(a) == len(b) and max(abs(x - y) for x, y in zip(a, b)) <= CLOSE, (table, mine)
            else:
                assert a == b, (table, mine, theirs)


@pytest.fixture(scope="module")
def classic_cache(classic, tmp_path_factory) -> str:
    """A copy of the classic run's embeddings for the later Connect runs: both sides then select over the
    same vectors (the encoder over Connect is checked by the first test)."""
    copy = str(tmp_path_factory.mktemp("shared-cache") / "embeddings")
    shutil.copytree(f"{classic}/embeddings", copy)
    return copy


@pytest.fixture(scope="module")
def connected(remote, sample_slice, tmp_path_factory) -> str:
    """The same run over the Apache Connect server (embedding on its Python workers); its output folder."""
    out = str(tmp_path_factory.mktemp("connect"))
    run_job(remote, SAMPLE, sample_slice, out, connect=True)
    return out


def rows(output: str, table: str, drop: tuple[str, ...] = ()) -> list[tuple]:
    """The table's rows, comparable exactly (:func:`cluster.canon`); a map's entries in any order."""
    frame = read_table(f"{output}/{table}")
    assert frame is not None, f"{output}/{table} is no Delta table"
    if "stratum_budgets" in frame.columns:  # a map: pandas reads its entries in their stored order
        frame["stratum_budgets"] = frame["stratum_budgets"].map(lambda v: None if v is None else dict(v))
    return canon(frame, [k for k in TABLE_KEYS[table] if k not in drop], drop=drop)


def test_the_sample_job_equals_classic_and_writes_delta_tables(classic, connected, remote):
    assert delta_io.backend(remote) == "deltars"  # Apache's server without Delta jars: delta-rs commits
    assert len(rows(connected, "mixture")) == 100
    for table in ("mixture", "task_weights", "embeddings"):
        drop = ("created_at",) if table == "embeddings" else ()
        if EXACT_ENCODER:  # the same vectors, bit for bit, so the same tables
            assert rows(connected, table, drop) == rows(classic, table, drop), table
        else:
            assert_close_rows(rows(connected, table, drop), rows(classic, table, drop), table)
    for table in ("mixture", "task_weights", "runs", "embeddings"):
        path = os.path.join(connected, table)
        found = DeltaTable(path)
        assert os.path.exists(os.path.join(path, "_delta_log", "00000000000000000000.json")), table
        history = found.history()
        assert found.version() == history[0]["version"] >= 1 and found.protocol().min_reader_version >= 1
        assert history[-1]["operation"] == "CREATE TABLE", table
        assert all(c["engineInfo"].startswith("delta-rs") for c in history), table  # the deltars path
        assert all(os.path.exists(f) for f in found.file_uris()), table
        assert not [f for f in os.listdir(path) if f.startswith("smartspark-staging-")], table
    runs = read_table(f"{connected}/runs")
    assert runs["status"].tolist() == ["succeeded"]
    assert json.loads(runs["config"][0])["num_instances"] == 100


def test_a_budget_sweep_equals_classic(spark, remote, classic, classic_cache, sample_slice, tmp_path):
    run_job(spark, SWEEP, sample_slice, str(tmp_path / "classic"), connect=False,
            cache=f"{classic}/embeddings")
    summary = run_job(remote, SWEEP, sample_slice, str(tmp_path / "connect"), connect=True,
                      cache=classic_cache)
    names = {"sweep/m12-n50", "sweep/m12-n100", "sweep/m24-n50", "sweep/m24-n100"}
    assert {m["run_id"] for m in summary["mixtures"]} == names
    frame = read_table(str(tmp_path / "connect" / "mixture"))
    assert frame.groupby("run_id").size().to_dict() == {
        "sweep/m12-n50": 50, "sweep/m12-n100": 100, "sweep/m24-n50": 50, "sweep/m24-n100": 100}
    assert rows(str(tmp_path / "connect"), "mixture") == rows(str(tmp_path / "classic"), "mixture")
    assert rows(str(tmp_path / "connect"), "task_weights") == rows(str(tmp_path / "classic"), "task_weights")
    # The sweep's (12, 100) mixture is the single run's.
    largest = canon(frame[frame["run_id"] == "sweep/m12-n100"], ["task", "stratum", "selection_rank"],
                    drop=("run_id",))
    assert largest == rows(classic, "mixture", drop=("run_id",))


def test_cluster_tasks_run_spark_ml_over_connect_as_classic(spark, remote, classic, classic_cache,
                                                           sample_slice, tmp_path):
    run_job(spark, CLUSTERS, sample_slice, str(tmp_path / "classic"), connect=False,
            cache=f"{classic}/embeddings")
    run_job(remote, CLUSTERS, sample_slice, str(tmp_path / "connect"), connect=True, cache=classic_cache)
    for table in ("clusters", "task_weights", "mixture"):
        mine = rows(str(tmp_path / "connect"), table)
        assert mine and mine == rows(str(tmp_path / "classic"), table), table
    assert len(rows(str(tmp_path / "connect"), "clusters")) == 292


def test_a_killed_python_worker_is_retried_and_the_mixture_is_classics(server, remote, classic, classic_cache,
                                                                       sample_slice, tmp_path):
    armed = server.root / "failpoints" / f"{KILL_POINT}.kill"
    armed.write_text("")
    mark = len(server.log.read_text(errors="replace"))
    run_job(remote, dict(SAMPLE, run_id="killed"), sample_slice, str(tmp_path / "out"), connect=True,
            cache=classic_cache)
    assert not armed.exists() and (server.root / "failpoints" / f"{KILL_POINT}.killed").exists()
    log = server.log.read_text(errors="replace")[mark:]
    assert "Lost task" in log and "Python worker exited unexpectedly" in log, log[-3000:]
    assert rows(str(tmp_path / "out"), "mixture", drop=("run_id",)) == rows(classic, "mixture",
                                                                         drop=("run_id",))
    assert read_table(str(tmp_path / "out" / "runs"))["status"].tolist() == ["succeeded"]


def can_unshare() -> bool:
    return bool(shutil.which("unshare")) and subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not can_unshare(), reason="needs unshare --mount (root) to hide a folder from the server")
def test_a_server_that_does_not_see_the_output_commits_nothing(tmp_path):
    source = str(tmp_path / "input.parquet")
    pq.write_table(synthetic_table(600, 6, dim=16, families=3, seed=5), source)
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = ApacheConnectServer(tmp_path / "server", private=out)
    from pyspark.sql.connect.session import SparkSession as RemoteSparkSession

    try:
        elsewhere.start()
        session = RemoteSparkSession.builder.remote(elsewhere.url).create()
        values = dict(id_col="id", embedding_col="embedding", num_tasks=4, num_instances=100, run_id="x",
                      report=False)
        with pytest.raises(SmartError, match="Spark wrote the files where this process does not see them"):
            run_job(session, values, source, str(out), connect=True)
        session.stop()
    finally:
        elsewhere.stop()
    assert not [d for d, _, _ in os.walk(out) if d.endswith("_delta_log")]  # no table, not even an empty one
