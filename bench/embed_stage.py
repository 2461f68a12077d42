"""The job's embed stage as a user meets it, against sentence-transformers, with a breakdown of its time.

Run: ``python bench/embed_stage.py`` (defaults: 6,000 prompts in 30 tasks, 3 interleaved rounds, float32 and
bfloat16) or e.g. ``python bench/embed_stage.py --texts 2000 --rounds 2 --precisions bfloat16
--reference /tmp/ref`` (``--reference DIR``: another version of the code, ``git archive <commit> | tar -x
-C DIR``, run beside this tree in the same rounds).

Per round, in an order that rotates between rounds, each in a fresh process:

- ``st``: sentence-transformers ``SentenceTransformer(folder, device="cpu").encode(texts, batch_size=64)``
  (it sorts all texts by length) with ``torch.set_num_threads(2)``, timed around ``encode`` only (the
  model loaded and warmed first): what ten lines of a user's own code cost;
- ``text-<precision>`` (per code version): the job as the README runs it (``python jobs/smart_mixture.py``,
  local Spark on every core, a fresh ``--output`` so the embedding cache is cold), on the prompts;
- ``vectors``: the same job on the same rows with the vectors given as ``--embedding-col`` (read from the
  first text run's cache): nothing embedded.

The embed stage's cost is the process wall time of ``text-*`` minus that of ``vectors`` (JVM start,
reading, weighing, selecting and writing cancel out); ``ratio`` = sentence-transformers' seconds / that
cost (> 1: the job embeds faster than the user's own loop). Medians of the per-round ratios are printed
at the end.

Breakdown (this tree's text runs; the UDF appends one JSON line of timings per task to
``$SMARTSPARK_EMBED_PROFILE``, ``udfs/embed.py``): the job's embed stage seconds (its ``seconds:`` line)
against the embedding tasks' span; per task the model load (worker start excluded), Arrow conversion,
tokenization, forward passes and the rest (waiting for input rows: the shuffle read, and the
untruncated token count UDF that runs in the same worker); padding (tokens run / real tokens); idle core
time inside the span (cores x span - busy task time: imbalance and the gaps between tasks); torch threads
per task.

The corpus is ``bench/embed_throughput.py``'s (word counts log-uniform in [10, 300], deterministic in
``--seed``), assigned round-robin to ``--tasks`` tasks.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from scaling import print_profile  # noqa: E402

ST_SCRIPT = """
import json, sys, time, torch
from sentence_transformers import SentenceTransformer
texts = json.load(open(sys.argv[1]))
torch.set_num_threads(int(sys.argv[3]))
model = SentenceTransformer(sys.argv[2], device="cpu")
model.encode(texts[:64], batch_size=64)
started = time.perf_counter()
model.encode(texts, batch_size=64)
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def write_inputs(work: Path, n: int, tasks: int, seed: int) -> tuple[Path, list[str]]:
    """The prompts as Parquet (``id``, ``task``, ``prompt``, an empty ``response``), and as a JSON list for
    the sentence-transformers side."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from embed_throughput import make_corpus

    texts = make_corpus(n, seed=seed)
    table = pa.table({"id": [f"r{i:06d}" for i in range(n)], "prompt": texts, "response": [""] * n,
                      "task": [f"task{i % tasks:02d}" for i in range(n)]})
    path = work / "text.parquet"
    pq.write_table(table, path)
    (work / "texts.json").write_text(json.dumps(texts))
    return path, texts


def write_vectors(work: Path, text_input: Path, output: str) -> Path:
    """The text input plus a ``vec`` column: each prompt's vector from the job's own cache in ``output``."""
    import hashlib

    import pyarrow as pa
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    cache = DeltaTable(f"{output}/embeddings").to_pyarrow_table(columns=["text_sha256", "embedding"])
    by_sha = dict(zip(cache["text_sha256"].to_pylist(), cache["embedding"].to_pylist(), strict=True))
    table = pq.read_table(text_input)
    vecs = [by_sha[hashlib.sha256(t.encode()).hexdigest()] for t in table["prompt"].to_pylist()]
    path = work / "vectors.parquet"
    pq.write_table(table.append_column("vec", pa.array(vecs, pa.list_(pa.float32()))), path)
    return path


def run_st(work: Path, threads: int) -> float:
    from smart_spark.embed.model_folder import default_model_path

    out = subprocess.run([sys.executable, "-c", ST_SCRIPT, str(work / "texts.json"), default_model_path(),
                          str(threads)], capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])


def run_job(code: Path, work: Path, args: list[str], profile: Path | None,
            eventlog: str | None = None) -> dict:
    """One job in a fresh process and a fresh output folder: wall seconds, stage seconds."""
    output = tempfile.mkdtemp(prefix="out-", dir=work)
    submit = "--conf spark.ui.showConsoleProgress=false"
    if eventlog is not None:
        submit += (f" --conf spark.eventLog.enabled=true --conf spark.eventLog.compress=false "
                   f"--conf spark.eventLog.dir=file://{eventlog}")
    env = {**os.environ, "PYTHONPATH": str(code), "PYSPARK_SUBMIT_ARGS": submit + " pyspark-shell"}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    if profile is not None:
        env["SMARTSPARK_EMBED_PROFILE"] = str(profile)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, str(code / "jobs" / "smart_mixture.py"), "--output", output,
                           "--num-instances", "600", "--run-id", "bench", "--id-col", "id", *args],
                          cwd=str(code), env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"{code}: the job failed:\n{proc.stderr[-3000:]}")
    text = proc.stdout + proc.stderr
    found = re.search(r"seconds: (.*) \(total", text)
    stages = {k: float(v) for k, v in (item.split() for item in found.group(1).split(", "))} if found else {}
    return {"wall": wall, "stages": stages, "output": output}


def breakdown(profile: Path, cores: int) -> dict:
    """The embedding tasks' timings (``udfs/embed.py``'s profile lines) summed over tasks."""
    records = [json.loads(line) for f in glob.glob(str(profile / "*.jsonl")) for line in open(f)]
    if not records:
        return {}
    span = max(r["end"] for r in records) - min(r["start"] for r in records)
    busy = sum(r["end"] - r["start"] for r in records)
    def total(key: str) -> float:
        return sum(r.get(key, 0) for r in records)

    keys = ("load_s", "arrow_s", "tokenize_s", "forward_s")
    sums = {k: sum(r.get(k, 0.0) for r in records) for k in keys}
    last = sorted(r["end"] for r in records)
    return {"tasks": len(records), "span_s": span, "busy_s": busy, **sums,
            "other_s": busy - sum(sums.values()), "idle_core_s": cores * span - busy,
            "tail_s": last[-1] - last[-2] if len(last) > 1 else 0.0,
            "padding": total("padded") / max(1, total("tokens")), "tokens": total("tokens"),
            "passes": total("passes"),
            "torch_threads": sorted({r["torch_threads"] for r in records})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=6000)
    parser.add_argument("--tasks", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precisions", default="float32,bfloat16")
    parser.add_argument("--reference", help="folder with another version of the code, run alongside")
    parser.add_argument("--job-args", default="", help="extra flags for every job run (text and vectors)")
    parser.add_argument("--eventlog", action="store_true",
                        help="print the Spark jobs of this tree's text runs, longest first (event log)")
    parser.add_argument("--work", help="working folder (default: a temporary one, removed at the end)")
    args = parser.parse_args()
    cores = os.cpu_count() or 2
    work = Path(args.work or tempfile.mkdtemp(prefix="embed-stage-"))
    work.mkdir(parents=True, exist_ok=True)
    text_input, texts = write_inputs(work, args.texts, args.tasks, args.seed)
    extra = args.job_args.split()
    versions = {"this tree": ROOT}
    if args.reference:
        versions["reference"] = Path(args.reference).resolve()
    precisions = args.precisions.split(",")
    sides = ["st", *(f"text-{p}|{v}" for p in precisions for v in versions), "vectors"]
    print(f"{args.texts:,} prompts in {args.tasks} tasks, {cores} cores; sides: {', '.join(sides)}",
          flush=True)
    vectors_input: Path | None = None
    results: list[dict[str, float]] = []
    for round_ in range(args.rounds):
        order = sides[round_ % len(sides):] + sides[:round_ % len(sides)]
        if round_ % 2:
            order.reverse()
        if vectors_input is None:  # the first round needs the vectors from a text run first
            order.remove("vectors")
            order.append("vectors")
        got: dict[str, float] = {}
        for side in order:
            if side == "st":
                got[side] = run_st(work, cores)
                print(f"round {round_ + 1} st: {got[side]:.1f} s ({len(texts) / got[side]:.1f} texts/s)",
                      flush=True)
                continue
            if side == "vectors":
                run = run_job(ROOT, work, ["--input", str(vectors_input), "--embedding-col", "vec", *extra],
                              None)
                got[side] = run["wall"]
                print(f"round {round_ + 1} vectors: wall {run['wall']:.1f} s; stages {run['stages']}",
                      flush=True)
                continue
            name, version = side.split("|")
            profile = Path(tempfile.mkdtemp(prefix="profile-", dir=work)) if version == "this tree" else None
            eventlog = tempfile.mkdtemp(prefix="eventlog-", dir=work) if profile and args.eventlog else None
            run = run_job(versions[version], work, ["--input", str(text_input), "--precision",
                                                    name.split("-")[1], *extra], profile, eventlog)
            got[side] = run["wall"]
            if vectors_input is None:
                vectors_input = write_vectors(work, text_input, run["output"])
            shutil.rmtree(run["output"], ignore_errors=True)
            detail = breakdown(profile, cores) if profile else {}
            print(f"round {round_ + 1} {side}: wall {run['wall']:.1f} s; stages {run['stages']}", flush=True)
            if detail:
                print("    breakdown: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                                for k, v in detail.items()), flush=True)
            if eventlog:
                print_profile(eventlog, top=12)
        results.append(got)
    print("\nmedians over rounds (embed cost = text wall - vectors wall; ratio = st seconds / embed cost):")
    for side in sides:
        if not side.startswith("text-"):
            continue
        costs = [r[side] - r["vectors"] for r in results]
        ratios = [r["st"] / (r[side] - r["vectors"]) for r in results]
        st = statistics.median(r["st"] for r in results)
        print(f"  {side:28s} embed cost {statistics.median(costs):6.1f} s "
              f"({args.texts / statistics.median(costs):6.1f} texts/s; st {args.texts / st:5.1f} texts/s): "
              f"ratio {statistics.median(ratios):.2f}x (rounds {', '.join(f'{x:.2f}' for x in ratios)})")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
