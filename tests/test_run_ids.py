"""A run id is data, not a path; every file the job writes beside its tables stays under ``--output``.

Run ids with ``..``, empty or ``.`` parts, a leading ``/``, backslashes or control characters are refused
before any work (exit status 2, one line naming ``--run-id``); a sweep's nested ids stay valid, and its
reports land under ``<output>/reports/<run id>/``. The paths are also checked where they are built
(:func:`path_under`): a report folder or an export shard that would leave its root, by ``..`` or by a
symbolic link, is refused and nothing is written outside.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from standalone import read_table

from smart_spark.cli.settings import check_run_id, expand_sweep, make_config
from smart_spark.datasets.synthetic import synthetic_table
from smart_spark.delta import delta_io
from smart_spark.delta.refs import path_under
from smart_spark.errors import SmartError
from smart_spark.export.shards import ExportOptions, export_mixture
from smart_spark.jobs.smart_mixture import main, run
from smart_spark.report.markdown import write_report
from smart_spark.report.run import write_reports

BAD_IDS = ["x/../../../../escaped", "..", "a/../b", "a..b", "a/./b", "a//b", "a/", "/abs", "./a",
           "a\\b", "a\nb", "ab\n", "a\tb", "a\x00b", "a b", "", "x" * 129]
GOOD_IDS = ["exp", "exp/1", "x/m4-n300", "2024-06-01T10:00:00Z-ab12cd34", "a.b_c:d-e", "v1.2/x"]


@pytest.mark.parametrize("run_id", BAD_IDS)
def test_bad_run_ids_are_refused_naming_the_flag(run_id):
    with pytest.raises(SmartError) as caught:
        make_config(dict(input="in.jsonl", output="out/", num_instances=5, run_id=run_id))
    message = str(caught.value)
    assert message.startswith(f"--run-id {run_id!r} ") and "\n" not in message


@pytest.mark.parametrize("run_id", GOOD_IDS)
def test_good_run_ids_and_their_sweep_ids_are_kept(run_id):
    config = make_config(dict(input="in.jsonl", output="out/", num_instances="5,10", num_tasks="2,all",
                              run_id=run_id))
    ids = [c.run_id for c in expand_sweep(config)]
    assert ids == [f"{run_id}/m2-n5", f"{run_id}/m2-n10", f"{run_id}/mall-n5", f"{run_id}/mall-n10"]
    for sweep_id in ids:
        check_run_id(sweep_id)
    assert make_config(dict(input="in.jsonl", output="out/", num_instances=5, run_id="x" * 128)).run_id


def test_the_job_exits_2_on_an_escaping_run_id_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "a" / "out"
    code = main(["--input", str(tmp_path / "in.jsonl"), "--output", str(out), "--num-instances", "300,500",
                 "--num-tasks", "4,all", "--run-id", "x/../../../../escaped"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [
        "smart_mixture: error: --run-id 'x/../../../../escaped' is a name, not a path: no '..', and no "
        "empty or '.' part between slashes (a sweep's ids are <run-id>/m<M'>-n<N'>)"]
    assert list(tmp_path.iterdir()) == []


def test_path_under_keeps_paths_inside_their_root(tmp_path):
    root = tmp_path / "out"
    root.mkdir()
    assert path_under(str(root), "reports", "exp/1/m2-n5") == str(root / "reports" / "exp" / "1" / "m2-n5")
    assert path_under(str(root), "report.md") == str(root / "report.md")
    for parts in (("reports", "x/../../../escaped"), ("..",), ("/etc/passwd",), ("reports", "/tmp/x")):
        with pytest.raises(SmartError, match="is not inside"):
            path_under(str(root), *parts)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (root / "reports").symlink_to(outside, target_is_directory=True)  # a link that leaves the root
    with pytest.raises(SmartError, match=f"resolved: '{outside}"):
        path_under(str(root), "reports", "exp")
    # A remote file system's paths (bucket/prefix): compared as written, no link resolution.
    assert path_under("bucket/exports", "parquet/train-00000-of-00001.parquet", resolve=False) == \
        "bucket/exports/parquet/train-00000-of-00001.parquet"
    with pytest.raises(SmartError, match="is not inside"):
        path_under("bucket/exports", "../other/manifest.json", resolve=False)


def test_reports_of_a_run_id_that_escapes_are_refused_where_the_path_is_built(tmp_path):
    """write_reports given a run id that was never checked (its own caller): refused, nothing written."""
    out = tmp_path / "a" / "b" / "out"
    out.mkdir(parents=True)
    mixtures = [({"run_id": run_id}, None)
                for run_id in ("x/../../../../escaped/m4-n300", "x/../../../../escaped/m4-n500")]
    with pytest.raises(SmartError, match="refusing to write .*escaped.* is not inside"):
        write_reports("x/../../../../escaped", str(out), mixtures)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b", "out"]
    with pytest.raises(SmartError, match="is not inside"):
        write_report(str(out), {"run_id": "r"}, None, chart_name="../../budgets.png")


@pytest.fixture(scope="module")
def sweep_output(spark, tmp_path_factory) -> Path:
    """A budget sweep (M' 2 and all, N' 60) with run id ``exp/1`` and its reports, on the local session."""
    root = tmp_path_factory.mktemp("sweep")
    source = root / "input.parquet"
    pq.write_table(synthetic_table(300, 3, dim=8, families=1, seed=3), source)
    out = root / "out"
    run(spark, make_config(dict(input=str(source), output=str(out), id_col="id", embedding_col="embedding",
                                num_tasks="2,all", num_instances=60, run_id="exp/1", quiet=True)))
    return out


@pytest.mark.spark
def test_a_sweep_with_a_nested_run_id_writes_its_reports_under_output(sweep_output):
    out = sweep_output
    runs = read_table(str(out / "runs"))
    assert sorted(runs["run_id"]) == ["exp/1/m2-n60", "exp/1/mall-n60"]
    assert set(runs["status"]) == {"succeeded"}
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*")
                     if p.is_file() and not any(part in delta_io.TABLES for part in p.relative_to(out).parts))
    assert written == ["report.md", "reports/exp/1/m2-n60/budgets.png", "reports/exp/1/m2-n60/quality.png",
                       "reports/exp/1/m2-n60/report.md", "reports/exp/1/mall-n60/budgets.png",
                       "reports/exp/1/mall-n60/quality.png", "reports/exp/1/mall-n60/report.md"]
    index = (out / "report.md").read_text()
    assert "`exp/1/m2-n60`" in index and "| coverage | redundancy | Vendi score |" in index


@pytest.mark.spark
def test_an_export_whose_parquet_folder_links_outside_dest_is_refused(spark, sweep_output, tmp_path):
    dest, outside = tmp_path / "dest", tmp_path / "elsewhere"
    dest.mkdir()
    outside.mkdir()
    (outside / "train-00000-of-00001.parquet").write_text("not ours")  # would be "a previous export"
    (dest / "parquet").symlink_to(outside, target_is_directory=True)
    options = ExportOptions(output=str(sweep_output), run_id="exp/1/m2-n60", dest=str(dest), format="both",
                            overwrite=True)
    with pytest.raises(SmartError, match=f"refusing to write '{dest}/parquet'.*resolved: '{outside}'"):
        export_mixture(spark, options)
    assert sorted(os.listdir(outside)) == ["train-00000-of-00001.parquet"]
    assert (outside / "train-00000-of-00001.parquet").read_text() == "not ours"
    assert sorted(os.listdir(dest)) == ["parquet"]
    (dest / "parquet").unlink()
    manifest = export_mixture(spark, options)  # the same export into a plain folder
    assert manifest["rows"] == 60 and sorted(os.listdir(dest)) == [
        "manifest.json", "parquet", "train-00000-of-00001.jsonl"]
