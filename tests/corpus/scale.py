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
