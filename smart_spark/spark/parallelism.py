"""How many tasks the cluster runs at once: what the stages size their partitions by."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: The stages aim for this many tasks per slot (progress lines count finished tasks; few encoder loads).
TASKS_PER_SLOT = 4


def task_slots(spark: SparkSession) -> int:
    """The cluster's task slots (at least 1): ``defaultParallelism``, its cores in use. Spark Connect has
    no SparkContext: there it is ``spark.sql.shuffle.partitions`` / :data:`TASKS_PER_SLOT`, so that a
    stage's tasks number what the session gives a shuffle (200 by default)."""
    try:
        slots = int(spark.sparkContext.defaultParallelism)
    except Exception:  # Spark Connect has no SparkContext
        slots = int(spark.conf.get("spark.sql.shuffle.partitions", "200") or 200) // TASKS_PER_SLOT
    return max(1, slots)
