"""Seeded hash keys for ids: the one definition shared by the numpy core and the Spark job.

``hash_keys(ids, seed, salt)[i]`` is the lowercase hex SHA-256 of the UTF-8 string
``f"{seed}:{salt}:{ids[i]}"``. Spark computes the same string with
``sha2(concat(lit(f"{seed}:{salt}:"), id), 256)``, so a partition assignment or a random order made
from these keys is the same in-process and on any cluster, whatever the row order or partitioning.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

#: Salts that name what a key is for, so that the orders they induce are independent.
PARTITION_SALT = "part"
RANDOM_SALT = "random"


def hash_key(id_value: object, seed: int, salt: str) -> str:
    """Hex SHA-256 of ``f"{seed}:{salt}:{id_value}"`` (64 characters)."""
    return hashlib.sha256(f"{seed}:{salt}:{id_value}".encode()).hexdigest()


def hash_keys(ids: Iterable[object], seed: int, salt: str) -> np.ndarray:
    """Hash keys of ``ids`` as a (n,) array of 64-character strings (dtype ``<U64``)."""
    return np.array([hash_key(i, seed, salt) for i in ids], dtype="<U64")


def hash_order(ids: Iterable[object], seed: int, salt: str) -> np.ndarray:
    """Positions of ``ids`` sorted by (hash key, str(id)): a seeded, partitioning-free permutation."""
    ids = list(ids)
    keys = hash_keys(ids, seed, salt)
    return np.array(sorted(range(len(ids)), key=lambda i: (keys[i], str(ids[i]))), dtype=np.int64)
