"""Issue 20, C.11 and C.12: what a report says about a failure agrees with the facts of the check.

The cases are tests/corpus/irregular_messages.py's; tests/test_diagnosis_consistency.py scans every
corpus report for contradictions, these tests pin the specific words."""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from pytest_gradcheck import check_gradient
from pytest_gradcheck.numerics import advice

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from corpus.irregular_messages import MESSAGES_BUGS, MESSAGES_CORRECT  # noqa: E402

CASES = {c.name: c for c in MESSAGES_CORRECT + MESSAGES_BUGS}


def run(name, **kw):
    c = CASES[name]
    return check_gradient(c.fun, c.params(), c.grad, **kw)


# ---------------------------------------------------------------- values near 1e300 (C.12)
@pytest.mark.parametrize("mode", ["full", "fast"])
@pytest.mark.parametrize("name,label", [("bug:msg:scaled_1e300_sum_sq_x3", "x1.5"), ("bug:msg:log_at_1e-300_x2", "x2")])
def test_a_wrong_gradient_near_1e300_is_diagnosed(name, label, mode):
    r = run(name, mode=mode)
    s = r.diagnosis["summary"]
    assert "no diagnosis" not in s and "NaN" not in s, s
    assert r.status == "fail", str(r)  # fast mode: its probes' tolerances overflowed to inf at 1e300
    assert "inf" not in str(r).replace("info", ""), str(r)
    assert r.diagnosis["kind"] == "bug"
    if mode == "full":
        assert r.diagnosis["pattern"]["params"]["label"] in (label, "+1e+300*params"), s


@pytest.mark.parametrize("name", ["msg:scaled_1e300_sum_sq", "msg:log_at_1e-300"])
def test_a_right_gradient_near_1e300_passes(name):
    assert run(name).status == "pass"


# ---------------------------------------------------------------- an epsilon guard (C.11)
@pytest.mark.parametrize("seed", range(4))
def test_an_epsilon_guard_is_named_as_a_tiny_relative_discrepancy(seed):
    c = CASES["bug:msg:log_epsilon_guard"]
    rng = np.random.default_rng(seed)
    p = {"conv_w": rng.uniform(0.003, 0.006, size=(3, 4)), "b": rng.normal(size=2)}
    r = check_gradient(c.fun, p, c.grad)
    if r.status == "fail":
        s = r.diagnosis["summary"]
        assert "The discrepancy is tiny" in s and "epsilon guard" in s, s
        assert "relative" in s and "rtol=1e-07" in s, s
        assert "'x1'" not in s and "finite_difference" not in r.diagnosis, s
        for pat in r.diagnosis["pattern"].values():
            assert pat["label"] != "x1"
    else:
        assert r.status == "pass", str(r)
    # the relevance floor the report proposes (and docs/verdict.md documents) accepts it
    assert check_gradient(c.fun, p, c.grad, rtol=1e-7).status == "pass"


def test_the_corpus_guard_case_fails_with_the_uniform_discrepancy_named():
    r = run("bug:msg:log_epsilon_guard")
    assert r.status == "fail", str(r)
    assert "The discrepancy is tiny" in r.diagnosis["summary"]


@pytest.mark.parametrize("name,label", [("bug:msg:log_loss_x1.01", "x1.01"), ("bug:msg:normalised_W_x2", "x2")])
def test_real_constant_factors_stay_constant_factors(name, label):
    r = run(name)
    assert r.status == "fail"
    leaf = CASES[name].bug_leaves[0]
    assert r.diagnosis["pattern"][leaf]["label"] == label, r.diagnosis["summary"]
    assert "finite_difference" not in r.diagnosis and "tiny" not in r.diagnosis["summary"]


def test_a_right_log_loss_passes():
    assert run("msg:log_loss").status == "pass"


# ---------------------------------------------------------------- advice (C.12)
def test_next_names_every_wrong_leaf():
    r = run("bug:msg:two_leaves_wrong")
    assert r.status == "fail"
    nxt = r.diagnosis["summary"].rpartition("Next:")[2]
    assert "'a'" in nxt and "'b'" in nxt, nxt
    assert run("msg:two_leaves").status == "pass"


def test_no_float64_advice_on_a_float64_check():
    r = run("msg:bias_before_normalisation")
    assert r.status in ("pass", "inconclusive"), str(r)
    text = str(r) + (r.diagnosis or {}).get("summary", "")
    assert "float64" not in text.replace("Compared", ""), text
    assert run("bug:msg:normalised_W_x2").status == "fail"


def test_float32_params_are_told_to_try_float64():
    c = CASES["msg:bias_before_normalisation"]
    p = {k: v.astype(np.float32) for k, v in c.params().items()}
    fun = lambda q: c.fun({k: np.asarray(v, np.float32) for k, v in q.items()})  # noqa: E731
    prob = SimpleNamespace(method="central", eps_a=np.full(12, np.finfo(np.float32).eps),
                           spec=SimpleNamespace(leaves=[SimpleNamespace(dtype_name="float32", dtype=np.float32)]),
                           ev=SimpleNamespace(eps_out=float(np.finfo(np.float32).eps)))
    assert "fun in float64" in advice.tries_for_unresolved(prob)
    r = check_gradient(fun, p, lambda q: {k: v.astype(np.float32) for k, v in c.grad(q).items()})
    assert r.status in ("pass", "inconclusive"), str(r)
    assert "float16" not in str(r) and "bfloat16" not in str(r)


def _problem(grad_dtype, leaf_dtype="float64", method="central"):
    return SimpleNamespace(method=method, eps_a=np.full(4, np.finfo(np.dtype(grad_dtype)).eps),
                           spec=SimpleNamespace(leaves=[SimpleNamespace(dtype_name=leaf_dtype, dtype=np.dtype(
                               leaf_dtype if leaf_dtype != "bfloat16" else "float32"))]),
                           ev=SimpleNamespace(eps_out=float(np.finfo(np.float64).eps)))


def test_advice_leaves_out_what_is_used():
    assert advice.tries_for_unresolved(_problem("float64")) == "method='complex' for complex-analytic code, or a larger eps"
    assert advice.tries_for_unresolved(_problem("float64", method="complex")) == "a larger eps"
    assert "fun in float64" in advice.tries_for_unresolved(_problem("float32", "float32"))
    assert advice.low_precision_note(_problem("float32", "float32")) == ""
    assert "float16" in advice.low_precision_note(_problem("float16", "float16"))
