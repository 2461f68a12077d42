"""The job's console logging: what ``--quiet`` / ``--verbose`` mean.

The library logs through one ``logging.getLogger(__name__)`` per module under ``smart_spark`` (the job's
entry points and executor functions too: ``smart_spark.jobs``, ``smart_spark.udfs``; a job file run as a
script logs as ``__main__``); nothing is printed unless an application configures logging, as
:func:`configure_logging` does for the job: stage lines and progress at INFO, ``--quiet`` keeps warnings
and errors only, ``--verbose`` adds DEBUG detail. Other libraries' loggers stay at WARNING.
"""

from __future__ import annotations

import logging
import sys

#: The loggers the job's level applies to (the library and the job entry points).
JOB_LOGGERS = ("smart_spark", "__main__")


def log_level(quiet: bool = False, verbose: bool = False) -> int:
    """``logging`` level for the flags: WARNING when quiet, DEBUG when verbose (verbose wins), else INFO."""
    if verbose:
        return logging.DEBUG
    return logging.WARNING if quiet else logging.INFO


def configure_logging(level: int = logging.INFO, stream=None) -> None:
    """One plain line per record on ``stream`` (stderr): ``HH:MM:SS LEVEL message``; safe to call again."""
    handler = logging.StreamHandler(stream or sys.stderr)
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s" if level <= logging.DEBUG else \
        "%(asctime)s %(levelname)s %(message)s"
    handler.setFormatter(logging.Formatter(fmt, datefmt="%H:%M:%S"))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_smart_spark", False)]:
        root.removeHandler(old)
    handler._smart_spark = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)
    for name in JOB_LOGGERS:
        logging.getLogger(name).setLevel(level)
    logging.captureWarnings(True)  # a library warning is a log record, formatted like the rest
