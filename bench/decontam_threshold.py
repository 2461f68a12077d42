"""Cosine similarities of real paraphrase pairs vs same-topic different questions, with the job's encoder.

    PYTHONPATH=$PWD .venv/bin/python bench/decontam_threshold.py

Reads data/paraphrases/pairs.jsonl (40 hand-written benchmark-style questions, each with a paraphrase
and a hard negative: same topic, different question) and prints the quantiles of both similarity
distributions and, per candidate threshold, the share of paraphrases caught and of negatives removed.
This is the measurement behind the default --decontamination-threshold (docs/decontamination.md).
"""

from __future__ import annotations

import json
import os

import numpy as np

from smart_spark.embed.encoder import load_encoder

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    with open(os.path.join(HERE, "..", "data", "paraphrases", "pairs.jsonl"), encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    enc = load_encoder(None, device="cpu")
    E, P, N = (enc.encode([r[k] for r in rows]) for k in ("eval", "paraphrase", "negative"))
    E, P, N = (X / np.linalg.norm(X, axis=1, keepdims=True) for X in (E, P, N))
    para = np.sum(E * P, axis=1)
    neg = np.sum(E * N, axis=1)
    # The nearest negative of each paraphrase among ALL eval prompts (what the search actually sees).
    cross = N @ E.T
    worst_neg = cross.max(axis=1)
    q = [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1]
    print(f"pairs: {len(rows)}")
    print("paraphrase cos quantiles", dict(zip(q, np.round(np.quantile(para, q), 3))))
    print("negative  cos quantiles", dict(zip(q, np.round(np.quantile(neg, q), 3))))
    print("negative  max over all evals", dict(zip(q, np.round(np.quantile(worst_neg, q), 3))))
    print("threshold  paraphrases caught  negatives removed")
    for t in (0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95):
        print(f"{t:9.2f}  {np.mean(para >= t):18.0%}  {np.mean(worst_neg >= t):17.0%}")
    for i in np.argsort(para)[:3]:
        print(f"lowest paraphrase {para[i]:.3f}: {rows[i]['eval']!r} ~ {rows[i]['paraphrase']!r}")
    for i in np.argsort(-worst_neg)[:3]:
        print(f"highest negative {worst_neg[i]:.3f}: {rows[i]['negative']!r}")


if __name__ == "__main__":
    main()
