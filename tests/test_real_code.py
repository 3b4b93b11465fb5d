"""Verdicts on patterns of real library code (tests/corpus/real_code.py).

A correct gradient from real code is never reported as FAILED, in full, fast
and auto mode: it passes, or it is an honest "inconclusive" that names its
cause.  One injected bug per class still fails, at the leaf where it is.
"""

from __future__ import annotations

import copy
import os
import sys
import warnings

import numpy as np
import pytest

from pytest_gradcheck import check_gradient

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from corpus.anchors import leaves_of  # noqa: E402
from corpus.real_code import REAL_BUGS, REAL_CORRECT  # noqa: E402

MODES = ("full", "fast", "auto")

# words an inconclusive verdict of each class must use to name its cause
CAUSE_WORDS = {
    "staircase": ("piecewise constant",),
    "multi_kink": ("kink",),
    "underflow": ("underflow",),
}


def _check(case, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checker's own numerics emit no warnings
        return check_gradient(case.fun, case.params(), case.grad, **kw)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", REAL_CORRECT, ids=lambda c: c.name)
def test_correct_real_code_is_never_failed(case, mode):
    p = case.params()
    before = copy.deepcopy(p)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = check_gradient(case.fun, p, case.grad, mode=mode)
    assert r.status in case.ok, f"{case.name} ({case.cls}) is correct:\n{r}"
    if r.status == "inconclusive":
        text = str(r).lower()
        words = CAUSE_WORDS.get(case.cls, ())
        assert any(w in text for w in words), f"{case.name}: the inconclusive verdict must name its cause:\n{r}"
    for x, y in zip(leaves_of(before), leaves_of(p)):
        assert np.array_equal(x, y, equal_nan=True), f"{case.name}: params were modified"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bug", REAL_BUGS, ids=lambda c: c.name)
def test_bug_in_real_code_pattern_fails(bug, mode):
    r = _check(bug, mode=mode)
    assert r.status == "fail" and not r.passed, f"{bug.name} missed in {mode} mode:\n{r}"
    if bug.bug_leaves and r.worst:
        assert r.worst[0].leaf in bug.bug_leaves, f"{bug.name}: worst entry at {r.worst[0].where}\n{r}"


def test_every_class_has_several_cases_and_a_bug():
    classes = {c.cls for c in REAL_CORRECT}
    assert classes >= {"staircase", "multi_kink", "underflow", "rebinding", "non_finite", "value_and_grad"}
    for cls in classes:
        assert sum(c.cls == cls for c in REAL_CORRECT) >= 2, cls
        assert any(b.cls == cls for b in REAL_BUGS), cls


def test_float32_cast_staircase_says_what_to_do():
    case = next(c for c in REAL_CORRECT if c.name == "logreg_f32_cast_l2")
    r = _check(case, mode="full")
    if r.status == "inconclusive":
        text = str(r)
        assert "piecewise constant" in text and "float32" in text, text


def test_non_finite_entries_are_held_fixed_and_counted():
    case = next(c for c in REAL_CORRECT if c.name == "masked_softmax_neg_inf")
    r = _check(case, mode="full")
    n_inf = 10  # strict upper triangle of a 5x5 score matrix
    assert r.status == "pass"
    assert r.n_checked == r.n_params - n_inf
    assert "not checked" in str(r) and str(n_inf) in str(r)
    d = r.to_dict()
    assert d["n_checked"] == d["n_params"] - n_inf


def test_value_and_grad_calls_fun_once_per_point():
    case = next(c for c in REAL_CORRECT if c.name == "value_and_grad_rosenbrock")
    calls = []

    def fun(x):
        calls.append(1)
        return case.fun(x)

    r = check_gradient(fun, case.params(), True, mode="full")
    assert r.status == "pass"
    # the gradient comes from the call at params: no separate grad calls beyond the
    # checker's two reads of it (nondeterminism), and one call per evaluation
    assert len(calls) <= r.n_evals + 3


def test_grad_mutating_a_captured_array_is_named_as_mutation():
    """cs231n-style ReLU backward that zeroes the upstream gradient in place."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 3))
    R = rng.normal(size=(4, 3))             # upstream gradient the layer test passes

    def fun(p):
        return float(np.sum(np.maximum(p, 0) * R))

    def grad(p):
        dout = R
        dout[p <= 0] = 0                     # modifies the caller's R
        return dout

    from pytest_gradcheck import GradcheckInputError

    with pytest.raises(GradcheckInputError, match=r"(?i)modif|mutat"):
        check_gradient(fun, x, grad, mode="full")
