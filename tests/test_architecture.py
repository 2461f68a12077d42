"""The layout is the architecture: no import cycles, no private names imported across modules.

The layer order itself is import-linter's contract in ``pyproject.toml`` (``lint-imports``, run here too).
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Import names of the code: the repository's jobs/ and udfs/ are smart_spark.jobs and smart_spark.udfs.
PACKAGES = ("smart_spark",)
#: Where the code lies (smart_spark/jobs and smart_spark/udfs are links to the last two).
FOLDERS = ("smart_spark", "udfs", "jobs")


def _sources(folders: tuple[str, ...] = FOLDERS) -> list[Path]:
    return sorted({p.resolve() for folder in folders for p in (ROOT / folder).rglob("*.py")})


def test_layer_contract_holds() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is a test dependency (setup.py extras 'test')"
    proc = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_import_cycles() -> None:
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    state: dict[str, int] = {}  # 1: on the DFS stack, 2: done
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for nxt in sorted(graph.find_modules_directly_imported_by(module)):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[module] = 2

    for module in sorted(graph.modules):
        if module not in state:
            visit(module)


def test_no_private_names_across_modules() -> None:
    offences = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
                offences += [f"{path.relative_to(ROOT)}: {node.module}.{a.name}"
                             for a in node.names if a.name.startswith("_")]
    assert not offences, "private names imported across modules:\n" + "\n".join(offences)


def test_core_names_no_command_line_flags() -> None:
    """The core runs without the CLI: its messages and docs name settings (``num_instances``), not flags."""
    flag = re.compile(r"(?<![\w-])--[a-z][a-z-]*")
    found = []
    for path in sorted((ROOT / "smart_spark" / "core").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and flag.search(node.value):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {flag.search(node.value).group()}")
    assert not found, found


def test_jobs_and_udfs_are_folders_linked_into_the_package() -> None:
    """The repository keeps jobs/ and udfs/ (spark-submit jobs/smart_mixture.py); the package reaches them
    through relative links, so a checkout, an editable install and the wheel import the same names."""
    for name in ("jobs", "udfs"):
        link = ROOT / "smart_spark" / name
        assert link.is_symlink() and str(link.readlink()) == f"../{name}", link
        assert link.resolve() == (ROOT / name).resolve() and (ROOT / name / "__init__.py").is_file()


def test_nothing_imports_top_level_jobs_or_udfs() -> None:
    """Installed, there is no top-level ``jobs`` or ``udfs``: code, tests and benchmarks import
    ``smart_spark.jobs`` / ``smart_spark.udfs`` (lint-imports checks the package; this the rest too)."""
    offences = []
    for path in _sources((*FOLDERS, "tests", "bench", "scripts")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level
                     else [])
            offences += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in names
                         if n.split(".")[0] in ("jobs", "udfs")]
    assert not offences, "import smart_spark.jobs / smart_spark.udfs instead:\n" + "\n".join(offences)
