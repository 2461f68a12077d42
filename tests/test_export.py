"""jobs/export_mixture.py and smart_spark/export.py: real Spark, a real Delta mixture table, real files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from smart_spark.delta import delta_io
from smart_spark.errors import SmartError
from smart_spark.export.shards import ExportOptions, export_mixture, shard_name, shard_sizes
from smart_spark.jobs.export_mixture import main

pytestmark = pytest.mark.spark

MIXTURE_SCHEMA = (
    "prompt string, response string, source string, run_id string, task string, stratum string, "
    "id string, selection_rank int, selection_gain double"
)
RUNS = {"r1": 23, "r2": 5}


def mixture_rows(run_id: str, n: int) -> list[tuple]:
    return [
        (f"{run_id} prompt {i} \u00e9\n\"q\"", f"{run_id} answer {i}", f"src{i % 3}", run_id, f"t{i % 4}",
         None, f"{run_id}-id-{i:03d}", i // 4, None if i % 5 == 0 else float(i))
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def output(spark, tmp_path_factory) -> str:
    """A job output folder whose ``mixture`` table holds runs r1 (23 rows) and r2 (5 rows)."""
    out = tmp_path_factory.mktemp("smart-out")
    ref = delta_io.output_tables(str(out))["mixture"]
    for run_id, n in RUNS.items():
        df = spark.createDataFrame(mixture_rows(run_id, n), MIXTURE_SCHEMA).repartition(3)
        delta_io.replace_where(spark, df, ref, column="run_id", value=run_id, partition_by=["run_id"])
    return str(out)


def expected_order(run_id: str, seed: int) -> list[str]:
    """The spec's order, computed in plain Python: sha256 of 'seed:shuffle:id', then id."""
    ids = [row[6] for row in mixture_rows(run_id, RUNS[run_id])]
    return sorted(ids, key=lambda i: (hashlib.sha256(f"{seed}:shuffle:{i}".encode()).hexdigest(), i))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def prompt_to_id(run_id: str) -> dict[str, str]:
    return {row[0]: row[6] for row in mixture_rows(run_id, RUNS[run_id])}


def export(spark, output: str, dest: Path, **kwargs) -> dict:
    return export_mixture(spark, ExportOptions(output=output, run_id=kwargs.pop("run_id", "r1"),
                                               dest=str(dest), **kwargs))


def test_jsonl_shards_order_and_manifest(spark, output, tmp_path):
    manifest = export(spark, output, tmp_path, shards=3)
    names = [shard_name(i, 3, "jsonl") for i in range(3)]
    assert names[0] == "train-00000-of-00003.jsonl"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*names, "manifest.json"])  # staging gone
    shards = [read_jsonl(tmp_path / name) for name in names]
    assert [len(s) for s in shards] == shard_sizes(23, 3) == [8, 8, 7]
    assert all(set(obj) == {"prompt", "response"} for s in shards for obj in s)
    ids = prompt_to_id("r1")
    order = expected_order("r1", 23)
    for shard, objs in enumerate(shards):  # shard i holds ranks i, i+3, ... in order
        assert [ids[o["prompt"]] for o in objs] == order[shard::3]
    assert shards[0][0]["prompt"].endswith('\u00e9\n"q"')  # text survives the round trip
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert on_disk == manifest
    assert manifest["rows"] == 23 and manifest["shards"] == 3 and manifest["seed"] == 23
    table = delta_io.TableRef(path=f"{output}/mixture")
    assert manifest["run_id"] == "r1"
    assert manifest["source"] == {"table": str(table), "version": delta_io.version(spark, table)}
    assert [(f["path"], f["rows"]) for f in manifest["files"]] == list(zip(names, [8, 8, 7]))
    assert manifest["columns"] == {"jsonl": ["prompt", "response"]}


def test_order_ignores_partitioning(spark, output, tmp_path):
    """Other shuffle partitions and a single shard: the same global order."""
    previous = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "7")
    try:
        export(spark, output, tmp_path, shards=1, run_id="r2", seed=5)
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", previous)
    ids = prompt_to_id("r2")
    objs = read_jsonl(tmp_path / shard_name(0, 1, "jsonl"))
    assert [ids[o["prompt"]] for o in objs] == expected_order("r2", 5)


def test_chat_format(spark, output, tmp_path):
    manifest = export(spark, output, tmp_path / "sys", chat=True, system="Be brief.", shards=2)
    objs = read_jsonl(tmp_path / "sys" / shard_name(1, 2, "jsonl"))
    assert len(objs) == 11 and manifest["columns"]["jsonl"] == ["messages"]
    for obj in objs:
        assert list(obj) == ["messages"]
        system, user, assistant = obj["messages"]
        assert system == {"role": "system", "content": "Be brief."}
        assert user["role"] == "user" and assistant["role"] == "assistant"
        assert assistant["content"] == user["content"].split(" prompt ")[0] + " answer " + \
            user["content"].split(" prompt ")[1].split(" ")[0]
    export(spark, output, tmp_path / "plain", chat=True, run_id="r2")
    messages = read_jsonl(tmp_path / "plain" / shard_name(0, 1, "jsonl"))[0]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]


def test_parquet_and_both(spark, output, tmp_path):
    manifest = export(spark, output, tmp_path, format="both", shards=2)
    columns = [*MIXTURE_SCHEMA_COLUMNS, "shuffle_rank"]
    assert manifest["columns"]["parquet"] == columns
    order = expected_order("r1", 23)
    ids = prompt_to_id("r1")
    for shard in range(2):
        table = pq.read_table(tmp_path / "parquet" / shard_name(shard, 2, "parquet"))
        assert table.column_names == columns
        ranks = table.column("shuffle_rank").to_pylist()
        assert ranks == list(range(shard, 23, 2))
        assert table.column("id").to_pylist() == order[shard::2]
        lines = read_jsonl(tmp_path / shard_name(shard, 2, "jsonl"))
        assert [ids[o["prompt"]] for o in lines] == table.column("id").to_pylist()
    assert {f["format"] for f in manifest["files"]} == {"jsonl", "parquet"}
    assert sum(f["rows"] for f in manifest["files"] if f["format"] == "parquet") == 23


MIXTURE_SCHEMA_COLUMNS = [part.split()[0] for part in MIXTURE_SCHEMA.split(", ")]


def test_more_shards_than_rows(spark, output, tmp_path):
    manifest = export(spark, output, tmp_path, format="both", shards=7, run_id="r2")
    assert [f["rows"] for f in manifest["files"] if f["format"] == "jsonl"] == [1, 1, 1, 1, 1, 0, 0]
    assert (tmp_path / shard_name(6, 7, "jsonl")).read_bytes() == b""
    empty = pq.read_table(tmp_path / "parquet" / shard_name(6, 7, "parquet"))
    assert empty.num_rows == 0 and empty.column_names == [*MIXTURE_SCHEMA_COLUMNS, "shuffle_rank"]
    total = sum(len(read_jsonl(tmp_path / shard_name(i, 7, "jsonl"))) for i in range(7))
    assert total == 5


def test_same_seed_same_files_other_seed_other_order(spark, output, tmp_path):
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        export(spark, output, tmp_path / name, seed=seed, shards=2)
    files = [shard_name(i, 2, "jsonl") for i in range(2)]
    a, b, c = ([(tmp_path / name / f).read_bytes() for f in files] for name in "abc")
    assert a == b
    assert a != c
    as_set = {line for shard in a for line in shard.splitlines()}
    assert as_set == {line for shard in c for line in shard.splitlines()}  # same rows, another order


def test_unknown_run_and_missing_columns(spark, output, tmp_path):
    with pytest.raises(SmartError, match=r"'nope' has no rows .*runs present: r1, r2$"):
        export(spark, output, tmp_path, run_id="nope")
    with pytest.raises(SmartError, match=r"--prompt-col 'instruction'.*--response-col 'output'"):
        export(spark, output, tmp_path, prompt_col="instruction", response_col="output")
    with pytest.raises(SmartError, match="--response-col column 'selection_rank' is integer, not a string"):
        export(spark, output, tmp_path, response_col="selection_rank")
    with pytest.raises(SmartError, match="no mixture table"):
        export(spark, str(tmp_path / "nothing"), tmp_path / "x")
    with pytest.raises(SmartError, match="--shards"):
        export(spark, output, tmp_path, shards=0)
    assert not list(tmp_path.iterdir())  # nothing written


def test_overwrite(spark, output, tmp_path):
    export(spark, output, tmp_path, shards=3, format="both")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SmartError, match="already holds an export.*--overwrite"):
        export(spark, output, tmp_path, shards=2)
    manifest = export(spark, output, tmp_path, shards=2, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["notes.txt", "manifest.json", "parquet", *(f["path"] for f in manifest["files"])])
    assert not list((tmp_path / "parquet").iterdir())  # the old Parquet shards are gone


def test_cli(spark, output, tmp_path, capsys):
    dest = tmp_path / "cli"
    assert main(["--output", output, "--run-id", "r2", "--dest", str(dest), "--shards", "2",
                 "--format", "both", "--chat", "--system", "S"]) == 0
    assert json.loads((dest / "manifest.json").read_text())["rows"] == 5
    capsys.readouterr()
    assert main(["--output", output, "--run-id", "zz", "--dest", str(tmp_path / "no")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("export_mixture: error: --run-id 'zz' has no rows")
    assert main(["--output", output, "--run-id", "r1", "--dest", str(tmp_path / "no"), "--system", "x"]) == 2
    assert capsys.readouterr().err.strip() == (
        "export_mixture: error: --system needs --chat (the plain format has no system message)")


def test_load_dataset(spark, output, tmp_path):
    import datasets  # a test dependency (setup.py's test extra); imported here, as it takes seconds

    export(spark, output, tmp_path, shards=2, chat=True)
    files = sorted(str(p) for p in tmp_path.glob("train-*.jsonl"))
    loaded = datasets.load_dataset("json", data_files=files, split="train", cache_dir=str(tmp_path / "cache"))
    assert loaded.num_rows == 23 and loaded.column_names == ["messages"]


def test_spark_connect_with_spark_delta(sail, tmp_path, monkeypatch):
    """Over Spark Connect (a Sail server): the Spark-native Delta backend, no RDD or JVM access."""
    monkeypatch.setenv("SPARK_CONNECT_MODE_ENABLED", "1")  # pyspark.sql.functions -> Connect
    remote = sail
    assert delta_io.backend(remote) == "spark"
    ref = delta_io.output_tables(str(tmp_path / "out"))["mixture"]
    for run_id, n in RUNS.items():
        df = remote.createDataFrame(mixture_rows(run_id, n), MIXTURE_SCHEMA)
        delta_io.replace_where(remote, df, ref, column="run_id", value=run_id, partition_by=["run_id"])
    out = str(tmp_path / "out")
    manifest = export(remote, out, tmp_path / "dest", format="both", shards=2, chat=True)
    ids = prompt_to_id("r1")
    for shard in range(2):
        lines = read_jsonl(tmp_path / "dest" / shard_name(shard, 2, "jsonl"))
        assert [ids[o["messages"][0]["content"]] for o in lines] == expected_order("r1", 23)[shard::2]
        table = pq.read_table(tmp_path / "dest" / "parquet" / shard_name(shard, 2, "parquet"))
        assert table.column("shuffle_rank").to_pylist() == list(range(shard, 23, 2))
    assert manifest["rows"] == 23
    with pytest.raises(SmartError, match="runs present: r1, r2$"):
        export(remote, out, tmp_path / "d2", run_id="nope")
