"""Where the output tables live: a :class:`TableRef` is a path (folder or URI) or a catalog name.

``--output`` is spelled so that a folder and a catalog schema cannot be mistaken for each other
(:func:`output_location`): ``catalog.db`` or ``catalog:db`` / ``catalog:catalog.db`` is a catalog schema;
anything with a slash, a URI or an existing folder is a folder. :func:`path_under` joins a path below a
root and checks that it stays there (every file the job writes beside its tables goes through it).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from smart_spark.errors import SmartError

TABLES = ("mixture", "task_weights", "runs", "embeddings", "decontaminated", "clusters", "mixture_quality")
#: ``--output catalog:<schema>``: a catalog schema, whatever folders exist.
CATALOG_PREFIX = "catalog:"
#: One part of a catalog name as Spark parses it unquoted: ASCII letters, digits and underscores (Spark
#: refuses any other character unless the name is back-quoted; Unity Catalog names go through the same
#: parser), not starting with a digit. A name with other characters is taken for a path.
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


def is_table_name(text: str) -> bool:
    """Whether ``text`` is spelled as a catalog table name: ``table``, ``db.table`` or
    ``catalog.db.table``, each part ASCII letters, digits and underscores, not starting with a digit.

    >>> is_table_name("main.smart.embeddings"), is_table_name("données.tâche")
    (True, False)
    """
    return _TABLE_NAME.fullmatch(text) is not None


def table_ref(text: str, flag: str = "--embeddings-table") -> TableRef:
    """``db.table`` / ``catalog.db.table`` (identifier parts, no slash) as a name; anything else a path.

    A bare identifier (``cache``) is a folder when one of that name exists here, else an error naming
    ``flag`` that shows both spellings (``./cache``, ``<db>.cache``): as for ``--output``, a word never
    silently becomes a table in the session's current schema.

    >>> table_ref("main.smart.embeddings")
    TableRef(path=None, name='main.smart.embeddings')
    """
    if not is_table_name(text):
        return TableRef(path=text)
    if "." in text:
        return TableRef(name=text)
    if os.path.isdir(text):
        return TableRef(path=text)
    raise SmartError(f"{flag} {text!r} is neither an existing folder nor a catalog table (db.table): "
                     f"write a folder as ./{text} (or {text}/), a table as <db>.{text}")


def output_location(output: str) -> tuple[str, str]:
    """``("schema", "catalog.db")`` or ``("folder", path)``: what ``--output`` names.

    ``catalog:db`` or ``catalog:catalog.db`` is a catalog schema; ``catalog.db`` (two identifiers) is one
    too unless a folder of that name exists here (ambiguous: an error). A bare identifier (``out``) is a
    folder when one of that name exists here, else an error; anything else (a slash, a URI) is a folder.
    The errors name ``--output`` and show both spellings.
    """
    if output.startswith(CATALOG_PREFIX):
        schema = output[len(CATALOG_PREFIX):]
        if not _SCHEMA_NAME.fullmatch(schema):
            raise SmartError(f"--output {output!r}: after {CATALOG_PREFIX} give a catalog schema, "
                             f"db or catalog.db (identifiers), e.g. {CATALOG_PREFIX}main.smart")
        return "schema", schema
    if not _SCHEMA_NAME.fullmatch(output):
        return "folder", output
    folder = os.path.isdir(output)
    if "." not in output and folder:
        return "folder", output
    if "." in output and not folder:
        return "schema", output
    what = ("both a folder here and a catalog schema name" if folder
            else "neither an existing folder nor a catalog schema (catalog.db)")
    raise SmartError(f"--output {output!r} is {what}: write a folder as ./{output} (or {output}/), "
                     f"a catalog schema as {CATALOG_PREFIX}{output}"
                     + ("" if "." in output else f" or <catalog>.{output}"))


def is_schema(output: str) -> bool:
    """Whether ``--output`` names a catalog schema rather than a folder (:func:`output_location`)."""
    return output_location(output)[0] == "schema"


def output_tables(output: str) -> dict[str, TableRef]:
    """The output tables of ``--output`` (the optional ``decontaminated``, ``clusters`` and
    ``mixture_quality`` included).

    A catalog schema (:func:`output_location`) gives ``<schema>.smart_<table>``; a folder (path or URI)
    holds ``<output>/<table>``. SmartError naming ``--output`` when the spelling is ambiguous.
    """
    kind, where = output_location(output)
    if kind == "schema":
        return {table: TableRef(name=f"{where}.smart_{table}") for table in TABLES}
    return {table: TableRef(path=f"{where.rstrip('/')}/{table}") for table in TABLES}


def path_under(root: str, *parts: str, resolve: bool = True) -> str:
    """``root`` joined with ``parts``, checked to stay inside ``root``; SmartError otherwise.

    ``resolve``: compare the paths with symbolic links resolved (a local root); False compares them as
    written, normalised (a path of a remote file system). Absolute parts and ``..`` that climb out fail.
    """
    path = os.path.join(root, *parts)
    norm = os.path.realpath if resolve else os.path.normpath
    base, full = norm(root), norm(path)
    try:
        inside = os.path.commonpath([base, full]) == base
    except ValueError:  # an absolute part under a relative root, or the reverse
        inside = False
    if not inside:
        raise SmartError(f"refusing to write {path!r}: it is not inside {root!r} (resolved: {full!r})")
    return path
