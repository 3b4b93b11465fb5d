"""Verdicts at irregular points of precision (issue 20 A.2, C.10, C.13; issue 24 items 1-2).

Each case of tests/corpus/irregular_precision.py gets exactly one of the statuses
its ``ok`` lists, in full, fast and auto mode: a gradient made of roundoff is
unresolved (never "pass", its sign flip neither), an exact zero behind a
normalisation passes, a float32 gradient of float64 code passes with a note
naming the leaf and both dtypes.  Unit tests of the rule itself
(verdict.unresolved_passes) sit beside them.
"""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import pytest

from pytest_gradcheck import check_gradient
from pytest_gradcheck.numerics.verdict import unresolved_passes

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from corpus.irregular_precision import IRREGULAR_BUGS, IRREGULAR_CORRECT  # noqa: E402

MODES = ("full", "fast", "auto")


def _check(case, mode):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return check_gradient(case.fun, case.params(), case.grad, mode=mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", IRREGULAR_CORRECT, ids=lambda c: c.name)
def test_correct_case_gets_its_status(case, mode):
    r = _check(case, mode)
    assert r.status in case.ok, f"{case.name}:\n{r}"
    if r.status == "inconclusive":  # it names why: an unresolved entry (full), blind probes (fast)
        text = str(r)
        assert ("unresolved" in text or "too coarse to resolve" in text) and r.counts["fail"] == 0, text


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bug", IRREGULAR_BUGS, ids=lambda c: c.name)
def test_wrong_case_never_passes(bug, mode):
    r = _check(bug, mode)
    assert r.status in bug.ok and r.status != "pass", f"{bug.name}:\n{r}"
    if r.status == "fail" and bug.bug_leaves:
        assert r.worst[0].leaf in bug.bug_leaves, str(r)


def test_roundoff_gradient_and_its_sign_flip_are_both_unresolved_in_full_mode():
    case = next(c for c in IRREGULAR_CORRECT if c.name == "cancellation_f32_x3000")
    flip = next(c for c in IRREGULAR_BUGS if c.name == "cancellation_f32_x3000:sign")
    for c in (case, flip):
        r = _check(c, "full")
        assert r.status == "inconclusive" and r.counts == {"pass": 0, "fail": 0, "inconclusive": 2}, str(r)
        for w in r.worst:
            assert w.reason.startswith("unresolved") and w.tolerance >= min(abs(w.analytic), abs(w.numeric))
            assert "analytic side's own rounding allowance" in w.reason  # the cause the numbers show


def test_float32_gradient_of_float64_code_is_named_and_recorded():
    case = next(c for c in IRREGULAR_CORRECT if c.name == "f32_grad_of_f64_code")
    r = _check(case, "full")
    assert r.status == "pass", str(r)
    assert any("grad returns float32 for leaf 'w' whose params are float64" in m for m in r.messages)
    leaves = {leaf["path"]: leaf for leaf in r.to_dict()["leaves"]}
    assert (leaves["w"]["dtype"], leaves["w"]["grad_dtype"]) == ("float64", "float32")
    assert (leaves["b"]["dtype"], leaves["b"]["grad_dtype"]) == ("float64", "float64")
    assert not any("grad returns" in m for m in check_gradient(
        lambda p: float(np.sum(p ** 2)), np.ones(3), lambda p: 2 * p).messages)


def test_explicit_tolerance_failure_needs_finite_differences_that_resolve_it():
    # sqrt at [1e-300, 1]: f = 1 + 1e-150 rounds to 1, no step resolves the 5e149 slope (issue 24.1)
    with np.errstate(all="ignore"):
        r = check_gradient(lambda p: float(np.sum(np.sqrt(p))), np.array([1e-300, 1.0]),
                           lambda p: 0.5 / np.sqrt(p), atol=1e-3, rtol=1e-3)
    assert r.status == "inconclusive" and r.worst[0].reason.startswith("unresolved"), str(r)
    bad = check_gradient(lambda p: float(np.sum(np.sqrt(p))), np.array([0.25, 1.0]),
                         lambda p: -0.5 / np.sqrt(p), atol=1e-3, rtol=1e-3)
    assert bad.status == "fail"


def test_rounding_at_the_steps_not_at_params_sets_the_error():
    # sum(p^2) at [1e-300, 5e-324], eps=1e-3: f ~ 1e-600 at params, 1e-6 at the steps (issue 24.1)
    r = check_gradient(lambda p: float(np.sum(p ** 2)), np.array([1e-300, 5e-324]), lambda p: 2 * p, eps=1e-3)
    assert r.status == "inconclusive" and r.counts["fail"] == 0, str(r)
    r = check_gradient(lambda p: float(np.sum(p ** 2)), np.array([0.3, -0.2]), lambda p: 2.02 * p, eps=1e-3)
    assert r.status == "fail"


@pytest.mark.parametrize("a, n, tol, scale, floor, err, want", [
    (1.0, 1.001, 0.01, 1.0, 1e-15, 1e-3, False),      # resolved: tol below both values
    (1.19e-7, -5.6e-11, 2e-7, 1.19e-7, 2e-7, 1e-20, True),   # float32 erfcx at 1e5 (A.2)
    (2.008, 0.872, 2.21, 1.0, 1e-15, 0.22, True),     # the saturated sigmoid's entry (A.2)
    (1e-17, 1e-12, 1e-10, 1.0, 1e-16, 1e-11, False),  # a bias before a norm: ~0 within its measured noise
    (5.4e-13, 0.0, 1.2e-7, 9e7, 1e-27, 1.2e-8, True),  # a genuine 5e-13 beside a 1e8 leaf: no zero
    (1e-7, -8e-8, 2e-6, 1e-7, 2e-6, 1e-15, True),     # float32 roundoff against a resolved true value
    (1e-7, 1e-9, 2e-6, 1e-7, 2e-6, 1e-9, False),      # zero within noise on both sides (an optimum)
    (-0.70, -0.35, 0.36, 0.9, 0.3, 1e-9, True),       # a factor 2 in bfloat16 (24.2)
])
def test_unresolved_passes_rule(a, n, tol, scale, floor, err, want):
    got = unresolved_passes(np.array([a]), np.array([n]), np.array([tol]), np.array([scale]), 2.0**-52,
                            np.array([floor]), np.array([err]))
    assert bool(got[0]) is want


def test_a_step_that_leaves_the_domain_shrinks_instead_of_ending_the_check():
    # a Student-t log-density in its degrees of freedom, entries 1e6 and 1e10: a step at the leaf's
    # scale took df = 1e6 to -7.8e8, where fun raises; that ended the check (issue 20 A.3).  A raise
    # at a step larger than the entry itself is read as leaving fun's domain (a NaN): steps shrink
    special = pytest.importorskip("scipy.special")
    x = 1.3

    def f(p):
        if np.any(p <= 0):
            raise ValueError(f"df must be > 0, got {p.min()}")
        return float(np.sum(special.gammaln((p + 1) / 2) - special.gammaln(p / 2) - 0.5 * np.log(p * np.pi)
                            - (p + 1) / 2 * np.log1p(x * x / p)))

    def g(p, k=1.0):
        return k * (0.5 * special.digamma((p + 1) / 2) - 0.5 * special.digamma(p / 2) - 0.5 / p
                    - 0.5 * np.log1p(x * x / p) + (p + 1) / 2 * x * x / (p * p + p * x * x))

    for mode in MODES:
        for k in (1.0, -1.0):  # the gradient is ~1e-15: f's noise (2e-5) resolves neither sign
            r = check_gradient(f, np.array([1e6, 1e10]), lambda p: g(p, k), mode=mode)
            assert r.status == "inconclusive" and r.counts["fail"] == 0, str(r)
    # a raise within the entry's own size is still the user's error, named with the entry and the step
    from pytest_gradcheck import GradcheckUserCodeError

    def picky(p):
        if p[0] > 1.0 + 1e-9:
            raise ValueError("too large")
        return float(np.sum(p ** 2))
    with pytest.raises(GradcheckUserCodeError, match="ValueError"):
        check_gradient(picky, np.array([1.0, 2.0]), lambda p: 2 * p, mode="full")


def test_vjp_cotangents_cannot_cancel_a_bias_column_to_zero():
    # a linear layer over a batch of 6: d<out, c>/db = c.sum(0), which +-1 cotangents made an exact 0
    # with probability 5/16 per column, hiding any error in that bias entry (issue 20 C.10)
    from pytest_gradcheck import check_vjp
    from pytest_gradcheck.numerics import vector

    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 3))
    p = {"W": rng.normal(size=(3, 4)), "b": rng.normal(size=4)}
    seen = []

    def fun(q):
        return X @ q["W"] + q["b"]

    def vjp(q, c, k=1.0):
        seen.append(np.asarray(c).sum(0))
        return {"W": X.T @ c, "b": k * c.sum(0)}

    for seed in range(12):
        assert check_vjp(fun, p, vjp, seed=seed, n_cotangents=1).status == "pass"
        wrong = check_vjp(fun, p, lambda q, c: vjp(q, c, 1.01), seed=seed, n_cotangents=1)
        assert wrong.status == "fail" and wrong.worst[0].leaf == "b", str(wrong)
    assert all((s != 0).all() for s in seen) and vector.N_COTANGENTS >= 1
