"""The Rust tokenizer's own parallelism: tokens/s of the encoder's tokenization against threads, and what a
Spark Python worker gets.

Run: ``python bench/tokenizer_threads.py`` (defaults: 20,000 texts of ``bench/embed_throughput.py``'s
corpus, 3 repeats, the bundled all-MiniLM-L6-v2). Each setting runs in a fresh process, because the
tokenizer fixes its thread pool at first use:

- ``RAYON_NUM_THREADS=1, 2, ...`` up to the machine's cores, and ``TOKENIZERS_PARALLELISM=false``:
  ``Encoder.tokenize`` (``encode_batch`` of the Rust tokenizer, truncated) on all texts, best of the
  repeats, in tokens/s;
- ``spark``: one local Spark task that reports ``TOKENIZERS_PARALLELISM`` as its Python worker sees it
  (a worker forked from a process that had already used the tokenizer's threads has it set to ``false``
  by the tokenizer's fork handler; Spark's daemon never imports it) and times the same tokenization there.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

#: Loads the bundled encoder and times ``Encoder.tokenize`` on the corpus: ``timed()`` -> JSON fields.
TIMED = """
def timed():
    from embed_throughput import make_corpus
    from smart_spark.embed.encoder import load_encoder
    texts = make_corpus({n}, 0)
    encoder = load_encoder(None, device="cpu")
    best = None
    for _ in range({repeats}):
        start = time.perf_counter()
        tokens = encoder.tokenize(texts)
        took = time.perf_counter() - start
        best = took if best is None else min(best, took)
    return {{"seconds": best, "tokens": int(tokens.lengths.sum())}}
"""

MEASURE = """
import json, os, sys, time
sys.path[:0] = [{root!r}, {bench!r}]
""" + TIMED + """
print(json.dumps(timed()))
"""

IN_SPARK = """
import json, os, sys, time
sys.path[:0] = [{root!r}, {bench!r}]
from smart_spark.spark.session import get_spark
spark = get_spark("tokenizer-threads", master="local[1]")
""" + TIMED + """
def probe(_):
    sys.path[:0] = [{root!r}, {bench!r}]
    seen = os.environ.get("TOKENIZERS_PARALLELISM")  # as Spark's worker has it
    import embed_throughput  # its setdefault(..., "false") is for its own runs: undone
    if seen is None:
        os.environ.pop("TOKENIZERS_PARALLELISM", None)
    yield json.dumps({{**timed(), "parallelism": seen}})

print(spark.sparkContext.parallelize([0], 1).mapPartitions(probe).collect()[0])
spark.stop()
"""


def run(code: str, env: dict[str, str]) -> dict:
    """Run ``code`` in a fresh interpreter with ``env`` added; its last stdout line as JSON."""
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True,
                          text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    fill = dict(root=str(ROOT), bench=str(ROOT / "bench"), n=args.texts, repeats=args.repeats)
    settings = [(f"RAYON_NUM_THREADS={t}", {"RAYON_NUM_THREADS": str(t), "TOKENIZERS_PARALLELISM": "true"})
                for t in range(1, (os.cpu_count() or 1) + 1)]
    settings.append(("TOKENIZERS_PARALLELISM=false", {"TOKENIZERS_PARALLELISM": "false"}))
    base = None
    print(f"{args.texts:,} texts, best of {args.repeats}; tokens/s of Encoder.tokenize")
    for name, env in settings:
        got = run(MEASURE.format(**fill), env)
        rate = got["tokens"] / got["seconds"]
        base = base or rate
        print(f"{name:30s} {rate:12,.0f} tokens/s  {rate / base:5.2f}x")
    got = run(IN_SPARK.format(**fill), {})
    rate = got["tokens"] / got["seconds"]
    print(f"{'spark task (local[1])':30s} {rate:12,.0f} tokens/s  {rate / base:5.2f}x  "
          f"TOKENIZERS_PARALLELISM in the worker: {got['parallelism']!r}")


if __name__ == "__main__":
    main()
