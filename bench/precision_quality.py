"""What bfloat16 does to the embeddings and to the mixture, against float32, on real text.

Run: ``python bench/precision_quality.py`` (defaults: the bundled sample's 3,493 prompts plus 1,953
paragraphs of Python's standard-library docstrings; the sample job's budgets M' = 24, N' = 600 and a larger
N' = 1,500; 2 torch threads). Prints:

- per corpus, the cosine between each text's bfloat16 and float32 embedding: mean, minimum, 0.1th
  percentile, and the largest absolute coordinate difference;
- the mixture overlap: the sample job (``conf/sample.yaml``: FLAN strata, GC over tasks, FL over
  instances) run on the float32 and on the bfloat16 embeddings of the sample's prompts (given as
  ``--embedding-col``, so the selection path is the job's own), at each N': |ids_bf16 ∩ ids_fp32| / N',
  and how many tasks the two stage-1 selections share.

``--cache FILE.npz`` keeps the embeddings between runs (saved after each corpus and precision: the
expensive part, about 10 minutes on 2 idle cores). ``--fp32-from DELTA`` takes the float32 vectors from
an ``embeddings`` cache table of the job (e.g. ``out/sample/embeddings`` after ``make sample``) instead
of embedding again: the job's float32 vectors are the encoder's to 1e-6.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SAMPLE = ROOT / "data" / "sample" / "instructions.jsonl"


def cosine_stats(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Row-wise cosine of (n, d) ``a`` and ``b``: mean, min, 0.1th percentile; max |a - b|."""
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {"n": len(cos), "mean": float(cos.mean()), "min": float(cos.min()),
            "p0.1": float(np.percentile(cos, 0.1)), "max_abs": float(np.abs(a - b).max())}


def embed(texts: list[str], precision: str, threads: int, batch_size: int) -> np.ndarray:
    import torch

    from smart_spark.embed.encoder import load_encoder

    torch.set_num_threads(threads)
    encoder = load_encoder(None, device="cpu", precision=precision)
    t0 = time.perf_counter()
    out = encoder.encode(texts, batch_size=batch_size)
    print(f"  {precision}: {len(texts)} texts in {time.perf_counter() - t0:.1f}s", flush=True)
    return out


def from_cache(path: str, texts: list[str]) -> np.ndarray | None:
    """The float32 vectors of ``texts`` in the job's cache table at ``path`` (None if any is missing)."""
    import hashlib

    from deltalake import DeltaTable

    from smart_spark.embed.model_folder import model_id

    table = DeltaTable(path).to_pyarrow_table(columns=["model", "text_sha256", "embedding"]).to_pylist()
    key = model_id(None, 256)
    stored = {r["text_sha256"]: r["embedding"] for r in table if r["model"] == key}
    shas = [hashlib.sha256(t.encode("utf8")).hexdigest() for t in texts]
    if not all(s in stored for s in shas):
        return None
    return np.array([stored[s] for s in shas], dtype=np.float32)


def run_jobs(parquet: str, columns: tuple[str, ...], out: str, instances: str) -> None:
    """The job (``jobs/smart_mixture.py``'s ``main``) once per embedding column, output ``<out>/<column>``,
    in one child process: one Spark session for all of them."""
    argvs = [["--config", str(ROOT / "conf" / "sample.yaml"), "--input", parquet, "--input-format", "parquet",
              "--embedding-col", column, "--output", os.path.join(out, column), "--num-instances", instances,
              "--run-id", column, "--no-report"] for column in columns]
    code = ("from smart_spark.jobs.smart_mixture import main\n"
            f"for argv in {argvs!r}:\n    assert main(argv) == 0, argv\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--instances", default="600,1500", help="N' values of the mixture comparison")
    parser.add_argument("--cache", default=None, help="npz file keeping the embeddings between runs")
    parser.add_argument("--fp32-from", default=None, help="the job's embeddings table for float32 vectors")
    parser.add_argument("--docs", type=int, default=5000, help="most Python docstring paragraphs (0: none)")
    parser.add_argument("--no-mixture", action="store_true", help="cosine statistics only")
    args = parser.parse_args()

    import pyarrow as pa
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    from smart_spark.datasets.real_text import python_doc_paragraphs

    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf8").splitlines()]
    corpora = {"sample prompts": [r["prompt"] for r in rows]}
    if args.docs > 0:
        corpora["python docs"] = python_doc_paragraphs(args.docs)
    vectors: dict[str, dict[str, np.ndarray]] = {name: {} for name in corpora}
    if args.cache and os.path.exists(args.cache):
        with np.load(args.cache) as saved:
            for key in saved.files:
                name, precision = key.split("|")
                if name in vectors:
                    vectors[name][precision] = saved[key]
    if args.fp32_from and "float32" not in vectors["sample prompts"]:
        found = from_cache(args.fp32_from, corpora["sample prompts"])
        if found is not None:
            print(f"sample prompts float32: from {args.fp32_from}", flush=True)
            vectors["sample prompts"]["float32"] = found
    for name, texts in corpora.items():
        for precision in ("bfloat16", "float32"):
            if precision not in vectors[name]:
                print(f"embedding {name}:", flush=True)
                vectors[name][precision] = embed(texts, precision, args.threads, args.batch_size)
                if args.cache:
                    np.savez(args.cache, **{f"{n}|{p}": v for n, d in vectors.items() for p, v in d.items()})

    print("\ncosine(bfloat16, float32) per text, all-MiniLM-L6-v2, max_length 256:")
    print("| corpus | texts | mean | min | 0.1th pct | max abs diff |")
    print("|---|---|---|---|---|---|")
    both = {p: np.concatenate([vectors[n][p] for n in corpora]) for p in ("float32", "bfloat16")}
    for name, v in [*((n, vectors[n]) for n in corpora), ("all", both)]:
        s = cosine_stats(v["float32"], v["bfloat16"])
        print(f"| {name} | {s['n']} | {s['mean']:.7f} | {s['min']:.6f} | {s['p0.1']:.6f} | "
              f"{s['max_abs']:.2e} |")

    if args.no_mixture:
        return
    with tempfile.TemporaryDirectory(prefix="precision-quality-") as tmp:
        table = pa.table({
            "id": [r["id"] for r in rows], "task": [r["task"] for r in rows],
            "template_type": [r["template_type"] for r in rows], "prompt": [r["prompt"] for r in rows],
            "response": [r["response"] for r in rows],
            "emb_fp32": list(vectors["sample prompts"]["float32"]),
            "emb_bf16": list(vectors["sample prompts"]["bfloat16"]),
        })
        parquet = os.path.join(tmp, "sample.parquet")
        pq.write_table(table, parquet)
        out = os.path.join(tmp, "out")
        t0 = time.perf_counter()
        run_jobs(parquet, ("emb_fp32", "emb_bf16"), out, args.instances)
        print(f"jobs on emb_fp32 and emb_bf16: {time.perf_counter() - t0:.0f}s", flush=True)
        mixture, weights = [], []
        for column in ("emb_fp32", "emb_bf16"):
            mixture += DeltaTable(os.path.join(out, column, "mixture")).to_pyarrow_table(
                columns=["run_id", "id"]).to_pylist()
            weights += DeltaTable(os.path.join(out, column, "task_weights")).to_pyarrow_table(
                columns=["run_id", "task", "selected", "budget"]).to_pylist()
    print("\nmixture overlap, sample job (M' = 24, FLAN strata, GC then FL), bfloat16 vs float32 embeddings:")
    print("| N' | ids fp32 | ids bf16 | shared ids | overlap | tasks shared (of 24) | budgets equal |")
    print("|---|---|---|---|---|---|---|")
    columns = ("emb_fp32", "emb_bf16")
    for n in args.instances.split(","):
        run = {c: f"{c}/m24-n{n}" for c in columns}
        ids = {c: {r["id"] for r in mixture if r["run_id"] == run[c]} for c in columns}
        tasks = {c: {r["task"]: r["budget"] for r in weights if r["run_id"] == run[c] and r["selected"]}
                 for c in columns}
        shared = ids["emb_fp32"] & ids["emb_bf16"]
        same_tasks = len(set(tasks["emb_fp32"]) & set(tasks["emb_bf16"]))
        print(f"| {n} | {len(ids['emb_fp32'])} | {len(ids['emb_bf16'])} | {len(shared)} | "
              f"{len(shared) / max(1, len(ids['emb_fp32'])):.4f} | {same_tasks} | "
              f"{tasks['emb_fp32'] == tasks['emb_bf16']} |")


if __name__ == "__main__":
    main()
