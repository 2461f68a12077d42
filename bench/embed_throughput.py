"""Embedding throughput: Spark local[N] with our Arrow UDF (``udfs/embed.py``) against sentence-transformers.

Run: ``python bench/embed_throughput.py`` (defaults: 2,000 texts, 4 interleaved rounds, local[2]) or e.g.
``python bench/embed_throughput.py --texts 3000 --rounds 4 --partitions 2``.

One Python process holds both sides, so they see the same machine at the same time (the machine may be
shared: only the RATIOS printed at the end are meaningful across runs):

- reference: ``SentenceTransformer(folder, device="cpu").encode(texts, batch_size=64)`` (it sorts by
  length, its default) in this process with ``torch.set_num_threads(cores)``;
- Spark: a local[cores] session (started once, before any timing), the texts in ``--partitions``
  partitions, ``embed_udf(folder, batch_size=64, device="cpu")`` (one torch thread per Spark task),
  written to the ``noop`` sink so every row is embedded and nothing else is done.

Warm: the JVM start and a warm-up job (which starts the Python workers, imports torch and loads the
model in each; reported separately as ``spark warm-up``) are outside the timings; so is the
reference's model load (reported as ``reference load``). Rounds alternate the order (ref, spark),
(spark, ref), ... and the result is the median of the per-round ratios spark / reference, in
sentences/s (tokens/s is the same ratio: the same texts). Target: spark >= 0.95x the reference.
Because other load on a shared machine moves wall times a lot between rounds, the CPU-seconds each side
spends on the same texts are printed too (reference: this process's CPU time; Spark: the JVM, the
Python workers and this driver, read from /proc): their ratio measures the efficiency of the Spark path
regardless of other load.

The corpus is deterministic (``--seed``): word counts log-uniform in [10, 300], words drawn from a fixed
vocabulary; tokens are counted after truncation to ``--max-length`` (special tokens included), i.e. the
tokens the encoder actually runs over. Before timing, the UDF's output on 256 texts is checked against
the reference (max abs difference printed).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WORDS = (
    "the of and to in a is that for it as was with be by on not he this are or his from at which model "
    "data train question answer translate summarize sentence paragraph following explain why how classify "
    "sentiment review positive negative premise hypothesis entailment context passage title options choose "
    "best describe write story poem code function return value list number city country science history "
    "mathematics probability equation solve compute result because therefore however Paris Einstein "
    "photosynthesis 1984 12.5% e-mail co-operate naïve café résumé GPU-accelerated"
).split()


def make_corpus(n: int, seed: int = 0, lo: int = 10, hi: int = 300) -> list[str]:
    """``n`` texts, word counts log-uniform in [lo, hi] (many short, a long tail), deterministic in seed."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(np.rint(np.exp(rng.uniform(np.log(lo), np.log(hi), n))), lo, hi).astype(int)
    vocab = np.asarray(WORDS, dtype=object)
    return [" ".join(rng.choice(vocab, size=k)) + "." for k in lengths]


def _tree_cpu_seconds(root: int) -> dict[str, float]:
    """CPU seconds (user + sys, reaped children included) of every process under ``root``, by kind:
    ``jvm`` (java) and ``python`` (pyspark.daemon and its workers)."""
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    stat = fh.read()
            except OSError:
                continue
            kids.setdefault(int(stat[stat.rfind(")") + 2:].split()[1]), []).append(int(entry))
    tick = os.sysconf("SC_CLK_TCK")
    out = {"jvm": 0.0, "python": 0.0}
    todo = list(kids.get(root, []))
    while todo:
        pid = todo.pop()
        todo.extend(kids.get(pid, []))
        try:
            with open(f"/proc/{pid}/stat") as fh:
                stat = fh.read()
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read().split(b"\0")[0]
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        secs = sum(int(x) for x in fields[11:15]) / tick  # utime, stime, cutime, cstime
        out["jvm" if cmd.endswith(b"java") else "python"] += secs
    return out


def spark_session(cores: int, max_records: int | None):
    from smart_spark.spark.session import get_spark

    conf = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": str(cores),
        "spark.default.parallelism": str(cores),
        "spark.driver.memory": "4g",
        "spark.sql.adaptive.enabled": "false",
    }
    if max_records:
        conf["spark.sql.execution.arrow.maxRecordsPerBatch"] = str(max_records)
    spark = get_spark("bench-embed-throughput", master=f"local[{cores}]", conf=conf)
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--cores", type=int, default=2, help="local[cores]; the reference's torch threads")
    parser.add_argument("--partitions", type=int, default=2, help="input partitions of the Spark job")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--arrow-batch-size", type=int, default=1024, help="embed_udf's arrow_batch_size")
    parser.add_argument("--max-records", type=int, default=None,
                        help="spark.sql.execution.arrow.maxRecordsPerBatch (default: Spark's, 10000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=None, help="model folder (default: bundled all-MiniLM-L6-v2)")
    args = parser.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer

    from smart_spark.embed.encoder import resolve_model_path
    from udfs.embed import embed_udf

    folder = resolve_model_path(args.model)
    texts = make_corpus(args.texts, args.seed)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokens = int(sum(len(ids) for ids in tokenizer(texts, truncation=True, max_length=args.max_length)[
        "input_ids"]))
    words = np.array([len(t.split()) for t in texts])
    print(f"machine: {platform.node()} {os.cpu_count()} cores, {platform.processor() or platform.machine()}; "
          f"torch {torch.__version__}")
    print(f"corpus: {len(texts)} texts, words min/median/max {words.min()}/{int(np.median(words))}/"
          f"{words.max()}, {tokens} tokens after truncation to {args.max_length} "
          f"({tokens / len(texts):.1f}/text)")

    t0 = time.perf_counter()
    spark = spark_session(args.cores, args.max_records)
    print(f"spark session start (JVM, excluded): {time.perf_counter() - t0:.1f}s")
    df = spark.createDataFrame([(i, t) for i, t in enumerate(texts)], "i long, text string")
    df = df.repartition(args.partitions).persist()
    df.count()
    embed = embed_udf(args.model, max_length=args.max_length, batch_size=args.batch_size, device="cpu",
                      arrow_batch_size=args.arrow_batch_size)

    # warm-up: one small task per core starts the Python workers, imports torch, loads the model
    t0 = time.perf_counter()
    warm = spark.createDataFrame([(i, texts[i]) for i in range(4 * args.cores)], "i long, text string")
    warm.repartition(args.cores).select(embed("text")).write.format("noop").mode("overwrite").save()
    spark_warm = time.perf_counter() - t0
    print(f"spark warm-up (workers start, torch import, model load per worker): {spark_warm:.1f}s")

    torch.set_num_threads(args.cores)
    t0 = time.perf_counter()
    reference = SentenceTransformer(folder, device="cpu")
    reference.max_seq_length = min(args.max_length, reference.max_seq_length)
    reference.encode(texts[:8], batch_size=args.batch_size)
    ref_load = time.perf_counter() - t0
    print(f"reference load (sentence-transformers, torch threads {torch.get_num_threads()}): {ref_load:.1f}s")

    # what the UDF's workers run with: torch threads per task (expected 1 = spark.task.cpus)
    def probe(batches):
        import pyarrow as pa
        import torch as t

        from smart_spark.embed.encoder import load_encoder

        load_encoder(args.model, device="cpu", max_length=args.max_length)
        for _ in batches:
            pass
        yield pa.RecordBatch.from_pydict({"pid": [os.getpid()], "threads": [t.get_num_threads()]})

    seen = spark.range(args.cores, numPartitions=args.cores).mapInArrow(probe, "pid long, threads long")
    print("spark workers (pid, torch threads):", sorted((r.pid, r.threads) for r in seen.collect()))

    # same vectors? (256 texts through the UDF, collected, against the reference)
    check = spark.createDataFrame([(i, texts[i]) for i in range(min(256, len(texts)))],
                                  "i long, text string").repartition(args.cores)
    rows = sorted(check.select("i", embed("text").alias("e")).collect(), key=lambda r: r.i)
    got = np.array([r.e for r in rows], dtype=np.float32)
    want = reference.encode(texts[:len(got)], batch_size=args.batch_size, convert_to_numpy=True)
    print(f"check: max |spark - reference| over 256 texts = {np.abs(got - want).max():.2e}")

    def run_reference() -> tuple[float, float]:
        t, c = time.perf_counter(), time.process_time()
        reference.encode(texts, batch_size=args.batch_size)
        return time.perf_counter() - t, time.process_time() - c

    me = os.getpid()

    def run_spark() -> tuple[float, float, dict[str, float]]:
        before, c, t = _tree_cpu_seconds(me), time.process_time(), time.perf_counter()
        df.select(embed("text").alias("e")).write.format("noop").mode("overwrite").save()
        wall, driver = time.perf_counter() - t, time.process_time() - c
        after = _tree_cpu_seconds(me)
        parts = {k: after[k] - before[k] for k in after} | {"driver": driver}
        return wall, sum(parts.values()), parts

    ratios, cpu_ratios, ref_times, spark_times = [], [], [], []
    for r in range(args.rounds):
        if r % 2 == 0:
            (tr, cr), (ts, cs, parts) = run_reference(), run_spark()
        else:
            (ts, cs, parts), (tr, cr) = run_spark(), run_reference()
        ref_times.append(tr)
        spark_times.append(ts)
        ratios.append(tr / ts)  # spark sentences/s over reference sentences/s
        cpu_ratios.append(cr / cs)  # reference CPU-seconds over spark CPU-seconds, same texts
        print(f"round {r}: reference {tr:.1f}s ({len(texts) / tr:.1f} texts/s, {tokens / tr:.0f} tok/s, "
              f"cpu {cr:.1f}s)  spark {ts:.1f}s ({len(texts) / ts:.1f} texts/s, {tokens / ts:.0f} tok/s, cpu "
              f"{cs:.1f}s = workers {parts['python']:.1f} + jvm {parts['jvm']:.1f} + driver "
              f"{parts['driver']:.1f})  ratio {tr / ts:.3f}, cpu ratio {cr / cs:.3f}", flush=True)
    spark.stop()

    ref_med, spark_med, ratio = statistics.median(ref_times), statistics.median(spark_times), \
        statistics.median(ratios)
    print(f"reference (sentence-transformers, {args.cores} torch threads): median "
          f"{len(texts) / ref_med:.1f} sentences/s, {tokens / ref_med:.0f} tokens/s")
    print(f"spark local[{args.cores}], {args.partitions} partitions, embed_udf: median "
          f"{len(texts) / spark_med:.1f} sentences/s, {tokens / spark_med:.0f} tokens/s")
    verdict = "met" if ratio >= 0.95 else "NOT met"
    print(f"RATIO spark/reference sentences/s: median {ratio:.3f} (rounds: "
          f"{', '.join(f'{x:.3f}' for x in ratios)}); target >= 0.95: {verdict}")
    print(f"RATIO reference/spark CPU-seconds for the same texts (efficiency, insensitive to other load): "
          f"median {statistics.median(cpu_ratios):.3f} (rounds: {', '.join(f'{x:.3f}' for x in cpu_ratios)})")


if __name__ == "__main__":
    main()
