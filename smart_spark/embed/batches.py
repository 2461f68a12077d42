"""How an encoder's forward passes are cut from a chunk of tokenized rows, and how each pass is padded.

Two plans, one contract: a list of :class:`Pass` (which rows, padded to how many tokens, in how many rows).

- :func:`token_batches` (float32): rows sorted by token count, longest first, cut into passes of at most
  ``batch_size`` rows and ``max_tokens`` padded tokens, each padded to its own longest row. Least padding;
  a pass's shape depends on which rows share it, which float32 arithmetic does not notice (<= 1e-6).
- :func:`fixed_shape_batches` (bfloat16): each row goes to the bucket of its own length
  (:func:`bucket_length`), every pass of a bucket has the same shape (:func:`rows_per_pass` rows of the
  bucket's width, the last pass filled with copies of a real row). bfloat16 kernels pick their blocking
  from the operand shapes, and bfloat16 rounding makes that visible (~1e-3); with shapes that depend only
  on a row's own length, its vector no longer depends on its neighbours, the partitioning or the company
  it was embedded in.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

__all__ = ["Pass", "bucket_length", "fixed_shape_batches", "pad_rows", "rows_per_pass", "token_batches",
           "token_passes"]


class Pass(NamedTuple):
    """One forward pass: ``idx`` (k,) positions of its real rows in the chunk, ``width`` padded tokens per
    row, ``rows`` (>= k) rows in the pass (the ``rows - k`` extra rows are copies, their output dropped)."""

    idx: np.ndarray
    width: int
    rows: int


def token_batches(
    sorted_lengths: np.ndarray, batch_size: int, max_tokens: int | None = None
) -> list[tuple[int, int]]:
    """``[start, stop)`` slices of rows sorted by token count, longest first (``sorted_lengths``, (n,)
    ints): each slice has at most ``batch_size`` rows and, when ``max_tokens`` is given, at most
    ``max_tokens`` padded tokens (its row count times its first row's length); a row longer than
    ``max_tokens`` runs alone. Deterministic in the lengths."""
    n, batch_size = len(sorted_lengths), max(1, int(batch_size))
    out: list[tuple[int, int]] = []
    start = 0
    while start < n:
        rows = batch_size
        if max_tokens is not None:
            rows = min(rows, max(1, int(max_tokens) // max(1, int(sorted_lengths[start]))))
        stop = min(n, start + rows)
        out.append((start, stop))
        start = stop
    return out


def token_passes(lengths: np.ndarray, batch_size: int, max_tokens: int | None = None) -> list[Pass]:
    """The float32 plan: :func:`token_batches` over ``lengths`` (n,) sorted longest first (stable), each
    pass padded to its longest row and holding only real rows."""
    order = np.argsort(-lengths, kind="stable")
    return [Pass(order[a:b], int(lengths[order[a]]), b - a)
            for a, b in token_batches(lengths[order], batch_size, max_tokens)]


def bucket_length(lengths: np.ndarray | int, cap: int) -> np.ndarray:
    """The padded width of a row of ``lengths`` tokens: rounded up to a multiple of 8 below 128 tokens, of
    16 below 256, 32 below 512 and so on (at most 1/8 of the length, at least 8), and never above ``cap``
    (the truncation length, itself a bucket). A function of the row's own length only."""
    n = np.maximum(np.asarray(lengths, dtype=np.int64), 1)
    quantum = np.maximum(8, 2 ** np.maximum(0, np.floor(np.log2(n)).astype(np.int64) - 3))
    return np.minimum(-(-n // quantum) * quantum, int(cap))


def rows_per_pass(width: int, batch_size: int, max_tokens: int | None) -> int:
    """Rows in every pass of padded ``width``: ``batch_size``, fewer when ``max_tokens`` asks (at least 1)."""
    rows = max(1, int(batch_size))
    if max_tokens is not None:
        rows = min(rows, max(1, int(max_tokens) // max(1, int(width))))
    return rows


def fixed_shape_batches(lengths: np.ndarray, batch_size: int, max_tokens: int | None, cap: int) -> list[Pass]:
    """The bfloat16 plan: rows grouped by :func:`bucket_length` (widest bucket first, input order inside),
    each bucket cut into passes of exactly :func:`rows_per_pass` rows (the last one filled up)."""
    widths = bucket_length(lengths, cap)
    order = np.lexsort((np.arange(len(lengths)), -widths))
    out: list[Pass] = []
    for width, group in itertools.groupby(order, key=lambda i: int(widths[i])):
        members = np.fromiter(group, dtype=np.int64)
        rows = rows_per_pass(width, batch_size, max_tokens)
        out.extend(Pass(members[a:a + rows], width, rows) for a in range(0, len(members), rows))
    return out


def pad_rows(
    encoded: Any, keys: Sequence[str], idx: np.ndarray, lengths: np.ndarray, pad_values: dict[str, int],
    *, left: bool = False, width: int | None = None, rows: int | None = None,
) -> dict[str, torch.Tensor]:
    """The padded (rows, width) int64 tensors of rows ``idx`` of a tokenizer's output ``encoded`` (lists of
    token-id lists per key in ``keys``; ``lengths`` (k,) their lengths), with ``attention_mask``: what
    ``tokenizer.pad`` returns, built with numpy (the tokenizer's own loop costs tens of ms per batch,
    longer than a small encoder's forward pass on a GPU). Keys missing from ``pad_values`` pad with 0;
    ``left`` pads on the left. ``width`` (default: the longest row) and ``rows`` (default ``len(idx)``;
    extra rows repeat the last one) fix the shape."""
    if rows is not None and rows > len(idx):
        extra = rows - len(idx)
        idx = np.concatenate([idx, np.repeat(idx[-1:], extra)])
        lengths = np.concatenate([lengths, np.repeat(lengths[-1:], extra)])
    width = int(lengths.max()) if width is None else int(width)
    mask = np.arange(width)[None, :] < lengths[:, None]
    if left:
        mask = mask[:, ::-1]
    total = int(lengths.sum())
    batch = {}
    for key in keys:
        if key == "attention_mask":
            continue
        values = np.full((len(idx), width), pad_values.get(key, 0), dtype=np.int64)
        column = encoded[key]
        values[mask] = np.fromiter(itertools.chain.from_iterable(column[i] for i in idx), np.int64, total)
        batch[key] = torch.from_numpy(values)
    batch["attention_mask"] = torch.from_numpy(mask.astype(np.int64))
    return batch
