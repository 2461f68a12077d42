"""Embedding throughput: Spark local[N] with our Arrow UDF (``udfs/embed.py``) against sentence-transformers.

Run: ``python bench/embed_throughput.py`` (defaults: 2,000 texts, 4 interleaved rounds, local[2]) or e.g.
``python bench/embed_throughput.py --texts 3000 --rounds 4 --partitions 2``.

Sides (``--sides``, each timed once per round, the order rotating between rounds):

- ``ref``: sentence-transformers float32 ``encode`` (the user's alternative; the denominator of every ratio);
- ``fp32-rows``: the UDF in float32 with row-count batches of ``--batch-size`` (the encoder before
  token-budget batches);
- ``fp32-tokens`` / ``bf16-tokens``: float32 / bfloat16 with token-budget batches (at most
  ``--token-batch-size`` rows and ``--max-tokens`` padded tokens per forward pass);
- ``bf16-rows``: bfloat16 with row-count batches (separates the two changes).

One Python process holds both sides, so they see the same machine at the same time (the machine may be
shared: only the RATIOS printed at the end are meaningful across runs):

- reference: ``SentenceTransformer(folder, device="cpu").encode(texts, batch_size=64)`` (it sorts by
  length, its default) in this process with ``torch.set_num_threads(cores)``;
- Spark sides: a local[cores] session (started once, before any timing), the texts in ``--partitions``
  partitions, ``embed_udf(folder, device="cpu", precision=..., batch_size=..., max_tokens=...)`` (one
  torch thread per Spark task), written to the ``noop`` sink so every row is embedded and nothing else
  is done.

Warm: the JVM start and a warm-up job (which starts the Python workers, imports torch and loads the
model in each; reported separately as ``spark warm-up``) are outside the timings; so is the
reference's model load (reported as ``reference load``). Each round rotates the order of the sides (and
reverses it every other round); the result is the median of the per-round ratios side / reference, in
sentences/s (tokens/s is the same ratio: the same texts). Targets: bf16-tokens >= 2.0x the reference,
fp32-tokens no slower than fp32-rows.
Because other load on a shared machine moves wall times a lot between rounds, the CPU-seconds each side
spends on the same texts are printed too (reference: this process's CPU time; Spark: the JVM, the
Python workers and this driver, read from /proc): their ratio measures the efficiency of the Spark path
regardless of other load.

The corpus is deterministic (``--seed``): word counts log-uniform in [10, 300], words drawn from a fixed
vocabulary; tokens are counted after truncation to ``--max-length`` (special tokens included), i.e. the
tokens the encoder actually runs over. Before timing, each side's output on 256 texts is checked against
the reference (max abs difference and least cosine printed).
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
    parser.add_argument("--batch-size", type=int, default=64, help="rows per forward pass (ref, *-rows)")
    parser.add_argument("--token-batch-size", type=int, default=256, help="most rows per pass (*-tokens)")
    parser.add_argument("--max-tokens", type=int, default=16384, help="padded tokens per pass (*-tokens)")
    parser.add_argument("--sides", default="ref,fp32-rows,fp32-tokens,bf16-tokens",
                        help="comma-separated: ref, fp32-rows, fp32-tokens, bf16-rows, bf16-tokens")
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

    from smart_spark.embed.device import cpu_has_native_bf16
    from smart_spark.embed.model_folder import resolve_model_path
    from smart_spark.udfs.embed import embed_udf

    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    if sides[0] != "ref":
        sides.insert(0, "ref")
    folder = resolve_model_path(args.model)
    texts = make_corpus(args.texts, args.seed)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokens = int(sum(len(ids) for ids in tokenizer(texts, truncation=True, max_length=args.max_length)[
        "input_ids"]))
    words = np.array([len(t.split()) for t in texts])
    print(f"machine: {platform.node()} {os.cpu_count()} cores, {platform.processor() or platform.machine()}; "
          f"torch {torch.__version__}, cpu capability {torch.backends.cpu.get_cpu_capability()}, native "
          f"bf16 (amx_bf16/avx512_bf16): {cpu_has_native_bf16()}")
    print(f"corpus: {len(texts)} texts, words min/median/max {words.min()}/{int(np.median(words))}/"
          f"{words.max()}, {tokens} tokens after truncation to {args.max_length} "
          f"({tokens / len(texts):.1f}/text)")

    t0 = time.perf_counter()
    spark = spark_session(args.cores, args.max_records)
    print(f"spark session start (JVM, excluded): {time.perf_counter() - t0:.1f}s")
    df = spark.createDataFrame([(i, t) for i, t in enumerate(texts)], "i long, text string")
    df = df.repartition(args.partitions).persist()
    df.count()
    udfs = {}
    for side in sides[1:]:
        precision = {"fp32": "float32", "bf16": "bfloat16"}[side.split("-")[0]]
        by_tokens = side.endswith("-tokens")
        udfs[side] = embed_udf(
            args.model, max_length=args.max_length, device="cpu", arrow_batch_size=args.arrow_batch_size,
            precision=precision, batch_size=args.token_batch_size if by_tokens else args.batch_size,
            max_tokens=args.max_tokens if by_tokens else None)

    # warm-up: one small task per core starts the Python workers, imports torch, loads each encoder
    t0 = time.perf_counter()
    warm = spark.createDataFrame([(i, texts[i]) for i in range(4 * args.cores)], "i long, text string")
    warm = warm.repartition(args.cores)
    warm.select(*(u("text").alias(s) for s, u in udfs.items())).write.format("noop").mode("overwrite").save()
    spark_warm = time.perf_counter() - t0
    print(f"spark warm-up (workers start, torch import, model loads per worker): {spark_warm:.1f}s")

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

    # same vectors? (256 texts through each UDF, collected, against the reference)
    check = spark.createDataFrame([(i, texts[i]) for i in range(min(256, len(texts)))],
                                  "i long, text string").repartition(args.cores)
    rows = sorted(check.select("i", *(u("text").alias(s) for s, u in udfs.items())).collect(),
                  key=lambda r: r.i)
    want = reference.encode(texts[:len(rows)], batch_size=args.batch_size, convert_to_numpy=True)
    for side in udfs:
        got = np.array([r[side] for r in rows], dtype=np.float32)
        cos = (got * want).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
        print(f"check {side}: max |spark - reference| over {len(rows)} texts = "
              f"{np.abs(got - want).max():.2e}, min cosine {cos.min():.6f}")

    me = os.getpid()

    def run(side: str) -> tuple[float, float]:
        """(wall seconds, CPU seconds of every process involved) for one pass over the corpus."""
        if side == "ref":
            t, c = time.perf_counter(), time.process_time()
            reference.encode(texts, batch_size=args.batch_size)
            return time.perf_counter() - t, time.process_time() - c
        before, c, t = _tree_cpu_seconds(me), time.process_time(), time.perf_counter()
        df.select(udfs[side]("text").alias("e")).write.format("noop").mode("overwrite").save()
        wall, driver = time.perf_counter() - t, time.process_time() - c
        after = _tree_cpu_seconds(me)
        return wall, sum(after[k] - before[k] for k in after) + driver

    walls: dict[str, list[float]] = {s: [] for s in sides}
    cpus: dict[str, list[float]] = {s: [] for s in sides}
    for r in range(args.rounds):
        order = sides[r % len(sides):] + sides[:r % len(sides)]  # rotate: each side leads in turn
        if r % 2:
            order = order[::-1]
        for side in order:
            wall, cpu = run(side)
            walls[side].append(wall)
            cpus[side].append(cpu)
        print(f"round {r}: " + "  ".join(
            f"{s} {walls[s][-1]:.1f}s (x{walls['ref'][-1] / walls[s][-1]:.2f}, cpu {cpus[s][-1]:.1f}s)"
            for s in sides), flush=True)
    spark.stop()

    print("\n| side | median s | texts/s | tokens/s | speed vs ST (median of per-round ratios) | rounds | "
          "CPU-s vs ST |")
    print("|---|---|---|---|---|---|---|")
    for side in sides:
        med = statistics.median(walls[side])
        ratios = [a / b for a, b in zip(walls["ref"], walls[side], strict=True)]
        cpu_ratio = statistics.median(a / b for a, b in zip(cpus["ref"], cpus[side], strict=True))
        rounds = ", ".join(f"{x:.2f}" for x in ratios)
        print(f"| {side} | {med:.1f} | {len(texts) / med:.1f} | {tokens / med:.0f} | "
              f"{statistics.median(ratios):.2f}x | {rounds} | {cpu_ratio:.2f}x |")
    if "fp32-rows" in sides:
        for side in sides:
            if side not in ("ref", "fp32-rows"):
                ratios = [a / b for a, b in zip(walls["fp32-rows"], walls[side], strict=True)]
                print(f"RATIO {side} / fp32-rows (speed): median {statistics.median(ratios):.2f} "
                      f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)})")


if __name__ == "__main__":
    main()
