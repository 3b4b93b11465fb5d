"""Unit tests of the verdict classes of issue 12 beside tests/test_real_code.py: the error
models behind them (underflow floors, staircases, several kinks at once, diagnoses that agree
with their verdict) and the bugs those models must still catch."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_gradcheck import check_gradient
from pytest_gradcheck.numerics.verdict import tiny_for_eps


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_tiny_for_eps_is_the_dtypes_smallest_normal(dtype):
    fi = np.finfo(dtype)
    assert tiny_for_eps(float(fi.eps)) == float(fi.tiny)


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_a_flat_zero_region_is_not_underflow(mode):
    """f is exactly 0 around params (all units off), but a wrong gradient of size 1 would move it
    by far more than the smallest normal number at any usable step: still a failure."""
    x = -np.linspace(1.0, 2.0, 6)

    def fun(v):
        return float(np.sum(np.maximum(v, 0.0) ** 2))

    r = check_gradient(fun, x, lambda v: np.ones_like(v), mode=mode)
    assert r.status == "fail", str(r)


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_underflowing_f_is_inconclusive_and_says_underflow(mode):
    x = np.array([1.5e-200, 2e-200, 1e-200])
    r = check_gradient(lambda v: float(np.sum(v * v)), x, lambda v: 2 * v, mode=mode)
    assert r.status == "inconclusive" and r.passed
    assert "underflow" in str(r)
