"""The job under pyspark's own ``spark-submit``, as the README runs it: Spark's INFO log stays out.

``spark-submit`` starts the JVM with Spark's default log4j profile (INFO) before the job's Python runs;
the job switches it to its own (errors only) before its SparkContext starts. A normal run on a slice of
the bundled sample (146 rows of 36 tasks; real encoder, real Delta tables) prints the job's lines and
at most the few that ``spark-submit`` printed before the job started; ``--verbose`` or a log4j
configuration of the user's own brings Spark's INFO log back (checked on runs that stop at a missing
input, right after the session started).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pyspark
import pytest
from deltalake import DeltaTable

pytestmark = [pytest.mark.spark, pytest.mark.slow]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPARK_SUBMIT = os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-submit")
JOB_LINE = re.compile(r"^\d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR) ")  # the job's logging format
SPARK_INFO = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d INFO ", re.MULTILINE)  # Spark's log4j format


def submit(*args: str, driver_options: str | None = None) -> subprocess.CompletedProcess:
    """``spark-submit --master local[2] jobs/smart_mixture.py ARGS``; driver and workers run this Python."""
    environ = {**os.environ, "PYTHONPATH": ROOT, "PYSPARK_PYTHON": sys.executable}
    for name in ("PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET", "SPARK_REMOTE", "PYSPARK_DRIVER_PYTHON"):
        environ.pop(name, None)
    options = ["--driver-java-options", driver_options] if driver_options else []
    command = [SPARK_SUBMIT, "--master", "local[2]", *options, os.path.join(ROOT, "jobs", "smart_mixture.py")]
    return subprocess.run([*command, *args], cwd=ROOT, env=environ, capture_output=True, text=True,
                          timeout=600)


def not_the_jobs(text: str) -> list[str]:
    """The lines of ``text`` that are neither the job's log lines nor its summary (stdout, indented)."""
    return [line for line in text.splitlines()
            if not (JOB_LINE.match(line) or line.startswith(("SMART run ", "  ")))]


def test_a_normal_run_prints_the_jobs_lines_only(tmp_path):
    source = tmp_path / "slice.jsonl"
    with open(os.path.join(ROOT, "data", "sample", "instructions.jsonl"), encoding="utf-8") as fh:
        source.write_text("".join(fh.readlines()[::24]), encoding="utf-8")  # sorted by task
    out = tmp_path / "out"
    done = submit("--input", str(source), "--output", str(out), "--id-col", "id", "--num-tasks", "8",
                  "--num-instances", "30")
    both = done.stdout + done.stderr
    assert done.returncode == 0, both[-5000:]
    assert re.search(r"INFO read: done in .*: rows 146", both)
    assert re.search(r"INFO write: done in ", both) and "SMART run " in done.stdout
    others = not_the_jobs(both)
    assert len(others) <= 5, others[:40]  # before: ~1,900 lines of Spark's INFO log
    assert not SPARK_INFO.search(both), others[:40]
    assert "Traceback" not in both
    assert len(DeltaTable(str(out / "mixture")).to_pandas()) == 30


@pytest.mark.parametrize("how", ["--verbose", "own log4j file"])
def test_verbose_or_an_own_log4j_file_brings_sparks_log_back(tmp_path, how):
    options = None
    args = ["--input", str(tmp_path / "missing.jsonl"), "--output", str(tmp_path / "out"),
            "--num-instances", "10"]
    if how == "--verbose":
        args.append("--verbose")
    else:
        config = tmp_path / "log4j2.properties"
        config.write_text("\n".join([
            "rootLogger.level = info", "rootLogger.appenderRef.stderr.ref = console",
            "appender.console.type = Console", "appender.console.name = console",
            "appender.console.target = SYSTEM_ERR", "appender.console.layout.type = PatternLayout",
            "appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n", ""]), encoding="utf-8")
        options = f"-Dlog4j2.configurationFile=file:{config}"
    done = submit(*args, driver_options=options)
    both = done.stdout + done.stderr
    assert done.returncode == 1, both[-3000:]
    assert f"smart_mixture: error: --input {tmp_path / 'missing.jsonl'} does not exist" in both
    assert re.search(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d INFO SparkContext: Running Spark version ", both,
                     re.MULTILINE), both[-3000:]
