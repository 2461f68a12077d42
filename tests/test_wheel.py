"""The package as users install it: the wheel in a fresh virtual environment, and the editable install.

The wheel holds ``smart_spark`` only (``smart_spark.jobs`` and ``smart_spark.udfs`` inside it, no
top-level ``jobs`` or ``udfs``); installed, its console scripts run the whole job with a local Spark from
a folder outside the checkout. The temporary environments reuse the project's installed dependencies
(a ``.pth`` file naming a folder of links to them, this project's own install left out), so nothing is
downloaded and nothing of the checkout is on their path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from deltalake import DeltaTable

pytestmark = [pytest.mark.spark, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
#: The project's installed dependencies (this interpreter's site-packages).
SITE = Path(sysconfig.get_paths()["purelib"])
#: What the build reads: setup.py's packages are smart_spark and, through its links, jobs/ and udfs/.
SOURCES = ("setup.py", "pyproject.toml", "smart_spark", "jobs", "udfs")
#: Settings that would point a subprocess at the checkout, another interpreter or a configured cluster.
CLEARED_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON",
               "PYSPARK_SUBMIT_ARGS", "PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET", "SPARK_REMOTE",
               "SPARK_CONNECT_MODE_ENABLED", "MASTER", "SMART_SPARK_FAILPOINT")
RUN_ID = "wheel"
#: Where an interpreter finds smart_spark.jobs and smart_spark.udfs, and whether a top-level jobs or udfs
#: module exists for it.
WHERE = ("import importlib.util, json, smart_spark.jobs.smart_mixture as j, smart_spark.udfs.embed as e\n"
         "print(json.dumps([j.__file__, e.__file__, [importlib.util.find_spec(m) for m in ('jobs', 'udfs')]"
         " == [None, None]]))")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
    return {**env, "HF_HUB_OFFLINE": "1"}


def _run(args: list, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=timeout)
    tail = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{tail}"
    return proc


def _dependencies(folder: Path) -> Path:
    """A folder of links to the project's installed packages, without this project's own install."""
    folder.mkdir()
    for entry in SITE.iterdir():
        own = entry.name.startswith(("smart_spark", "__editable__")) or entry.suffix == ".pth"
        if not own:
            (folder / entry.name).symlink_to(entry)
    return folder


def _venv(folder: Path, dependencies: Path) -> Path:
    """A virtual environment (no pip of its own: the dependencies' pip runs in it); its interpreter."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    python = folder / "bin" / "python"
    (_site_packages(python) / "project-dependencies.pth").write_text(f"{dependencies}\n")
    return python


def _site_packages(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         env=_env(), capture_output=True, text=True, check=True).stdout.strip()
    return Path(out)


def _where(python: Path, cwd: Path) -> tuple[Path, Path, bool]:
    """(smart_spark.jobs.smart_mixture's file, smart_spark.udfs.embed's file, no top-level jobs/udfs)."""
    job, udf, none = json.loads(_run([python, "-c", WHERE], cwd=cwd).stdout)
    return Path(job), Path(udf), none


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> SimpleNamespace:
    """The checkout's build inputs copied (links kept), the wheel built from them, and the dependencies."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    _run([sys.executable, "-m", "pip", "wheel", source, "--no-deps", "--no-build-isolation", "--no-index",
          "-q", "-w", root / "dist"], cwd=root)
    wheels = sorted((root / "dist").glob("*.whl"))
    assert len(wheels) == 1, wheels
    return SimpleNamespace(root=root, source=source, wheel=wheels[0],
                           dependencies=_dependencies(root / "dependencies"))


@pytest.fixture(scope="module")
def installed(build) -> SimpleNamespace:
    """The wheel installed into a fresh virtual environment, and a work folder outside the checkout."""
    python = _venv(build.root / "venv", build.dependencies)
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", build.wheel], cwd=build.root)
    work = build.root / "work"
    work.mkdir()
    return SimpleNamespace(python=python, bin=python.parent, site=_site_packages(python), work=work)


def test_the_wheel_holds_smart_spark_only(build, installed) -> None:
    names = zipfile.ZipFile(build.wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"smart_spark", "smart_spark-0.1.0.dist-info"}
    for module in ("jobs/smart_mixture.py", "jobs/recover.py", "jobs/export_mixture.py", "udfs/embed.py",
                   "udfs/select.py", "spark/log4j2.properties"):
        assert f"smart_spark/{module}" in names
    entry_points = zipfile.ZipFile(build.wheel).read("smart_spark-0.1.0.dist-info/entry_points.txt").decode()
    assert "smart-mixture = smart_spark.jobs.smart_mixture:cli" in entry_points
    assert "smart-export = smart_spark.jobs.export_mixture:cli" in entry_points
    top = {p.name for p in installed.site.iterdir()}
    assert not top & {"jobs", "udfs", "jobs.py", "udfs.py"}, sorted(top)
    assert (installed.site / "smart_spark" / "udfs" / "embed.py").is_file()  # a file, not a link
    assert not (installed.site / "smart_spark" / "udfs").is_symlink()


def test_installed_package_imports_from_the_environment(installed) -> None:
    job, udf, no_top_level = _where(installed.python, installed.work)
    assert job.is_relative_to(installed.site / "smart_spark") and udf.is_relative_to(installed.site)
    assert no_top_level
    help_text = _run([installed.bin / "smart-mixture", "--help"], cwd=installed.work).stdout
    assert "--num-instances" in help_text and "--config" in help_text and "--output" in help_text
    recover = _run([installed.bin / "smart-mixture", "recover", "--help"], cwd=installed.work)
    assert "--stale-after" in recover.stdout
    assert "--shards" in _run([installed.bin / "smart-export", "--help"], cwd=installed.work).stdout


def test_console_scripts_run_the_job_with_a_local_spark(installed) -> None:
    """No master is configured: the job starts its own local Spark, whose Python workers import the
    installed package. A slice of the sample (every 24th row: 146 rows in 36 tasks) keeps it short."""
    lines = (ROOT / "data" / "sample" / "instructions.jsonl").read_text(encoding="utf-8").splitlines()
    (installed.work / "slice.jsonl").write_text("\n".join(lines[::24]) + "\n", encoding="utf-8")
    job = _run([installed.bin / "smart-mixture", "--config", ROOT / "conf" / "sample.yaml", "--input",
                "slice.jsonl", "--output", "./out", "--num-tasks", "8", "--num-instances", "20",
                "--run-id", RUN_ID, "--device", "cpu"], cwd=installed.work, timeout=480)
    assert f"SMART run {RUN_ID}: kept 8 of 36 tasks, N' = 20, mixture rows 20" in job.stdout
    out = installed.work / "out"
    assert (out / "mixture" / "_delta_log").is_dir()
    mixture = DeltaTable(str(out / "mixture")).to_pandas()
    assert len(mixture) == 20 and set(mixture["run_id"]) == {RUN_ID} and mixture["task"].nunique() == 8
    runs = DeltaTable(str(out / "runs")).to_pandas()
    assert runs["status"].tolist() == ["succeeded"]
    recover = _run([installed.bin / "smart-mixture", "recover", "--output", "./out"], cwd=installed.work)
    assert "0 unfinished run(s) put back" in recover.stdout
    _run([installed.bin / "smart-export", "--output", "./out", "--run-id", RUN_ID, "--dest", "./export",
          "--shards", "1"], cwd=installed.work)
    shard = (installed.work / "export" / "train-00000-of-00001.jsonl").read_text(encoding="utf-8")
    assert len(shard.splitlines()) == 20


def test_editable_install_imports_the_same_names(build) -> None:
    """``make setup`` installs the checkout in editable mode: the links make ``smart_spark.udfs`` and
    ``smart_spark.jobs`` the repository's folders, and there is no top-level ``jobs`` or ``udfs``."""
    python = _venv(build.root / "editable", build.dependencies)
    _run([python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-e",
          build.source], cwd=build.root)
    outside = build.root / "elsewhere"
    outside.mkdir()
    job, udf, no_top_level = _where(python, outside)
    assert job.resolve() == (build.source / "jobs" / "smart_mixture.py").resolve()
    assert udf.resolve() == (build.source / "udfs" / "embed.py").resolve()
    assert no_top_level
