"""Real third-party prose without a download: paragraphs of the docstrings of Python's standard library.

For tests and benchmarks whose behaviour depends on what text looks like (tokenisation, lengths, numeric
precision of an encoder): English technical prose written by CPython's authors, with code, punctuation
and numbers, from a few words to a few hundred. Deterministic for a given Python version.
"""

from __future__ import annotations

import importlib
import inspect

#: Modules whose docstrings are read, in this order.
MODULES = (
    "argparse", "asyncio", "collections", "concurrent.futures", "csv", "datetime", "decimal", "email.message",
    "fractions", "functools", "http.client", "inspect", "io", "itertools", "json", "logging", "os", "pathlib",
    "pickle", "random", "re", "shutil", "socket", "sqlite3", "statistics", "string", "subprocess",
    "tarfile", "textwrap", "threading", "typing", "unittest", "urllib.parse", "zipfile",
)


def python_doc_paragraphs(n: int, min_chars: int = 40) -> list[str]:
    """Up to ``n`` distinct paragraphs (blank-line separated, whitespace collapsed, at least
    ``min_chars`` characters) of the docstrings of :data:`MODULES` and their public members."""
    seen: set[str] = set()
    out: list[str] = []
    for name in MODULES:
        module = importlib.import_module(name)
        objects = [module] + [getattr(module, a) for a in sorted(dir(module)) if not a.startswith("_")]
        for obj in objects:
            doc = inspect.getdoc(obj) if callable(obj) or inspect.ismodule(obj) else None
            for para in (doc or "").split("\n\n"):
                text = " ".join(para.split())
                if len(text) >= min_chars and text not in seen:
                    seen.add(text)
                    out.append(text)
                    if len(out) >= n:
                        return out
    return out
