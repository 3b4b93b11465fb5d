"""check_hessian and check_gradgrad (issue 4)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from pytest_gradcheck import GradcheckInputError
from pytest_gradcheck.numerics.second_order import check_gradgrad, check_hessian

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from corpus import BY_NAME, CORRECT  # noqa: E402
from test_vector import conv_backward, conv_forward  # noqa: E402

# the models' fixed data is drawn at import; each params() draws from its own seeded generator,
# so that a test's point does not depend on which tests ran before it (-k, xdist, pytest-randomly)
RNG = np.random.default_rng(7)


# ---------------------------------------------------------------- models with hand-written second derivatives
class Logistic:
    X = RNG.standard_normal((25, 6))
    y = (RNG.random(25) < 0.5).astype(float)
    lam = 0.05

    @classmethod
    def fun(cls, w):
        z = cls.X @ w
        return float(np.mean(np.logaddexp(0, z) - cls.y * z) + 0.5 * cls.lam * w @ w)

    @classmethod
    def grad(cls, w):
        s = 1 / (1 + np.exp(-(cls.X @ w)))
        return cls.X.T @ (s - cls.y) / len(cls.y) + cls.lam * w

    @classmethod
    def hess(cls, w, bug=None):
        s = 1 / (1 + np.exp(-(cls.X @ w)))
        d = s * (1 - s) if bug != "s_squared" else s * s
        H = cls.X.T @ (cls.X * d[:, None]) / len(cls.y)
        return H + (cls.lam * np.eye(len(w)) if bug != "missing_l2" else 0)

    @staticmethod
    def params():
        return np.random.default_rng(46).standard_normal(6)


class SoftmaxXent:
    """Cross-entropy of softmax(Z) w.r.t. the logits Z (N x C): H v = (P*V - P*sum(P*V)) / N per row."""
    labels = np.array([0, 2, 1, 3, 2])

    @classmethod
    def fun(cls, Z):
        Zs = Z - Z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(Zs).sum(axis=1))
        return float(np.mean(lse - Zs[np.arange(len(Z)), cls.labels]))

    @classmethod
    def grad(cls, Z):
        P = np.exp(Z - Z.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
        P[np.arange(len(Z)), cls.labels] -= 1
        return P / len(Z)

    @classmethod
    def hvp(cls, Z, V, bug=None):
        P = np.exp(Z - Z.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
        if bug == "diagonal_only":
            return P * (1 - P) * V / len(Z)
        return (P * V - P * np.sum(P * V, axis=1, keepdims=True)) / len(Z)

    @staticmethod
    def params():
        return np.random.default_rng(76).standard_normal((5, 4))


class ConvLSQ:
    """0.5 ||conv(x, k) - t||^2 in the kernel k: H v = conv_backward(conv(x, v))."""
    x = RNG.standard_normal((7, 6))
    t = RNG.standard_normal((5, 5))

    @classmethod
    def fun(cls, k):
        r = conv_forward(cls.x, k)[0] - cls.t
        return 0.5 * float(np.sum(r * r))

    @classmethod
    def grad(cls, k):
        out, cache = conv_forward(cls.x, k)
        return conv_backward(out - cls.t, cache)[1]

    @classmethod
    def hvp(cls, k, v, bug=None):
        out, cache = conv_forward(cls.x, v)
        return conv_backward(out, cache, bug=bug)[1]

    @staticmethod
    def params():
        return np.random.default_rng(101).standard_normal((3, 2))


class AffineMSE:
    """mean((X w + b - t)^2) with params {"w", "b"}: explicit Hessian in flat order [w..., b]."""
    X = RNG.standard_normal((12, 4))
    t = RNG.standard_normal(12)

    @classmethod
    def fun(cls, p):
        r = cls.X @ p["w"] + p["b"] - cls.t
        return float(np.mean(r * r))

    @classmethod
    def grad(cls, p):
        r = cls.X @ p["w"] + p["b"] - cls.t
        return {"w": 2 * cls.X.T @ r / 12, "b": 2 * np.sum(r) / 12}

    @classmethod
    def hess(cls, p, bug=None):
        A = np.hstack([cls.X, np.ones((12, 1))])
        H = 2 * A.T @ A / 12
        if bug == "missing_factor_2":
            H = H / 2
        return H

    @staticmethod
    def params():
        return {"w": np.random.default_rng(129).standard_normal(4), "b": 0.3}


HESS_CASES = [
    (Logistic, "hess", "s_squared"),
    (Logistic, "hess", "missing_l2"),
    (SoftmaxXent, "hvp", "diagonal_only"),
    (ConvLSQ, "hvp", "flipped_kernel"),
    (AffineMSE, "hess", "missing_factor_2"),
]


@pytest.mark.parametrize("with_grad", [True, False], ids=["with-grad", "from-fun"])
@pytest.mark.parametrize("model,which,bug", HESS_CASES, ids=[f"{m.__name__}-{b}" for m, _, b in HESS_CASES])
def test_hessian_correct_passes_and_bug_fails(model, which, bug, with_grad):
    p = model.params()
    grad = model.grad if with_grad else None
    good = getattr(model, which)
    r = check_hessian(model.fun, p, grad=grad, **{which: good})
    assert r.status == "pass" and r.kind == "hessian", str(r)
    bad = check_hessian(model.fun, p, grad=grad, **{which: lambda *a: good(*a, bug=bug)})
    assert bad.status == "fail", str(bad)
    assert bad.kind == "hessian"


def test_explicit_hessian_with_grad_names_the_entry():
    p = Logistic.params()

    def hess(w):
        H = Logistic.hess(w).copy()
        H[1, 4] += 0.05 * abs(H[1, 4]) + 1e-3
        return H

    r = check_hessian(Logistic.fun, p, hess=hess, grad=Logistic.grad)
    assert r.status == "fail" and r.counts["fail"] == 1
    assert r.worst[0].leaf == "dgrad/dparams" and r.worst[0].index == (1, 4)
    assert any("not symmetric" in m for m in r.messages)


def test_hessian_fast_mode_from_fun():
    p = SoftmaxXent.params()
    r = check_hessian(SoftmaxXent.fun, p, hvp=SoftmaxXent.hvp, mode="fast")
    assert r.status == "pass" and r.mode == "fast"
    bad = check_hessian(SoftmaxXent.fun, p, hvp=lambda Z, V: SoftmaxXent.hvp(Z, V, bug="diagonal_only"), mode="fast")
    assert bad.status == "fail"


def test_hessian_arguments():
    with pytest.raises(GradcheckInputError, match="exactly one"):
        check_hessian(Logistic.fun, Logistic.params())
    with pytest.raises(GradcheckInputError, match="exactly one"):
        check_hessian(Logistic.fun, Logistic.params(), hess=Logistic.hess, hvp=lambda w, v: v)
    with pytest.raises(GradcheckInputError, match=r"\(6, 6\)"):
        check_hessian(Logistic.fun, Logistic.params(), hess=lambda w: np.eye(5))


# ---------------------------------------------------------------- gradgrad
SMALL_CORRECT = [c for c in CORRECT if not c.kink and not c.tags and c.model != "large_offsets"][:12]


@pytest.mark.parametrize("case", SMALL_CORRECT, ids=lambda c: c.name)
def test_gradgrad_passes_correct_corpus_gradients(case):
    r = check_gradgrad(case.fun, case.params(), case.grad)
    assert r.status in ("pass", "inconclusive"), str(r)
    assert r.kind == "gradgrad"
    assert "symmetry of grad's Jacobian: pass" in r.messages[-1]


def test_gradgrad_catches_an_unsymmetrised_quadratic_from_grad_alone():
    bug = BY_NAME["bug:quadratic_unsymmetrised"]
    r = check_gradgrad(bug.fun, bug.params(), bug.grad)
    assert r.status == "fail"
    assert "symmetry of grad's Jacobian: fail" in r.messages[-1]
    # the symmetry part needs no fun: a fun that agrees with nothing still shows the asymmetry
    from pytest_gradcheck.numerics.second_order import _symmetry
    s = _symmetry(bug.grad, bug.params(), "central", None, None, None, 0)
    assert s.status == "fail" and "not be the gradient" in s.diagnosis["summary"]
    good = BY_NAME["quadratic_form"]
    assert _symmetry(good.grad, good.params(), "central", None, None, None, 0).status == "pass"


def test_gradgrad_with_hvp():
    p = SoftmaxXent.params()
    r = check_gradgrad(SoftmaxXent.fun, p, SoftmaxXent.grad, hvp=SoftmaxXent.hvp)
    assert r.status == "pass", str(r)
    assert "hvp vs grad: pass" in r.messages[-1]
    bad = check_gradgrad(SoftmaxXent.fun, p, SoftmaxXent.grad,
                         hvp=lambda Z, V: SoftmaxXent.hvp(Z, V, bug="diagonal_only"))
    assert bad.status == "fail" and "hvp vs grad: fail" in bad.messages[-1]


def test_float32_hessian_with_its_gradient_has_no_false_failure():
    # hess was cast to float64 before check_jacobian read its dtype: float32 rounding judged as float64's
    x0 = np.linspace(-1, 1, 6).astype(np.float32)

    def f(x):
        return float(np.sum(np.cos(np.asarray(x, dtype=np.float64)) * 2.0))

    def grad(x):  # in its input's dtype: the finite differences of grad run in float64
        x = np.asarray(x)
        return (-2.0 * np.sin(x)).astype(x.dtype)

    def hess(x):
        return np.diag(-2.0 * np.cos(np.asarray(x, dtype=np.float32))).astype(np.float32)

    assert check_hessian(f, x0, hess=hess, grad=grad).status == "pass"
    assert check_hessian(f, x0, hess=lambda x: hess(x) * 1.05, grad=grad).status == "fail"
