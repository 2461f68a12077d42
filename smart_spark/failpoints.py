"""Named points where tests make a run fail on purpose (``SMART_SPARK_FAILPOINT=<name>``).

The points: ``after_embed``, ``during_select``, ``after_mixture`` (between the ``mixture`` and
``task_weights`` commits) and ``before_runs``. Unset in production: each check is one dict lookup.
"""

from __future__ import annotations

import os

POINTS = ("after_embed", "during_select", "after_mixture", "before_runs")


class InjectedFailure(RuntimeError):
    """Raised at the failpoint named by ``SMART_SPARK_FAILPOINT``."""


def failpoint(name: str) -> None:
    """Raise :class:`InjectedFailure` when ``SMART_SPARK_FAILPOINT`` names this point."""
    assert name in POINTS, name
    if os.environ.get("SMART_SPARK_FAILPOINT") == name:
        raise InjectedFailure(f"injected failure at {name}")
