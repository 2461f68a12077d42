"""Each query row's largest cosine to a key row, exactly, with a bfloat16 first pass (torch on a CPU).

Where a CPU multiplies bfloat16 natively (AVX512-BF16, AMX), torch's bfloat16 matrix product is about
four times float32's; the quality stage's products (20,000 sampled rows against every mixture row) are
most of its cost. :func:`max_cosine_bf16` keeps the figures exact: the bfloat16 pass only prunes.

Why the exact maximum survives the pruning: for unit rows q, k rounded to bfloat16 (unit roundoff
u = :data:`UNIT`), with float32 accumulation and the product rounded to bfloat16 again,
|bf16(q . k) - q . k| <= :func:`error_bound` (d). So the key j* of the exact maximum m
scores at least m - e, and the row's best bfloat16 score is at most m + e: every key scoring at least
(best - 2e) in bfloat16 is a candidate, j* among them. The candidates' float32 products then give m (the
maximum over any key set that holds j* is m).
"""

from __future__ import annotations

import numpy as np

#: Unit roundoff of bfloat16 (8 significant bits).
UNIT = 2.0**-8
#: Rounding the threshold to bfloat16 moves it by at most half an ulp (2^-8 for |x| < 2): subtracting
#: that too keeps it at or below the exact threshold.
ROUNDING = 2.0**-8
#: Cosine products per bfloat16 block (entries of one (rows x keys) score matrix).
BLOCK_ENTRIES = 1 << 24
#: Query rows per float32 refinement (the union of their candidates is multiplied exactly).
REFINE_ROWS = 32
#: Largest share of the keys that a refinement's candidates may be for the pruning to go on.
MAX_CANDIDATE_SHARE = 0.25


def error_bound(dim: int) -> float:
    """Bound on |bfloat16 product - exact dot product| of two unit rows of ``dim`` dimensions: inputs
    rounded (2u + u^2), the product rounded (u, |q . k| <= 1 + 3u), float32 accumulation (d 2^-24)."""
    return 2 * UNIT + UNIT**2 + UNIT * (1 + 3 * UNIT) + dim * 2.0**-24


def max_cosine_bf16(queries: np.ndarray, keys: np.ndarray, same_q: np.ndarray | None = None,
                    same_k: np.ndarray | None = None) -> np.ndarray:
    """(q,) float64: each query row's largest float32 dot product with a key row; -inf where none.

    ``queries`` (q, d), ``keys`` (k, d): float32 unit rows. ``same_q``, ``same_k``: positions of the
    (query, key) pairs to skip (a row and itself). Blocks of at most :data:`BLOCK_ENTRIES` products:
    bfloat16 pass, then float32 products of each :data:`REFINE_ROWS` rows' candidates. Where the
    candidates are more than :data:`MAX_CANDIDATE_SHARE` of the keys (keys that all lie about as close
    to a row, as inside one task), the pruning does not pay: that block and the rest are plain float32
    products. Either way the result is the float32 products' maximum (up to their summation order).
    """
    import torch

    queries = np.ascontiguousarray(queries, dtype=np.float32)
    keys = np.ascontiguousarray(keys, dtype=np.float32)
    out = np.full(len(queries), -np.inf)
    if len(queries) == 0 or len(keys) == 0:
        return out
    own = np.full(len(queries), -1, np.int64)  # each query's own key position, -1 for none (ids unique)
    if same_q is not None and same_k is not None:
        own[np.asarray(same_q, np.int64)] = np.asarray(same_k, np.int64)
    k16t = torch.from_numpy(keys).to(torch.bfloat16).T.contiguous()
    step = max(REFINE_ROWS, BLOCK_ENTRIES // len(keys) // REFINE_ROWS * REFINE_ROWS)
    pruning = True
    with torch.no_grad():
        for start in range(0, len(queries), step):
            stop = min(len(queries), start + step)
            if pruning:
                pruning = _pruned_block(queries[start:stop], keys, k16t, own[start:stop], out[start:stop])
            if not pruning:
                block = queries[start:stop] @ keys.T
                rows = np.flatnonzero(own[start:stop] >= 0)
                block[rows, own[start:stop][rows]] = -np.inf
                out[start:stop] = block.max(axis=1)
    return out


def _pruned_block(queries: np.ndarray, keys: np.ndarray, k16t, own: np.ndarray, out: np.ndarray) -> bool:
    """One block of :func:`max_cosine_bf16` by pruning, written into ``out``; False (``out`` untouched)
    when the candidates are too many for the pruning to pay."""
    import torch

    scores = torch.mm(torch.from_numpy(queries).to(torch.bfloat16), k16t)  # (rows, k) bfloat16
    rows = np.flatnonzero(own >= 0)
    scores[rows, own[rows]] = -torch.inf
    bits = scores.view(torch.int16)
    # As int16, bfloat16 bits order the non-negative values as floats do and put every negative one
    # below them: the int16 maximum is the row's best score when that is >= 0, and a score at most the
    # best (a lower bound, all that the pruning needs) otherwise.
    margin = 2 * error_bound(keys.shape[1]) + ROUNDING
    floor = (bits.amax(dim=1).view(torch.bfloat16).float() - margin).to(torch.bfloat16)
    bits, floor_bits = bits.numpy(), floor.view(torch.int16).numpy()
    negative = floor.float().numpy() < 0  # int16 order is not float order there: compare floats
    chunks = []
    for a in range(0, len(queries), REFINE_ROWS):
        b = min(len(queries), a + REFINE_ROWS)
        if negative[a:b].any():
            candidate = (scores[a:b].float() >= floor[a:b, None].float()).numpy()
        else:
            candidate = bits[a:b] >= floor_bits[a:b, None]
        chunks.append(np.flatnonzero(candidate.any(axis=0)))
        if a == 0 and len(chunks[0]) > MAX_CANDIDATE_SHARE * len(keys):
            return False
    if sum(map(len, chunks)) > MAX_CANDIDATE_SHARE * len(keys) * len(chunks):
        return False
    for a, cols in zip(range(0, len(queries), REFINE_ROWS), chunks):
        b = min(len(queries), a + REFINE_ROWS)
        if len(cols) == 0:  # every key skipped (a lone row and itself)
            continue
        exact = queries[a:b] @ keys[cols].T  # (rows, candidates) float32
        mine = own[a:b]
        hit = np.flatnonzero(mine >= 0)
        where = np.searchsorted(cols, mine[hit])
        found = where < len(cols)
        found[found] = cols[where[found]] == mine[hit][found]
        exact[hit[found], where[found]] = -np.inf  # a row's own key: skipped here too
        out[a:b] = exact.max(axis=1)
    return True
