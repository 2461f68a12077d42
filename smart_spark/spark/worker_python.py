"""Whether Spark's Python workers can run the job: one tiny task, once per Spark application.

A session the job did not make (a notebook's ``SparkSession.builder.getOrCreate()``) runs its Python
workers with ``PYSPARK_PYTHON``, or ``python3`` from the PATH when that is unset: often not the
interpreter that has this package, torch and transformers. Without a check the first UDF fails deep in a
worker with a long Java and Python traceback. :func:`check_worker_python` asks one worker instead
(``sys.executable``, its version, which of :data:`PACKAGES` it finds) and raises one
:class:`SmartError` line naming the interpreter, what it lacks and the fix.

The packages are looked up (``importlib.util.find_spec``), not imported: the check costs one tiny Spark
task (well under a second on a running session), and its answer is kept per Spark application
(``spark.app.id``), so later calls cost nothing (a package it lacked is asked for again). It works over
Spark Connect too: the task is a plain Python UDF, run by the server's workers.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
from typing import TYPE_CHECKING, Any

from smart_spark.errors import SmartError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

#: What the workers need: always, and when the job embeds (no ``--embedding-col``).
PACKAGES = ("numpy", "pandas", "pyarrow", "smart_spark")
ENCODER_PACKAGES = ("torch", "transformers")
FIX = ("set PYSPARK_PYTHON={python} before Spark starts "
       "(spark-submit, a cluster: spark.pyspark.python={python})")
_CHECKED: dict[str, dict[str, Any]] = {}  # spark.app.id -> the workers' report
_ERROR = re.compile(r"\b([A-Z]\w*(?:Error|Exception)): ")
_WRAPPERS = {"SparkException", "Py4JJavaError", "PythonException", "SparkConnectGrpcException"}


def check_worker_python(spark: SparkSession, *, encoder: bool = True) -> dict[str, Any]:
    """The workers' Python (``executable``, ``version``, ``missing``: package -> why); SmartError when it
    lacks one of :data:`PACKAGES` (and :data:`ENCODER_PACKAGES` with ``encoder``) or runs no task.

    On a local master whose workers run another interpreter than this driver, a warning says so first.
    """
    needed = PACKAGES + (ENCODER_PACKAGES if encoder else ())
    key = _application(spark)
    report = _CHECKED.get(key) if key else None
    if report is None or any(name in report["missing"] for name in needed):  # asked again: maybe fixed
        try:
            report = _ask_a_worker(spark)
        except Exception as error:  # the worker did not even start or run the task
            _warn_local_interpreter(spark)
            python = _expected_python(spark)
            raise SmartError(f"Spark's Python workers{f' ({python})' if python else ''} cannot run a task: "
                             f"{_worker_error(error)}; {FIX.format(python=sys.executable)}") from None
        if key:
            _CHECKED[key] = report
    lacking = [name for name in needed if name in report["missing"]]
    if lacking:
        _warn_local_interpreter(spark, report["executable"])
        raise SmartError(
            f"Spark's Python workers run {report['executable']} (Python {report['version']}), which lacks "
            f"{', '.join(lacking)}; {FIX.format(python=sys.executable)}")
    return report


def _ask_a_worker(spark: SparkSession) -> dict[str, Any]:
    """One task on one worker: its interpreter, version, and the packages it does not find."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    names = PACKAGES + ENCODER_PACKAGES

    def probe(_: Any) -> str:  # a local function: pickled by value, so the worker needs no package of ours
        import importlib.util
        import json
        import platform
        import sys

        missing = {}
        for name in names:
            try:
                if importlib.util.find_spec(name) is None:
                    missing[name] = "not installed"
            except Exception as error:  # noqa: BLE001 -- a broken install is reported, not raised
                missing[name] = f"{type(error).__name__}: {error}"
        return json.dumps({"executable": sys.executable, "version": platform.python_version(),
                           "missing": missing})

    udf = F.udf(probe, StringType(), useArrow=False)  # plain pickled rows: Arrow needs pyarrow there
    row = spark.range(0, 1, 1, 1).select(udf(F.col("id")).alias("report")).first()
    return json.loads(row["report"])


def _application(spark: SparkSession) -> str | None:
    """The Spark application's id (classic or Connect), which fixes its workers' Python; None if unknown."""
    try:
        return spark.conf.get("spark.app.id", None)
    except Exception:  # noqa: BLE001 -- then the check runs every time
        return None


def _expected_python(spark: SparkSession) -> str | None:
    """The interpreter a local master's workers start (classic sessions only), as a path; else None."""
    try:
        context = spark.sparkContext
    except Exception:  # Spark Connect: the server decides
        return None
    if not str(context.master).startswith("local"):
        return None
    python = context.pythonExec
    return shutil.which(python) or python


def _same_interpreter(one: str, other: str) -> bool:
    """The same Python: one path, or two names in one folder for one binary (``python``, ``python3``)."""
    one, other = os.path.abspath(one), os.path.abspath(other)
    return one == other or (os.path.dirname(one) == os.path.dirname(other)
                            and os.path.realpath(one) == os.path.realpath(other))


def _warn_local_interpreter(spark: SparkSession, actual: str | None = None) -> None:
    expected = actual or _expected_python(spark)
    if expected and _expected_python(spark) and not _same_interpreter(expected, sys.executable):
        log.warning("Spark's local Python workers run %s, not this driver's %s", expected, sys.executable)


def _worker_error(error: Exception) -> str:
    """What went wrong in a failed task: from the first line naming an error other than Spark's wrappers
    (a Java ``...Exception: ...`` after "Lost task", a worker's ``...Error: ...`` traceback line)."""
    for line in str(error).splitlines():
        found = [m for m in _ERROR.finditer(line) if m.group(1) not in _WRAPPERS]
        if found:
            return line[found[-1].start():].strip()
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
