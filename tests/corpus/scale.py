"""Problems whose cost structure the scale tests and benchmarks/bench_scale.py measure."""

from __future__ import annotations

import numpy as np


def heavy_tailed_logreg(d=10_000, m=50, seed=0):
    """L2-regularised logistic regression with weights heavy-tailed like a trained model's
    (Student t, 2 degrees of freedom): many entries are small next to their leaf's rms
    (median |w| / rms ~ 0.23), the case where a first step scaled by |w| alone is lost in
    roundoff.  Returns (fun, grad, w)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, d)) / np.sqrt(d)
    y = (rng.random(m) < 0.5).astype(float)
    w = 0.1 * rng.standard_t(2, size=d)

    def fun(v):
        z = X @ v
        return float(np.mean(np.logaddexp(0, z) - y * z) + 0.5e-3 * v @ v)

    def grad(v):
        z = X @ v
        return X.T @ (1 / (1 + np.exp(-z)) - y) / m + 1e-3 * v

    return fun, grad, w


def tanh_mlp(d_in=50, hidden=150, d_out=10, batch=32, seed=0):
    """A tanh MLP with a softmax cross-entropy loss and hand-written backprop (9,160 params by
    default): N(0, 1/fan_in) weights, many of them small next to their leaf's rms (the first
    steps that roundoff swamps).  Returns (fun, grad, params)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(batch, d_in))
    y = rng.integers(0, d_out, size=batch)
    p = {"W1": rng.normal(size=(d_in, hidden)) / np.sqrt(d_in), "b1": 0.1 * rng.normal(size=hidden),
         "W2": rng.normal(size=(hidden, d_out)) / np.sqrt(hidden), "b2": 0.1 * rng.normal(size=d_out)}

    def forward(q):
        H = np.tanh(X @ q["W1"] + q["b1"])
        Z = H @ q["W2"] + q["b2"]
        Z = Z - Z.max(axis=1, keepdims=True)
        P = np.exp(Z)
        P /= P.sum(axis=1, keepdims=True)
        return H, P

    def fun(q):
        return float(-np.mean(np.log(forward(q)[1][np.arange(batch), y])))

    def grad(q):
        H, P = forward(q)
        dZ = P.copy()
        dZ[np.arange(batch), y] -= 1
        dZ /= batch
        dH = dZ @ q["W2"].T * (1 - H ** 2)
        return {"W1": X.T @ dH, "b1": dH.sum(0), "W2": H.T @ dZ, "b2": dZ.sum(0)}

    return fun, grad, p
