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


# ---------------------------------------------------------------- staircases


def _round3(bug=None):
    c = np.random.default_rng(3).normal(size=6)

    def fun(x):
        return float(c @ np.round(x, 3) + 0.5 * x @ x)

    def grad(x):
        g = c + x
        return -g if bug == "sign" else g

    return fun, grad, np.random.default_rng(4).normal(size=6)


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_staircase_under_a_smooth_term_is_not_failed_and_named(mode):
    fun, grad, x = _round3()
    r = check_gradient(fun, x, grad, mode=mode)
    assert r.status in ("pass", "inconclusive"), str(r)
    assert "piecewise constant" in str(r)


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_sign_error_under_a_staircase_still_fails(mode):
    fun, grad, x = _round3("sign")
    r = check_gradient(fun, x, grad, mode=mode)
    assert r.status == "fail", str(r)


def test_float32_cast_inside_a_float64_loss_says_float32():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(30, 5)).astype(np.float32)

    def fun(w):
        return float(np.sum(np.tanh(X @ w.astype(np.float32)))) + 0.5 * float(w @ w)

    def grad(w):
        t = np.tanh(X @ w.astype(np.float32))
        return (X.T @ (1 - t * t)).astype(np.float64) + w

    r = check_gradient(fun, rng.normal(size=5), grad, mode="full")
    assert r.status in ("pass", "inconclusive"), str(r)
    assert "piecewise constant" in str(r) and "float32" in str(r)


def test_a_passing_check_pays_nothing_for_the_staircase_probe(monkeypatch):
    """The ladder runs only before a failure would be reported."""
    import pytest_gradcheck.numerics.entries as entries

    calls = []
    orig = entries.staircase_noise
    monkeypatch.setattr(entries, "staircase_noise", lambda *a, **k: calls.append(1) or orig(*a, **k))
    x = np.random.default_rng(1).normal(size=5)
    r = check_gradient(lambda v: float(np.sum(np.sin(v))), x, lambda v: np.cos(v), mode="full")
    assert r.status == "pass" and not calls
    r = check_gradient(lambda v: float(np.sum(np.sin(v))), x, lambda v: -np.cos(v), mode="full")
    assert r.status == "fail" and calls == [1]


# ---------------------------------------------------------------- several kinks at once


def _zero_row_relu(patch=None):
    """A dense layer + ReLU with a zero bias and an all-zero input row: one entry of that row moves
    all 7 units of the row across their kink at once."""
    rng = np.random.default_rng(41)
    V, T = rng.normal(size=(7, 3)), rng.normal(size=(4, 3))
    X = rng.normal(size=(4, 5))
    X[2] = 0.0
    p = {"X": X, "W": rng.normal(size=(5, 7)), "b": np.zeros(7)}

    def fun(q):
        H = np.maximum(q["X"] @ q["W"] + q["b"], 0.0)
        return float(0.5 * np.sum((H @ V - T) ** 2))

    def grad(q):
        Z = q["X"] @ q["W"] + q["b"]
        dZ = ((np.maximum(Z, 0.0) @ V - T) @ V.T) * (Z > 0)
        g = {"X": dZ @ q["W"].T, "W": q["X"].T @ dZ, "b": dZ.sum(axis=0)}
        if patch is not None:
            g["X"] = g["X"].copy()
            g["X"][2, 1] += patch
        return g

    return fun, grad, p


def test_several_kinks_at_once_are_inconclusive_not_failed():
    """The corpus case whose zero row put X[1, 0] outside its one-sided derivatives (failed before)."""
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from corpus.real_code import REAL_CORRECT

    case = next(c for c in REAL_CORRECT if c.name == "dense_relu_zero_rows_zero_bias")
    r = check_gradient(case.fun, case.params(), case.grad, mode="full")
    assert r.status == "inconclusive", str(r)
    assert "several kinks at once" in str(r)


def test_a_value_beyond_every_nearby_gradient_still_fails_at_a_multi_kink():
    fun, grad, p = _zero_row_relu(patch=1e3)
    r = check_gradient(fun, p, grad, mode="full")
    assert r.status == "fail", str(r)
    assert r.worst[0].where == "X[2, 1]" and "bug at the kink" in r.worst[0].reason
