"""Test helpers for real multi-process Spark: a standalone cluster on 127.0.0.1 and a job driver subprocess.

``StandaloneCluster``: one master and N workers started with pyspark's own ``bin/spark-class``
(SPARK_HOME = pyspark's package folder), on free ports, each process's log in a temp folder. Faults are
injected by pid: :meth:`StandaloneCluster.kill_worker` SIGKILLs a Worker JVM and everything it launched
(executor JVM, its ``pyspark.daemon`` and Python workers); :meth:`StandaloneCluster.kill_python_workers`
SIGKILLs the Python workers (children of ``pyspark.daemon``) of one executor. :meth:`stop` kills every
process the cluster started (and their descendants) by pid.

``ApacheConnectServer``: Apache Spark's own Spark Connect server (``spark-submit --class
...SparkConnectServer``) on 127.0.0.1, its Python workers on this interpreter and repository.

``JobDriver``: ``python tests/standalone.py SPEC.json`` in a subprocess. The driver builds its own
SparkSession (master and conf from the spec), then runs the job (:func:`smart_spark.jobs.smart_mixture.run`)
once per phase, printing ``SMARTTEST START <phase>`` / ``SMARTTEST DONE <phase> <summary JSON>`` (or
``SMARTTEST FAILED <phase> <error>``) lines; its Spark log (stderr) goes to ``driver.log``. With
``sample_python`` it also records the peak RSS (``VmHWM``) of its Python worker processes per phase; with
``collect_check`` it finally tries to collect the input's rows to the driver and reports whether
``spark.driver.maxResultSize`` stopped it. The test side reads those lines and the log.

Also :func:`canon` and :func:`snapshot`: a Delta table's latest snapshot (read with delta-rs) as sorted,
exactly comparable row tuples.

Only /proc and signals are used to find and kill processes: Linux only.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MARK = "SMARTTEST"


# ------------------------------------------------------------------------------------------ Delta tables

#: The sort key of each output table's rows.
TABLE_KEYS = {
    "mixture": ["run_id", "task", "stratum", "selection_rank"],
    "task_weights": ["run_id", "task"],
    "runs": ["run_id"],
    "embeddings": ["model", "text_sha256", "created_at"],
    "decontaminated": ["run_id", "id"],
    "clusters": ["run_id", "id"],
}


def _cell(value):
    import numpy as np

    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(_cell(x) for x in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _cell(x)) for k, x in value.items()))
    if value is None or (isinstance(value, float) and value != value):
        return None  # NaN and null alike: pandas reads a null double as NaN
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()  # numpy scalars -> Python (exact for floats)
    return value


def canon(frame, key: list[str], drop: tuple[str, ...] = ()) -> list[tuple]:
    """Rows of a pandas frame as tuples of exactly comparable values (floats bit for bit; arrays and maps
    as tuples; NaN as None), columns in name order without ``drop``, rows sorted by ``key``."""
    frame = frame.sort_values(key, kind="stable").reset_index(drop=True)
    columns = sorted(c for c in frame.columns if c not in drop)
    return [tuple(_cell(v) for v in row) for row in frame[columns].itertuples(index=False, name=None)]


def read_table(path: str):
    """The latest snapshot of the Delta table at ``path`` as pandas (delta-rs), or None if there is none."""
    from deltalake import DeltaTable

    if not DeltaTable.is_deltatable(str(path)):
        return None
    return DeltaTable(str(path)).to_pandas()


def snapshot(output: str, tables=("mixture", "task_weights", "runs", "embeddings")) -> dict:
    """table -> canonical rows of ``<output>/<table>`` (None where no table exists)."""
    out = {}
    for table in tables:
        frame = read_table(f"{output}/{table}")
        out[table] = None if frame is None else canon(frame, TABLE_KEYS[table])
    return out


# --------------------------------------------------------------------------------------------- processes


def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process we can see."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode(errors="replace")
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])  # the name may hold spaces and parentheses
        table[int(entry)] = (ppid, cmd)
    return table


def descendants(pid: int, table: dict[int, tuple[int, str]] | None = None) -> list[int]:
    """Every live descendant of ``pid``, parents before children."""
    table = process_table() if table is None else table
    out, frontier = [], [pid]
    while frontier:
        parent = frontier.pop(0)
        kids = sorted(p for p, (pp, _) in table.items() if pp == parent)
        out.extend(kids)
        frontier.extend(kids)
    return out


def running_in(folder: Path) -> list[int]:
    """Pids of the processes (not this one) whose working directory is ``folder`` or below it: the
    processes a cluster or driver started there, also those orphaned when their parent was killed."""
    root, found = str(Path(folder).resolve()), []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                cwd = os.readlink(f"/proc/{entry}/cwd")
            except OSError:
                continue
            if cwd == root or cwd.startswith(root + os.sep):
                found.append(int(entry))
    return found


def status_kib(pid: int, field: str) -> int | None:
    """A ``/proc/<pid>/status`` memory field (``VmHWM``, ``VmRSS``) in KiB; None when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def kill_pids(pids, sig: int = signal.SIGKILL) -> list[int]:
    """Send ``sig`` to each pid that still exists; returns the pids signalled."""
    done = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
            done.append(pid)
    return done


def python_workers(root: int, table: dict[int, tuple[int, str]] | None = None) -> tuple[list[int], list[int]]:
    """(daemons, workers): the ``pyspark.daemon`` processes under ``root`` and the workers they forked."""
    table = process_table() if table is None else table
    under = descendants(root, table)
    daemons = [p for p in under if "pyspark.daemon" in table[p][1] and "pyspark.daemon" not in
               table.get(table[p][0], (0, ""))[1]]
    workers = [p for p in under if table[p][0] in daemons]
    return daemons, workers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read().decode())


def spark_home() -> str:
    import pyspark

    return os.path.dirname(os.path.abspath(pyspark.__file__))


def tail(path: Path, lines: int = 60) -> str:
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return f"({path}: missing)"
    return "\n".join(text[-lines:])


# ------------------------------------------------------------------------------------------------ cluster


class StandaloneCluster:
    """A Spark standalone master and ``workers`` workers (``cores`` cores, ``memory`` each) on 127.0.0.1."""

    def __init__(self, root: Path, *, workers: int = 2, cores: int = 1, memory: str = "2g") -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.n_workers, self.cores, self.memory = workers, cores, memory
        self.procs: list[subprocess.Popen] = []
        self.worker_procs: list[subprocess.Popen] = []
        self.worker_dirs: list[Path] = []
        self.logs: list[Path] = []
        self.port = self.webui_port = 0

    @property
    def master_url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        conf = self.root / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "spark-defaults.conf").write_text(
            "spark.master.rest.enabled false\nspark.worker.cleanup.enabled false\n")
        pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
        return {**os.environ, "SPARK_HOME": spark_home(), "SPARK_CONF_DIR": str(conf),
                "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOG_DIR": str(self.root / "logs"),
                "SPARK_DAEMON_MEMORY": "512m", "PYSPARK_PYTHON": sys.executable, "PYTHONPATH": pythonpath}

    def _launch(self, name: str, args: list[str]) -> subprocess.Popen:
        log = self.root / f"{name}.log"
        self.logs.append(log)
        with open(log, "wb") as fh:
            proc = subprocess.Popen([os.path.join(spark_home(), "bin", "spark-class"), *args],
                                    stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=self.env(), cwd=self.root)
        self.procs.append(proc)
        return proc

    def master_json(self) -> dict:
        return http_json(f"http://127.0.0.1:{self.webui_port}/json/")

    def start(self, timeout: float = 90.0) -> StandaloneCluster:
        self.port, self.webui_port = free_port(), free_port()
        self._launch("master", ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                                "--port", str(self.port), "--webui-port", str(self.webui_port)])
        self._wait(lambda: self.master_json().get("status") == "ALIVE", timeout, "the master to be ALIVE")
        for i in range(self.n_workers):
            work = self.root / f"worker{i}"
            work.mkdir(parents=True, exist_ok=True)
            self.worker_dirs.append(work)
            self.worker_procs.append(self._launch(f"worker{i}", [
                "org.apache.spark.deploy.worker.Worker", self.master_url, "--host", "127.0.0.1",
                "--cores", str(self.cores), "--memory", self.memory, "--webui-port", str(free_port()),
                "--work-dir", str(work)]))
        self._wait(lambda: self.master_json().get("aliveworkers") == self.n_workers, timeout,
                   f"{self.n_workers} alive workers")
        return self

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [p.args[1] for p in self.procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"cluster process exited waiting for {what}: {dead}\n{self.log_text()}")
            with contextlib.suppress(OSError, ValueError):
                if ready():
                    return
            time.sleep(0.3)
        raise TimeoutError(f"timed out waiting for {what}\n{self.log_text()}")

    def executors(self) -> dict[str, tuple[int, int]]:
        """executor id -> (executor JVM pid, index of the worker that launched it), live ones only."""
        table = process_table()
        found = {}
        for i, worker in enumerate(self.worker_procs):
            for pid in descendants(worker.pid, table):
                cmd = table[pid][1].split()
                if "org.apache.spark.executor.CoarseGrainedExecutorBackend" in cmd and "--executor-id" in cmd:
                    found[cmd[cmd.index("--executor-id") + 1]] = (pid, i)
        return found

    def kill_python_workers(self, executor_id: str) -> list[int]:
        """SIGKILL the Python workers (not the daemon) of one executor; returns their pids."""
        pid, _ = self.executors()[executor_id]
        _, workers = python_workers(pid)
        return kill_pids(workers)

    def kill_worker(self, index: int) -> list[int]:
        """SIGKILL worker ``index``'s Worker JVM and every process under it (executor JVM, Python)."""
        pids = [self.worker_procs[index].pid, *descendants(self.worker_procs[index].pid)]
        killed = kill_pids(pids)
        self.worker_procs[index].wait(timeout=30)
        return killed

    def log_text(self, lines: int = 40) -> str:
        parts = [f"----- {log.name}\n{tail(log, lines)}" for log in self.logs]
        for work in self.worker_dirs:  # executor logs: <work-dir>/<app-id>/<executor-id>/{stdout,stderr}
            for log in sorted(work.glob("*/*/stderr")):
                parts.append(f"----- {log.relative_to(self.root)}\n{tail(log, lines)}")
        return "\n".join(parts)

    def stop(self) -> None:
        """Kill every process the cluster started and their descendants, by pid; wait for the JVMs."""
        table = process_table()
        pids = []
        for proc in self.procs:
            if proc.poll() is None:
                pids.extend([proc.pid, *descendants(proc.pid, table)])
        kill_pids(pids, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        kill_pids([p for p in pids if os.path.exists(f"/proc/{p}")])
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        kill_pids(running_in(self.root))  # orphans, e.g. an executor whose worker was killed


# ---------------------------------------------------------------------------------------- driver process


class JobDriver:
    """``python tests/standalone.py SPEC`` in a subprocess; its stdout lines collected by a thread."""

    def __init__(self, root: Path, spec: dict, *, env: dict[str, str] | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.ui_port = free_port()
        spec = {**spec, "conf": {"spark.ui.port": str(self.ui_port), **spec.get("conf", {})}}
        self.spec_path = self.root / "spec.json"
        self.spec_path.write_text(json.dumps(spec))
        self.stdout_path, self.stderr_path = self.root / "driver.out", self.root / "driver.log"
        self.env = env
        self.lines: list[str] = []
        self.proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> JobDriver:
        pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYTHONPATH": pythonpath,
               "SPARK_LOCAL_IP": "127.0.0.1", **(self.env or {})}
        env.pop("SPARK_HOME", None)  # the pip pyspark finds its own
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115 -- closed in wait()
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), str(self.spec_path)],
                                     stdout=subprocess.PIPE, stderr=self._stderr, stdin=subprocess.DEVNULL,
                                     env=env, cwd=self.root)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        with open(self.stdout_path, "w") as out:
            for raw in self.proc.stdout:  # type: ignore[union-attr]
                line = raw.decode(errors="replace").rstrip("\n")
                out.write(line + "\n")
                out.flush()
                self.lines.append(line)

    # markers
    def events(self) -> list[tuple[str, str, str]]:
        """(kind, phase, rest) of every ``SMARTTEST`` line so far."""
        out = []
        for line in list(self.lines):
            if line.startswith(MARK + " "):
                parts = line.split(" ", 3)
                out.append((parts[1], parts[2] if len(parts) > 2 else "", parts[3] if len(parts) > 3 else ""))
        return out

    def event(self, kind: str, phase: str) -> str | None:
        for k, p, rest in self.events():
            if k == kind and p == phase:
                return rest
        return None

    def finished(self, phase: str) -> bool:
        return self.event("DONE", phase) is not None or self.event("FAILED", phase) is not None

    def wait_for(self, kind: str, phase: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rest = self.event(kind, phase)
            if rest is not None:
                return rest
            if self.proc.poll() is not None and self._reader is not None:  # type: ignore[union-attr]
                self._reader.join(5)
                rest = self.event(kind, phase)
                if rest is not None:
                    return rest
                raise RuntimeError(f"driver exited ({self.proc.returncode}) before {kind} {phase}")  # type: ignore[union-attr]
            time.sleep(0.1)
        raise TimeoutError(f"no {kind} {phase} from the driver in {timeout}s")

    def summary(self, phase: str) -> dict:
        return json.loads(self.event("DONE", phase) or "null")

    def log(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)  # type: ignore[union-attr]
        finally:
            if self._reader is not None:
                self._reader.join(10)
            self._stderr.close()

    def stop(self) -> None:
        """Kill the driver and everything under it (its JVM, local-mode Python workers), by pid."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            kill_pids([self.proc.pid, *descendants(self.proc.pid)])
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=20)
        kill_pids(running_in(self.root))  # its JVM and local-mode Python workers, if orphaned
        with contextlib.suppress(Exception):
            self._stderr.close()

    def log_text(self, lines: int = 80) -> str:
        return (f"----- driver stdout\n{tail(self.stdout_path, lines)}\n"
                f"----- driver stderr\n{tail(self.stderr_path, lines)}")


class ApacheConnectServer:
    """Apache Spark's own Spark Connect server (pyspark's ``SparkConnectServer``, started with its
    ``spark-submit``) on 127.0.0.1 and a free port, ``master`` (``local[2,4]``: two cores, a failed task
    tried up to 4 times). Its Python workers run this interpreter with the repository on PYTHONPATH; ``env``
    adds to their environment. No Delta jars: the job writes through delta-rs. ``private``: a folder the
    server sees as an empty folder of its own (a tmpfs mounted there in its own mount namespace, with
    ``unshare``: root only), as a server on another machine would. Its log (WARN and up, one line each)
    is ``server.log``; :meth:`stop` kills it and everything it started, by pid."""

    LOG4J = "\n".join([
        "rootLogger.level = warn", "rootLogger.appenderRef.stderr.ref = console",
        "appender.console.type = Console", "appender.console.name = console",
        "appender.console.target = SYSTEM_ERR", "appender.console.layout.type = PatternLayout",
        "appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n",
        "appender.console.layout.alwaysWriteExceptions = false",
        "logger.nativecode.name = org.apache.hadoop.util.NativeCodeLoader",
        "logger.nativecode.level = off", ""])

    def __init__(self, root: Path, *, master: str = "local[2,4]", env: dict[str, str] | None = None,
                 private: Path | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.master, self.extra_env, self.private = master, dict(env or {}), private
        self.log = self.root / "server.log"
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"sc://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> ApacheConnectServer:
        self.port = free_port()
        (self.root / "log4j2.properties").write_text(self.LOG4J)
        conf = {
            "spark.connect.grpc.binding.address": "127.0.0.1",
            "spark.connect.grpc.binding.port": str(self.port),
            "spark.pyspark.python": sys.executable, "spark.sql.session.timeZone": "UTC",
            "spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "2",
            "spark.ui.enabled": "false",
            "spark.sql.warehouse.dir": str(self.root / "warehouse"),
        }
        args = [os.path.join(spark_home(), "bin", "spark-submit"), "--master", self.master,
                "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
                "--driver-java-options", f"-Dlog4j2.configurationFile=file:{self.root / 'log4j2.properties'} "
                "-Ddev.ludovic.netlib.blas.allowNative=false"]
        for key, value in conf.items():
            args += ["--conf", f"{key}={value}"]
        if self.private is not None:  # the shell execs spark-submit, which execs java: one pid throughout
            args = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                    'mount -t tmpfs smartspark "$0" && exec "$@"', str(self.private), *args]
        pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "SPARK_HOME": spark_home(), "PYSPARK_PYTHON": sys.executable,
               "PYTHONPATH": pythonpath, **self.extra_env}
        for name in ("PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET", "SPARK_REMOTE",
                     "SPARK_CONNECT_MODE_ENABLED"):
            env.pop(name, None)
        with open(self.log, "wb") as fh:
            self.proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, cwd=self.root)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the Spark Connect server exited ({self.proc.returncode})\n"
                                   f"{self.log_text()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return self
            time.sleep(0.3)
        raise TimeoutError(f"the Spark Connect server did not listen in {timeout:.0f} s\n{self.log_text()}")

    def stop(self) -> None:
        """SIGTERM the server, then SIGKILL whatever of it (and its Python workers) is left, by pid."""
        if self.proc is None:
            return
        under = descendants(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                kill_pids([self.proc.pid])
                self.proc.wait(timeout=10)
        kill_pids([*under, *running_in(self.root)])

    def log_text(self, lines: int = 60) -> str:
        return f"----- Spark Connect server\n{tail(self.log, lines)}"


@contextlib.contextmanager
def logs_on_failure(*sources):
    """Print the logs of ``sources`` (anything with ``log_text()``) when the block raises."""
    try:
        yield
    except BaseException:
        for source in sources:
            with contextlib.suppress(Exception):
                print(source.log_text())
        raise


# ------------------------------------------------------------------------------------ driver (subprocess)


class _PythonSampler(threading.Thread):
    """Peak ``VmHWM`` (KiB) of this process's Python workers (children of ``pyspark.daemon``)."""

    def __init__(self, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.interval, self.peak, self.pids = interval, 0, set()
        self.stopped = threading.Event()
        self.lock = threading.Lock()

    def reset(self) -> None:
        with self.lock:
            self.peak, self.pids = 0, set()

    def run(self) -> None:
        me = os.getpid()
        while not self.stopped.wait(self.interval):
            _, workers = python_workers(me)
            for pid in workers:
                hwm = status_kib(pid, "VmHWM")
                if hwm is not None:
                    with self.lock:
                        self.peak = max(self.peak, hwm)
                        self.pids.add(pid)


def drive(spec_path: str) -> int:
    """Run the phases of a spec (see the module docstring) in this process; exit status 0 if all passed."""
    sys.path.insert(0, str(REPO))
    from smart_spark.cli.settings import make_config
    from smart_spark.jobs.smart_mixture import run
    from smart_spark.spark.session import get_spark

    spec = json.loads(Path(spec_path).read_text())
    spark = get_spark("smart-spark-test-driver", master=spec["master"], conf=spec.get("conf", {}))
    spark.sparkContext.setLogLevel(spec.get("log_level", "WARN"))
    sampler = None
    if spec.get("sample_python"):
        sampler = _PythonSampler()
        sampler.start()
    status = 0
    for phase in spec["phases"]:
        name = phase["name"]
        print(f"{MARK} START {name}", flush=True)
        if sampler is not None:
            time.sleep(0.1)
            sampler.reset()
        try:
            summary = run(spark, make_config(phase["config"]))
        except Exception as exc:  # reported, not raised: the test decides what a failure means
            first = (str(exc).strip().splitlines() or [""])[0]
            print(f"{MARK} FAILED {name} {type(exc).__name__}: {first}", flush=True)
            status = 1
            continue
        if sampler is not None:
            time.sleep(0.1)
            with sampler.lock:
                summary["python_peak_kib"], summary["python_workers"] = sampler.peak, len(sampler.pids)
        print(f"{MARK} DONE {name} {json.dumps(summary, default=str)}", flush=True)
    check = spec.get("collect_check")
    if check:
        frame = spark.read.parquet(check["input"]).select(*check["columns"])
        try:
            rows = frame.collect()
            print(f"{MARK} COLLECT ok {len(rows)}", flush=True)
        except Exception as exc:
            text = " ".join(str(exc).split())
            print(f"{MARK} COLLECT failed {text[:500]}", flush=True)
    if sampler is not None:
        sampler.stopped.set()
    spark.stop()
    return status


if __name__ == "__main__":
    sys.exit(drive(sys.argv[1]))
