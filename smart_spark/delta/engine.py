"""The one interface every Delta engine implements; :mod:`smart_spark.delta.delta_io` picks one per session.

Every method takes a :class:`TableRef` (path or catalog name). ``commit_info`` is recorded on the commit
as ``userMetadata`` (a JSON object); :meth:`DeltaEngine.history` gives it back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from smart_spark.delta.refs import TableRef


@dataclass(frozen=True)
class Fence:
    """What a fenced commit carries (docs/reliability.md, "Fencing").

    ``app_id``: recorded on the commit as a Delta application transaction (``txn`` action); an engine that
    :attr:`DeltaEngine.fences_commits` fails a commit whose snapshot predates another commit carrying the
    same id (Delta's conflict detection), and takes a new snapshot before trying again. ``check``: called
    after the snapshot is taken and right before each commit attempt; it raises to refuse the commit.
    """

    app_id: str
    check: Callable[[], None] | None = None


class DeltaEngine(ABC):
    """Reads and commits Delta tables for one Spark session."""

    name: str  # "spark" or "deltars": what ``tables.backend`` reports
    #: Whether ``replace_rows`` takes ``fence=`` and makes commits with one ``Fence.app_id`` conflict.
    fences_commits: bool = False

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark

    @abstractmethod
    def exists(self, ref: TableRef) -> bool:
        """Whether ``ref`` is a Delta table."""

    @abstractmethod
    def version(self, ref: TableRef) -> int | None:
        """The latest version; None when there is no table."""

    @abstractmethod
    def read(self, ref: TableRef, version: int | None = None) -> DataFrame:
        """The table at ``version`` (default the latest). SmartError when there is none."""

    @abstractmethod
    def replace_rows(
        self,
        df: DataFrame,
        ref: TableRef,
        *,
        column: str,
        value: str,
        partition_by: list[str],
        properties: dict[str, str] | None,
        commit_info: dict[str, Any] | None,
    ) -> int:
        """One commit replacing the rows with ``column == value`` by ``df``'s; returns its version.

        ``df`` holds only that value (a row with another raises SmartError, nothing committed). A missing
        table is created, partitioned by ``partition_by``, with table ``properties``.
        """

    @abstractmethod
    def merge_insert_new(
        self, df: DataFrame, ref: TableRef, keys: list[str], *, commit_info: dict[str, Any] | None
    ) -> int | None:
        """Insert the rows whose ``keys`` (null-safe) are not stored yet; the new version, or None."""

    @abstractmethod
    def restore(self, ref: TableRef, version: int | None, *, commit_info: dict[str, Any] | None) -> None:
        """A new commit putting the table back to ``version`` (None: as before it existed, no rows)."""

    @abstractmethod
    def history(self, ref: TableRef) -> list[dict[str, Any]]:
        """The commits, each a dict with ``version``, ``operation``, ``userMetadata`` (JSON or None)."""
