"""Irregular points of precision (issue 20 A.2, C.10, C.13; issue 24 items 1-2).

Cases in the style of real_code.py (``RealCase``): a gradient made of roundoff
(a float32 derivative computed by cancellation, as float32 ``erfcx``/``dawsn``
at large x), an exact zero behind a normalisation (a bias before batch norm),
a float32 gradient of float64 code, and values at the ends of the float range
whose finite differences resolve nothing.

``IRREGULAR_CORRECT``: correct gradients; ``ok`` lists the exact statuses a
sound checker may give (an entry whose tolerance is not below the values
compared is "inconclusive", never "pass").  ``IRREGULAR_BUGS``: wrong gradients;
``ok`` likewise ("fail", or "inconclusive" where no finite difference can tell,
never "pass").  Used by tests/test_irregular_precision.py and
benchmarks/bench_core.py (section 3c).
"""

from __future__ import annotations

import numpy as np

from .real_code import RealCase

IRREGULAR_CORRECT: list[RealCase] = []
IRREGULAR_BUGS: list[RealCase] = []


def _add(case: RealCase) -> RealCase:
    (IRREGULAR_BUGS if case.kind == "bug" else IRREGULAR_CORRECT).append(case)
    return case


def _roundoff(x, bug=None):
    """d/dx [sqrt(x^2 + 1) - x] = x/sqrt(x^2 + 1) - 1 ~ -1/(2x^2), computed in float32 by cancellation:
    at x ~ 3e3 the float32 result is roundoff (0 or ~1e-7) while the true value is ~5e-8.  fun upcasts
    to float64 (the checker's finite differences resolve it), as jax's float32 erfcx did at 1e5."""
    def fun(p):
        v = np.asarray(p, dtype=np.float64)
        return float(np.sum(np.sqrt(v * v + 1.0) - v))

    def grad(p):
        v = np.asarray(p, dtype=np.float32)
        g = v / np.sqrt(v * v + np.float32(1.0)) - np.float32(1.0)
        return -g if bug == "sign" else g

    name = f"cancellation_f32_x{x[0]:g}" + (f":{bug}" if bug else "")
    return _add(RealCase(name, "roundoff", fun, grad, lambda: np.array(x, dtype=np.float32),
                         kind="bug" if bug else "correct", ok=("fail", "inconclusive") if bug else ("inconclusive",),
                         note="a float32 gradient that is nothing but roundoff: unresolved, never pass"))


def _roundoff_beside_resolved(bug=None):
    """The same cancellation beside an entry of size 0.5: the roundoff entry's tolerance is far below
    the gradient's typical size, so it is verified ~0 (pass); a bug in the resolved entry fails."""
    def fun(p):
        v = np.asarray(p, dtype=np.float64)
        return float(np.sum(np.sqrt(v * v + 1.0) - v))

    def grad(p):
        v = np.asarray(p, dtype=np.float32)
        g = v / np.sqrt(v * v + np.float32(1.0)) - np.float32(1.0)
        if bug == "factor":
            g = g.copy()
            g[1] *= np.float32(1.01)
        return g

    return _add(RealCase("cancellation_f32_beside_resolved" + (f":{bug}" if bug else ""), "roundoff", fun, grad,
                         lambda: np.array([3e3, 0.5, -0.7], dtype=np.float32),
                         kind="bug" if bug else "correct", ok=("fail",) if bug else ("pass",),
                         bug_leaves=("params",) if bug else ()))


def _bias_before_norm(seed, bug=None):
    """A linear layer's bias right before a batch normalisation: d f/d b = 0 exactly (the mean removes
    it); the hand-written backward gives roundoff there.  Both sides zero within noise: pass."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(8, 4))
    C = rng.normal(size=(8, 3))

    def parts(p):
        z = X @ p["W"] + p["b"]
        mu = z.mean(0)
        s = np.sqrt(((z - mu) ** 2).mean(0) + 1e-5)
        return (z - mu) / s, s

    def fun(p):
        y, _ = parts(p)
        return float(np.sum(C * np.tanh(y)))

    def grad(p):
        y, s = parts(p)
        dy = C * (1.0 - np.tanh(y) ** 2)
        dz = (dy - dy.mean(0) - y * (dy * y).mean(0)) / s
        dW = X.T @ dz
        if bug == "W_factor":
            dW = dW * 1.01
        db = dz.sum(0) + (0.01 if bug == "b_nonzero" else 0.0)  # a bias gradient that is not ~0
        return {"W": dW, "b": db}

    def params():
        r = np.random.default_rng(seed + 1)
        return {"W": r.normal(size=(4, 3)), "b": r.normal(size=3)}

    return _add(RealCase(f"bias_before_batchnorm_s{seed}" + (f":{bug}" if bug else ""), "exact_zero", fun, grad,
                         params, kind="bug" if bug else "correct", ok=("fail",) if bug else ("pass",),
                         bug_leaves=(("b",) if bug == "b_nonzero" else ("W",)) if bug else ()))


def _f32_grad_of_f64(bug=None):
    """float64 code whose grad casts one leaf to float32: judged at float32's precision, with a note."""
    rng = np.random.default_rng(7)
    A = rng.normal(size=(6, 5))

    def fun(p):
        return float(np.sum(np.log1p(np.exp(A @ p["w"]))) + 0.5 * np.sum(p["b"] ** 2))

    def grad(p):
        gw = (A.T @ (1.0 / (1.0 + np.exp(-(A @ p["w"]))))).astype(np.float32)
        if bug == "sign_one":
            gw[2] = -gw[2]
        return {"w": gw, "b": p["b"].copy()}

    return _add(RealCase("f32_grad_of_f64_code" + (f":{bug}" if bug else ""), "dtype_cast", fun, grad,
                         lambda: {"w": np.random.default_rng(8).normal(size=5), "b": np.array([0.3, -1.2])},
                         kind="bug" if bug else "correct", ok=("fail",) if bug else ("pass",),
                         bug_leaves=("w",) if bug else ()))


_roundoff([3e3, 5e3])
_roundoff([2e3, 4e3, 6e3])
_roundoff_beside_resolved()
for _s in (0, 11, 23):
    _bias_before_norm(_s)
_f32_grad_of_f64()

_roundoff([3e3, 5e3], bug="sign")
_roundoff([2e3, 4e3, 6e3], bug="sign")
_roundoff_beside_resolved(bug="factor")
_bias_before_norm(0, bug="W_factor")
_bias_before_norm(11, bug="b_nonzero")
_f32_grad_of_f64(bug="sign_one")

IRREGULAR_CLASSES = sorted({c.cls for c in IRREGULAR_CORRECT})
