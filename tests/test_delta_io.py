"""delta_io, delta-rs backend: real Spark writes, real Delta tables, read back with delta-rs and DuckDB."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake

from smart_spark.delta import delta_io
from smart_spark.errors import SmartError
from smart_spark.spark.session import get_spark

pytestmark = pytest.mark.spark

SCHEMA = "run_id string, x int, tags map<string,int>, emb array<float>, at timestamp"
T0 = datetime(2024, 1, 2, 3, 4, 5, 123456)


def rows(spark, run_id, xs):
    return spark.createDataFrame([(run_id, x, {"k": x}, [x + 0.5, -1.0], T0) for x in xs], SCHEMA)


def log_entry(path: Path, version: int) -> list[dict]:
    return [
        json.loads(line) for line in (path / "_delta_log" / f"{version:020d}.json").read_text().splitlines()
    ]


def active_files(path: Path) -> set[str]:
    return set(pa.table(DeltaTable(str(path)).get_add_actions()).column("path").to_pylist())


def by_x(table: pa.Table) -> list[dict]:
    return sorted(table.to_pylist(), key=lambda r: r["x"])


@pytest.fixture
def mixture(spark, tmp_path):
    """A table with runs r1 (x 1, 2) and r2 (x 3), partitioned by run_id, two commits."""
    path = tmp_path / "mixture"
    ref = delta_io.TableRef(path=str(path))
    delta_io.replace_where(
        spark,
        rows(spark, "r1", [1, 2]),
        ref,
        column="run_id",
        value="r1",
        partition_by=["run_id"],
        properties={"smartspark.table": "mixture", "delta.checkpointInterval": "20"},
        commit_info={"run_id": "r1"},
    )
    v1 = delta_io.replace_where(
        spark, rows(spark, "r2", [3]), ref, column="run_id", value="r2", commit_info={"run_id": "r2"}
    )
    return path, ref, v1


def test_refs_and_backend(spark):
    assert delta_io.output_tables("/out/x/")["mixture"] == delta_io.TableRef(path="/out/x/mixture")
    assert str(delta_io.output_tables("file:/o")["runs"]) == "file:/o/runs"
    assert delta_io.output_tables("cat.db")["embeddings"] == delta_io.TableRef(name="cat.db.smart_embeddings")
    assert delta_io.output_tables("catalog:db")["task_weights"].name == "db.smart_task_weights"
    assert delta_io.table_ref("cat.db.t") == delta_io.TableRef(name="cat.db.t")
    assert delta_io.table_ref("out/emb").path == "out/emb"
    with pytest.raises(SmartError, match="^a table is a path or a catalog name, not both or neither: None$"):
        delta_io.TableRef()
    assert delta_io.backend(spark) == "deltars"
    spark.conf.set(delta_io.BACKEND_CONF, "spark")
    try:
        assert delta_io.backend(spark) == "spark"
        spark.conf.set(delta_io.BACKEND_CONF, "nope")
        with pytest.raises(SmartError, match="deltaBackend"):
            delta_io.backend(spark)
    finally:
        spark.conf.unset(delta_io.BACKEND_CONF)
    with pytest.raises(SmartError, match="Delta-enabled Spark session"):
        delta_io.exists(spark, delta_io.TableRef(name="db.smart_mixture"))


def test_table_ref_bare_word(tmp_path, monkeypatch):
    """A bare word is a folder that exists here, never silently a table of the current schema."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SmartError) as err:
        delta_io.table_ref("cache")
    assert str(err.value) == ("--embeddings-table 'cache' is neither an existing folder nor a catalog table "
                              "(db.table): write a folder as ./cache (or cache/), a table as <db>.cache")
    (tmp_path / "cache").mkdir()
    assert delta_io.table_ref("cache") == delta_io.TableRef(path="cache")
    assert delta_io.table_ref("db.cache") == delta_io.TableRef(name="db.cache")


def test_session_defaults(spark):
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.conf.get("spark.sql.parquet.outputTimestampType") == "TIMESTAMP_MICROS"
    assert spark.conf.get("spark.sql.execution.arrow.pyspark.enabled") == "true"
    spark.conf.set("spark.sql.parquet.outputTimestampType", "INT96")  # set by the user: kept
    try:
        assert get_spark().conf.get("spark.sql.parquet.outputTimestampType") == "INT96"
    finally:
        spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")


def test_replace_where_replaces_one_run(spark, mixture):
    path, ref, v1 = mixture
    assert (delta_io.exists(spark, ref), v1, delta_io.version(spark, ref)) == (True, 2, 2)
    dt = DeltaTable(str(path))
    assert dt.metadata().partition_columns == ["run_id"]
    assert dt.metadata().configuration == {"smartspark.table": "mixture", "delta.checkpointInterval": "20"}
    before = active_files(path)
    r1_files = {f for f in before if f.startswith("run_id=r1/")}

    v = delta_io.replace_where(
        spark,
        rows(spark, "r1", [10]),
        ref,
        column="run_id",
        value="r1",
        commit_info={"run_id": "r1", "config": '{"seed": 1}'},
    )
    assert v == 3
    got = by_x(DeltaTable(str(path)).to_pyarrow_table())
    assert [(r["run_id"], r["x"]) for r in got] == [("r2", 3), ("r1", 10)]
    assert sorted((r.run_id, r.x) for r in delta_io.read(spark, ref).collect()) == [("r1", 10), ("r2", 3)]
    assert delta_io.read(spark, ref).columns == ["run_id", "x", "tags", "emb", "at"]
    # One commit removed exactly r1's old files and added the new one; r2's files are untouched.
    actions = log_entry(path, 3)
    assert {a["remove"]["path"] for a in actions if "remove" in a} == r1_files
    added = [a["add"] for a in actions if "add" in a]
    assert [(a["partitionValues"], json.loads(a["stats"])["numRecords"]) for a in added] == [
        ({"run_id": "r1"}, 1)
    ]
    assert active_files(path) == (before - r1_files) | {a["path"] for a in added}
    assert not [p for p in path.rglob("*") if "staging" in p.name or p.name == "_SUCCESS"]
    # Commit infos, newest first; time travel still sees the old run.
    infos = delta_io.history_commit_info(spark, ref)
    assert [(c["version"], c["operation"], c.get("run_id")) for c in infos] == [
        (3, "WRITE", "r1"),
        (2, "WRITE", "r2"),
        (1, "WRITE", "r1"),
        (0, "CREATE TABLE", "r1"),
    ]
    assert infos[0]["config"] == '{"seed": 1}'
    old = delta_io.read(spark, ref, version=2).where("run_id = 'r1'")
    assert sorted(r.x for r in old.collect()) == [1, 2]


def test_replace_with_nothing_and_odd_values(spark, mixture):
    path, ref, _ = mixture
    odd = "a b/%'="
    delta_io.replace_where(spark, rows(spark, odd, [7]), ref, column="run_id", value=odd)
    delta_io.replace_where(spark, rows(spark, "r2", []), ref, column="run_id", value="r2")
    got = by_x(DeltaTable(str(path)).to_pyarrow_table())
    assert [(r["run_id"], r["x"]) for r in got] == [("r1", 1), ("r1", 2), (odd, 7)]
    assert sorted((r.x, r.run_id) for r in delta_io.read(spark, ref).collect()) == [
        (1, "r1"),
        (2, "r1"),
        (7, odd),
    ]


def test_failed_writes_leave_the_table(spark, mixture):
    path, ref, v1 = mixture
    files = active_files(path)
    bad_type = rows(spark, "r1", [5]).selectExpr("run_id", "CAST(x AS string) AS x", "tags", "emb", "at")
    with pytest.raises(SmartError, match="column 'x' is string in the data but int in the table"):
        delta_io.replace_where(spark, bad_type, ref, column="run_id", value="r1")
    with pytest.raises(SmartError, match="column 'emb' of the table is missing"):
        delta_io.replace_where(spark, rows(spark, "r1", [5]).drop("emb"), ref, column="run_id", value="r1")
    with pytest.raises(SmartError, match="column 'extra' is not in the table"):
        delta_io.merge_insert_new(spark, rows(spark, "r1", [5]).selectExpr("*", "1 AS extra"), ref, ["x"])
    with pytest.raises(SmartError, match="rows with another run_id"):
        delta_io.replace_where(spark, rows(spark, "r2", [5]), ref, column="run_id", value="r1")
    assert delta_io.version(spark, ref) == v1
    assert active_files(path) == files
    assert not [p for p in path.iterdir() if p.name.startswith("smartspark-staging")]


def test_timestamps_maps_arrays_round_trip(spark, mixture):
    path, ref, _ = mixture
    table = DeltaTable(str(path)).to_pyarrow_table()
    assert table.schema.field("at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("emb").type.value_type == pa.float32()
    r1 = [r for r in by_x(table) if r["run_id"] == "r1"]
    assert r1[0]["at"] == T0.replace(tzinfo=timezone.utc)
    assert dict(r1[0]["tags"]) == {"k": 1} and r1[1]["emb"] == [2.5, -1.0]
    some_file = next(path.glob("run_id=r1/*.parquet"))
    parquet_schema = pq.read_metadata(some_file).schema
    at = next(
        parquet_schema.column(i) for i in range(len(parquet_schema)) if parquet_schema.column(i).path == "at"
    )
    assert at.physical_type == "INT64" and "microseconds" in str(at.logical_type)
    back = delta_io.read(spark, ref).where("x = 1").first()
    assert (back.at, back.tags, back.emb) == (T0, {"k": 1}, [1.5, -1.0])


def test_replace_where_on_an_unpartitioned_column(spark, tmp_path):
    ref = delta_io.TableRef(path=str(tmp_path / "runs"))
    for run_id, xs in (("r1", [1]), ("r2", [2]), ("r1", [5, 6])):
        delta_io.replace_where(spark, rows(spark, run_id, xs), ref, column="run_id", value=run_id)
    got = by_x(DeltaTable(ref.path).to_pyarrow_table())
    assert [(r["run_id"], r["x"]) for r in got] == [("r2", 2), ("r1", 5), ("r1", 6)]
    assert DeltaTable(ref.path).metadata().partition_columns == []


def test_concurrent_runs_both_commit(spark, mixture):
    path, ref, _ = mixture
    errors = []

    def run(run_id, x):
        try:
            delta_io.replace_where(spark, rows(spark, run_id, [x]), ref, column="run_id", value=run_id)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(f"c{i}", 100 + i)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert {r["run_id"] for r in DeltaTable(str(path)).to_pyarrow_table().to_pylist()} == {
        "r1",
        "r2",
        "c0",
        "c1",
    }


def test_merge_insert_new(spark, tmp_path):
    ref = delta_io.TableRef(path=str(tmp_path / "embeddings"))
    schema = "model string, text_sha256 string, dim int, embedding array<float>"
    first = spark.createDataFrame(
        [("m", "a", 2, [1.0, 0.0]), ("m", "b", 2, [0.0, 1.0]), ("m", None, 2, [0.5, 0.5])], schema
    )
    v0 = delta_io.merge_insert_new(spark, first, ref, ["model", "text_sha256"], commit_info={"run_id": "r1"})
    assert v0 == delta_io.version(spark, ref)
    files = active_files(Path(ref.path))
    assert delta_io.merge_insert_new(spark, first, ref, ["model", "text_sha256"]) is None
    assert delta_io.version(spark, ref) == v0
    second = spark.createDataFrame(
        [("m", "a", 2, [9.0, 9.0]), ("m", "c", 2, [1.0, 1.0]), ("m2", "a", 2, [2.0, 2.0])], schema
    )
    v1 = delta_io.merge_insert_new(spark, second, ref, ["model", "text_sha256"])
    assert v1 == v0 + 1
    assert files <= active_files(Path(ref.path))  # nothing rewritten
    got = {
        (r["model"], r["text_sha256"]): r["embedding"]
        for r in DeltaTable(ref.path).to_pyarrow_table().to_pylist()
    }
    assert got == {
        ("m", "a"): [1.0, 0.0],
        ("m", "b"): [0.0, 1.0],
        ("m", None): [0.5, 0.5],
        ("m", "c"): [1.0, 1.0],
        ("m2", "a"): [2.0, 2.0],
    }
    assert log_entry(Path(ref.path), v1)[0]["commitInfo"]["operationParameters"]["mode"] == "Append"
    with pytest.raises(SmartError, match="merge keys"):
        delta_io.merge_insert_new(spark, second, ref, ["nope"])


def test_restore(spark, mixture):
    path, ref, v1 = mixture
    delta_io.replace_where(spark, rows(spark, "r1", [10]), ref, column="run_id", value="r1")
    delta_io.restore(spark, ref, v1, commit_info={"run_id": "r1", "rollback": "true"})
    assert sorted(r["x"] for r in DeltaTable(str(path)).to_pyarrow_table().to_pylist()) == [1, 2, 3]
    assert delta_io.history_commit_info(spark, ref)[0]["operation"] == "RESTORE"
    assert delta_io.history_commit_info(spark, ref)[0]["rollback"] == "true"
    version = delta_io.version(spark, ref)
    delta_io.restore(spark, ref, version)  # already there: no commit
    assert delta_io.version(spark, ref) == version

    fresh = delta_io.TableRef(path=str(path.parent / "fresh"))
    delta_io.restore(spark, fresh, None)  # no table before, none now
    assert not delta_io.exists(spark, fresh)
    delta_io.replace_where(
        spark, rows(spark, "r1", [1]), fresh, column="run_id", value="r1", partition_by=["run_id"]
    )
    delta_io.restore(spark, fresh, None)
    assert DeltaTable(fresh.path).to_pyarrow_table().num_rows == 0
    assert delta_io.read(spark, fresh).count() == 0
    assert delta_io.read(spark, fresh).columns == ["run_id", "x", "tags", "emb", "at"]


@pytest.mark.parametrize(
    "configuration, message",
    [
        ({"delta.enableDeletionVectors": "true"}, "deletion vectors"),
        ({"delta.columnMapping.mode": "name"}, "column mapping"),
    ],
)
def test_refuses_tables_it_cannot_read(spark, tmp_path, configuration, message):
    path = str(tmp_path / "foreign")
    write_deltalake(
        path, pa.table({"run_id": ["r1"], "x": pa.array([1], pa.int32())}), configuration=configuration
    )
    ref = delta_io.TableRef(path=path)
    df = spark.createDataFrame([("r1", 2)], "run_id string, x int")
    with pytest.raises(SmartError, match=message):
        delta_io.read(spark, ref)
    with pytest.raises(SmartError, match=message):
        delta_io.replace_where(spark, df, ref, column="run_id", value="r1")
    with pytest.raises(SmartError, match=message):
        delta_io.merge_insert_new(spark, df, ref, ["x"])
    assert DeltaTable(path).version() == 0


def test_reads_a_table_delta_rs_wrote(spark, tmp_path):
    path = str(tmp_path / "by_delta_rs")
    write_deltalake(
        path, pa.table({"run_id": ["a b", "c"], "x": pa.array([1, 2], pa.int32())}), partition_by=["run_id"]
    )
    got = delta_io.read(spark, delta_io.TableRef(path=path))
    assert got.columns == ["run_id", "x"]
    assert sorted((r.run_id, r.x) for r in got.collect()) == [("a b", 1), ("c", 2)]


def test_duckdb_queries_the_table(spark, mixture):
    import duckdb

    path, _, _ = mixture
    # DuckDB's delta_scan needs the `delta` extension, a download this machine cannot make: DuckDB reads
    # the snapshot through delta-rs's Arrow dataset (the active files only) instead.
    dataset = DeltaTable(str(path)).to_pyarrow_dataset()  # noqa: F841 -- DuckDB finds it by name
    with duckdb.connect() as con:
        got = con.sql(
            "SELECT run_id, count(*) AS n, max(x) AS top FROM dataset GROUP BY run_id ORDER BY run_id"
        )
        assert got.fetchall() == [("r1", 2, 2), ("r2", 1, 3)]
