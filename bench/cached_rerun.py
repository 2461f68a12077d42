"""The bundled sample's fully cached rerun (`make sample` a second time: nothing is embedded), this tree
against a reference checkout, in one command.

Run: ``python bench/cached_rerun.py --reference DIR [--rounds 2] [--profile]`` after one ``make sample``
(or any run of ``conf/sample.yaml``) has filled ``out/sample/embeddings``; DIR holds another version of
the code (``git archive <commit> | tar -x -C DIR``). Each run is ``jobs/smart_mixture.py --config
conf/sample.yaml --output <--output>`` in a fresh process (its own JVM, ``local[*]`` as `make sample`
has it), the two versions alternating ``--rounds`` times. Printed per run: the job's seconds per stage
(``runs.metrics``: job time, without the JVM start), the process's wall time, and the CPU seconds of the
whole process tree (JVM + Python workers + driver; sampled as in bench/scaling.py), which move much less
with other load on a shared machine than wall times do; then the medians and the ratios reference / this
tree. ``--profile``: the Spark jobs of each run from its event log, longest first.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scaling import Sampler, print_profile  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("read", "embed", "weigh", "select", "write")


def run_once(code: Path, output: str, profile: bool) -> dict:
    log_dir = tempfile.mkdtemp(prefix="cached-rerun-eventlog-")
    submit = "--conf spark.ui.showConsoleProgress=false"
    if profile:
        submit += (f" --conf spark.eventLog.enabled=true --conf spark.eventLog.compress=false "
                   f"--conf spark.eventLog.dir=file://{log_dir}")
    env = {**os.environ, "PYTHONPATH": str(code), "PYSPARK_SUBMIT_ARGS": submit + " pyspark-shell"}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(code / "jobs" / "smart_mixture.py"), "--config",
                             str(ROOT / "conf" / "sample.yaml"), "--output", output],
                            cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    sampler = Sampler(proc.pid)
    sampler.start()
    text, _ = proc.communicate()
    wall = time.perf_counter() - started
    sampler.stop_flag.set()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"{code}: the job failed:\n{text[-3000:]}")
    found = re.search(r"seconds: (.*) \(total", text)
    stages = {k: float(v) for k, v in (item.split() for item in found.group(1).split(", "))} if found else {}
    if re.search(r"embedded [1-9]|cache_misses [1-9]", text):
        raise SystemExit("the rerun embedded texts: run conf/sample.yaml once first to fill the cache")
    if profile:
        print_profile(log_dir)
    return {"stages": stages, "job": sum(stages.values()), "wall": wall,
            "cpu": sampler.summary()["tree_cpu_seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", help="folder with the reference version of the code")
    parser.add_argument("--output", default=str(ROOT / "out" / "sample"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    versions = {"this tree": ROOT}
    if args.reference:
        versions["reference"] = Path(args.reference).resolve()
    results: dict[str, list[dict]] = {name: [] for name in versions}
    for round_ in range(args.rounds):
        for name, code in versions.items():
            r = run_once(code, args.output, args.profile)
            results[name].append(r)
            stages = ", ".join(f"{k} {r['stages'].get(k, 0):.1f}" for k in STAGES)
            print(f"round {round_ + 1} {name:10s} job {r['job']:6.1f} s ({stages}); wall {r['wall']:6.1f} s; "
                  f"CPU {r['cpu']:6.1f} s; load average {os.getloadavg()[0]:.1f}", flush=True)
    med = {name: {k: statistics.median(r[k] for r in runs) for k in ("job", "wall", "cpu")}
           for name, runs in results.items()}
    for name, m in med.items():
        print(f"median {name:10s} job {m['job']:6.1f} s; wall {m['wall']:6.1f} s; CPU {m['cpu']:6.1f} s")
    if "reference" in med:
        ratio = {k: med["reference"][k] / med["this tree"][k] for k in ("job", "wall", "cpu")}
        print(f"reference / this tree: job {ratio['job']:.2f}x, wall {ratio['wall']:.2f}x, "
              f"CPU {ratio['cpu']:.2f}x")


if __name__ == "__main__":
    main()
