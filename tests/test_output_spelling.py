"""``--output``: a folder and a catalog schema are spelled so that neither is taken for the other.

``catalog.db`` (docs/usage.md) and ``catalog:db`` / ``catalog:catalog.db`` are catalog schemas; a path
with a slash, a URI, or a bare name that exists here as a folder is a folder. A bare word that is neither
(``--output out`` where there is no ``out/``: on Databricks it used to create ``out.smart_mixture``) and a
``catalog.db`` that is also a folder here are errors that show both spellings; the job exits 2.
"""

from __future__ import annotations

import pytest

from smart_spark.delta.refs import (
    TableRef,
    is_schema,
    is_table_name,
    output_location,
    output_tables,
    table_ref,
)
from smart_spark.errors import SmartError
from smart_spark.jobs.smart_mixture import main
from smart_spark.spark.reader import detect_format


@pytest.mark.parametrize(("output", "expected"), [
    ("main.smart", ("schema", "main.smart")),
    ("catalog:smart", ("schema", "smart")),
    ("catalog:main.smart", ("schema", "main.smart")),
    ("./out", ("folder", "./out")),
    ("out/", ("folder", "out/")),
    ("/data/mixtures", ("folder", "/data/mixtures")),
    ("s3://lake/mixtures", ("folder", "s3://lake/mixtures")),
    ("file:/tmp/o", ("folder", "file:/tmp/o")),
])
def test_the_two_spellings(output, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no folder of these names here
    assert output_location(output) == expected
    assert is_schema(output) == (expected[0] == "schema")


def test_tables_of_each_spelling(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert output_tables("main.smart")["mixture"] == TableRef(name="main.smart.smart_mixture")
    assert output_tables("catalog:smart")["runs"] == TableRef(name="smart.smart_runs")
    assert output_tables("out/")["mixture"] == TableRef(path="out/mixture")
    (tmp_path / "out").mkdir()
    assert output_location("out") == ("folder", "out")  # a bare name that exists as a folder is one
    assert output_tables("out")["task_weights"] == TableRef(path="out/task_weights")
    assert output_tables("catalog:out")["mixture"] == TableRef(name="out.smart_mixture")


def test_a_bare_word_that_is_no_folder_is_an_error_showing_both_spellings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SmartError) as caught:
        output_tables("out")
    assert str(caught.value) == (
        "--output 'out' is neither an existing folder nor a catalog schema (catalog.db): write a folder "
        "as ./out (or out/), a catalog schema as catalog:out or <catalog>.out")
    (tmp_path / "out").write_text("a file, not a folder")
    with pytest.raises(SmartError, match="neither an existing folder"):
        output_tables("out")


def test_a_schema_name_that_is_also_a_folder_here_is_ambiguous(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "main.smart").mkdir()
    with pytest.raises(SmartError) as caught:
        output_tables("main.smart")
    assert str(caught.value) == (
        "--output 'main.smart' is both a folder here and a catalog schema name: write a folder as "
        "./main.smart (or main.smart/), a catalog schema as catalog:main.smart")
    assert output_location("./main.smart") == ("folder", "./main.smart")
    assert output_location("catalog:main.smart") == ("schema", "main.smart")


@pytest.mark.parametrize("output", ["catalog:", "catalog:a/b", "catalog:a.b.c", "catalog:1db"])
def test_catalog_prefix_needs_a_schema_name(output):
    with pytest.raises(SmartError, match=rf"--output '{output}': after catalog: give a catalog schema"):
        output_tables(output)


def test_the_job_exits_2_on_an_ambiguous_output_before_spark(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main(["--input", "in.jsonl", "--output", "out", "--num-instances", "5"])
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        "smart_mixture: error: --output 'out' is neither an existing folder nor a catalog schema "
        "(catalog.db): write a folder as ./out (or out/), a catalog schema as catalog:out or <catalog>.out"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.spark
def test_a_non_ascii_name_is_a_path_for_every_flag(spark, tmp_path, monkeypatch):
    """One rule for what is a catalog name (--input, --embeddings-table, --output): Spark's parser takes
    unquoted names of ASCII letters, digits and underscores only, so a non-ASCII name is a path."""
    from pyspark.errors import ParseException

    with pytest.raises(ParseException, match="INVALID_IDENTIFIER"):
        spark.catalog.tableExists("données.tâche")
    monkeypatch.chdir(tmp_path)
    assert is_table_name("donnees.tache") and not is_table_name("données.tâche")
    assert table_ref("données.tâche") == TableRef(path="données.tâche")
    assert output_location("données.tâche") == ("folder", "données.tâche")
    assert detect_format("donnees.tache") == "table"
    with pytest.raises(SmartError, match="^--input données.tâche does not exist$"):
        detect_format("données.tâche")
