"""The torch FL engine (for GPU executors) gives the numpy engine's picks; run here on torch's CPU device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from smart_spark.core import greedy_torch
from smart_spark.core.greedy import fl_kernel, greedy_select, normalize_rows
from smart_spark.errors import SmartError
from smart_spark.udfs.select import fl_device


def _data(kind: str, n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.standard_normal((n, d))
    X = rng.standard_normal((8, d))[rng.integers(0, 8, n)] + 0.7 * rng.standard_normal((n, d))
    X[n // 2] = X[3]  # an exact duplicate: ties go to the smallest position
    return X


@pytest.mark.parametrize("kind", ["random", "clustered"])
def test_torch_fl_equals_numpy_fl(kind: str, monkeypatch) -> None:
    monkeypatch.setattr(greedy_torch, "_BLOCK", 128)  # several kernel blocks and update rounds
    monkeypatch.setattr(greedy_torch, "_UPDATE_ROWS", 50)
    X = _data(kind, 700, 24, seed=4)
    order, gains = greedy_select(X, "fl", 200)
    torch_order, torch_gains = greedy_torch.fl_greedy_torch(normalize_rows(X), 200, "cpu")
    assert torch_order.tolist() == order.tolist()
    # Up to float32 rounding: torch's BLAS and numpy's may sum a kernel entry's d products in another
    # order (they agree bit for bit on some CPUs, by one ulp on others).
    np.testing.assert_allclose(torch_gains, gains, rtol=1e-6, atol=1e-6)


def test_torch_kernel_is_symmetric_with_unit_diagonal(monkeypatch) -> None:
    monkeypatch.setattr(greedy_torch, "_BLOCK", 96)
    Xn = normalize_rows(_data("random", 300, 10, seed=2))
    K = greedy_torch.fl_kernel_torch(torch.from_numpy(Xn)).numpy()
    assert np.array_equal(K, K.T) and (np.diag(K) == 1.0).all()
    np.testing.assert_allclose(K, fl_kernel(Xn)[0], atol=1e-6)


def test_budget_zero_and_the_selection_device() -> None:
    order, gains = greedy_torch.fl_greedy_torch(normalize_rows(_data("random", 5, 3, seed=1)), 0, "cpu")
    assert order.size == gains.size == 0
    assert fl_device("cpu") == "cpu"
    assert fl_device("auto") == "cpu"  # outside a Spark task with a GPU assigned
    assert fl_device("cuda", "gc") == fl_device("cuda", "logdet") == "cpu"  # only FL has a torch engine
    if not torch.cuda.is_available():
        with pytest.raises(SmartError, match="CUDA is not available"):
            fl_device("cuda")
