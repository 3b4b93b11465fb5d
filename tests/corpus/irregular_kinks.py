"""Irregular points of issue 20: kinks, ties, staircases, branch points (items A.1, B.4-B.6, C.9).

Each case is a derivative checked at a point where a rule could guess instead of measuring:

* ``several_kinks`` (A.1): one move crosses several ReLU kinks; the envelope of valid values is
  what points nudged off params measure, never an assumed number of units.  Also a smooth score
  whose one-sided derivatives agree (a Hessian checked with check_jacobian at a least-squares
  optimum): no kink there, so a factor-2 entry fails.
* ``tie`` (B.4): max pooling over a constant image, routed to the first maximum in row-major
  order (the gradient at x - s * rank), with mixed-sign cotangents, via a scalar loss
  sum(out * R) and via check_vjp.
* ``staircase`` (B.5): round to 3 decimals; 0 (the a.e. derivative) and the trend slope
  (straight-through) are conventions, a value matching neither fails.
* ``branch_point`` (B.6): a square-root branch point or a domain edge within the first steps
  (lambertw at -1/e + 1e-8, sqrt and log near 0), beside a plain entry.
* ``no_kink`` (C.9): points where the one-sided derivatives agree within their noise (i1e at 0,
  a smooth huge log-likelihood, a saturated sigmoid), and a jump between branches (a
  discontinuity); no report may speak of a kink there.

``IRREGULAR``: every case; ``kind`` "correct" (never "fail"; ``expect`` the status in full, fast
and auto mode) or "bug" (must fail in every mode).  ``check`` names the public check that runs
it ("gradient", "vjp", "jacobian"); ``needs`` a module imported with pytest.importorskip by the
tests (torch, scipy).  Used by tests/test_irregular_kinks.py and benchmarks/bench_core.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

MODES = ("full", "fast", "auto")


@dataclass(frozen=True)
class IrregularCase:
    name: str
    cls: str                        # several_kinks | tie | staircase | branch_point | no_kink
    fun: Callable[[Any], Any]
    grad: Callable[..., Any]        # grad(params); vjp(inputs, cotangent); jacobian(inputs)
    make_params: Callable[[], Any]
    kind: str = "correct"           # "correct" | "bug"
    check: str = "gradient"         # "gradient" | "vjp" | "jacobian"
    expect: Any = None              # correct cases: status, or {mode: status}
    needs: str = ""                 # module the case imports (skipped cleanly when absent)
    note: str = ""

    def params(self):
        return self.make_params()

    def expected(self, mode):
        if self.kind == "bug":
            return "fail"
        return self.expect[mode] if isinstance(self.expect, dict) else self.expect

    def run(self, mode="full", seed=0):
        import pytest_gradcheck as pg

        if self.check == "vjp":
            return pg.check_vjp(self.fun, self.params(), self.grad, mode=mode, seed=seed)
        if self.check == "jacobian":
            return pg.check_jacobian(self.fun, self.params(), self.grad, mode=mode, seed=seed)
        return pg.check_gradient(self.fun, self.params(), self.grad, mode=mode, seed=seed)

    def __repr__(self):
        return f"IrregularCase({self.name})"


IRREGULAR: list[IrregularCase] = []


def _add(**kw):
    IRREGULAR.append(IrregularCase(**kw))


def _relu_slope(z, at_zero):
    return np.where(z > 0, 1.0, np.where(z == 0, at_zero, 0.0))


# ---------------------------------------------------------------------------
# A.1 several kinks crossed by one move: the envelope is measured


def _double_relu(p):
    return float(max(p[0] + p[1], 0.0) + max(p[0] - p[1], 0.0))


for _g, _kind, _exp in (([0.0, 0.0], "correct", "inconclusive"), ([2.0, 0.0], "correct", "inconclusive"),
                        ([1.0, 0.0], "correct", "pass"), ([60.0, 0.0], "bug", None), ([3.0, 0.0], "bug", None),
                        ([-1.0, 0.0], "bug", None)):
    _add(name=f"double_relu_grad_{_g[0]:g}", cls="several_kinks", fun=_double_relu,
         grad=(lambda p, g=tuple(_g): np.array(g)), make_params=lambda: np.zeros(2), kind=_kind, expect=_exp,
         note="relu(p0+p1) + relu(p0-p1) at 0: every valid df/dp0 lies in [0, 2]")


def _three_units(p):
    return float(max(p[0] + 2 * p[1], 0.0) - max(2 * p[1] - p[0], 0.0) + max(p[0], 0.0))


def _three_units_grad(at_zero):
    def grad(p):
        s1, s2, s3 = (_relu_slope(np.float64(z), at_zero) for z in (p[0] + 2 * p[1], 2 * p[1] - p[0], p[0]))
        return np.array([s1 + s2 + s3, 2 * s1 - 2 * s2])
    return grad


for _z, _kind in ((0.0, "correct"), (1.0, "correct"), (10.0, "bug"), (-1.0, "bug")):
    _add(name=f"three_units_relu0_{_z:g}", cls="several_kinks", fun=_three_units, grad=_three_units_grad(_z),
         make_params=lambda: np.zeros(2), kind=_kind, expect="inconclusive",
         note="one-sided derivatives along p0 are 1 and 2, pieces nearby give 0..3: relu'(0) = z gives 3z")


def _zero_bias_layer(at_zero=0.0, factor=1.0):
    """A dense ReLU layer with zero-initialised biases on an all-zero input row: every unit of the
    row sits at its kink; moving the bias leaf down switches all of them off (the relu'(0) = 0
    piece), which only a nudge of the bias leaf as a whole reaches."""
    rng = np.random.default_rng(2001)
    X = np.vstack([np.zeros((1, 3)), rng.normal(size=(4, 3))])
    v = rng.normal(size=6)

    def params():
        return {"W": np.random.default_rng(2002).normal(size=(3, 6)), "b": np.zeros(6)}

    def fun(p):
        return float(np.sum(np.maximum(X @ p["W"] + p["b"], 0.0) @ v))

    def grad(p):
        z = X @ p["W"] + p["b"]
        d = _relu_slope(z, at_zero) * v
        return {"W": factor * X.T @ d, "b": factor * d.sum(axis=0)}

    return fun, grad, params


for _z, _f, _kind in ((0.0, 1.0, "correct"), (0.0, 2.0, "bug")):
    _fun, _grad, _params = _zero_bias_layer(_z, _f)
    _add(name=f"zero_bias_relu_layer_x{_f:g}", cls="several_kinks", fun=_fun, grad=_grad, make_params=_params,
         kind=_kind, expect="inconclusive")


def _ls_score_problem(factor):
    """A least-squares objective 0.5 w'Aw + c/4 w0^4 at its optimum w = 0 (a quartic residual
    term): the score's one-sided derivatives along w0 agree, and move the same way as the step
    shrinks (h^2 f'''), which an old asymmetry test read as a kink.  The Hessian has a factor
    ``factor`` in entry (0, 0)."""
    B = np.random.default_rng(5).normal(size=(40, 3))
    A, c = B.T @ B, 50.0

    def score(w):
        s = A @ w
        s[0] += c * w[0] ** 3
        return s

    def hessian(w):
        H = A.copy()
        H[0, 0] += 3 * c * w[0] ** 2
        H[0, 0] *= factor
        return H

    return score, hessian


for _f, _kind in ((1.0, "correct"), (2.0, "bug")):
    _s, _h = _ls_score_problem(_f)
    _add(name=f"least_squares_hessian_x{_f:g}", cls="several_kinks", fun=_s, grad=_h,
         make_params=lambda: np.zeros(3), kind=_kind, check="jacobian", expect="pass")


# ---------------------------------------------------------------------------
# B.4 ties: max pooling over a constant image, first maximum in row-major order


def _maxpool(x, k=2, s=1):
    oh, ow = (x.shape[0] - k) // s + 1, (x.shape[1] - k) // s + 1
    return np.array([[x[i * s:i * s + k, j * s:j * s + k].max() for j in range(ow)] for i in range(oh)])


def _maxpool_vjp(x, c, k=2, s=1, factor=1.0):
    g = np.zeros_like(x)
    for i in range(c.shape[0]):
        for j in range(c.shape[1]):
            a = int(np.argmax(x[i * s:i * s + k, j * s:j * s + k]))  # first maximum, row-major
            g[i * s + a // k, j * s + a % k] += factor * c[i, j]
    return g


def _mixed(shape, seed):
    rng = np.random.default_rng(seed)
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.5, 2.0, size=shape)


def _roi_maxpool(x, boxes=((0, 0, 4, 4), (1, 1, 5, 5), (0, 2, 3, 5)), bins=2):
    """RoI max pooling: each box (r0, c0, r1, c1) split into bins x bins cells, each cell's max."""
    out = []
    for r0, c0, r1, c1 in boxes:
        rs, cs = np.linspace(r0, r1, bins + 1).astype(int), np.linspace(c0, c1, bins + 1).astype(int)
        out += [x[rs[a]:max(rs[a + 1], rs[a] + 1), cs[b]:max(cs[b + 1], cs[b] + 1)].max()
                for a in range(bins) for b in range(bins)]
    return np.array(out)


def _roi_vjp(x, c, boxes=((0, 0, 4, 4), (1, 1, 5, 5), (0, 2, 3, 5)), bins=2, factor=1.0):
    g, n = np.zeros_like(x), 0
    for r0, c0, r1, c1 in boxes:
        rs, cs = np.linspace(r0, r1, bins + 1).astype(int), np.linspace(c0, c1, bins + 1).astype(int)
        for a in range(bins):
            for b in range(bins):
                ra, cb = rs[a], cs[b]
                cell = x[ra:max(rs[a + 1], ra + 1), cb:max(cs[b + 1], cb + 1)]
                k = int(np.argmax(cell))
                g[ra + k // cell.shape[1], cb + k % cell.shape[1]] += factor * c[n]
                n += 1
    return g


_R3 = _mixed((3, 3), 1)
_R2 = _mixed((2, 2), 3)
_R12 = _mixed(12, 4)
for _f, _kind in ((1.0, "correct"), (2.0, "bug"), (30.0, "bug")):
    _add(name=f"maxpool_overlap_loss_x{_f:g}", cls="tie", fun=lambda x: float(np.sum(_maxpool(x) * _R3)),
         grad=lambda x, f=_f: _maxpool_vjp(x, _R3, factor=f), make_params=lambda: np.full((4, 4), 0.7),
         kind=_kind, expect="inconclusive")
    _add(name=f"maxpool_overlap_vjp_x{_f:g}", cls="tie", fun=_maxpool,
         grad=lambda x, c, f=_f: _maxpool_vjp(x, c, factor=f), make_params=lambda: np.full((4, 4), 0.7),
         kind=_kind, check="vjp", expect="inconclusive")
    _add(name=f"maxpool_stride2_loss_x{_f:g}", cls="tie",
         fun=lambda x: float(np.sum(_maxpool(x, 2, 2) * _R2)),
         grad=lambda x, f=_f: _maxpool_vjp(x, _R2, 2, 2, factor=f), make_params=lambda: np.full((4, 4), -0.3),
         kind=_kind, expect="inconclusive")
    _add(name=f"roi_maxpool_loss_x{_f:g}", cls="tie", fun=lambda x: float(np.sum(_roi_maxpool(x) * _R12)),
         grad=lambda x, f=_f: _roi_vjp(x, _R12, factor=f), make_params=lambda: np.full((6, 6), 1.5),
         kind=_kind, expect="inconclusive")


# ---------------------------------------------------------------------------
# B.5 staircases: round to 3 decimals


def _round_loss(x):
    return float(np.sum(np.round(x, 3) ** 2))


def _round_params():
    return np.linspace(0.1, 0.9, 7)


for _name, _g, _kind, _exp in (
        ("ae_zero", lambda x: np.zeros_like(x), "correct", {"full": "inconclusive", "fast": "pass",
                                                             "auto": "inconclusive"}),
        # entries whose tolerance (the stairs' noise) is not below the values compared are unresolved (A.2)
        ("straight_through", lambda x: 2 * np.round(x, 3), "correct", {"full": "inconclusive", "fast": "pass",
                                                                        "auto": "inconclusive"}),
        ("half_slope", lambda x: np.round(x, 3), "bug", None),
        ("sign_flip", lambda x: -2 * np.round(x, 3), "bug", None)):
    _add(name=f"np_round3_{_name}", cls="staircase", fun=_round_loss, grad=_g, make_params=_round_params,
         kind=_kind, expect=_exp)


def _torch_round(dtype_name, scale):
    def fun(x):
        import torch
        t = torch.as_tensor(x, dtype=getattr(torch, dtype_name))
        return float(torch.sum(torch.round(t, decimals=3) ** 2).double())

    def grad(x):
        return scale * 2 * np.round(np.asarray(x, dtype=np.float64), 3)

    return fun, grad


for _dt in ("float64", "float32"):
    for _name, _sc, _kind, _exp in (
            ("ae_zero", 0.0, "correct", {"full": "inconclusive", "fast": "pass", "auto": "inconclusive"}),
            ("straight_through", 1.0, "correct", {"full": "inconclusive", "fast": "pass", "auto": "inconclusive"}),
            ("half_slope", 0.5, "bug", None),
            ("sign_flip", -1.0, "bug", None)):
        _fun, _grad = _torch_round(_dt, _sc)
        _add(name=f"torch_round3_{_dt}_{_name}", cls="staircase", fun=_fun, grad=_grad, make_params=_round_params,
             kind=_kind, expect=_exp, needs="torch")


# ---------------------------------------------------------------------------
# B.6 branch points and domain edges within the first steps


def _lambertw_fun(x):
    from scipy.special import lambertw
    return float(np.sum(lambertw(x).real))


def _lambertw_grad(factor):
    def grad(x):
        from scipy.special import lambertw
        w = lambertw(x).real
        return factor * w / (x * (1.0 + w))
    return grad


for _f, _kind in ((1.0, "correct"), (2.0, "bug")):
    _add(name=f"lambertw_branch_point_x{_f:g}", cls="branch_point", fun=_lambertw_fun, grad=_lambertw_grad(_f),
         make_params=lambda: np.array([-1.0 / np.e + 1e-8, 0.5]), kind=_kind, needs="scipy",
         expect={"full": "pass", "fast": "inconclusive", "auto": "pass"})
    _add(name=f"sqrt_near_zero_x{_f:g}", cls="branch_point", fun=lambda x: float(np.sum(np.sqrt(x))),
         grad=lambda x, f=_f: f * 0.5 / np.sqrt(x), make_params=lambda: np.array([1e-12, 0.5]), kind=_kind,
         expect="pass")
    _add(name=f"log_near_zero_x{_f:g}", cls="branch_point", fun=lambda x: float(np.sum(np.log(x))),
         grad=lambda x, f=_f: f / x, make_params=lambda: np.array([1e-10, 0.5]), kind=_kind, expect="pass")


# ---------------------------------------------------------------------------
# C.9 one-sided derivatives that agree within their noise: no kink


def _i1e_grad(factor):
    def grad(x):
        from scipy.special import i0e, i1e
        safe = np.where(x == 0, 1.0, x)
        g = i0e(x) - i1e(x) * (np.sign(x) + 1.0 / safe)
        return factor * np.where(x == 0, 0.5, g)
    return grad


for _f, _kind in ((1.0, "correct"), (-1.0, "bug")):
    _add(name=f"i1e_at_zero_x{_f:g}", cls="no_kink", fun=lambda x: float(np.sum(__import__("scipy.special").special.i1e(x))),
         grad=_i1e_grad(_f), make_params=lambda: np.array([0.0, 1.5]), kind=_kind, needs="scipy", expect="pass")


def _loglik_problem(factor):
    """A Gaussian log-likelihood of 2000 observations with a huge scale (values ~1e7): rounding
    noise in f, smooth everywhere."""
    rng = np.random.default_rng(2009)
    y = rng.normal(3e3, 10.0, size=2000)

    def fun(p):
        mu, log_s = p
        return float(np.sum(-0.5 * ((y - mu) / np.exp(log_s)) ** 2 - log_s))

    def grad(p):
        mu, log_s = p
        r = (y - mu) / np.exp(log_s)
        return np.array([factor * np.sum(r) / np.exp(log_s), np.sum(r ** 2) - y.size])

    return fun, grad


for _f, _kind in ((1.0, "correct"), (2.0, "bug")):
    _fun, _grad = _loglik_problem(_f)
    _add(name=f"huge_loglik_x{_f:g}", cls="no_kink", fun=_fun, grad=_grad,
         make_params=lambda: np.array([2.9e3, 0.5]), kind=_kind, expect="pass")


def _saturated_sigmoid(factor):
    """Cross-entropy of a saturated sigmoid output (1 - A = 1e-13) written as log(1 - A): the
    cancellation is rounding, not a kink."""
    X = np.random.default_rng(2010).normal(size=(5, 3))

    def fun(w):
        A = 1.0 / (1.0 + np.exp(-(X @ w)))
        return float(-np.sum(np.log(1.0 - A)))

    def grad(w):
        A = 1.0 / (1.0 + np.exp(-(X @ w)))
        return factor * X.T @ A

    return fun, grad


for _f, _kind in ((1.0, "correct"), (-1.0, "bug")):
    _fun, _grad = _saturated_sigmoid(_f)
    _add(name=f"saturated_sigmoid_log1m_x{_f:g}", cls="no_kink", fun=_fun, grad=_grad,
         make_params=lambda: np.array([4.0, 3.0, -3.5]), kind=_kind, expect="pass")


def _branch_jump(x):
    """Two branches that do not meet at 0 (x^2 + 1 for x > 0, x^2 below): a jump, not a kink."""
    return float(np.sum(np.where(x > 0, x ** 2 + 1.0, x ** 2)))


for _name, _g, _kind, _exp in (("a_e", lambda x: 2 * x, "correct", "inconclusive"),
                               ("off_by_5", lambda x: 2 * x + 5.0, "bug", None)):
    _add(name=f"branch_jump_{_name}", cls="no_kink", fun=_branch_jump, grad=_g,
         make_params=lambda: np.array([0.0, 0.7]), kind=_kind, expect=_exp,
         note="the one-sided differences grow like 1/step: a discontinuity, never 'a kink ... a valid subgradient'")
