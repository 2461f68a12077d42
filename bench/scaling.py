"""Scaling of the whole job (``jobs/smart_mixture.py``) with precomputed embeddings, on local Spark.

Run: ``python bench/scaling.py`` (250k, 500k and 1M rows) or e.g.
``python bench/scaling.py --sizes 50000,100000 --profile``; a collection whose builders capped each task
(log-normal sizes from exactly 8 to exactly 70,000 rows, 1,001 tasks, 256-d, N' = 100,000 at every size):
``python bench/scaling.py --sizes 1000000,2637598 --tasks 1001 --dim 256 --task-rows 8:70000
--num-instances 100000 --driver-memory 8g``.

FLAN 2022's shape (issue 25: 1,840 tasks, a long tail of Super-Natural-Instructions-like tasks and a head
of tasks far above P; ``smart_spark.datasets.synthetic.flan_task_sizes``), 256-d so that the 17.59M-row
collection (17.6 GB of Parquet) and the job's shuffle and spill files fit this machine's disk:
``python bench/scaling.py --shape flan --tasks 1840 --dim 256 --sizes 4000000,8000000,17590000
--num-instances 100000 --driver-memory 12g --profile``.

Per size n: synthetic data (``datasets.synthetic.write_synthetic``: 1,000 tasks of Zipf-like sizes,
FLAN template types, 384-d embeddings; written once to ``--data-dir`` and reused), then the job in a
subprocess (a fresh JVM each) with the job's own flags::

    --input <n>.parquet --output <tmp> --embedding-col embedding --id-col id --stratum-col template_type
    --strata flan --num-instances <n/10> --no-report

The subprocess is this file with ``--child``: it parses those flags with the job's ``load_config``, starts
``local[cores]`` with ``spark.driver.memory`` (``--driver-memory``), calls
``smart_spark.jobs.smart_mixture.run`` and prints the returned summary (``stage_seconds``) and its own
``ru_maxrss`` (the Python driver's peak). Meanwhile this process samples, every 0.25 s, ``VmHWM`` (peak
resident set) of every process under the child: the JVM, and the ``pyspark.daemon`` Python workers (largest
single worker, and the largest sum of the workers' VmRSS at one instant), and the CPU seconds (user + system)
of that whole process tree: on a shared machine wall times move with other load, CPU seconds much less, so the
growth of both is printed.

Printed per size: seconds per stage, the run's total (``run`` only, without the JVM start) and the
child's wall time; peak memory; then the growth per doubling of n: t(2n) / t(n) (target <= 2.2x) in total
and per stage. The machine may be shared: the sizes run one after another in the same command, and the
growth ratios compare those runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MARKER = "SCALING_RESULT "
#: The select stage's log line with its plan's work (``smart_spark.spark.selection``).
KERNEL_LINE = re.compile(r"by greedy: ([0-9.e+]+) kernel entries")


def child(argv: list[str], cores: int, driver_memory: str, extra_conf: list[str]) -> None:
    """Run the job once in this process (fresh JVM) and print its summary on a MARKER line."""
    from smart_spark.cli.logs import configure_logging, log_level
    from smart_spark.cli.settings import load_config
    from smart_spark.jobs.smart_mixture import run
    from smart_spark.spark.session import get_spark

    config = load_config(argv)
    configure_logging(log_level(config.quiet, config.verbose))  # the stage lines (and the plan's work)
    conf = {
        "spark.driver.memory": driver_memory,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }
    for item in extra_conf:
        key, _, value = item.partition("=")
        conf[key] = value
    t0 = time.perf_counter()
    spark = get_spark("bench-scaling", master=f"local[{cores}]", conf=conf)
    spark.sparkContext.setLogLevel("ERROR")
    started = time.perf_counter() - t0
    t0 = time.perf_counter()
    summary = run(spark, config)
    total = time.perf_counter() - t0
    spark.stop()
    out = {
        "stage_seconds": summary["stage_seconds"], "run_seconds": round(total, 3),
        "session_seconds": round(started, 3), "mixture_rows": summary["mixture_rows"],
        "input_rows": summary["input_rows"], "num_tasks_selected": summary["num_tasks_selected"],
        "driver_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(MARKER + json.dumps(out), flush=True)


# ------------------------------------------------------------------------------------------------------
# memory sampling of the child's process tree


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def _descendants(pid: int) -> list[int]:
    kids, out, todo = _children_map(), [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def _status_kb(pid: int) -> tuple[int, int, str, float] | None:
    """(VmHWM kB, VmRSS kB, kind, CPU seconds) of ``pid``; kind: jvm, worker (pyspark.daemon) or other.
    CPU seconds: user + system, reaped children included."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
        cpu = sum(int(x) for x in stat[stat.rfind(")") + 2:].split()[11:15]) / os.sysconf("SC_CLK_TCK")
        hwm = rss = 0
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
                elif line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
    except OSError:
        return None
    kind = "jvm" if "java" in cmd.split(" ")[0] else "worker" if "pyspark.daemon" in cmd else "other"
    return hwm, rss, kind, cpu


def _pss_kb(pid: int) -> int:
    """Proportional set size of ``pid`` (kB): its private pages plus its share of pages it shares (the
    forked Python workers share the daemon's), so the PSS of a process tree sums to the memory it holds."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _local_dir_bytes(since: float) -> int:
    """Bytes under Spark's local directories (``blockmgr-*`` in the temp folder, made after ``since``):
    shuffle files and the cached blocks that did not fit in memory."""
    total = 0
    for root in Path(tempfile.gettempdir()).glob("blockmgr-*"):
        try:
            if root.stat().st_ctime < since:
                continue
            for path, _, files in os.walk(root):
                for name in files:
                    try:
                        total += os.stat(os.path.join(path, name)).st_size
                    except OSError:
                        pass
        except OSError:
            pass
    return total


class Sampler(threading.Thread):
    """Peak memory of the process tree under ``pid``, sampled every ``interval`` seconds (PSS every
    ``pss_every`` samples: reading it walks the page tables of a large JVM heap)."""

    def __init__(self, pid: int, interval: float = 0.25, pss_every: int = 4) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.pss_every = pid, interval, pss_every
        self.peak: dict[int, tuple[int, str]] = {}  # pid -> (max VmHWM kB, kind)
        self.cpu: dict[int, float] = {}  # pid -> CPU seconds at the last sample
        self.workers_rss_sum_kb = 0
        self.all_rss_sum_kb = 0  # the largest RSS of the whole tree (child included) at one instant
        self.all_pss_sum_kb = 0  # the largest PSS of the whole tree at one instant
        self.all_rss_kinds_kb: dict[str, int] = {}  # that RSS peak by process kind
        self.local_dir_bytes = 0  # the most bytes in Spark's local directories (sampled every 10 s)
        self.started = time.time()
        self.stop_flag = threading.Event()

    def run(self) -> None:
        tick = 0
        while not self.stop_flag.is_set():
            total = everything = pss = 0
            by_kind: dict[str, int] = {}
            with_pss = tick % self.pss_every == 0
            if tick % 40 == 0:
                self.local_dir_bytes = max(self.local_dir_bytes, _local_dir_bytes(self.started))
            tick += 1
            for p in [self.pid, *_descendants(self.pid)]:
                got = _status_kb(p)
                if got is None:
                    continue
                hwm, rss, kind, cpu = got
                everything += rss
                by_kind[kind] = by_kind.get(kind, 0) + rss
                if with_pss:
                    pss += _pss_kb(p)
                if p == self.pid:
                    continue
                self.cpu[p] = max(cpu, self.cpu.get(p, 0.0))
                if hwm > self.peak.get(p, (0, kind))[0]:
                    self.peak[p] = (hwm, kind)
                if kind == "worker":
                    total += rss
            self.workers_rss_sum_kb = max(self.workers_rss_sum_kb, total)
            if everything > self.all_rss_sum_kb:
                self.all_rss_sum_kb, self.all_rss_kinds_kb = everything, by_kind
            self.all_pss_sum_kb = max(self.all_pss_sum_kb, pss)
            self.stop_flag.wait(self.interval)

    def summary(self) -> dict[str, float]:
        def mx(kind: str) -> float:
            return max((h for h, k in self.peak.values() if k == kind), default=0) / 1024

        return {"jvm_hwm_mb": mx("jvm"), "worker_hwm_mb": mx("worker"),
                "tree_cpu_seconds": round(sum(self.cpu.values()), 1),
                "workers_rss_sum_mb": self.workers_rss_sum_kb / 1024,
                "all_rss_sum_mb": self.all_rss_sum_kb / 1024, "all_pss_sum_mb": self.all_pss_sum_kb / 1024,
                "all_rss_kinds_mb": {k: round(v / 1024) for k, v in self.all_rss_kinds_kb.items()},
                "local_dir_peak_mb": round(self.local_dir_bytes / 2**20),
                "workers_seen": sum(1 for _, k in self.peak.values() if k == "worker")}


# ------------------------------------------------------------------------------------------------------


def ensure_data(data_dir: Path, n: int, tasks: int, dim: int, seed: int,
                bounds: tuple[int, int] | None = None, flan: bool = False) -> Path:
    """The synthetic table of n rows (written once): Zipf-like task sizes, or with ``bounds`` = (lo, hi)
    log-normal sizes from exactly lo to exactly hi rows (``datasets.synthetic.bounded_task_sizes``), or
    with ``flan`` FLAN 2022's shape (``datasets.synthetic.flan_task_sizes``)."""
    from smart_spark.datasets.synthetic import bounded_task_sizes, flan_task_sizes, write_synthetic

    shape = "_flan" if flan else "" if bounds is None else f"_b{bounds[0]}-{bounds[1]}"
    path = data_dir / f"synthetic_n{n}_t{tasks}_d{dim}_s{seed}{shape}.parquet"
    if not path.exists():
        t0 = time.perf_counter()
        tmp = path.with_suffix(".tmp")
        sizes = (flan_task_sizes(n, tasks, seed=seed) if flan else
                 None if bounds is None else bounded_task_sizes(n, tasks, *bounds, seed=seed))
        write_synthetic(str(tmp), n, tasks, dim=dim, seed=seed, sizes=sizes)
        tmp.rename(path)
        print(f"  wrote {path} in {time.perf_counter() - t0:.0f}s ({path.stat().st_size / 2**20:.0f} MiB)")
    return path


def print_profile(log_dir: str, top: int = 15) -> dict[str, float]:
    """The Spark jobs of the run from its event log: the longest first, with call site, stages and tasks.
    Returns the bytes spilled to disk and from memory, summed over all tasks (MiB)."""
    files = sorted(os.path.join(root, f) for root, _, names in os.walk(log_dir) for f in names
                   if not f.startswith(".") and not f.startswith("appstatus"))
    if not files:
        print("  (no event log)")
        return {}
    jobs: dict[int, dict] = {}
    stage_tasks: dict[int, int] = {}
    stages: list[tuple[int, int, int, str]] = []
    task_metrics: dict[int, list[int]] = {}  # stage -> [run ms, GC ms, disk spill B, memory spill B]
    lines = []
    for name in files:
        with open(name) as fh:
            lines.extend(fh)
    for line in lines:
        if line.strip():
            ev = json.loads(line)
            kind = ev.get("Event")
            if kind == "SparkListenerJobStart":
                props = ev.get("Properties") or {}
                jobs[ev["Job ID"]] = {"start": ev["Submission Time"], "stages": ev.get("Stage IDs", []),
                                      "site": props.get("spark.job.description")
                                      or props.get("callSite.short", "?")}
            elif kind == "SparkListenerJobEnd" and ev["Job ID"] in jobs:
                jobs[ev["Job ID"]]["end"] = ev["Completion Time"]
            elif kind == "SparkListenerTaskEnd":
                m = ev.get("Task Metrics") or {}
                acc = task_metrics.setdefault(ev["Stage ID"], [0, 0, 0, 0])
                acc[0] += m.get("Executor Run Time", 0)
                acc[1] += m.get("JVM GC Time", 0)
                acc[2] += m.get("Disk Bytes Spilled", 0)
                acc[3] += m.get("Memory Bytes Spilled", 0)
            elif kind == "SparkListenerStageCompleted":
                info = ev["Stage Info"]
                if "Completion Time" in info and "Submission Time" in info:
                    stage_tasks[info["Stage ID"]] = info["Number of Tasks"]
                    stages.append((info["Completion Time"] - info["Submission Time"], info["Stage ID"],
                                   info["Number of Tasks"], info.get("Stage Name", "?")))
    rows = [(j["end"] - j["start"], jid, j) for jid, j in jobs.items() if "end" in j]
    total = sum(r[0] for r in rows) / 1000
    print(f"  profile: {len(rows)} Spark jobs, {total:.1f}s in jobs; the longest:")
    for ms, jid, j in sorted(rows, key=lambda r: -r[0])[:top]:
        ran = [stage_tasks[s] for s in j["stages"] if s in stage_tasks]
        print(f"    job {jid:3d} {ms / 1000:7.1f}s  tasks per stage run {ran}  {j['site']}")
    print("  the longest stages (task run time summed over tasks, JVM GC time, bytes spilled to disk):")
    for ms, sid, ntasks, name in sorted(stages, key=lambda r: -r[0])[:top]:
        run_ms, gc_ms, disk, _ = task_metrics.get(sid, [0, 0, 0, 0])
        print(f"    stage {sid:3d} {ms / 1000:7.1f}s  {ntasks:4d} tasks  run {run_ms / 1000:6.1f}s  GC "
              f"{gc_ms / 1000:5.1f}s  spill {disk / 2**20:6.0f} MiB  {name}")
    disk = sum(m[2] for m in task_metrics.values()) / 2**20
    memory = sum(m[3] for m in task_metrics.values()) / 2**20
    print(f"  spilled: {disk:.0f} MiB to disk ({memory:.0f} MiB of memory)")
    return {"spill_disk_mb": round(disk), "spill_memory_mb": round(memory)}


def run_size(args: argparse.Namespace, n: int, keep_output: bool = False) -> dict:
    """Run the job once on the n-row collection; the result's ``output`` is the job's output folder when
    ``keep_output`` (the caller removes it), else it is removed."""
    data = ensure_data(Path(args.data_dir), n, args.tasks, args.dim, args.seed, args.task_rows,
                       flan=getattr(args, "shape", "zipf") == "flan")
    num_instances = args.num_instances or max(1, int(n * args.fraction))
    out_dir = tempfile.mkdtemp(prefix=f"scaling-{n}-", dir=args.work_dir)
    flags = ["--input", str(data), "--output", out_dir, "--embedding-col", "embedding", "--id-col", "id",
             "--stratum-col", "template_type", "--strata", "flan",
             "--num-instances", str(num_instances), "--no-report", *args.job_flags]
    conf = list(args.conf)
    log_dir = None
    if args.profile:
        log_dir = tempfile.mkdtemp(prefix="scaling-eventlog-")
        conf += ["spark.eventLog.enabled=true", "spark.eventLog.compress=false",
                 f"spark.eventLog.dir=file://{log_dir}"]
    cmd = [sys.executable, __file__, "--child", "--cores", str(args.cores), "--driver-memory",
           args.driver_memory, *sum((["--conf", c] for c in conf), []), "--", *flags]
    print(f"n={n}: {' '.join(cmd[2:])}", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    sampler = Sampler(proc.pid)
    sampler.start()
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if args.verbose and not line.startswith(MARKER):
            print("   | " + line.rstrip())
    proc.wait()
    wall = time.perf_counter() - t0
    sampler.stop_flag.set()
    sampler.join()
    if not keep_output:
        shutil.rmtree(out_dir, ignore_errors=True)
    found = [json.loads(x[len(MARKER):]) for x in lines if x.startswith(MARKER)]
    if proc.returncode != 0 or not found:
        print("".join(lines[-40:]))
        raise SystemExit(f"n={n}: the job failed (exit {proc.returncode})")
    entries = [float(m.group(1)) for x in lines if (m := KERNEL_LINE.search(x))]
    result = found[0] | sampler.summary() | {"n": n, "wall_seconds": round(wall, 1), "output": out_dir,
                                             "kernel_entries": sum(entries) if entries else None}
    if log_dir is not None:
        result |= print_profile(log_dir)
        shutil.rmtree(log_dir, ignore_errors=True)
    stages = "  ".join(f"{k} {v:.1f}" for k, v in result["stage_seconds"].items())
    print(f"  stages (s): {stages}  | run {result['run_seconds']:.1f}s, child wall {wall:.1f}s "
          f"(JVM start {result['session_seconds']:.1f}s); CPU of the JVM + Python workers + driver "
          f"{result['tree_cpu_seconds']:.0f}s")
    if result["kernel_entries"]:
        print(f"  stage 2's greedies: {result['kernel_entries']:.3g} kernel entries, "
              f"{result['stage_seconds']['select'] / result['kernel_entries'] * 1e9:.2f} s of select per 1e9")
    print(f"  peak memory: python driver ru_maxrss {result['driver_maxrss_mb']:.0f} MB, JVM VmHWM "
          f"{result['jvm_hwm_mb']:.0f} MB (-Xmx {args.driver_memory}), largest python worker VmHWM "
          f"{result['worker_hwm_mb']:.0f} MB, workers' RSS sum at peak {result['workers_rss_sum_mb']:.0f} MB "
          f"({result['workers_seen']} worker processes); all processes' RSS sum at peak "
          f"{result['all_rss_sum_mb']:.0f} MB (by kind {result['all_rss_kinds_mb']}; PSS, shared pages "
          f"counted once: {result['all_pss_sum_mb']:.0f} MB); Spark's local directories at peak (shuffle "
          f"files and cached blocks on disk) {result['local_dir_peak_mb']:,} MiB", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="250000,500000,1000000",
                        type=lambda s: [int(float(x)) for x in s.split(",") if x])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fraction", type=float, default=0.10, help="N' as a share of the rows")
    parser.add_argument("--num-instances", type=int, default=None, help="a fixed N' (over --fraction)")
    parser.add_argument("--task-rows", default=None, metavar="LO:HI",
                        type=lambda s: tuple(int(float(x)) for x in s.split(":")),
                        help="log-normal task sizes from exactly LO to exactly HI rows (default: Zipf-like)")
    parser.add_argument("--shape", choices=["zipf", "flan"], default="zipf",
                        help="task sizes: Zipf-like (or --task-rows), or FLAN 2022's (use --tasks 1840)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--driver-memory", default="6g")
    parser.add_argument("--conf", action="append", default=[], help="extra Spark conf KEY=VALUE")
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "smart-bench-data"))
    parser.add_argument("--work-dir", default=None, help="where the job's output goes (removed after)")
    parser.add_argument("--verbose", action="store_true", help="echo the child's output")
    parser.add_argument("--profile", action="store_true",
                        help="Spark event log per run: print the longest Spark jobs with their call sites")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("job_flags", nargs="*", help="after --: more job flags (e.g. --partition-size 10000)")
    args = parser.parse_args()
    if args.child:
        child(args.job_flags, args.cores, args.driver_memory, args.conf)
        return

    os.makedirs(args.data_dir, exist_ok=True)
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB; local[{args.cores}], "
          f"spark.driver.memory {args.driver_memory}")
    results = [run_size(args, n) for n in args.sizes]

    print("\nsummary")
    stages = list(dict.fromkeys(s for r in results for s in r["stage_seconds"]))  # quality: not at every n
    print("  n        | " + " | ".join(f"{s:>7}" for s in stages) + " |   run s |   CPU s | driver MB | "
          "JVM MB | worker MB | all PSS MB")
    for r in results:
        print(f"  {r['n']:<8} | " + " | ".join(f"{r['stage_seconds'].get(s, 0.0):7.1f}" for s in stages)
              + f" | {r['run_seconds']:7.1f} | {r['tree_cpu_seconds']:7.0f} | {r['driver_maxrss_mb']:9.0f} | "
              f"{r['jvm_hwm_mb']:6.0f} | {r['worker_hwm_mb']:9.0f} | {r['all_pss_sum_mb']:10.0f}")
    for a, b in zip(results, results[1:]):
        doublings = max(1e-9, (b["n"] / a["n"]))
        per = (b["run_seconds"] / a["run_seconds"]) ** (1 / max(1e-9, __import__("math").log2(doublings)))
        st = ", ".join(f"{s} {b['stage_seconds'][s] / max(1e-3, a['stage_seconds'][s]):.2f}x" for s in stages
                       if s in a["stage_seconds"] and s in b["stage_seconds"])
        verdict = "met" if per <= 2.2 else "NOT met"
        cpu = b["tree_cpu_seconds"] / max(1e-9, a["tree_cpu_seconds"])
        if a["kernel_entries"] and b["kernel_entries"]:
            print(f"  growth {a['n']} -> {b['n']}: stage 2's kernel entries "
                  f"{b['kernel_entries'] / a['kernel_entries']:.2f}x (the greedies' work)")
        print(f"  growth {a['n']} -> {b['n']}: run {b['run_seconds'] / a['run_seconds']:.2f}x "
              f"({per:.2f}x per doubling; target <= 2.2x: {verdict}); CPU seconds {cpu:.2f}x; stages: {st}")
    big = [r for r in results if r["n"] >= 1_000_000]
    for r in big:
        print(f"  n={r['n']}: child wall {r['wall_seconds']:.0f}s; under 15 min: "
              f"{'yes' if r['wall_seconds'] < 900 else 'NO'}")


if __name__ == "__main__":
    main()
