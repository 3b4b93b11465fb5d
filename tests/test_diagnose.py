"""Diagnosis: error-vs-step classification and bug shapes (issue 4)."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from pytest_gradcheck import check_gradient
from pytest_gradcheck.numerics import diagnose as dg
from pytest_gradcheck.numerics.problem import Problem

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from corpus import BY_NAME  # noqa: E402

# drawn once at import; each test draws its own points from its own seeded generator, so that
# its values do not depend on which tests ran before it (-k, xdist, pytest-randomly)
_DATA = np.random.default_rng(0)
A = _DATA.standard_normal((12, 5))
Y = _DATA.standard_normal(12)


def linreg(w):
    r = A @ w - Y
    return float(r @ r / len(Y))


def linreg_grad(w):
    return 2 * A.T @ (A @ w - Y) / len(Y)


# ---------------------------------------------------------------- sweep shapes


def _sweep(fun, x, grad, i):
    problem = Problem(fun, x, grad, "central", None, None, None, 0)
    problem.sigma = float(np.finfo(float).eps) * abs(problem.ev.f0)
    pts = dg.sweep_entry(problem, i)
    a = problem.analytic[i]
    hs = [h for h, _, _ in pts]
    errs = [abs(a - d) for _, d, _ in pts]
    tol = [dg.SAFETY * 3 * problem.sigma / h + problem.floor[i] for h in hs]
    return hs, errs, tol, problem


def test_correct_entry_sweeps_as_a_v():
    w = np.random.default_rng(48).standard_normal(5)
    hs, errs, tol, problem = _sweep(lambda x: float(np.sum(np.exp(x) * np.sin(x))), w,
                                    lambda x: np.exp(x) * (np.sin(x) + np.cos(x)), 2)
    assert len(hs) == len(dg.DECADES) and problem.ev.n_evals >= 2 * len(dg.DECADES)
    assert dg.classify(hs, errs, tol) == "correct"
    k = int(np.argmin(errs))
    assert 0 < k < len(errs) - 1  # falls (truncation), bottoms out, rises (roundoff)
    assert errs[0] > 100 * errs[k] and errs[-1] > 10 * errs[k]


def test_bug_entry_sweeps_as_a_plateau():
    w = np.random.default_rng(59).standard_normal(5)
    hs, errs, tol, _ = _sweep(linreg, w, lambda x: linreg_grad(x) * 1.001, 1)
    assert dg.classify(hs, errs, tol) == "bug"
    assert max(errs) / min(errs) < 1.5


def test_kink_entry_sweeps_as_a_cliff():
    c = np.array([0.3, -0.2, 0.5])
    x = c + np.array([1e-7, 0.4, -0.3])  # entry 0 sits 1e-7 from the kink of |x - c|
    hs, errs, tol, _ = _sweep(lambda v: float(np.sum(np.abs(v - c))), x, lambda v: np.sign(v - c), 0)
    assert dg.classify(hs, errs, tol) == "kink"


def test_noise_curve_is_classified_as_noise():
    hs = [10.0 ** -k for k in range(1, 11)]
    errs = [1e-3, 3e-6, 2e-3, 1e-7, 5e-4, 2e-2, 1e-6, 3e-3, 1e-5, 4e-2]
    assert dg.classify(hs, errs, [1e-9] * 10) == "noise"


# ---------------------------------------------------------------- diagnoses of real checks


def _diag(name, mode="full"):
    case = BY_NAME[name]
    r = check_gradient(case.fun, case.params(), case.grad, mode=mode)
    assert r.status == "fail"
    d = r.diagnosis
    json.dumps(d)  # JSON-safe
    assert d["summary"] and "\n" not in d["summary"]
    return r, d


@pytest.mark.parametrize("name,leaf,label", [
    ("bug:linreg_missing_factor_2", "w", "x0.5"),
    ("bug:logreg_sign_flip", "w", "x-1"),
    ("bug:gauss_nll_logvar_missing_half", "logvar", "x2"),
    ("bug:linreg_missing_1_over_m", "w", "x20"),
    ("bug:tanh_mlp_missing_bias_grad", "[0]['b']", "x0"),
    ("bug:attention_missing_sqrt_d", "Wq", "xsqrt(3)"),
])
def test_constant_factor_is_named(name, leaf, label):
    r, d = _diag(name)
    assert d["kind"] == "bug"
    assert d["pattern"][leaf]["pattern"] == "factor"
    assert d["pattern"][leaf]["label"] == label
    assert label in d["summary"]


def test_factor_one_over_batch_dimension_is_named():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((7, 4))
    t = rng.standard_normal(7)
    params = {"w": rng.standard_normal(4), "bias": np.zeros(7)}  # a leaf with the batch dimension

    def fun(p):
        r = X @ p["w"] + p["bias"] - t
        return float(np.mean(r ** 2))

    def grad(p):
        r = X @ p["w"] + p["bias"] - t
        return {"w": 2 * X.T @ r / 7 / 7, "bias": 2 * r / 7}  # averaged twice over the batch of 7

    r = check_gradient(fun, params, grad)
    assert r.diagnosis["pattern"]["w"]["label"] == "x1/7"


@pytest.mark.parametrize("name,leaf,pattern", [
    ("bug:logdet_missing_transpose", "A", "transposed"),
    ("bug:rnn_transposed_W", "W", "transposed"),
    ("bug:softmax_rolled_W", "W", "rolled"),
    ("bug:embedding_scatter_off_by_one", "E", "rolled"),
    ("bug:conv2d_kernel_flipped", "K", "flipped"),
    ("bug:attention_swapped_Wq_Wk", "Wq", "swapped"),
    ("bug:nested_swapped_enc_W", "enc[0]['W']", "swapped"),
    ("bug:logreg_missing_l2", "w", "missing_term"),
    ("bug:two_layer_missing_l2_W1", "W1", "missing_term"),
])
def test_structural_bug_shapes_are_recognised(name, leaf, pattern):
    r, d = _diag(name)
    assert d["pattern"][leaf]["pattern"] == pattern, d["pattern"]
    assert d["entries"] and d["entries"][0]["classification"] == "bug"
    assert d["pattern"][leaf]["explanation"] in d["summary"], (d["pattern"], d["summary"])


def test_missing_regularisation_names_lambda():
    r, d = _diag("bug:logreg_missing_l2")
    p = d["pattern"]["w"]
    assert p["lambda"] == pytest.approx(0.1, rel=1e-3)  # analytic lacks +0.1*w
    assert "left out" in p["explanation"]


def test_permuted_entries():
    rng = np.random.default_rng(3)
    c = np.arange(1.0, 7.0)
    perm = np.array([1, 0, 3, 2, 5, 4])
    r = check_gradient(lambda x: float(np.sum(c * x ** 2)), 1.0 + 0.01 * rng.standard_normal(6),
                       lambda x: (2 * c * x)[perm])
    assert r.diagnosis["pattern"]["params"]["pattern"] == "permuted"


def test_constant_offset():
    r = check_gradient(lambda x: float(np.sum(np.sin(x))), np.linspace(0.1, 1.0, 8), lambda x: np.cos(x) + 0.25)
    assert r.diagnosis["pattern"]["params"]["pattern"] == "offset"
    assert r.diagnosis["pattern"]["params"]["offset"] == pytest.approx(0.25)


def test_partial_batch_factor_k_over_m():
    assert dg.name_factor(3 / 8, [8])[0] == "x3/8"
    assert "only 3 of 8" in dg.name_factor(3 / 8, [8])[1]


def test_inconclusive_kink_is_diagnosed_as_a_kink():
    c = np.array([0.3, -0.2, 0.5])
    x = c + np.array([0.0, 0.4, -0.3])  # entry 0 exactly at the kink; 0 is a valid subgradient
    r = check_gradient(lambda v: float(np.sum(np.maximum(v - c, 0.0))), x, lambda v: (v > c).astype(float))
    assert r.status == "inconclusive", str(r)
    assert r.diagnosis["kind"] == "kink"
    assert r.diagnosis["entries"][0]["classification"] == "kink"
    assert "kink" in r.diagnosis["summary"]


def test_diagnosis_shape_for_the_html_reporter_and_cost():
    r, d = _diag("bug:softmax_one_entry_5pct")
    assert set(d) >= {"kind", "summary", "entries", "pattern"}
    e = d["entries"][0]
    assert set(e) >= {"leaf", "index", "classification", "sweep"}
    assert all(set(p) == {"h", "error"} for p in e["sweep"])
    hs = [p["h"] for p in e["sweep"]]
    assert hs == sorted(hs, reverse=True) and hs[0] / hs[-1] > 1e8
    assert len(d["entries"]) <= dg.SWEEP_ENTRIES


def test_fast_mode_diagnosis_uses_only_checked_entries():
    r, d = _diag("bug:logreg_sign_flip", mode="fast")
    assert d["pattern"]["w"]["label"] == "x-1"
    assert "fast mode" in d["summary"]
    assert d["pattern"]["w"]["n_entries"] <= r.n_checked


def test_diagnosis_never_raises():
    class Broken:
        spec = None
    out = dg.diagnose(Broken(), None)
    assert out["kind"] == "unknown" and out["summary"]


def test_small_bug_in_a_large_fast_check_is_a_plateau_not_roundoff():
    from test_fast import _wrong_entry, logistic
    fun, grad, w = logistic(5000, seed=1)
    r = check_gradient(fun, w, _wrong_entry(grad, 1234, 1.05), mode="fast")
    assert r.status == "fail"
    e = r.diagnosis["entries"][0]
    assert (e["leaf"], e["index"]) == ("params", [1234])
    assert e["classification"] == "bug"
    errs = [p["error"] for p in e["sweep"]]
    assert max(errs) / min(errs) < 1.1


def test_kink_with_an_invalid_subgradient_is_called_a_bug_at_the_kink():
    c = np.array([0.3, -0.2, 0.5])
    x = c + np.array([0.0, 0.4, -0.3])
    r = check_gradient(lambda v: float(np.sum(np.abs(v - c))), x, lambda v: np.where(v == c, 2.0, np.sign(v - c)))
    assert r.status == "fail"
    s = r.diagnosis["summary"]
    assert "not a valid subgradient" in s and "accept 'inconclusive'" not in s


# ---------------------------------------------------------------- a gradient that is a finite difference


@pytest.mark.parametrize("mode", ["full", "fast"])
@pytest.mark.parametrize("name,scheme,step,relative", [
    ("logreg_forward_difference_1e-06", "forward", 1e-6, False),
    ("logreg_forward_difference_0.0001", "forward", 1e-4, False),
    ("logreg_backward_difference_1e-05_relative", "backward", 1e-5, True),
])
def test_a_finite_difference_gradient_is_named(name, scheme, step, relative, mode):
    from corpus.real_code import REAL_BUGS
    case = next(c for c in REAL_BUGS if c.name == name)
    r = check_gradient(case.fun, case.params(), case.grad, mode=mode)
    assert r.status == "fail"
    fd = r.diagnosis["finite_difference"]
    assert (fd["scheme"], fd["relative"]) == (scheme, relative)
    assert fd["step"] == pytest.approx(step, rel=0.05)
    assert f"looks like a {scheme} difference with step ~{step:.1g}" in r.diagnosis["summary"]
    assert r.diagnosis["pattern"] == {}  # the finite difference explains it all: no other shape


def test_a_small_factor_is_not_taken_for_a_finite_difference():
    from corpus.real_code import REAL_BUGS
    case = next(c for c in REAL_BUGS if c.name == "logreg_forward_difference_1e-06")
    p = case.params()
    exact = check_gradient(case.fun, p, lambda w: _exact_logreg_grad(case, w))
    assert exact.status == "pass", str(exact)
    r = check_gradient(case.fun, p, lambda w: _exact_logreg_grad(case, w) * (1 + 3e-6))
    assert r.status == "fail"
    assert "finite_difference" not in r.diagnosis and "looks like a" not in r.diagnosis["summary"]


def _exact_logreg_grad(case, w):
    # the model of real_code._logreg_finite_difference, differentiated by hand: read X, y back from
    # the closure of its fun
    cells = dict(zip(case.fun.__code__.co_freevars, (c.cell_contents for c in case.fun.__closure__)))
    X, y = cells["X"], cells["y"]
    p = 1.0 / (1.0 + np.exp(-(X @ w)))
    return X.T @ (p - y) / len(y) + 0.1 * w


def test_ordinary_bugs_are_not_taken_for_finite_differences():
    for name in ("bug:logreg_missing_l2", "bug:linreg_missing_bias_in_backward", "bug:softmax_one_entry_5pct"):
        r = check_gradient(BY_NAME[name].fun, BY_NAME[name].params(), BY_NAME[name].grad)
        assert r.status == "fail" and "finite_difference" not in r.diagnosis, name
