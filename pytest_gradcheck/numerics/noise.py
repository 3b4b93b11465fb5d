"""Noise: how precisely f and the analytic side are computed, measured (ECnoise).

``measure_noise`` / ``noise_level``: the noise sigma of f near params (Moré &
Wild's ECnoise, robust variant), measured once per check and cached on the
problem; ``gradient_noise`` / ``analytic_noise``: the same for the analytic
gradient, Jacobian or JVP, where they are computed in less than float64.

Layer: numerics, low (above evaluate, trees, pytree).  Imports errors, pytree
(``build``), numerics.trees (``flatten_like``) and verdict (``tiny_for_eps``); reads a Problem by its
attributes, without importing problem.py (which imports this module).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import GradcheckInputError
from ..pytree import build
from .trees import flatten_like
from .verdict import tiny_for_eps

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
    eps_f*|f0| + tiny_f and the spread of repeated calls: tiny_f, the smallest
    normal number of f's dtype, because a value below it is subnormal or 0 (an
    f that underflows, sum(x^2) at x ~ 1e-200, resolves no change smaller than
    that, however small its own value).
    """
    ev = problem.ev
    eps_f = ev.eps_out or float(np.finfo(np.float64).eps)
    f0 = float(np.real(ev.f0))
    floor = max(eps_f * abs(f0) + tiny_for_eps(eps_f), getattr(problem, "repeat_noise", 0.0))
    if problem.method == "complex":
        return floor, eps_f
    buf_eps = max(float(np.finfo(f.dtype).eps) for f in ev.flat)
    signs = _random_signs(problem.rng, problem.n) * problem.L
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
        med = _median_abs(np.diff(vals, 3))
        if med == 0.0 and np.unique(vals).size < vals.size:
            continue  # a quantised f, most windows on one step of its staircase: look coarser
        sigma = med / (0.6745 * math.sqrt(20.0))
        break
    problem.noise_raw = sigma
    return (floor if sigma is None else max(sigma, floor)), eps_f


def _random_signs(rng, n: int) -> np.ndarray:
    """rng.choice([-1.0, 1.0], size=n), the same draws and the same generator state after (choice
    draws rng.integers(0, 2) and indexes), without choice's ~3 us of argument handling."""
    return np.where(rng.integers(0, 2, size=n) == 1, 1.0, -1.0)


def _median_abs(d: np.ndarray) -> float:
    """float(np.median(np.abs(d))) for a handful of finite values, in plain Python: np.median's
    machinery took ~12 us on 6 numbers, a fifth of measure_noise's own cost per check.  The same
    number: the middle value, or the mean of the two middle ones ((a + b) / 2, as np.mean)."""
    s = sorted(abs(v) for v in d.tolist())
    if not s or any(v != v for v in s):  # empty or NaN: np.median's own rules
        return float(np.median(np.abs(d)))
    k = len(s) // 2
    return s[k] if len(s) % 2 else (s[k - 1] + s[k]) / 2


def noise_level(problem):
    """Measure f's noise once per check (cached on the problem): (sigma, eps_eff).

    eps_eff = sigma/|f0| is the relative precision f is really computed to
    (at least its dtype's eps), which sets the default steps."""
    if getattr(problem, "sigma", None) is not None:
        return problem.sigma, problem.eps_eff
    sigma, eps_f = measure_noise(problem)
    f0 = float(np.real(problem.ev.f0))
    eps_eff = min(max(eps_f, sigma / abs(f0)) if f0 != 0 else eps_f, 1e-2)
    roundoff = eps_f * abs(f0) + tiny_for_eps(eps_f)  # (tiny: an f0 of 1e-317 has eps*|f0| = 0)
    if sigma > 1e3 * roundoff and f0 != 0:
        problem.messages.append(
            f"fun is noisy at the {sigma / abs(f0):.1g} level relative to its value (about "
            f"{sigma / roundoff:.0f} units of roundoff); it probably computes in lower precision than it "
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
    return measured_gradient_noise(problem)


def measured_gradient_noise(problem) -> np.ndarray:
    """gradient_noise in any dtype (8 calls of grad).  For a float64 gradient only where a pass is
    to be kept as a verified ~0 (entries._mark_unresolved): a bias before a normalisation is a sum of
    terms that cancel, its value ~1e-16 is roundoff of those terms, which no kappa*eps of the
    entry's own size covers -- while a genuine 5e-13 next to a 1e8 leaf measures no noise at all."""
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


#: the staircase ladder (see staircase_noise): spacings grow STAIR_RATIO-fold per level, at most STAIR_LEVELS
STAIR_RATIO = 8.0
STAIR_LEVELS = 10
#: a level's jumps count only when they exceed the noise measured at params by this factor: ECnoise
#: estimates from six windows scatter by a factor 2-3, so 16 is far outside what one f's roundoff
#: measured twice can differ by
STAIR_MARGIN = 16.0
#: float32's unit roundoff: stairs this narrow (relative to params) are a cast to float32
F32_EPS = float(np.finfo(np.float32).eps)


def _table(problem, u):
    """(sigma from third differences, sigma from fourth) of f at x0 + k*u, k = 0..8; None if not finite.

    For i.i.d. noise both estimate sigma (D_k has variance C(2k, k) sigma^2: 20 and 70); for a smooth
    f the fourth differences are smaller than the third by about |u| / (f's scale)."""
    ev = problem.ev
    vals = np.array([float(np.real(ev.f0))] + [float(np.real(ev.at_vector(problem.x0 + k * u)))
                                                for k in range(1, 9)])
    if not np.isfinite(vals).all():
        return None
    s3 = float(np.median(np.abs(np.diff(vals, 3)))) / (0.6745 * math.sqrt(20.0))
    s4 = float(np.median(np.abs(np.diff(vals, 4)))) / (0.6745 * math.sqrt(70.0))
    return s3, s4


def staircase_noise(problem, base):
    """f's noise at the spacings where the steps are taken, when it is a staircase's: a dict or None.

    measure_noise looks at f 64 ulps apart.  A float64 loss that casts its coefficients to float32
    inside (or rounds them, or quantises them) is flat between the stairs of that term, and a smooth
    term beside it (an L2 penalty) moves at every spacing: the probe sees only the smooth term's
    roundoff.  At the first step, ~eps^(1/3) |x|, far above float32's quanta, the data term jumps by
    its own float32 roundoff (~eps32 |f|), and a difference quotient made of flat stretches
    (stencil points on one stair) shows a plateau at the smooth term's derivative: a bug's
    signature on a correct gradient.  The noise that matters is the one at the steps' scale.

    An ECnoise table (9 points, third and fourth differences) is taken along one random-sign
    direction at spacings base/8 * STAIR_RATIO^k (``base``: each entry's first step; k = 0, 1, ...
    while the 9-point window stays within the entries' scale L, at most STAIR_LEVELS).  What
    each kind of f does as the spacing grows rho-fold (rho = 8 from level to level):
        smooth f    D3 ~ spacing^3 f''': x rho^3, and D4 << D3
        kinks       D3 ~ spacing * (jump of f'): x rho
        stairs      D3 ~ the jumps' size, once the spacing exceeds the stair width: x1
        noise       D3 ~ sigma: x1
    A staircase (or noise the probe at params missed) is two consecutive levels whose differences
    are noise-like (D4's estimate at least a quarter of D3's), do not grow (x <= sqrt(rho): on a
    log scale halfway between jumps and kinks) and are STAIR_MARGIN above the noise measured so
    far.  The ladder stops at the first level where f's curvature shows (D3 above that margin and
    D4 below a quarter of it, or D3 grown rho^2 from a level already above the margin): beyond it
    the differences measure f's shape, and far beyond it (spacings above the scale on which f
    varies, params ~1e4 in a cos of scale 1) a bounded f looks like noise too.  A smooth f cannot
    get from roundoff to that far field without such a level in between: its D3 grows x512 per
    level and D4/D3 ~ spacing/scale, so the level 8x below its scale has D3 ~ |f|/512 >>
    STAIR_MARGIN*eps|f| and D4/D3 ~ 1/8.  When the first level is already above roundoff, a
    level 64x below it (_level_below) plays the level below.

    Its noise is the larger of the pair's estimates (a staircase of jump J has rounding error
    uniform in +-J/2, sigma = J/sqrt(12): a central difference over it errs by at most J/(2h) =
    1.7 sigma/h, inside the model's SAFETY*|w|*sigma/h = 7 sigma/h).  Returns {"sigma", "width"
    (the pair's smaller spacing, relative to L), "float32" (stairs as narrow as float32's
    resolution), "sigma0"}.  At most 8*(STAIR_LEVELS+1) evaluations of f, fewer where f's
    curvature stops the ladder early (24 typically), made once per check and only when a failure
    is about to be reported (entries.entry_estimates, fast mode's probes): a check that passes
    never pays for them.
    """
    problem.stairs_checked = True
    sigma0 = getattr(problem, "sigma", None) or 0.0
    margin = STAIR_MARGIN * sigma0
    L = problem.L
    rng = np.random.default_rng([problem.seed, 0x57A1])
    signs = rng.choice([-1.0, 1.0], size=problem.n)
    prev = None  # (spacing relative to L, sigma from D3, sigma from D4) of the level below
    for k in range(STAIR_LEVELS):
        delta = np.asarray(base, dtype=np.float64) / 8.0 * STAIR_RATIO**k
        rel = float(np.median(delta / L))
        if 8.0 * rel > 1.0:
            break  # the window would reach beyond the entries' own scale: the far field, not noise
        got = _table(problem, _ladder_step(signs, delta))
        if got is None:
            return None
        b3, b4 = got
        if prev is None and b3 > margin:
            # the first level already shows more than roundoff: look 64x below (see _curved_below)
            prev = _level_below(problem, signs, delta, rel)
            if prev is None:
                return None  # f's curvature shows there: the ladder starts in f's far field
        # f's curvature shows: D4 well below D3, or D3 grew rho^2 for spacings rho apart (smooth:
        # rho^3, kinks: rho) from a level already above roundoff (stairs and kinks appear out of it)
        grew = prev is not None and prev[1] > margin and b3 >= (rel / prev[0]) ** 2 * prev[1]
        if b3 > margin and (b4 < b3 / 4.0 or grew):
            return None  # larger spacings measure f's shape, not its noise
        if prev is not None:
            r0, a3, a4 = prev
            noise_like = a4 >= a3 / 4.0 and b4 >= b3 / 4.0
            # jumps do not grow with the spacing: at most sqrt(rho) for spacings rho apart (x1 for
            # jumps, x rho for kinks)
            flat_growth = b3 <= math.sqrt(rel / r0) * a3
            if noise_like and flat_growth and min(a3, b3) > margin:
                return {"sigma": max(a3, b3), "width": r0, "float32": r0 <= 64.0 * F32_EPS,
                        "sigma0": sigma0}
        prev = (rel, b3, b4)
    return None


def _ladder_step(signs, delta):
    """The ladder's step vector: each |u_i| = 73 * 2^e ~ delta_i (73/64 times a power of two).

    The points x0 + k*u must be exactly equally spaced (measure_noise: unequal spacing of x ~ 1e4
    reads as noise of size ulp(x)|f'|), which a multiple of 2^(e-6) is, 2^(e-6) being far above
    the ulp of x at the ladder's spacings (>= 1e-10 |x|).  But not a power of two itself: a step
    of 2^-7 walks exactly along an 8-bit quantiser's grid, or keeps a float32 cast's rounding the
    same at every point, and the staircase it should reveal looks smooth.  73 is odd, so the
    multiples k*73 fall on every residue of a power-of-two grid."""
    return signs * (np.exp2(np.round(np.log2(np.asarray(delta) * 64.0 / 73.0) - 6.0)) * 73.0)


def _level_below(problem, signs, delta, rel):
    """The ladder's level at 1/64 of its first spacing, or None where f's curvature shows there.

    Needed when the first level already shows more than roundoff: the first steps can lie far
    above the scale on which f varies (central4's eps^(1/5) x |params| at params ~1e4 in a cos of
    scale 1), where a bounded f looks like noise.  Two levels (x512 in D3) below, a staircase's
    flat stretches show roundoff or the same jumps, a smooth f its curvature."""
    below = np.asarray(delta) / STAIR_RATIO**2
    got = _table(problem, _ladder_step(signs, below))
    if got is None or (got[0] > STAIR_MARGIN * (getattr(problem, "sigma", None) or 0.0) and got[1] < got[0] / 4.0):
        return None
    return (rel / STAIR_RATIO**2, *got)


def adopt_staircase(problem, found) -> None:
    """Judge from now on with the staircase's noise (steps grow above the stair width) and say so."""
    f0 = float(np.real(problem.ev.f0))
    eps_f = problem.ev.eps_out or float(np.finfo(np.float64).eps)
    sigma = found["sigma"]
    problem.sigma = sigma
    problem.eps_eff = min(max(eps_f, sigma / abs(f0)) if f0 != 0 else eps_f, 1e-2)
    problem.stairs = found
    msg = (f"fun is piecewise constant at this scale (quantised inputs?): along a random direction its values "
           f"jump by ~{sigma:.2g} at spacings of {found['width']:.2g} x |params| and above, far above the "
           f"roundoff of its smooth part ({found['sigma0']:.2g}), so flat stretches between stairs narrower than "
           f"that hide its slope from small steps. Steps and tolerances follow the noise these stairs imply")
    if found["float32"]:
        msg += (f". The stairs are as narrow as float32's resolution ({F32_EPS:.2g} relative): fun probably casts "
                f"params or data to float32 inside; cast data and params consistently (all float32, or all "
                f"float64) to check it at full precision")
    problem.messages.append(msg)
