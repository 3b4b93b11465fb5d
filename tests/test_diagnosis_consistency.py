"""No report contradicts its own status (issue 12.8): over the whole corpus, in full and fast mode,
and on vector checks, the diagnosis explains the verdict's own decision.

* a failure is never cleared ("step-size artefact", "roundoff", "finite differences are
  unreliable", "nothing may be wrong");
* a pass or an inconclusive check never blames the analytic value ("the analytic value is
  wrong", "bug");
* an inconclusive check names the cause its entries' reasons and its messages give;
* every reason the verdict writes is one the diagnosis can read (causes.REASON_PREFIXES).

The phrases are numerics/causes.py's, the ones the diagnosis composes its sentences from.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from pytest_gradcheck import check_gradient
from pytest_gradcheck.numerics import causes as cz
from pytest_gradcheck.numerics.vector import check_jacobian, check_jvp, check_vjp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from corpus import BUGS, CORRECT  # noqa: E402
from corpus.real_code import REAL_BUGS, REAL_CORRECT  # noqa: E402

CASES = [("corpus", c) for c in CORRECT + BUGS] + [("real", c) for c in REAL_CORRECT + REAL_BUGS]


def given_causes(r):
    """The causes r's own reasons and messages give for its inconclusive entries (independently of
    the diagnosis): every reason must be readable."""
    ent = r.entries or {}
    verdict = np.asarray(ent.get("verdict"))
    checked = np.asarray(ent.get("checked", np.ones(verdict.size, dtype=bool)), dtype=bool)
    reasons = ent.get("reasons") or {}
    found = set()
    for i in np.flatnonzero(checked & (verdict != 0)).tolist():
        reason = reasons.get(i, "")
        if reason:
            assert any(reason.startswith(p) for p, _, _ in cz.REASON_PREFIXES), f"unreadable reason: {reason!r}"
        name = "fail" if verdict[i] == 1 else "inconclusive"
        cause = cz.entry_cause(name, reason)
        if name == "inconclusive" and cause is not None:
            found.add(cause)
    return found | set(cz.message_causes(r.messages))


def assert_consistent(r, what):
    d = r.diagnosis
    if r.status == "pass":
        assert d is None or not cz.contradictions("pass", d.get("summary", "")), what
        return
    assert d and d.get("summary"), f"{what}: a {r.status} without a diagnosis"
    summary = d["summary"]
    for text in (summary, str(r)):
        bad = cz.contradictions(r.status, text)
        assert not bad, f"{what}: a {r.status} report says {bad}:\n{r}"
    given = given_causes(r)
    if r.status == "fail":
        assert d["kind"] in ("bug", "nondeterministic"), f"{what}: {d['kind']}\n{r}"
        assert cz.BLAME in summary or d["kind"] == "nondeterministic", f"{what}:\n{r}"
    else:
        cause = d["cause"]
        assert cause in cz.INCONCLUSIVE_CAUSES, f"{what}: {cause}"
        assert cz.CAUSE_WORDS[cause] in summary, f"{what}: cause {cause} not named:\n{summary}"
        if given:
            assert cause in given, f"{what}: the diagnosis says {cause}; the reasons and messages say {given}\n{r}"
        else:  # entries without reasons (vector checks): judged from their numbers
            assert cause in (cz.UNRESOLVED, cz.UNSETTLED), f"{what}: {cause}\n{r}"


@pytest.mark.parametrize("mode", ["full", "fast"])
@pytest.mark.parametrize("group,case", CASES, ids=lambda c: getattr(c, "name", c))
def test_no_report_contradicts_its_status(group, case, mode):
    r = check_gradient(case.fun, case.params(), case.grad, mode=mode)
    assert_consistent(r, f"{group}:{case.name} ({mode})")


# ---------------------------------------------------------------- vector checks
def _gp_kernel(bug=None):
    """A squared-exponential kernel matrix of 5 points as a function of its hyperparameters
    (log lengthscale, log variance), and its hand-written hyperparameter Jacobian (n, n, 2), as
    Gaussian-process libraries write it for the marginal likelihood's gradient."""
    X = np.random.default_rng(7).normal(size=(5, 2))
    D2 = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)

    def fun(theta):
        ell, var = np.exp(theta)
        return var * np.exp(-0.5 * D2 / ell ** 2)

    def jac(theta):
        ell, var = np.exp(theta)
        K = var * np.exp(-0.5 * D2 / ell ** 2)
        d_ell = K * D2 / ell ** 2 * (0.5 if bug == "half" else 1.0)
        return np.stack([d_ell, K], axis=-1)

    return fun, jac, np.array([0.3, -0.2])


def _relu_layer():
    """A dense ReLU layer with zero bias and an all-zero input row: pre-activations exactly 0."""
    W = np.random.default_rng(8).normal(size=(3, 4))
    x = np.zeros((2, 3))
    x[1] = [0.5, -1.0, 0.7]

    def fun(x):
        return np.maximum(x @ W, 0.0)

    def vjp(x, g):
        return (g * (x @ W > 0)) @ W.T

    def jvp(x, t):
        return (t @ W) * (x @ W > 0)

    return fun, vjp, jvp, x


@pytest.mark.parametrize("mode", ["full", "fast"])
@pytest.mark.parametrize("bug", [None, "half"])
def test_gp_kernel_jacobian_names_jac_not_a_backward_pass(bug, mode):
    fun, jac, theta = _gp_kernel(bug)
    r = check_jacobian(fun, theta, jac, mode=mode)
    assert r.status == ("fail" if bug else "pass"), str(r)
    assert_consistent(r, f"gp kernel {bug} {mode}")
    if bug:
        s = r.diagnosis["summary"]
        assert "backward pass" not in s and "jac function" in s, s


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_vjp_checks_at_kinks_are_consistent(mode):
    fun, vjp, _, x = _relu_layer()
    r = check_vjp(fun, x, vjp, mode=mode)
    assert r.status in ("pass", "inconclusive"), str(r)
    assert_consistent(r, f"vjp {mode}")
    r = check_vjp(fun, x, lambda x, g: 2 * vjp(x, g), mode=mode)
    assert r.status == "fail"
    assert_consistent(r, f"vjp x2 {mode}")
    assert "your vjp function" in r.diagnosis["summary"]


def test_jvp_at_a_kink_is_not_failed():
    fun, _, jvp, x = _relu_layer()
    r = check_jvp(fun, x, jvp)
    assert_consistent(r, "jvp")
    assert r.status != "fail", str(r)


def test_a_wrong_jvp_names_the_jvp_function():
    fun, _, jvp, x = _relu_layer()
    x = x + 0.3  # off the kinks
    r = check_jvp(fun, x, lambda x, t: 2 * jvp(x, t))
    assert r.status == "fail"
    assert_consistent(r, "jvp x2")
    assert "your jvp function" in r.diagnosis["summary"]


def test_gradient_names_what_wrote_it():
    w = np.array([0.4, -1.3, 2.0])

    def fun(x):
        return float(np.sum(np.sin(x)))

    r = check_gradient(fun, w, lambda x: 2 * np.cos(x))
    assert "your grad function" in r.diagnosis["summary"]
    r = check_gradient(lambda x: (fun(x), 2 * np.cos(x)), w, True)
    assert "the gradient your fun returns" in r.diagnosis["summary"]


def test_contradiction_phrases_are_what_the_diagnosis_uses():
    # the words each cause must show are in the sentences the diagnosis writes for it
    from pytest_gradcheck.numerics import diagnose as dg

    class P:
        method = "central"
    for cause in cz.INCONCLUSIVE_CAUSES:
        assert cz.CAUSE_WORDS[cause] in dg._explain(cause, 3, P()), cause
        assert not cz.contradictions("inconclusive", dg._explain(cause, 3, P())), cause
    for cause in (cz.BUG, cz.BUG_AT_KINK):
        assert cz.BLAME in dg._explain(cause, 3, P())
    assert cz.contradictions("fail", "the disagreement was a step-size artefact") == ["step-size artefact"]
    assert cz.contradictions("inconclusive", "this is a bug at the kink") == ["bug"]
    assert cz.contradictions("inconclusive", "debugging") == []


def test_check_function_names_the_functions_backward():
    torch = pytest.importorskip("torch")
    from pytest_gradcheck import check_function

    class Square(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            x, = ctx.saved_tensors
            return g * x  # the factor 2 is missing

    r = check_function(Square, torch.linspace(0.5, 2.0, 5, dtype=torch.float64).requires_grad_())
    assert r.status == "fail"
    assert_consistent(r, "check_function")
    assert "Square.backward" in r.diagnosis["summary"] and "grad function" not in r.diagnosis["summary"]
