"""Patterns of real library code that fooled the checker (issue 12).

Each case reproduces, in a few lines of numpy, a pattern seen in outside code
that nobody on this project wrote: objectives that cast to float32 inside a
float64 loss, zero-initialised ReLU layers with all-zero inputs, max-pool ties,
products that underflow, functions that rebind a key of their argument,
``-inf`` attention masks, and ``(value, grad)`` objectives in the convention of
``scipy.optimize.minimize(jac=True)``.

``REAL_CORRECT``: correct gradients.  The checker may say "pass" or an honest
"inconclusive" that names its cause (``ok`` lists what is acceptable), never
"fail", in every mode.  ``REAL_BUGS``: one injected bug per class, which must
fail.  A case's ``value_and_grad`` marks a fun returning ``(value, grad)``;
it is checked with ``grad=True``.

The gradients are the ones the libraries' code computes (a float32 backward
for a float32 forward, relu'(0) = 0, max-pool routing to the first maximum),
so "correct" means what a careful author would ship, not a float64 oracle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class RealCase:
    name: str
    cls: str                        # the class of issue 12 it belongs to
    fun: Callable[[Any], Any]
    grad: Any                       # callable, or True for a (value, grad) fun
    make_params: Callable[[], Any]
    kind: str = "correct"           # "correct" | "bug"
    ok: tuple = ("pass", "inconclusive")
    bug_leaves: tuple = ()
    note: str = ""
    tags: frozenset = field(default_factory=frozenset)

    @property
    def value_and_grad(self) -> bool:
        return self.grad is True

    def params(self):
        return self.make_params()

    def __repr__(self):
        return f"RealCase({self.name})"


REAL_CORRECT: list[RealCase] = []
REAL_BUGS: list[RealCase] = []


def _add(case: RealCase) -> RealCase:
    (REAL_BUGS if case.kind == "bug" else REAL_CORRECT).append(case)
    return case


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# ---------------------------------------------------------------------------
# 1. staircases under a smooth term


def _logreg_f32_cast(alpha=1.0, bug=None, name="logreg_f32_cast_l2"):
    """The default path of a popular solver on float32 data: the coefficients
    are cast to float32 for the data term, the L2 penalty stays float64."""
    rng = np.random.default_rng(1201)
    m, d = 40, 6
    X = rng.normal(size=(m, d)).astype(np.float32)
    y = np.where(rng.random(m) < 0.5, -1.0, 1.0).astype(np.float32)

    def params():
        return np.random.default_rng(12).normal(size=d)

    def fun(w):
        z = y * (X @ w.astype(np.float32))
        data = np.sum(np.logaddexp(np.float32(0), -z))           # float32
        return float(data) + 0.5 * alpha * float(w @ w)

    def grad(w):
        z = y * (X @ w.astype(np.float32))
        g = X.T @ (-y * _sigmoid(-z))                            # float32 backward
        if bug == "missing_penalty":
            return g.astype(np.float64)
        return g.astype(np.float64) + alpha * w

    return _add(RealCase(name, "staircase", fun, grad, params, kind="bug" if bug else "correct",
                         bug_leaves=("params",) if bug else (),
                         note="float32 data term (flat between float32 quanta) + float64 L2"))


def _linreg_f32_cast():
    rng = np.random.default_rng(1202)
    m, d = 30, 4
    X = rng.normal(size=(m, d)).astype(np.float32)
    t = rng.normal(size=m).astype(np.float32)

    def params():
        return {"w": np.random.default_rng(13).normal(size=d), "b": np.asarray(0.25)}

    def fun(p):
        r = X @ p["w"].astype(np.float32) + np.float32(p["b"]) - t
        return float(0.5 * np.mean(r * r)) + 0.05 * float(p["w"] @ p["w"])

    def grad(p):
        r = X @ p["w"].astype(np.float32) + np.float32(p["b"]) - t
        return {"w": (X.T @ r / m).astype(np.float64) + 0.1 * p["w"], "b": np.asarray(float(np.mean(r)))}

    return _add(RealCase("linreg_f32_cast_l2", "staircase", fun, grad, params,
                         note="float32 residuals inside a float64 loss with a float64 penalty"))


def _rounded(decimals=3):
    rng = np.random.default_rng(1203)
    c = rng.normal(size=8)

    def params():
        return np.random.default_rng(14).normal(size=8)

    def fun(x):
        return float(c @ np.round(x, decimals) + 0.5 * x @ x)

    def grad(x):  # the straight-through estimate: round is the identity on average
        return c + x

    return _add(RealCase(f"round_{decimals}_plus_l2", "staircase", fun, grad, params,
                         note=f"np.round(x, {decimals}) (stairs of 1e-{decimals}) plus a smooth term"))


def _quantised_sin(bits=8):
    levels = 2.0 ** bits

    def params():
        return np.random.default_rng(15).uniform(-2, 2, size=10)

    def fun(x):
        q = np.floor(x * levels) / levels
        return float(np.sum(np.sin(q)) + 0.01 * x @ x)

    def grad(x):
        return np.cos(x) + 0.02 * x

    return _add(RealCase(f"quantised_sin_{bits}bit", "staircase", fun, grad, params,
                         note=f"{bits}-bit quantiser (straight-through gradient) plus a smooth term"))


# ---------------------------------------------------------------------------
# 2. several kinks crossed by one coordinate at once


def _dense_relu_zero_rows(bug=None):
    """A dense layer + ReLU as a layer library tests it: the gradient with
    respect to the inputs X, zero-initialised bias, and padding rows of zeros,
    so every unit of those rows sits exactly at its kink and one entry of X
    moves all of them, some up and some down."""
    rng = np.random.default_rng(1204)
    n, d, h = 5, 4, 7
    V = rng.normal(size=(h, 3))
    T = rng.normal(size=(n, 3))

    def params():
        r = np.random.default_rng(16)
        X = r.normal(size=(n, d))
        X[1] = 0.0
        X[3] = 0.0
        return {"X": X, "W": r.normal(size=(d, h)), "b": np.zeros(h)}

    def forward(p):
        Z = p["X"] @ p["W"] + p["b"]
        H = np.maximum(Z, 0.0)
        R = H @ V - T
        return Z, H, R

    def fun(p):
        return float(0.5 * np.sum(forward(p)[2] ** 2))

    def grad(p):
        Z, H, R = forward(p)
        dH = R @ V.T
        dZ = dH if bug == "missing_relu_mask" else dH * (Z > 0)
        return {"X": dZ @ p["W"].T, "W": p["X"].T @ dZ, "b": dZ.sum(axis=0)}

    return _add(RealCase("dense_relu_zero_rows_zero_bias" + (":" + bug if bug else ""), "multi_kink",
                         fun, grad, params, kind="bug" if bug else "correct",
                         bug_leaves=("X", "W", "b") if bug else (),
                         note="zero bias + all-zero input rows: 7 units at their kink per row"))


def _conv2d(img, K):
    c, kh, kw = K.shape
    H, W = img.shape
    out = np.zeros((c, H - kh + 1, W - kw + 1))
    for i in range(kh):
        for j in range(kw):
            out += K[:, i, j, None, None] * img[None, i:i + H - kh + 1, j:j + W - kw + 1]
    return out


def _conv2d_grads(img, K, dout):
    c, kh, kw = K.shape
    H, W = img.shape
    dK = np.zeros_like(K)
    dimg = np.zeros_like(img)
    for i in range(kh):
        for j in range(kw):
            patch = img[i:i + H - kh + 1, j:j + W - kw + 1]
            dK[:, i, j] = np.sum(dout * patch[None], axis=(1, 2))
            dimg[i:i + H - kh + 1, j:j + W - kw + 1] += np.sum(K[:, i, j, None, None] * dout, axis=0)
    return dimg, dK


def _conv_relu_zero_border(bug=None):
    """conv (3 channels, 3x3) + ReLU on an image with a zero border of width 3
    and a zero-initialised bias: the outputs over the border are exactly 0, and
    one border pixel moves several of them across their kink at once."""
    rng = np.random.default_rng(1205)
    V = rng.normal(size=(3, 8, 8))

    def params():
        r = np.random.default_rng(17)
        img = np.zeros((10, 10))
        img[3:7, 3:7] = r.normal(size=(4, 4))
        return {"img": img, "K": r.normal(size=(3, 3, 3)), "b": np.zeros(3)}

    def fun(p):
        Z = _conv2d(p["img"], p["K"]) + p["b"][:, None, None]
        H = np.maximum(Z, 0.0)
        return float(np.sum(np.tanh(H) * V))

    def grad(p):
        Z = _conv2d(p["img"], p["K"]) + p["b"][:, None, None]
        H = np.maximum(Z, 0.0)
        dH = V * (1 - np.tanh(H) ** 2)
        dZ = dH * (Z > 0)
        dimg, dK = _conv2d_grads(p["img"], p["K"], dZ)
        db = dZ.sum(axis=(1, 2))
        if bug == "kernel_grad_1.1":
            dK = 1.1 * dK
        return {"img": dimg, "K": dK, "b": db}

    return _add(RealCase("conv_relu_zero_border" + (":" + bug if bug else ""), "multi_kink", fun, grad, params,
                         kind="bug" if bug else "correct", bug_leaves=("K",) if bug else (),
                         note="zero border + zero bias: border units sit at the kink"))


def _maxpool(x, k, s):
    H, W = x.shape
    oh, ow = (H - k) // s + 1, (W - k) // s + 1
    out = np.empty((oh, ow))
    arg = np.empty((oh, ow, 2), dtype=int)
    for i in range(oh):
        for j in range(ow):
            win = x[i * s:i * s + k, j * s:j * s + k]
            a = int(np.argmax(win))                     # the first maximum, as frameworks route it
            arg[i, j] = (i * s + a // k, j * s + a % k)
            out[i, j] = win.flat[a]
    return out, arg


def _maxpool_ties(bug=None):
    """Overlapping 3x3 max-pool (stride 1) over quantised values: many windows
    tie, and an entry tied in several windows is routed to in some of them."""
    rng = np.random.default_rng(1206)
    R = rng.normal(size=(5, 5))

    def params():
        r = np.random.default_rng(18)
        return np.round(r.normal(size=(7, 7)), 0)        # integers: ties everywhere

    def fun(x):
        out, _ = _maxpool(x, 3, 1)
        return float(np.sum(out * R) + 0.1 * np.sum(x ** 2))

    def grad(x):
        _, arg = _maxpool(x, 3, 1)
        g = 0.2 * x
        for i in range(arg.shape[0]):
            for j in range(arg.shape[1]):
                g[tuple(arg[i, j])] += R[i, j] * (0.5 if bug == "half_routing" else 1.0)
        return g

    return _add(RealCase("maxpool_3x3_s1_ties" + (":" + bug if bug else ""), "multi_kink", fun, grad, params,
                         kind="bug" if bug else "correct", bug_leaves=("params",) if bug else (),
                         note="integer-valued input: ties in overlapping windows"))


def _relu_maxpool_zeros():
    """conv + ReLU + 2x2 max-pool: windows of all-zero ReLU outputs tie at 0."""
    rng = np.random.default_rng(1207)
    R = rng.normal(size=(2, 3, 3))

    def params():
        r = np.random.default_rng(19)
        img = np.zeros((8, 8))
        img[3:, 3:] = r.normal(size=(5, 5))
        return {"img": img, "K": r.normal(size=(2, 3, 3)), "b": np.zeros(2)}

    def forward(p):
        Z = _conv2d(p["img"], p["K"]) + p["b"][:, None, None]
        H = np.maximum(Z, 0.0)
        pooled, args = [], []
        for c in range(2):
            o, a = _maxpool(H[c], 2, 2)
            pooled.append(o)
            args.append(a)
        return Z, H, np.stack(pooled), args

    def fun(p):
        return float(np.sum(forward(p)[2] * R))

    def grad(p):
        Z, H, P, args = forward(p)
        dH = np.zeros_like(H)
        for c in range(2):
            for i in range(3):
                for j in range(3):
                    dH[(c,) + tuple(args[c][i, j])] += R[c, i, j]
        dZ = dH * (Z > 0)
        dimg, dK = _conv2d_grads(p["img"], p["K"], dZ)
        return {"img": dimg, "K": dK, "b": dZ.sum(axis=(1, 2))}

    return _add(RealCase("conv_relu_maxpool_zero_windows", "multi_kink", fun, grad, params,
                         note="max-pool over ReLU zeros: ties at exactly 0"))


# ---------------------------------------------------------------------------
# 3. underflow


def _prod_f32(bug=None):
    """float32 product of 125 numbers ~0.4 (true value ~1e-50, below float32's
    range), next to an ordinary term."""

    def params():
        r = np.random.default_rng(20)
        return {"p": r.uniform(0.3, 0.5, size=125).astype(np.float32),
                "q": r.normal(size=4).astype(np.float32)}

    def fun(p):
        return np.prod(p["p"]) + np.sum(p["q"] ** 2)

    def grad(p):
        gp = np.prod(p["p"]) / p["p"]                       # 0 in float32
        gq = 2 * p["q"] if bug != "q_factor" else 3 * p["q"]
        return {"p": gp.astype(np.float32), "q": gq.astype(np.float32)}

    return _add(RealCase("prod_125_f32_underflow" + (":" + bug if bug else ""), "underflow", fun, grad, params,
                         kind="bug" if bug else "correct", bug_leaves=("q",) if bug else ()))


def _prod_f32_alone():
    """The same product alone: f itself underflows to 0 in float32."""

    def params():
        return np.random.default_rng(28).uniform(0.35, 0.45, size=125).astype(np.float32)

    def fun(x):
        return np.prod(x)

    def grad(x):
        return (np.prod(x) / x).astype(np.float32)

    return _add(RealCase("prod_125_f32_alone", "underflow", fun, grad, params,
                         note="f = prod(x) in float32 is 0; float64 differences see ~1e-50"))


def _likelihood_f32():
    """A float32 likelihood (product of densities) whose gradient underflows."""
    rng = np.random.default_rng(1208)
    data = rng.normal(size=60).astype(np.float32)

    def params():
        return {"mu": np.asarray(0.1, dtype=np.float32), "s": np.asarray(1.2, dtype=np.float32)}

    def fun(p):
        z = (data - p["mu"]) / p["s"]
        return np.prod(np.exp(-0.5 * z * z) / (p["s"] * np.float32(np.sqrt(2 * np.pi))))

    def grad(p):
        z = (data - p["mu"]) / p["s"]
        L = fun(p)
        return {"mu": np.asarray(L * np.sum(z) / p["s"], dtype=np.float32),
                "s": np.asarray(L * (np.sum(z * z) - data.size) / p["s"], dtype=np.float32)}

    return _add(RealCase("gauss_likelihood_f32_underflow", "underflow", fun, grad, params,
                         note="product of 60 float32 densities: ~1e-40, subnormal or 0"))


def _tiny_f64():
    """float64 params of 1e-200 whose f underflows to 0."""

    def params():
        return np.random.default_rng(21).uniform(1, 2, size=5) * 1e-200

    def fun(x):
        return float(np.sum(x * x))

    def grad(x):
        return 2 * x

    return _add(RealCase("sumsq_f64_params_1e-200", "underflow", fun, grad, params,
                         note="f = sum(x^2) ~ 1e-400 underflows to 0"))


def _exp_underflow_f64():
    def params():
        return np.random.default_rng(22).uniform(27, 28, size=4)

    def fun(x):
        return float(np.sum(np.exp(-x * x)))                 # exp(-750) is 0 in float64

    def grad(x):
        return -2 * x * np.exp(-x * x)

    return _add(RealCase("exp_minus_x2_f64_underflow", "underflow", fun, grad, params,
                         note="exp(-x^2) at x ~ 27.5: subnormal or 0"))


# ---------------------------------------------------------------------------
# 4. fun that rebinds a key of the container it receives


def _rebinding(style, bug=None):
    rng = np.random.default_rng(1209)
    X = rng.normal(size=(12, 3))
    t = rng.normal(size=12)

    def params():
        r = np.random.default_rng(23)
        if style == "list":
            return [r.normal(size=3), np.asarray(0.5)]
        return {"w": r.normal(size=3), "b": np.asarray(0.5)}

    def unpack(p):
        return (p[0], p[1]) if style == "list" else (p["w"], p["b"])

    def fun(p):
        if style == "dict_copy":
            p["w"] = p["w"] * 1.0                 # "make a local copy" idiom
        elif style == "dict_astype":
            p["w"] = np.asarray(p["w"], dtype=np.float64).reshape(-1)
            p["b"] = float(p["b"])
        elif style == "list":
            p[0] = np.array(p[0])
        w, b = unpack(p)
        r = np.tanh(X @ w + b) - t
        return float(0.5 * r @ r)

    def grad(p):
        w, b = unpack(p)
        th = np.tanh(X @ w + b)
        dr = (th - t) * (1 - th ** 2)
        gw = X.T @ dr * (1.5 if bug == "w_factor" else 1.0)
        gb = np.asarray(dr.sum())
        return [gw, gb] if style == "list" else {"w": gw, "b": gb}

    return _add(RealCase(f"rebinding_{style}" + (":" + bug if bug else ""), "rebinding", fun, grad, params,
                         kind="bug" if bug else "correct", ok=("pass",),
                         bug_leaves=("w", "[0]") if bug else ()))


# ---------------------------------------------------------------------------
# 5. -inf masks in params


def _masked_softmax(bug=None):
    """Attention scores with a causal -inf mask, checked with respect to the
    scores themselves (the masked entries cannot move: held fixed)."""
    rng = np.random.default_rng(1210)
    V = rng.normal(size=(5, 3))
    T = rng.normal(size=(5, 3))

    def params():
        S = np.random.default_rng(24).normal(size=(5, 5))
        S[np.triu_indices(5, k=1)] = -np.inf
        return {"scores": S, "V": V.copy()}

    def forward(p):
        S = p["scores"]
        E = np.exp(S - S.max(axis=1, keepdims=True))
        A = E / E.sum(axis=1, keepdims=True)
        O = A @ p["V"]
        return A, O

    def fun(p):
        return float(0.5 * np.sum((forward(p)[1] - T) ** 2))

    def grad(p):
        A, O = forward(p)
        dO = O - T
        dA = dO @ p["V"].T
        dS = A * (dA - np.sum(dA * A, axis=1, keepdims=True))
        if bug == "sign":
            dS = -dS
        return {"scores": dS, "V": A.T @ dO}

    return _add(RealCase("masked_softmax_neg_inf" + (":" + bug if bug else ""), "non_finite", fun, grad, params,
                         kind="bug" if bug else "correct", ok=("pass",),
                         bug_leaves=("scores",) if bug else ()))


def _mask_leaf():
    """An additive mask (0 / -inf) passed as a leaf next to the weights."""
    rng = np.random.default_rng(1211)
    Xq = rng.normal(size=(4, 3))

    def params():
        r = np.random.default_rng(25)
        mask = np.zeros((4, 4))
        mask[:, 3] = -np.inf
        mask[0, 2] = -np.inf
        return {"Wq": r.normal(size=(3, 3)), "Wk": r.normal(size=(3, 3)), "mask": mask}

    def forward(p):
        Q, K = Xq @ p["Wq"], Xq @ p["Wk"]
        S = Q @ K.T / np.sqrt(3) + p["mask"]
        E = np.exp(S - S.max(axis=1, keepdims=True))
        return Q, K, E / E.sum(axis=1, keepdims=True)

    def fun(p):
        return float(np.sum(forward(p)[2] * np.arange(16).reshape(4, 4)))

    def grad(p):
        Q, K, A = forward(p)
        dA = np.arange(16.0).reshape(4, 4)
        dS = A * (dA - np.sum(dA * A, axis=1, keepdims=True))
        dQ = dS @ K / np.sqrt(3)
        dK = dS.T @ Q / np.sqrt(3)
        return {"Wq": Xq.T @ dQ, "Wk": Xq.T @ dK, "mask": dS}

    return _add(RealCase("attention_mask_leaf_neg_inf", "non_finite", fun, grad, params, ok=("pass",)))


# ---------------------------------------------------------------------------
# 6. (value, grad) objectives, as scipy.optimize.minimize(jac=True) takes them


def _value_and_grad_logreg(bug=None):
    rng = np.random.default_rng(1212)
    m, d = 30, 5
    X = rng.normal(size=(m, d))
    y = (rng.random(m) < 0.5).astype(float)

    def params():
        return np.random.default_rng(26).normal(size=d)

    def fun(w):
        z = X @ w
        p = _sigmoid(z)
        loss = -np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)) + 0.01 * w @ w
        g = X.T @ (p - y) / m + (0.01 if bug == "penalty_factor" else 0.02) * w
        return float(loss), g

    return _add(RealCase("value_and_grad_logreg" + (":" + bug if bug else ""), "value_and_grad", fun, True,
                         params, kind="bug" if bug else "correct", ok=("pass",),
                         bug_leaves=("params",) if bug else ()))


def _value_and_grad_rosenbrock():
    def params():
        return np.array([-1.2, 1.0, 0.7, 1.3])

    def fun(x):
        v = np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
        g = np.zeros_like(x)
        g[:-1] = -400.0 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
        g[1:] += 200.0 * (x[1:] - x[:-1] ** 2)
        return v, g

    return _add(RealCase("value_and_grad_rosenbrock", "value_and_grad", fun, True, params, ok=("pass",)))


def _value_and_grad_dict():
    """A pytree objective returning (value, grad-pytree)."""
    rng = np.random.default_rng(1213)
    A = rng.normal(size=(4, 4))
    A = A @ A.T + 4 * np.eye(4)

    def params():
        r = np.random.default_rng(27)
        return {"x": r.normal(size=4), "s": np.asarray(0.7)}

    def fun(p):
        x, s = p["x"], p["s"]
        v = 0.5 * s * s * x @ A @ x + np.sum(np.sin(x))
        return v, {"x": s * s * A @ x + np.cos(x), "s": np.asarray(s * x @ A @ x)}

    return _add(RealCase("value_and_grad_pytree", "value_and_grad", fun, True, params, ok=("pass",)))



# ---------------------------------------------------------------------------
# 7. "gradients" that are finite differences (libraries that ship one)
#
# Must these fail?  A forward difference at step h is off by (h/2) f''_ii + O(h^2) in entry i,
# plus roundoff ~eps|f|/h.  For this logistic loss (|f| ~ 0.7, f''_ii ~ 0.1 ... 1) at h = 1e-6
# that is ~5e-8 ... 5e-7 absolute, ~1e-6 relative, with roundoff ~2e-16 * 0.7 / 1e-6 ~ 1e-10; at
# h = 1e-4 ~1e-4 relative.  The checker's float64 central differences resolve the gradient to
# ~1e-9 relative or better (10 x their roundoff ~eps^(2/3) ~ 4e-11 after Richardson), so both are
# wrong by far more than the check's resolution: a FAIL, and the diagnosis must say why (the
# analytic side is itself a finite difference), which is what a user of such a library needs.
# The relative-step variant (h_i = 1e-5 max(|w_i|, 0.1), as numerical-differentiation helpers
# scale it) fails the same way.


def _logreg_finite_difference(h, relative=False, backward=False):
    rng = np.random.default_rng(1214)
    m, d = 40, 6
    X = rng.normal(size=(m, d)) * np.linspace(0.5, 2.0, d)   # columns of different scale: f''_ii differ
    y = (rng.random(m) < 0.5).astype(float)

    def params():
        return np.random.default_rng(28).normal(size=d)

    def fun(w):
        z = X @ w
        return float(np.mean(np.logaddexp(0.0, z) - y * z) + 0.05 * w @ w)

    def grad(w):
        f0 = fun(w)
        g = np.empty_like(w)
        for i in range(w.size):
            step = h * max(abs(w[i]), 0.1) if relative else h
            wp = w.copy()
            wp[i] += -step if backward else step
            g[i] = (fun(wp) - f0) / (-step if backward else step)
        return g

    name = (f"logreg_{'backward' if backward else 'forward'}_difference_{h:g}" + ("_relative" if relative else ""))
    return _add(RealCase(name, "finite_difference", fun, grad, params, kind="bug", bug_leaves=("params",),
                         note=f"the 'gradient' is a {'backward' if backward else 'forward'} difference at step "
                              f"{h:g}{' x max(|w|, 0.1)' if relative else ''}",
                         tags=frozenset({"finite_difference"})))

# ---------------------------------------------------------------------------

_logreg_f32_cast()
_logreg_f32_cast(alpha=1e-3, name="logreg_f32_cast_weak_l2")
_linreg_f32_cast()
_rounded(3)
_rounded(2)
_quantised_sin(8)
_dense_relu_zero_rows()
_conv_relu_zero_border()
_maxpool_ties()
_relu_maxpool_zeros()
_prod_f32()
_prod_f32_alone()
_likelihood_f32()
_tiny_f64()
_exp_underflow_f64()
for _style in ("dict_copy", "dict_astype", "list"):
    _rebinding(_style)
_masked_softmax()
_mask_leaf()
_value_and_grad_logreg()
_value_and_grad_rosenbrock()
_value_and_grad_dict()

# one injected bug per class
_logreg_f32_cast(bug="missing_penalty", name="logreg_f32_cast_l2:missing_penalty")
_dense_relu_zero_rows(bug="missing_relu_mask")
# (a bug in the bias gradient here would hide among the ~50 border units one bias entry
# switches at once: any value in their Clarke range is a valid subgradient; the kernel's
# entries move only interior units, off the kink set, so a bug there is visible)
_conv_relu_zero_border(bug="kernel_grad_1.1")
_maxpool_ties(bug="half_routing")
_prod_f32(bug="q_factor")
_rebinding("dict_copy", bug="w_factor")
_masked_softmax(bug="sign")
_value_and_grad_logreg(bug="penalty_factor")
_logreg_finite_difference(1e-6)
_logreg_finite_difference(1e-4)
_logreg_finite_difference(1e-5, relative=True, backward=True)

REAL_CLASSES = sorted({c.cls for c in REAL_CORRECT})
