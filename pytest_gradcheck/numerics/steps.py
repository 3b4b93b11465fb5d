"""Step scales and first steps: where every checker's finite differences start.

``entry_scales`` gives each entry the scale its steps follow and how far they may
grow (gradient, fast mode, vector and Hessian checks all take theirs from it);
``first_steps`` balances roundoff against truncation for full mode's stage A.

Layer: numerics, bottom (beside verdict.py).  Imports numpy only; reads a
Problem and a Scheme by their attributes.
"""

from __future__ import annotations

import math

import numpy as np

def entry_scales(x, spec):
    """(L, room) per entry of the flat point ``x``: the scale its steps follow and how far they may
    grow.  Every checker (gradient, fast mode, vector, Hessian) takes its steps from these."""
    L = np.empty(x.size)
    room = np.empty(x.size)
    rms_all = _rms(x)
    for leaf in spec.leaves:
        v = x[leaf.slice]
        rms = _rms(v)
        # an entry's own magnitude is its scale (log(x) at x = 1e-10 must not be
        # stepped by the leaf's 1e4); exact zeros borrow the leaf's
        L[leaf.slice] = np.where(v != 0, np.abs(v), rms if rms > 0 else 1.0)
        # how far steps may grow: the largest of the entry's, its leaf's and all params'
        # scale (a bias of 1e-13 beside unit weights needs steps far above its own size)
        room[leaf.slice] = np.maximum(L[leaf.slice], max(rms, rms_all))
    return L, room


def _rms(v: np.ndarray) -> float:
    """Root mean square without overflow (gradients near 1e308 exist: exp(709))."""
    if v.size == 0:
        return 0.0
    with np.errstate(over="ignore", under="ignore"):
        ss = float(np.dot(v, v))
    if 1e-290 < ss < 1e300:  # the sum of squares neither overflowed nor lost precision to underflow
        return math.sqrt(ss / v.size)
    m = float(np.max(np.abs(v)))
    if m == 0 or not math.isfinite(m):
        return m
    return m * float(np.sqrt(np.mean(np.square(v / m))))


def first_steps(problem, scheme, sigma: float, eps_eff: float) -> np.ndarray:
    """First step per entry, balancing roundoff sigma/h against truncation h^p |f^(p+1)|.

    With |f^(p+1)| modelled as g/L^p (g = |a_i| + the leaf's rms gradient, L the
    entry's scale) the balance is h = (sigma L^p / g)^(1/(p+1)); for sigma =
    eps|f| and |f| = g L this is the textbook eps^(1/(p+1)) L.  Clipped to
    [eps^(1/(p+1)) L / 256, L] and to at least 16 ulps of x in its buffer dtype.
    """
    if problem.eps is not None:
        return np.full(problem.n, float(problem.eps))
    p = scheme.order
    L = problem.L
    g = np.abs(problem.analytic) + problem.grad_scale
    plain = scheme.base_step(eps_eff) * L
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(g > 0, (sigma * L**p / g) ** (1.0 / (p + 1)), plain)
    # NaN -> 1 then clipped, as np.clip(np.nan_to_num(h, nan=1.0), ...) did (an inf, which nan_to_num
    # made the largest float, is clipped to L either way), at a third of the cost for a small check
    np.copyto(h, 1.0, where=np.isnan(h))
    h = np.minimum(np.maximum(h, plain / 256.0, out=h), L, out=h)
    for k, leaf in enumerate(problem.spec.leaves):
        dt = problem.ev.flat[k].dtype
        x = problem.x0[leaf.slice].astype(dt)
        h[leaf.slice] = np.maximum(h[leaf.slice], 16.0 * np.spacing(np.abs(x)).astype(np.float64))
    return h
