"""What a user sees on the console: the job run as a subprocess, as `make sample` runs it.

A normal run on every other row of the bundled sample (1,747 rows, all 37 tasks; real encoder, real
Spark, real Delta tables) logs each stage's start and end with counts, progress lines while it embeds,
and no library warning, progress bar or Java stack trace; a missing ``--input`` gives one error line and
nothing else from the JVM.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.slow]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGES = ("read", "embed", "weigh", "select", "write")
JAVA_FRAME = re.compile(r"^\s*at (org|java|scala|sun|jdk)\.", re.MULTILINE)


def run_job(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": ROOT, "SMART_SPARK_PROGRESS_SECONDS": "1", **(env or {})}
    environ.pop("PYSPARK_GATEWAY_PORT", None)
    return subprocess.run([sys.executable, os.path.join(ROOT, "jobs", "smart_mixture.py"), *args],
                          cwd=ROOT, env=environ, capture_output=True, text=True, timeout=2400)


def assert_clean(text: str) -> None:
    assert "UserWarning" not in text and "Warning:" not in text
    assert not JAVA_FRAME.search(text), text[:3000]
    assert "\r" not in text  # no carriage-return progress bars
    assert "Setting default log level" not in text  # Spark resetting the level: not for the user
    assert "it/s]" not in text  # no tqdm bar


@pytest.fixture(scope="module")
def sample_slice(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("input") / "slice.jsonl"
    with open(os.path.join(ROOT, "data", "sample", "instructions.jsonl"), encoding="utf-8") as fh:
        lines = fh.readlines()[::2]  # the file is sorted by task: every task keeps rows
    path.write_text("".join(lines), encoding="utf-8")
    return str(path)


def test_normal_run_logs_stages_and_progress(sample_slice, tmp_path):
    out = str(tmp_path / "out")
    done = run_job("--input", sample_slice, "--output", out, "--id-col", "id", "--num-tasks", "8",
                   "--num-instances", "150")
    both = done.stdout + done.stderr
    assert done.returncode == 0, both[-5000:]
    for stage in STAGES:
        assert re.search(rf"INFO {stage}: started: ", done.stderr), stage
        assert re.search(rf"INFO {stage}: done in \d+\.\d s", done.stderr), stage
    assert re.search(r"read: done in .*: rows 1,747", done.stderr)
    assert re.search(r"embed: done in .*texts 1,\d{3}, cache_hits 0, cache_misses 1,\d{3}", done.stderr)
    assert re.search(r"select: done in .*rows 150", done.stderr)
    progress = re.findall(r"embed: ~[\d,]+ of 1,\d{3} texts done \(\d+ of \d+ Spark tasks\)", done.stderr)
    assert progress, done.stderr[-5000:]
    assert "SMART run " in done.stdout  # the summary
    assert_clean(both)

    # The same again: everything cached, nothing embedded, still quiet.
    again = run_job("--input", sample_slice, "--output", out, "--id-col", "id", "--num-tasks", "8",
                    "--num-instances", "150", "--run-id", "again", "--quiet")
    assert again.returncode == 0, again.stderr[-5000:]
    assert again.stdout == "" and "INFO" not in again.stderr  # --quiet: warnings and errors only
    assert_clean(again.stdout + again.stderr)


def test_missing_input_is_one_line(tmp_path):
    done = run_job("--input", str(tmp_path / "missing.jsonl"), "--output", str(tmp_path / "out"),
                   "--num-instances", "10")
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("smart_mixture: error:")]
    assert errors == [f"smart_mixture: error: --input {tmp_path / 'missing.jsonl'} does not exist"]
    assert "Traceback" not in done.stderr
    assert_clean(done.stdout + done.stderr)
    assert not os.path.exists(tmp_path / "out" / "mixture")


def test_cluster_tasks_run_is_quiet(tmp_path):
    """k-means (Spark ML's matrix products) on a machine without a system BLAS: no line from the
    native BLAS loader, nothing but warnings and errors under --quiet."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    X = np.repeat(rng.normal(size=(4, 8)), 50, axis=0) + rng.normal(scale=0.05, size=(200, 8))
    pq.write_table(pa.table({"id": [f"r{i:03d}" for i in range(200)],
                             "emb": pa.array(X.astype(np.float32).tolist(), type=pa.list_(pa.float32()))}),
                   tmp_path / "rows.parquet")
    done = run_job("--input", str(tmp_path / "rows.parquet"), "--output", str(tmp_path / "out"),
                   "--id-col", "id", "--embedding-col", "emb", "--tasks-from", "clusters",
                   "--num-clusters", "4", "--num-instances", "20", "--no-report", "--quiet")
    assert done.returncode == 0, done.stderr[-5000:]
    assert done.stdout == "" and "INFO" not in done.stderr
    assert "netlib" not in done.stderr and "JNI_OnLoad" not in done.stderr, done.stderr
    assert_clean(done.stderr)
