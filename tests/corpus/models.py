"""Correct models: loss functions with hand-written backprop (numpy only).

Every model is a :class:`Model` with ``fun(params)``, ``grad(params, bug=None)``
and ``params()``.  ``grad`` takes an optional ``bug`` keyword so that the
realistic mistakes in bugs.py are written where they happen (inside the
backward pass), not as a patch on the result.

Data are fixed at import time from ``np.random.default_rng(seed)``.  Losses
compute in the dtype of the parameters (float32 in, float32 arithmetic; a
complex input for the complex step stays complex), so the float32 variants are
genuinely float32 models.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from . import Case


@dataclass
class Model:
    name: str
    fun: Callable
    grad: Callable  # grad(params, bug=None)
    params: Callable
    analytic: bool = False
    note: str = ""


MODELS: dict[str, Model] = {}


def _register(m: Model) -> Model:
    MODELS[m.name] = m
    return m


def _dt(x):
    return np.asarray(x).dtype


def _cast(a, like):
    """Data ``a`` in the dtype the parameter ``like`` computes in."""
    return np.asarray(a).astype(_dt(like))


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _softmax_rows(Z):
    # the shift is a constant (taken from the real part), so the code stays analytic
    Zs = Z - Z.real.max(axis=1, keepdims=True)
    E = np.exp(Zs)
    return E / E.sum(axis=1, keepdims=True)


def _logsumexp_rows(Z):
    mx = Z.real.max(axis=1, keepdims=True)
    return (mx + np.log(np.exp(Z - mx).sum(axis=1, keepdims=True)))[:, 0]


# --------------------------------------------------------------------------
# linear regression, MSE


def _linreg():
    rng = np.random.default_rng(101)
    m, d = 20, 5
    X = rng.normal(size=(m, d))
    y = X @ rng.normal(size=d) + 0.1 * rng.normal(size=m)

    def params():
        r = np.random.default_rng(1)
        return {"w": r.normal(size=d), "b": np.asarray(0.3)}

    def fun(p):
        w = p["w"]
        r = _cast(X, w) @ w + p["b"] - _cast(y, w)
        return np.mean(r**2)

    def grad(p, bug=None):
        w, b = p["w"], p["b"]
        Xc = _cast(X, w)
        r = Xc @ w + (0 if bug == "missing_bias" else b) - _cast(y, w)
        k = 2.0
        if bug == "missing_factor_2":
            k = 1.0
        scale = k / m if bug != "missing_1_over_m" else k
        gw = scale * (Xc.T @ r)
        gb = np.asarray(scale * r.sum(), dtype=_dt(w))
        return {"w": gw, "b": gb}

    return _register(Model("linreg_mse", fun, grad, params, analytic=True))


# --------------------------------------------------------------------------
# logistic regression with L2


def _logreg():
    rng = np.random.default_rng(102)
    m, d, lam = 30, 4, 0.1
    X = rng.normal(size=(m, d))
    y = (rng.random(m) < _sigmoid(X @ np.array([1.0, -2.0, 0.5, 0.0]))).astype(float)

    def params():
        r = np.random.default_rng(2)
        return {"w": r.normal(size=d), "b": np.array([0.1])}

    def fun(p):
        w = p["w"]
        z = _cast(X, w) @ w + p["b"][0]
        yc = _cast(y, w)
        return np.mean(np.log1p(np.exp(z)) - yc * z) + 0.5 * lam * np.sum(w * w)

    def grad(p, bug=None):
        w = p["w"]
        Xc = _cast(X, w)
        z = Xc @ w + p["b"][0]
        s = _sigmoid(z)
        dz = (s - _cast(y, w)) / m
        if bug == "double_sigmoid_derivative":
            dz = dz * s * (1 - s)
        gw = Xc.T @ dz
        if bug != "missing_regularisation":
            gw = gw + lam * w
        gb = np.array([dz.sum()], dtype=_dt(w))
        if bug == "sign_flip":
            gw, gb = -gw, -gb
        if bug == "one_entry_1e-3":
            gw = gw.copy()
            gw[2] *= 1.001
        return {"w": gw, "b": gb}

    return _register(Model("logreg", fun, grad, params, analytic=True))


# --------------------------------------------------------------------------
# softmax regression (multinomial cross-entropy)


def _softmax():
    rng = np.random.default_rng(103)
    m, d, k = 10, 4, 3
    X = rng.normal(size=(m, d))
    labels = rng.integers(0, k, size=m)

    def params():
        r = np.random.default_rng(3)
        return {"W": 0.5 * r.normal(size=(d, k)), "b": 0.1 * r.normal(size=k)}

    def fun(p):
        W = p["W"]
        Z = _cast(X, W) @ W + p["b"]
        return np.mean(_logsumexp_rows(Z) - Z[np.arange(m), labels])

    def grad(p, bug=None):
        W = p["W"]
        Xc = _cast(X, W)
        P = _softmax_rows(Xc @ W + p["b"])
        if bug != "missing_minus_one":
            P[np.arange(m), labels] -= 1
        G = P / m
        gW = Xc.T @ G
        gb = G.sum(axis=0)
        if bug == "rolled":
            gW = np.roll(gW, 1)
        if bug == "one_entry_5pct":
            gW[1, 2] *= 1.05
        if bug == "sign_flip_b":
            gb = -gb
        return {"W": gW, "b": gb}

    return _register(Model("softmax_xent", fun, grad, params, analytic=True))


# --------------------------------------------------------------------------
# two-layer network with ReLU, course style: columns are examples


def _two_layer(name="two_layer_relu", near_kink=False):
    rng = np.random.default_rng(104)
    d, h, k, m, lam = 4, 6, 3, 6, 0.01
    X = rng.normal(size=(d, m))
    labels = rng.integers(0, k, size=m)
    Y = np.zeros((k, m))
    Y[labels, np.arange(m)] = 1.0

    def params():
        r = np.random.default_rng(4)
        p = {
            "W1": 0.5 * r.normal(size=(h, d)),
            "b1": 0.1 * r.normal(size=(h, 1)),
            "W2": 0.5 * r.normal(size=(k, h)),
            "b2": 0.1 * r.normal(size=(k, 1)),
        }
        if near_kink:
            # put the pre-activation of unit 1, example 2 at 1e-8 (a ReLU kink
            # well inside any default finite-difference step)
            p["b1"][1, 0] = 1e-8 - p["W1"][1] @ X[:, 2]
        return p

    def forward(p):
        W1 = p["W1"]
        Xc = _cast(X, W1)
        Z1 = W1 @ Xc + p["b1"]
        A1 = np.maximum(Z1, 0)
        Z2 = p["W2"] @ A1 + p["b2"]
        Z2 = Z2 - Z2.max(axis=0, keepdims=True)
        E = np.exp(Z2)
        P = E / E.sum(axis=0, keepdims=True)
        return Xc, Z1, A1, P

    def fun(p):
        Xc, Z1, A1, P = forward(p)
        nll = -np.mean(np.log(P[labels, np.arange(m)]))
        return nll + 0.5 * lam * (np.sum(p["W1"] ** 2) + np.sum(p["W2"] ** 2))

    def grad(p, bug=None):
        Xc, Z1, A1, P = forward(p)
        W1, W2 = p["W1"], p["W2"]
        dZ2 = (P - _cast(Y, W1)) / m
        if bug == "partial_batch":  # only the first half of the batch, still / m
            dZ2[:, m // 2:] = 0
        dW2 = dZ2 @ A1.T + lam * W2
        db2 = np.sum(dZ2, axis=1, keepdims=True)
        dA1 = W2.T @ dZ2
        dZ1 = dA1 if bug == "missing_relu_mask" else dA1 * (Z1 > 0)
        dW1 = dZ1 @ Xc.T
        if bug != "missing_regularisation":
            dW1 = dW1 + lam * W1
        if bug == "wrong_axis_bias":  # sums over units instead of examples (h == m)
            db1 = np.sum(dZ1, axis=0, keepdims=True).T
        else:
            db1 = np.sum(dZ1, axis=1, keepdims=True)
        return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}

    def min_preactivation(p):
        return float(np.min(np.abs(forward(p)[1])))

    mdl = Model(name, fun, grad, params)
    mdl.min_preactivation = min_preactivation
    return _register(mdl)


# --------------------------------------------------------------------------
# tanh MLP, parameters as a list of layers (dicts)


def _tanh_mlp():
    rng = np.random.default_rng(105)
    m = 8
    X = rng.normal(size=(m, 3))
    Y = rng.normal(size=(m, 2))

    def params():
        r = np.random.default_rng(5)
        return [
            {"W": 0.6 * r.normal(size=(3, 4)), "b": 0.1 * r.normal(size=4)},
            {"W": 0.6 * r.normal(size=(4, 2)), "b": 0.1 * r.normal(size=2)},
        ]

    def fun(p):
        W0 = p[0]["W"]
        H = np.tanh(_cast(X, W0) @ W0 + p[0]["b"])
        out = H @ p[1]["W"] + p[1]["b"]
        return 0.5 * np.sum((out - _cast(Y, W0)) ** 2) / m

    def grad(p, bug=None):
        W0 = p[0]["W"]
        Xc = _cast(X, W0)
        H = np.tanh(Xc @ W0 + p[0]["b"])
        out = H @ p[1]["W"] + p[1]["b"]
        dout = (out - _cast(Y, W0)) / m
        gW1 = H.T @ dout
        gb1 = dout.sum(axis=0)
        dH = dout @ p[1]["W"].T
        if bug == "tanh_derivative":
            dA = dH * (1 - H)          # 1 - tanh instead of 1 - tanh**2
        else:
            dA = dH * (1 - H**2)
        gW0 = Xc.T @ dA
        gb0 = dA.sum(axis=0)
        if bug == "missing_bias_grad":
            gb0 = np.zeros_like(gb0)
        return [{"W": gW0, "b": gb0}, {"W": gW1, "b": gb1}]

    return _register(Model("tanh_mlp", fun, grad, params, analytic=True))


# --------------------------------------------------------------------------
# layer norm and batch norm (normalisation over axis 1 resp. 0)


def _norm(name, axis, shape, seed):
    rng = np.random.default_rng(seed)
    C = rng.normal(size=shape)
    nfeat = shape[1]  # gamma, beta: one per feature (last axis)
    eps = 1e-5

    def params():
        r = np.random.default_rng(seed + 1000)
        return {
            "x": r.normal(size=shape) * 2.0 + 0.5,
            "gamma": 1.0 + 0.2 * r.normal(size=nfeat),
            "beta": 0.1 * r.normal(size=nfeat),
        }

    def forward(p):
        x = p["x"]
        mu = x.mean(axis=axis, keepdims=True)
        xc = x - mu
        var = (xc * xc).mean(axis=axis, keepdims=True)  # not np.var: stays analytic
        rstd = 1.0 / np.sqrt(var + eps)
        xhat = xc * rstd
        y = p["gamma"] * xhat + p["beta"]
        return xhat, rstd, y

    def fun(p):
        _, _, y = forward(p)
        return np.sum(_cast(C, p["x"]) * y) + 0.5 * np.sum(y * y)

    def grad(p, bug=None):
        xhat, rstd, y = forward(p)
        dy = _cast(C, p["x"]) + y
        ggamma = np.sum(dy * xhat, axis=0)
        gbeta = np.sum(dy, axis=0)
        dxhat = dy * p["gamma"]
        if bug == "stats_as_constants":
            dx = dxhat * rstd
        elif bug == "missing_mean_term":
            dx = rstd * (dxhat - xhat * np.mean(dxhat * xhat, axis=axis, keepdims=True))
        else:
            dx = rstd * (dxhat - np.mean(dxhat, axis=axis, keepdims=True)
                         - xhat * np.mean(dxhat * xhat, axis=axis, keepdims=True))
        return {"x": dx, "gamma": ggamma, "beta": gbeta}

    return _register(Model(name, fun, grad, params, analytic=True))


# --------------------------------------------------------------------------
# single-head attention


def _attention():
    rng = np.random.default_rng(107)
    T, d = 4, 3
    X = rng.normal(size=(T, d))
    C = rng.normal(size=(T, d))

    def params():
        r = np.random.default_rng(7)
        return {k: 0.7 * r.normal(size=(d, d)) for k in ("Wq", "Wk", "Wv")}

    def forward(p):
        Xc = _cast(X, p["Wq"])
        Q, K, V = Xc @ p["Wq"], Xc @ p["Wk"], Xc @ p["Wv"]
        A = _softmax_rows(Q @ K.T / d**0.5)
        return Xc, Q, K, V, A

    def fun(p):
        _, _, _, V, A = forward(p)
        return np.sum(_cast(C, p["Wq"]) * (A @ V))

    def grad(p, bug=None):
        Xc, Q, K, V, A = forward(p)
        dO = _cast(C, p["Wq"])
        dA = dO @ V.T
        dV = A.T @ dO
        dS = A * (dA - np.sum(dA * A, axis=1, keepdims=True))
        s = 1.0 if bug == "missing_scale" else 1.0 / d**0.5
        dQ = dS @ K * s
        dK = dS.T @ Q * s
        g = {"Wq": Xc.T @ dQ, "Wk": Xc.T @ dK, "Wv": Xc.T @ dV}
        if bug == "swapped_q_k":
            g["Wq"], g["Wk"] = g["Wk"], g["Wq"]
        return g

    return _register(Model("attention", fun, grad, params, analytic=True))


# --------------------------------------------------------------------------
# convolutions (valid cross-correlation)


def _conv1d():
    rng = np.random.default_rng(108)
    N, K = 12, 4
    x = rng.normal(size=N)
    t = rng.normal(size=N - K + 1)
    win = np.lib.stride_tricks.sliding_window_view(x, K)  # (N-K+1, K)

    def params():
        r = np.random.default_rng(8)
        return {"w": r.normal(size=K), "b": np.array(0.2)}

    def fun(p):
        y = _cast(win, p["w"]) @ p["w"] + p["b"]
        return 0.5 * np.sum((y - _cast(t, p["w"])) ** 2)

    def grad(p, bug=None):
        W = _cast(win, p["w"])
        r = W @ p["w"] + p["b"] - _cast(t, p["w"])
        gw = W.T @ r
        if bug == "kernel_flipped":
            gw = gw[::-1].copy()
        return {"w": gw, "b": np.asarray(r.sum())}

    return _register(Model("conv1d", fun, grad, params, analytic=True))


def _conv2d():
    rng = np.random.default_rng(109)
    n, k = 6, 3
    o = n - k + 1
    t = 0.5 * rng.normal(size=(o, o))

    def params():
        r = np.random.default_rng(9)
        return {"x": r.normal(size=(n, n)), "K": 0.4 * r.normal(size=(k, k))}

    def conv(x, K):
        y = np.zeros((o, o), dtype=np.result_type(x, K))
        for a in range(k):
            for b in range(k):
                y = y + K[a, b] * x[a:a + o, b:b + o]
        return y

    def fun(p):
        a = np.tanh(conv(p["x"], p["K"]))
        return 0.5 * np.sum((a - _cast(t, p["x"])) ** 2)

    def grad(p, bug=None):
        x, K = p["x"], p["K"]
        a = np.tanh(conv(x, K))
        r = (a - _cast(t, x)) * (1 - a * a)
        gK = np.zeros_like(K)
        gx = np.zeros_like(x)
        for i in range(k):
            for j in range(k):
                gK[i, j] = np.sum(r * x[i:i + o, j:j + o])
                gx[i:i + o, j:j + o] += r * K[i, j]
        if bug == "kernel_flipped":
            gK = gK[::-1, ::-1].copy()
        return {"x": gx, "K": gK}

    return _register(Model("conv2d", fun, grad, params, analytic=True))


# --------------------------------------------------------------------------
# log-determinant of an SPD matrix parametrised as A A^T + I


def _logdet():
    def params():
        r = np.random.default_rng(10)
        return {"A": r.normal(size=(4, 4))}

    def fun(p):
        A = p["A"]
        S = A @ A.T + np.eye(4)
        return np.log(np.linalg.det(S))

    def grad(p, bug=None):
        A = p["A"]
        Sinv = np.linalg.inv(A @ A.T + np.eye(4))
        G = 2.0 * A.T @ Sinv            # d/dA = (2 A^T S^-1)^T
        return {"A": G if bug == "missing_transpose" else G.T}

    return _register(Model("logdet_spd", fun, grad, params, analytic=True))


# --------------------------------------------------------------------------
# hinge loss (linear SVM) and huber regression: kinks kept away from the data


def _hinge():
    rng = np.random.default_rng(111)
    m, d, lam = 12, 3, 0.05
    X = rng.normal(size=(m, d))
    y = np.where(X @ np.array([1.0, -1.0, 0.5]) > 0, 1.0, -1.0)

    def params():
        r = np.random.default_rng(11)
        return {"w": r.normal(size=d), "b": np.array(0.1)}

    def margins(p):
        return 1 - y * (X @ p["w"] + p["b"])

    def fun(p):
        return np.mean(np.maximum(0.0, margins(p))) + 0.5 * lam * np.sum(p["w"] ** 2)

    def grad(p, bug=None):
        active = margins(p) > 0
        if bug == "missing_mask":
            active = np.ones_like(active)
        c = -(y * active) / m
        return {"w": X.T @ c + lam * p["w"], "b": np.asarray(c.sum())}

    mdl = Model("hinge_svm", fun, grad, params)
    mdl.min_margin = lambda p: float(np.min(np.abs(margins(p))))
    return _register(mdl)


def _huber():
    rng = np.random.default_rng(112)
    m, d, delta = 15, 3, 1.0
    X = rng.normal(size=(m, d))
    y = X @ np.array([0.5, -1.0, 2.0]) + rng.standard_t(2, size=m)

    def params():
        r = np.random.default_rng(12)
        return {"w": r.normal(size=d)}

    def fun(p):
        r = X @ p["w"] - y
        a = np.abs(r)
        return np.mean(np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta)))

    def grad(p, bug=None):
        r = X @ p["w"] - y
        g = r if bug == "no_clip" else np.clip(r, -delta, delta)
        return {"w": X.T @ g / m}

    mdl = Model("huber", fun, grad, params)
    mdl.min_kink_distance = lambda p: float(np.min(np.abs(np.abs(X @ p["w"] - y) - delta)))
    return _register(mdl)


# --------------------------------------------------------------------------
# RNN cell unrolled 3 steps


def _rnn():
    rng = np.random.default_rng(113)
    H, D, T = 3, 2, 3
    xs = rng.normal(size=(T, D))
    target = rng.normal(size=2)

    def params():
        r = np.random.default_rng(13)
        return {"W": 0.6 * r.normal(size=(H, H)), "U": 0.6 * r.normal(size=(H, D)),
                "b": 0.1 * r.normal(size=H), "V": 0.8 * r.normal(size=(2, H))}

    def forward(p):
        hs = [np.zeros(H, dtype=_dt(p["W"]))]
        xc = _cast(xs, p["W"])
        for t in range(T):
            hs.append(np.tanh(p["W"] @ hs[-1] + p["U"] @ xc[t] + p["b"]))
        return xc, hs

    def fun(p):
        _, hs = forward(p)
        e = p["V"] @ hs[-1] - _cast(target, p["W"])
        return 0.5 * np.sum(e * e)

    def grad(p, bug=None):
        xc, hs = forward(p)
        e = p["V"] @ hs[-1] - _cast(target, p["W"])
        gV = np.outer(e, hs[-1])
        gW, gU, gb = np.zeros_like(p["W"]), np.zeros_like(p["U"]), np.zeros_like(p["b"])
        dh = p["V"].T @ e
        for t in range(T, 0, -1):
            da = dh * (1 - hs[t] ** 2)
            gW += np.outer(da, hs[t - 1])
            gU += np.outer(da, xc[t - 1])
            gb += da
            if bug == "truncated_bptt":
                break
            dh = p["W"].T @ da
        if bug == "transposed_W":
            gW = gW.T.copy()
        return {"W": gW, "U": gU, "b": gb, "V": gV}

    return _register(Model("rnn_3steps", fun, grad, params, analytic=True))


# --------------------------------------------------------------------------
# Gaussian NLL with log-variance, quadratic form, polynomial regression


def _gauss_nll():
    rng = np.random.default_rng(114)
    x = rng.normal(size=6) * 1.5

    def params():
        r = np.random.default_rng(14)
        return {"mu": r.normal(size=6), "logvar": 0.5 * r.normal(size=6)}

    def fun(p):
        xc = _cast(x, p["mu"])
        return 0.5 * np.sum(p["logvar"] + (xc - p["mu"]) ** 2 * np.exp(-p["logvar"]))

    def grad(p, bug=None):
        d = _cast(x, p["mu"]) - p["mu"]
        iv = np.exp(p["logvar"] if bug == "variance_confused" else -p["logvar"])
        glv = 0.5 * (1 - d * d * np.exp(-p["logvar"]))
        if bug == "logvar_missing_half":
            glv = 2 * glv
        return {"mu": -d * iv, "logvar": glv}

    return _register(Model("gauss_nll", fun, grad, params, analytic=True))


def _quadratic():
    rng = np.random.default_rng(115)
    n = 5
    A = rng.normal(size=(n, n))  # not symmetric
    bvec = rng.normal(size=n)

    def params():
        return {"x": np.random.default_rng(15).normal(size=n)}

    def fun(p):
        x = p["x"]
        return 0.5 * x @ _cast(A, x) @ x + _cast(bvec, x) @ x

    def grad(p, bug=None):
        x = p["x"]
        Ac = _cast(A, x)
        M = Ac if bug == "unsymmetrised" else 0.5 * (Ac + Ac.T)
        return {"x": M @ x + _cast(bvec, x)}

    return _register(Model("quadratic_form", fun, grad, params, analytic=True))


def _polyreg():
    rng = np.random.default_rng(116)
    m, deg = 25, 4
    t = np.linspace(-2, 2, m)
    y = 0.5 - t + 0.3 * t**3 + 0.1 * rng.normal(size=m)
    Phi = np.stack([t**k for k in range(deg + 1)], axis=1)
    Phi_wrong = np.stack([t ** (k + 1) for k in range(deg + 1)], axis=1)

    def params():
        return {"c": np.random.default_rng(16).normal(size=deg + 1) * 0.3}

    def fun(p):
        r = _cast(Phi, p["c"]) @ p["c"] - _cast(y, p["c"])
        return np.mean(r * r)

    def grad(p, bug=None):
        c = p["c"]
        r = _cast(Phi, c) @ c - _cast(y, c)
        F = Phi_wrong if bug == "power_off_by_one" else Phi
        return {"c": 2.0 / m * (_cast(F, c).T @ r)}

    return _register(Model("polyreg", fun, grad, params, analytic=True))


# --------------------------------------------------------------------------
# special situations: mixed scales, large offsets, exact zeros, nested pytrees


def _mixed_scales():
    rng = np.random.default_rng(117)
    c1 = rng.normal(size=3)
    c2 = rng.normal(size=3)

    def params():
        r = np.random.default_rng(17)
        return {"small": 1e-6 * r.normal(size=3),   # a parameter measured in ~micro-units
                "big": 1e4 * (1 + 0.3 * r.normal(size=3)),
                "zero": np.zeros(3)}

    def fun(p):
        return (np.sum(np.tanh(p["small"] * 1e6 * c1))
                + np.sum(np.log1p((p["big"] / 1e4) ** 2))
                + np.sum(p["zero"] ** 2 + np.sin(p["zero"] + c2)))

    def grad(p, bug=None):
        th = np.tanh(p["small"] * 1e6 * c1)
        gs = (1 - th**2) * 1e6 * c1
        if bug == "small_sign_flip":
            gs = -gs
        u = p["big"] / 1e4
        gb = 2 * u / (1 + u**2) / 1e4
        gz = 2 * p["zero"] + np.cos(p["zero"] + c2)
        return {"small": gs, "big": gb, "zero": gz}

    return _register(Model("mixed_scales", fun, grad, params, analytic=True))


def _large_offsets():
    rng = np.random.default_rng(118)
    n = 5
    c = rng.normal(size=n)
    tgt = rng.normal(size=n)

    def params():
        return {"p": 1e4 + np.random.default_rng(18).normal(size=n)}

    def fun(p):
        u = p["p"] - 1e4
        return np.sum(c * np.cos(u)) + 0.5 * np.sum((u - tgt) ** 2)

    def grad(p, bug=None):
        u = p["p"] - 1e4
        g = -c * np.sin(u) + (u - tgt)
        if bug == "one_entry_sign":
            g = g.copy()
            g[3] = -g[3]
        return {"p": g}

    return _register(Model("large_offsets", fun, grad, params, analytic=True))


def _embedding():
    rng = np.random.default_rng(119)
    idx = np.array([0, 2, 3, 2])
    C = rng.normal(size=(4, 3))

    def params():
        r = np.random.default_rng(19)
        return {"E": r.normal(size=(6, 3)), "unused": np.ones(2)}

    def fun(p):
        return np.sum(np.tanh(p["E"][idx]) * _cast(C, p["E"]))

    def grad(p, bug=None):
        E = p["E"]
        G = np.zeros_like(E)
        rows = idx + 1 if bug == "scatter_off_by_one" else idx
        np.add.at(G, rows, (1 - np.tanh(E[idx]) ** 2) * _cast(C, E))
        return {"E": G, "unused": np.zeros_like(p["unused"])}

    return _register(Model("embedding_zeros", fun, grad, params, analytic=True,
                           note="rows 1, 4, 5 and leaf 'unused' have exactly zero gradient"))


def _nested():
    rng = np.random.default_rng(120)
    X = rng.normal(size=(3, 4))     # 4 examples as columns
    y = rng.normal(size=4)

    def params():
        r = np.random.default_rng(20)
        return {
            "enc": [{"W": 0.7 * r.normal(size=(3, 3)), "b": 0.1 * r.normal(size=3)},
                    {"W": 0.7 * r.normal(size=(3, 3)), "b": 0.1 * r.normal(size=3)}],
            "dec": (r.normal(size=3), {"s": np.array(0.8)}),
        }

    def fun(p):
        h = X
        for layer in p["enc"]:
            h = np.tanh(layer["W"] @ h + layer["b"][:, None])
        out = p["dec"][1]["s"] * (p["dec"][0] @ h)
        return 0.5 * np.sum((out - y) ** 2)

    def grad(p, bug=None):
        hs = [X]
        for layer in p["enc"]:
            hs.append(np.tanh(layer["W"] @ hs[-1] + layer["b"][:, None]))
        v, s = p["dec"][0], p["dec"][1]["s"]
        z = v @ hs[-1]
        e = s * z - y
        gs = np.asarray(np.sum(e * z))
        if bug == "s_doubled":
            gs = 2 * gs
        gv = s * (hs[-1] @ e)
        dh = s * np.outer(v, e)
        genc = [None, None]
        for i in (1, 0):
            da = dh * (1 - hs[i + 1] ** 2)
            genc[i] = {"W": da @ hs[i].T, "b": da.sum(axis=1)}
            dh = p["enc"][i]["W"].T @ da
        if bug == "swapped_layers":
            genc[0]["W"], genc[1]["W"] = genc[1]["W"], genc[0]["W"]
        return {"enc": genc, "dec": (gv, {"s": gs})}

    return _register(Model("nested_pytree", fun, grad, params, analytic=True))


# --------------------------------------------------------------------------
# float32 models at and near an optimum: the gradient is small, the float32
# analytic side carries rounding errors of the size of the terms it sums


def _linreg_optimum(name, offset):
    rng = np.random.default_rng(122)
    m, d = 100, 5
    X = rng.normal(size=(m, d))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + 0.1 * rng.normal(size=m)
    w_opt = np.linalg.lstsq(X, y, rcond=None)[0]

    def params():
        return {"w": (w_opt + offset).astype(np.float32)}

    def fun(p):
        w = p["w"]
        r = _cast(X, w) @ w - _cast(y, w)
        return np.mean(r * r)

    def grad(p, bug=None):
        w = p["w"]
        Xc = _cast(X, w)
        r = Xc @ w - _cast(y, w)
        g = 2.0 / m * (Xc.T @ r)
        if bug == "sign_flip":
            g = -g
        return {"w": g}

    return _register(Model(name, fun, grad, params, analytic=True,
                           note=f"float32 least squares, w = w_opt + {offset}"))


def _softmax_trained():
    rng = np.random.default_rng(123)
    m, d, k, lam = 40, 6, 3, 0.01
    X = rng.normal(size=(m, d))
    labels = rng.integers(0, k, size=m)
    Y = np.eye(k)[labels]

    def _f(W, b):
        Z = _cast(X, W) @ W + b
        return np.mean(_logsumexp_rows(Z) - Z[np.arange(m), labels]) + 0.5 * lam * np.sum(W * W)

    def _g(W, b):
        Xc = _cast(X, W)
        G = (_softmax_rows(Xc @ W + b) - _cast(Y, W)) / m
        return Xc.T @ G + lam * W, G.sum(axis=0)

    W, b = np.zeros((d, k)), np.zeros(k)
    for _ in range(25):  # plain gradient descent in float64: a partly trained model
        gW, gb = _g(W, b)
        W, b = W - 1.0 * gW, b - 1.0 * gb

    def params():
        return {"W": W.astype(np.float32), "b": b.astype(np.float32)}

    def fun(p):
        return _f(p["W"], p["b"])

    def grad(p, bug=None):
        gW, gb = _g(p["W"], p["b"])
        if bug == "missing_l2":
            gW = gW - lam * p["W"]
        return {"W": gW, "b": gb}

    return _register(Model("softmax_f32_trained", fun, grad, params, analytic=True,
                           note="float32 softmax regression after 25 GD steps (gradient ~1e-3)"))


def _mlp_trained(steps, seed=124):
    """A float32 tanh MLP (32-16-10, 64 examples, cross-entropy) after ``steps``
    of gradient descent done in float64: the common "check the gradient of my
    trained model" situation."""
    rng = np.random.default_rng(seed)
    d, h, k, m = 32, 16, 10, 64
    X = rng.normal(size=(d, m))
    labels = rng.integers(0, k, size=m)
    Y = np.eye(k)[labels].T

    def forward(p):
        Xc = _cast(X, p["W1"])
        A1 = np.tanh(p["W1"] @ Xc + p["b1"])
        Z2 = p["W2"] @ A1 + p["b2"]
        Z2 = Z2 - Z2.max(axis=0, keepdims=True)
        E = np.exp(Z2)
        return Xc, A1, E / E.sum(axis=0, keepdims=True)

    def fun(p):
        _, _, P = forward(p)
        return -np.mean(np.log(P[labels, np.arange(m)]))

    def grad(p, bug=None):
        Xc, A1, P = forward(p)
        dZ2 = (P - _cast(Y, P)) / m
        dA1 = p["W2"].T @ dZ2
        dZ1 = dA1 * (1 - A1) if bug == "tanh_derivative" else dA1 * (1 - A1**2)
        return {"W1": dZ1 @ Xc.T, "b1": dZ1.sum(axis=1, keepdims=True),
                "W2": dZ2 @ A1.T, "b2": dZ2.sum(axis=1, keepdims=True)}

    p = {"W1": 0.3 * rng.normal(size=(h, d)), "b1": np.zeros((h, 1)),
         "W2": 0.3 * rng.normal(size=(k, h)), "b2": np.zeros((k, 1))}
    for _ in range(steps):
        g = grad(p)
        p = {key: p[key] - 0.5 * g[key] for key in p}
    trained = p

    def params():
        return {key: v.astype(np.float32) for key, v in trained.items()}

    return _register(Model(f"mlp_f32_trained_{steps}" + ("" if seed == 124 else f"_s{seed}"), fun, grad, params,
                           analytic=True,
                           note=f"float32 tanh MLP, 698 parameters, after {steps} GD steps"))


# --------------------------------------------------------------------------
# build everything, then the variants

for _f in (_linreg, _logreg, _softmax, _two_layer, _tanh_mlp, _attention, _conv1d, _conv2d,
           _logdet, _hinge, _huber, _rnn, _gauss_nll, _quadratic, _polyreg, _mixed_scales,
           _large_offsets, _embedding, _nested):
    _f()
_norm("layer_norm", axis=1, shape=(3, 5), seed=106)
_norm("batch_norm", axis=0, shape=(6, 3), seed=121)
_two_layer("two_layer_relu_near_kink", near_kink=True)
_linreg_optimum("linreg_f32_at_optimum", 0.0)
_linreg_optimum("linreg_f32_near_optimum", 1e-3)
_softmax_trained()
_mlp_trained(300)
_mlp_trained(2000, seed=0)


def _map_leaves(fn, tree):
    if isinstance(tree, dict):
        return {k: _map_leaves(fn, v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_map_leaves(fn, v) for v in tree)
    return fn(tree)


def float32_variant(base: str) -> Model:
    """The same model with float32 parameters (it then computes in float32)."""
    b = MODELS[base]
    m = Model(base + "_f32", b.fun, b.grad,
              lambda: _map_leaves(lambda a: np.asarray(a, dtype=np.float32), b.params()),
              analytic=b.analytic)
    return _register(m)


def scaled_variant(base: str, scale: float, suffix: str) -> Model:
    """The same model with the loss multiplied by ``scale`` (tiny or huge losses)."""
    b = MODELS[base]

    def fun(p):
        return scale * b.fun(p)

    def grad(p, bug=None):
        g = _map_leaves(lambda a: scale * np.asarray(a), b.grad(p, bug=bug))
        return g

    return _register(Model(base + suffix, fun, grad, b.params, analytic=b.analytic))


for _b in ("linreg_mse", "softmax_xent", "tanh_mlp", "attention", "layer_norm", "batch_norm", "conv2d",
           "rnn_3steps"):
    float32_variant(_b)


def _with_params(base: str, name: str, edit, note: str) -> Model:
    """The same model at other parameter values (``edit`` changes a fresh copy)."""
    b = MODELS[base]

    def params():
        p = b.params()
        edit(p)
        return p

    return _register(Model(name, b.fun, b.grad, params, analytic=b.analytic, note=note))


def _tiny_bias(p):
    p["b"][0] = 1e-13


_with_params("logreg", "logreg_bias_near_zero", _tiny_bias,
             "bias 1e-13 (e.g. zero init plus a rounding-sized update): f varies on the scale of 1 in it")
scaled_variant("logreg", 1e-10, "_tiny")
scaled_variant("softmax_xent", 1e8, "_huge")
scaled_variant("tanh_mlp", 1e-10, "_tiny")


def _case(m: Model, **kw) -> Case:
    tags = set()
    if m.name.endswith("_f32") or "_f32_" in m.name:
        tags.add("float32")
    if m.name.endswith("_tiny"):
        tags.add("tiny")
    if m.name.endswith("_huge"):
        tags.add("huge")
    return Case(name=m.name, fun=m.fun, grad=lambda p, _g=m.grad: _g(p), make_params=m.params,
                kind="correct", model=m.name, analytic=m.analytic,
                kink=m.name.endswith("near_kink"), inconclusive_ok=m.name.endswith("at_optimum"),
                tags=frozenset(tags), note=m.note, **kw)


CORRECT = [_case(m) for m in MODELS.values()]


def copy_params(p):
    return copy.deepcopy(p)
