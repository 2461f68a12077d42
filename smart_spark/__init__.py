"""smart-spark: SMART data mixtures (Renduchintala et al., 2024) as a Spark job over Delta tables.

The core (this package's numpy modules) imports without Spark:

- :func:`greedy_select` -- exact greedy for facility location, graph cut, log-determinant;
- :func:`partitioned_greedy_select` -- the partitioned (GreeDi) greedy for groups larger than P rows;
- :func:`mixture_budgets` -- stage-1 Taylor-softmax weights and integer task budgets.
"""

from smart_spark.core.budgets import mixture_budgets
from smart_spark.core.greedy import greedy_select
from smart_spark.core.partitioned import partitioned_greedy_select
from smart_spark.errors import SmartError

__all__ = ["SmartError", "greedy_select", "mixture_budgets", "partitioned_greedy_select"]
__version__ = "0.1.0"
