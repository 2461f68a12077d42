"""smart-spark: SMART data mixtures (Renduchintala et al., 2024) as a Spark job over Delta tables.

The core (this package's numpy modules) imports without Spark:

- :func:`greedy_select` -- exact greedy for facility location, graph cut, log-determinant;
- :func:`partitioned_greedy_select` -- the partitioned (GreeDi) greedy for groups larger than P rows;
- :func:`mixture_budgets` -- stage-1 Taylor-softmax weights and integer task budgets.

With Spark: :func:`build_mixture` (the DataFrame API, :mod:`smart_spark.api.mixture`), imported on first
use so that ``import smart_spark`` needs no Spark.
"""

from smart_spark.core.budgets import mixture_budgets
from smart_spark.core.greedy import greedy_select
from smart_spark.core.partitioned import partitioned_greedy_select
from smart_spark.errors import SmartError

__all__ = ["SmartError", "build_mixture", "greedy_select", "mixture_budgets", "partitioned_greedy_select"]
__version__ = "0.1.0"

_LAZY = {"build_mixture": "smart_spark.api.mixture", "MixtureResult": "smart_spark.api.mixture"}


def __getattr__(name: str):
    """The Spark-dependent API, imported on first access."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'smart_spark' has no attribute {name!r}")
