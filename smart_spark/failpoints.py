"""Named points where tests make a run fail, or pause, on purpose.

``SMART_SPARK_FAILPOINT=<name>`` raises :class:`InjectedFailure` there. ``SMART_SPARK_FAILPOINT=<name>:pause``
(with ``SMART_SPARK_FAILPOINT_DIR=<folder>``) instead creates ``<folder>/<name>.paused`` and waits, alive,
until ``<folder>/<name>.release`` exists: a test can then kill the process at that exact moment, or let it
go on. The points: ``after_embed``, ``during_select``, ``after_mixture`` (between the ``mixture`` and
``task_weights`` commits), ``after_task_weights`` and ``before_runs`` (the run's heartbeat stopped, right
before the final ``runs`` commit). Unset in production: each check is one dict lookup.

Inside Spark tasks (:data:`WORKER_POINTS`, :func:`worker_failpoint`): ``SMART_SPARK_FAILPOINT=<name>:kill``
(with ``SMART_SPARK_FAILPOINT_DIR``) makes the first task that takes ``<folder>/<name>.kill`` (renames it
to ``<name>.killed``) SIGKILL its own Python worker: a worker crash mid-task, which Spark retries. A test
arms it by creating the file; without the file nothing happens.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

POINTS = ("after_embed", "during_select", "after_mixture", "after_task_weights", "before_runs")
WORKER_POINTS = ("select_task",)  # stage 2's applyInPandas functions


class InjectedFailure(RuntimeError):
    """Raised at the failpoint named by ``SMART_SPARK_FAILPOINT``."""


def failpoint(name: str) -> None:
    """Raise :class:`InjectedFailure` (or pause) when ``SMART_SPARK_FAILPOINT`` names this point."""
    assert name in POINTS, name
    setting = os.environ.get("SMART_SPARK_FAILPOINT")
    if setting == name:
        raise InjectedFailure(f"injected failure at {name}")
    if setting == f"{name}:pause":
        folder = Path(os.environ["SMART_SPARK_FAILPOINT_DIR"])
        (folder / f"{name}.paused").write_text(str(os.getpid()))
        while not (folder / f"{name}.release").exists():
            time.sleep(0.1)


def worker_failpoint(name: str) -> None:
    """In a Spark task: SIGKILL this Python worker once when ``SMART_SPARK_FAILPOINT`` is ``<name>:kill``
    and ``<SMART_SPARK_FAILPOINT_DIR>/<name>.kill`` exists (this task renamed it to ``<name>.killed``)."""
    assert name in WORKER_POINTS, name
    if os.environ.get("SMART_SPARK_FAILPOINT") != f"{name}:kill":
        return
    folder = Path(os.environ["SMART_SPARK_FAILPOINT_DIR"])
    try:
        os.rename(folder / f"{name}.kill", folder / f"{name}.killed")  # atomic: one task wins
    except FileNotFoundError:
        return
    os.kill(os.getpid(), signal.SIGKILL)
