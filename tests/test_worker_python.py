"""Spark's Python workers are checked before the first Spark job: one clear line when they cannot run us.

A notebook's own ``SparkSession.builder.master("local[2]").getOrCreate()`` runs its workers with
``PYSPARK_PYTHON`` (or ``python3`` on the PATH), not the driver's interpreter. Here they run the system
Python, which has none of numpy, torch or transformers: ``build_mixture`` stops with one line naming that
interpreter, what it lacks and the fix, after a warning that the workers run another Python than the
driver; no worker fails, so no Python worker traceback and no Java stack trace.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from smart_spark.spark.worker_python import check_worker_python

pytestmark = pytest.mark.spark
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYSTEM_PYTHON = "/usr/bin/python3"

NOTEBOOK = """
from pyspark.sql import SparkSession
from smart_spark import build_mixture

spark = SparkSession.builder.master("local[2]").getOrCreate()
df = spark.read.json("data/sample/instructions.jsonl")
build_mixture(df, id_col="id", num_tasks=20, num_instances=100)
print("built")
"""


def lacks_torch(python: str) -> bool:
    if not os.path.exists(python):
        return False
    found = subprocess.run([python, "-c", "import importlib.util as u; print(u.find_spec('torch') is None)"],
                           capture_output=True, text=True)
    return found.stdout.strip() == "True"


def test_the_running_sessions_workers_pass_and_the_answer_is_kept(spark):
    tracker = spark.sparkContext.statusTracker()
    report = check_worker_python(spark)
    spark.sparkContext.setJobGroup("worker-python-again", "second check")
    try:
        assert check_worker_python(spark) == report
        spark.sparkContext.setJobGroup("worker-python-control", "a Spark job, to show the groups are seen")
        spark.range(3).collect()
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)  # no group for later tests
    assert report["executable"] == sys.executable  # the session sets PYSPARK_PYTHON to the driver's
    assert report["missing"] == {}
    # Kept per Spark application: asked again, no Spark job runs (the first check may itself have been
    # answered from what an earlier test of this session asked).
    assert tracker.getJobIdsForGroup("worker-python-again") == []
    assert tracker.getJobIdsForGroup("worker-python-control") != []


@pytest.mark.skipif(not lacks_torch(SYSTEM_PYTHON), reason=f"needs {SYSTEM_PYTHON} without torch")
def test_a_notebook_session_on_the_system_python_gets_one_line(tmp_path):
    environ = {**os.environ, "PYTHONPATH": ROOT, "PYSPARK_PYTHON": SYSTEM_PYTHON}
    for name in ("PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET", "SPARK_REMOTE", "PYSPARK_DRIVER_PYTHON"):
        environ.pop(name, None)
    script = tmp_path / "notebook.py"
    script.write_text(NOTEBOOK, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=environ, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode != 0 and "built" not in done.stdout
    fix = f"set PYSPARK_PYTHON={sys.executable} before Spark starts"
    lines = [line for line in done.stderr.splitlines() if "Spark's Python workers" in line]
    assert len(lines) == 1, done.stderr[-5000:]
    assert re.search(rf"SmartError: Spark's Python workers run {SYSTEM_PYTHON} \(Python 3\.\d+\.\d+\), "
                     r"which lacks [a-z_, ]*torch, transformers; ", lines[0]), lines[0]
    assert fix in lines[0]
    warning = f"Spark's local Python workers run {SYSTEM_PYTHON}, not this driver's {sys.executable}"
    assert warning in done.stderr
    # The script's own traceback (it does not catch the error) ends in that line; none from a worker.
    assert done.stderr.count("Traceback") == 1 and "thrown from the Python worker" not in done.stderr
    assert "ModuleNotFoundError" not in done.stderr
    assert not re.search(r"^\s+at (org|java|scala)\.", done.stderr, re.MULTILINE), done.stderr[-5000:]

