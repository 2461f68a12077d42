"""Where the output tables live: a :class:`TableRef` is a path (folder or URI) or a catalog name."""

from __future__ import annotations

import re
from dataclasses import dataclass

from smart_spark.errors import SmartError

TABLES = ("mixture", "task_weights", "runs", "embeddings", "decontaminated", "clusters")
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_SCHEMA_NAME = re.compile(rf"{_IDENT}(\.{_IDENT})?")  # db, catalog.db
_TABLE_NAME = re.compile(rf"{_IDENT}(\.{_IDENT}){{0,2}}")  # table, db.table, catalog.db.table


@dataclass(frozen=True)
class TableRef:
    """Where a Delta table lives: a ``path`` (folder or URI) or a catalog ``name``; exactly one."""

    path: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.name is None):
            raise SmartError(f"a table is a path or a catalog name, not both or neither: {self}")

    def __str__(self) -> str:
        return str(self.path if self.path is not None else self.name)


def table_ref(text: str) -> TableRef:
    """``db.table`` / ``catalog.db.table`` (identifier parts, no slash) as a name; anything else a path."""
    return TableRef(name=text) if _TABLE_NAME.fullmatch(text) else TableRef(path=text)


def is_schema(output: str) -> bool:
    """Whether ``--output`` names a catalog schema (``catalog.db`` or ``db``) rather than a folder."""
    return _SCHEMA_NAME.fullmatch(output) is not None


def output_tables(output: str) -> dict[str, TableRef]:
    """The output tables of ``--output`` (the optional ``decontaminated`` and ``clusters`` included).

    A catalog schema (``catalog.db`` or ``db``: identifier parts, no slash) gives ``<schema>.smart_<table>``;
    anything else is a folder (path or URI) holding ``<output>/<table>``.
    """
    if is_schema(output):
        return {table: TableRef(name=f"{output}.smart_{table}") for table in TABLES}
    return {table: TableRef(path=f"{output.rstrip('/')}/{table}") for table in TABLES}
