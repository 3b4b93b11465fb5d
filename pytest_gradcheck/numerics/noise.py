"""Noise: how precisely f and the analytic side are computed, measured (ECnoise).

``measure_noise`` / ``noise_level``: the noise sigma of f near params (Moré &
Wild's ECnoise, robust variant), measured once per check and cached on the
problem; ``gradient_noise`` / ``analytic_noise``: the same for the analytic
gradient, Jacobian or JVP, where they are computed in less than float64.

Layer: numerics, low (above evaluate, trees, pytree).  Imports errors, pytree
(``build``) and numerics.trees (``flatten_like``); reads a Problem by its
attributes, without importing problem.py (which imports this module).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import GradcheckInputError
from ..pytree import build
from .trees import flatten_like

def measure_noise(problem):
    """Noise sigma of f near x0, measured (Moré & Wild's ECnoise, robust variant).

    f is evaluated at 8 points x0 + k*u (u: random signs times each entry's
    scale times delta, rounded to a power of two), third differences of the 9 values are taken, and
    sigma = median|D3| / (0.6745*sqrt(20)) (D3 of i.i.d. noise has variance
    20 sigma^2; the median ignores a kink crossed by a window).

    Up to three spacings, each tried only when the one before saw nothing:
    delta = 64 ulps, where the smooth part of D3 (about delta^3 times the
    third derivative) is far below roundoff even when |x| is no measure of
    f's scale (params ~1e4 in a function varying on the scale of 1); then
    delta = 4 sqrt(eps), coarse enough to see f round its input to float32
    internally; then delta = eps^(1/4), for a result quantised far above the
    change one entry makes (a float32 loss of 3000 weak features moves by
    less than its quantum over 4 sqrt(eps)).  "Saw nothing" is fewer than 4
    of the 8 values differing from f0, or a median |D3| of exactly 0 with
    repeated values (a staircase: most windows lie on one step; distinct
    values with D3 = 0 are a smooth f whose rounding is the same at points
    this close, and keep the floor).  The result is at least
    eps_f*|f0| and the spread of repeated calls.
    """
    ev = problem.ev
    eps_f = ev.eps_out or float(np.finfo(np.float64).eps)
    f0 = float(np.real(ev.f0))
    floor = max(eps_f * abs(f0), getattr(problem, "repeat_noise", 0.0))
    if problem.method == "complex":
        return floor, eps_f
    buf_eps = max(float(np.finfo(f.dtype).eps) for f in ev.flat)
    signs = problem.rng.choice([-1.0, 1.0], size=problem.n) * problem.L
    sigma = None
    for delta in (64.0 * buf_eps, 4.0 * math.sqrt(buf_eps), buf_eps ** 0.25):
        # powers of two: x0 + k*u is then exact, so the points are equally spaced
        # (unequal spacing of x ~ 1e4 would show up as 'noise' of size ulp(x) |f'|)
        with np.errstate(divide="ignore"):  # L = 0 at entries held fixed: u = 0 there
            u = np.sign(signs) * np.exp2(np.round(np.log2(np.abs(signs) * delta)))
        vals = np.array([f0] + [float(np.real(ev.at_vector(problem.x0 + k * u))) for k in range(1, 9)])
        if not np.isfinite(vals).all():
            continue
        if np.count_nonzero(vals[1:] != f0) < 4:
            continue  # f does not resolve this spacing: no information about its noise
        med = float(np.median(np.abs(np.diff(vals, 3))))
        if med == 0.0 and np.unique(vals).size < vals.size:
            continue  # a quantised f, most windows on one step of its staircase: look coarser
        sigma = med / (0.6745 * math.sqrt(20.0))
        break
    problem.noise_raw = sigma
    return (floor if sigma is None else max(sigma, floor)), eps_f


def noise_level(problem):
    """Measure f's noise once per check (cached on the problem): (sigma, eps_eff).

    eps_eff = sigma/|f0| is the relative precision f is really computed to
    (at least its dtype's eps), which sets the default steps."""
    if getattr(problem, "sigma", None) is not None:
        return problem.sigma, problem.eps_eff
    sigma, eps_f = measure_noise(problem)
    f0 = float(np.real(problem.ev.f0))
    eps_eff = min(max(eps_f, sigma / abs(f0)) if f0 != 0 else eps_f, 1e-2)
    if sigma > 1e3 * eps_f * abs(f0) and f0 != 0:
        problem.messages.append(
            f"fun is noisy at the {sigma / abs(f0):.1g} level relative to its value (about "
            f"{sigma / (eps_f * abs(f0)):.0f} units of roundoff); it probably computes in lower precision than it "
            f"returns. Steps and tolerances follow the measured noise")
    problem.sigma, problem.eps_eff = sigma, eps_eff
    return sigma, eps_eff


def gradient_noise(problem) -> np.ndarray:
    """Per-entry noise of the analytic gradient, measured like f's (ECnoise).

    Only where the gradient is computed in less than float64: there its
    roundoff can exceed the kappa*eps floor, e.g. at an optimum, where
    every entry is a sum of terms that cancel to ~0 and the float32 result
    is pure roundoff.  8 extra calls of grad at points x0 + k*u (k = 1..8,
    u = random signs * L * spacing); zero for float64 gradients (no calls).

    The spacing, sqrt(eps) of each entry's dtype times its scale L, sits
    between two errors.  Far below it the points differ by a few quanta and
    the gradient's rounding errors are nearly the same at all of them, so
    their differences understate it (a float32 MLP at its optimum failed
    at 4 eps).  Far above it third differences measure the gradient's
    curvature, ~(spacing/L)^3 of its size, not its noise: at 4 sqrt(eps),
    0.35 L for bfloat16, that exceeded the gradient itself and swallowed a
    sign error.  At sqrt(eps) the points are 11 (bfloat16) to ~3000
    (float32) quanta apart, and the curvature term is 10x (bfloat16) to
    1000x below the dtype's eps.
    """
    f64 = float(np.finfo(np.float64).eps)
    if not (problem.eps_a > f64).any():
        return np.zeros(problem.n)
    return analytic_noise(lambda tree: flatten_like(problem.gradient_of(tree), problem.spec, "grad")[0], problem.analytic,
                          problem.x0, problem.spec, problem.L, np.random.default_rng([problem.seed, 7]),
                          [leaf.slice for leaf in problem.spec.leaves])


def analytic_noise(read, base, x0, spec, L, rng, pool, live_only=False):
    """Per-entry noise of an analytic result (a gradient, Jacobian or JVP, flat ``base`` at x0):
    ECnoise of ``read(tree)`` at x0 + k*u, k = 1..8, u = random signs * L * sqrt(eps of each input
    leaf's dtype) (see gradient_noise for why that spacing).  Six third differences per
    entry give a rough estimate, so each slice in ``pool`` is raised to its 90th percentile (of the
    entries that vary at all, with ``live_only``: a sparse Jacobian's exact zeros must not dilute
    it).  Zeros when the result cannot be read or is not finite nearby."""
    eps = np.empty(x0.size)
    for leaf in spec.leaves:  # the analytic side sees the inputs in their own dtypes: their quanta
        eps[leaf.slice] = leaf.eps
    u = rng.choice([-1.0, 1.0], size=x0.size) * L * np.sqrt(eps)
    rows = [base]
    for k in range(1, 9):
        x = x0 + k * u

        def make(kk, leaf, x=x):
            buf = np.array(x[leaf.slice], dtype=leaf.dtype).reshape(leaf.shape)
            return leaf.adapter.leaf_from_buffer(buf, leaf.original)
        try:
            row = read(build(spec, make))
        except GradcheckInputError:
            return np.zeros(base.size)  # not finite nearby: no noise estimate, keep the floor
        if not np.all(np.isfinite(row)):
            return np.zeros(base.size)
        rows.append(row)
    d3 = np.diff(np.array(rows), 3, axis=0)
    sig = np.median(np.abs(d3), axis=0) / (0.6745 * math.sqrt(20.0))
    for sl in pool:
        vals = sig[sl]
        src = vals[vals > 0] if live_only else vals
        if src.size:
            sig[sl] = np.maximum(vals, np.quantile(src, 0.9))
    return sig
