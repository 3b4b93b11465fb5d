"""The verdict rule: PASS / FAIL / INCONCLUSIVE, its constants, Judge, the analytic floor.

The verdict for entry i (model rule, the default):

    fail  iff  |a_i - n_i| > S * E_i + F_i   and the disagreement is confirmed

a_i  the analytic gradient (the user's), n_i the finite-difference estimate,
E_i  the estimated error of n_i: the standard deviation of its roundoff,
     sqrt(sum w_j^2)*sigma/h (sigma = measured noise of f, at least eps_f*|f|),
     plus truncation (from Richardson: how much the estimate moves when the
     step shrinks r-fold),
S    = SAFETY (10): ten standard deviations of roundoff, and a decade of margin
     on a truncation estimate that is good to an order of magnitude,
F_i  = KAPPA * eps_a * (|a_i| + rms of a over the leaf) + tiny_a: the analytic
     side is itself computed in floating point with unit roundoff eps_a (its
     dtype); sums of up to ~KAPPA^2/4 terms accumulate about sqrt(terms)*eps_a
     of error; and a result below the dtype's smallest normal number tiny_a is
     flushed to 0 or kept as a subnormal, an absolute error below tiny_a either
     way (a float32 gradient cannot resolve a true value of 1e-50: it is 0).

"Confirmed" means two successive step sizes agree with each other and both
disagree with a_i (the flat plateau that a bug leaves in the error-vs-step
curve), and the one-sided derivatives do not reveal a kink.  At a kink that no
usable step can avoid, an analytic value between the one-sided derivatives is
"inconclusive" (a valid subgradient), one outside them is a failure.

With explicit atol/rtol the rule is |a_i - n_i| <= atol + rtol*|n_i|.

Layer: numerics, bottom (pure arithmetic on numpy arrays).  Imports numpy only:
no other module of the package.  Judge reads a Problem (problem.py) by its
attributes, without importing it.
"""

from __future__ import annotations

import math

import numpy as np

#: S of the rule: ten standard deviations of roundoff, a decade of margin on truncation
SAFETY = 10.0
#: F_i's factor: the analytic side sums up to ~KAPPA^2/4 terms in its own dtype
KAPPA = 32.0

#: a pass verifies that an entry is ~0 only when its tolerance is below ZETA times the gradient's
#: typical magnitude: the entry is then shown to be under a tenth of what the gradient's entries are
ZETA = 0.1

#: an entry's verdict (int8 in the per-entry arrays) and its name in results
PASS, FAIL, INCONCLUSIVE = 0, 1, 2
VERDICT_NAMES = {PASS: "pass", FAIL: "fail", INCONCLUSIVE: "inconclusive"}


class Judge:
    """The tolerance rule: model (S*E + F) or explicit (atol + rtol*|n|)."""

    def __init__(self, problem):
        self.explicit = problem.atol is not None or problem.rtol is not None
        self.atol = float(problem.atol or 0.0)
        self.rtol = float(problem.rtol or 0.0)
        self.floor = problem.floor

    def tol(self, i, numeric, err):
        if self.explicit:
            return self.atol + self.rtol * abs(numeric)
        return SAFETY * err + self.floor[i]

    def tol_vec(self, numeric, err, idx=None):
        """Tolerances of all entries, or of the entries ``idx`` (numeric and err then aligned with idx)."""
        if self.explicit:
            return self.atol + self.rtol * np.abs(numeric)
        return SAFETY * err + (self.floor if idx is None else self.floor[idx])

    def describe(self):
        if self.explicit:
            return {"rule": "explicit", "atol": self.atol, "rtol": self.rtol, "safety": None}
        return {"rule": "model", "atol": None, "rtol": None, "safety": SAFETY, "kappa": KAPPA}


def tiny_for_eps(eps):
    """The smallest normal number of the IEEE format whose unit roundoff is ``eps`` (scalar or array).

    Read from eps because the checker carries a dtype's precision as its eps: 2^-52 float64,
    2^-23 float32, 2^-10 float16, 2^-7 bfloat16 (float32's exponent range).  Below it a result
    is subnormal or 0: its absolute error can be as large as tiny itself.

    A scalar is looked up in Python and an array holding one value (a broadcast eps_a) gives a
    broadcast: np.select on them took ~18 us per call, four calls per check, and built
    n-vectors of conditions in fast mode at n = 1e6."""
    if isinstance(eps, float) or np.ndim(eps) == 0:
        return _tiny_scalar(float(eps))
    e = np.asarray(eps, dtype=np.float64)
    if e.size and not any(e.strides):  # one value, broadcast: no n-vector of conditions
        return np.broadcast_to(np.float64(_tiny_scalar(float(e.flat[0]))), e.shape)
    return np.select([e <= 2.0**-52, e <= 2.0**-23, e <= 2.0**-10], [_TINY64, _TINY32, _TINY16],
                     default=_TINY32)  # bfloat16: float32's exponents


_TINY64, _TINY32, _TINY16 = (float(np.finfo(t).tiny) for t in (np.float64, np.float32, np.float16))


def _tiny_scalar(e: float) -> float:
    if e <= 2.0**-52:
        return _TINY64
    if e <= 2.0**-23:
        return _TINY32
    return _TINY16 if e <= 2.0**-10 else _TINY32  # bfloat16: float32's exponents


def analytic_floor(spec, analytic, eps_a, grad_noise=0.0):
    """(typical |a| per entry's leaf, the floor F_i) for an analytic side in ``spec``'s layout.

    F_i = KAPPA*eps_a*(|a_i| + typical |a| in the leaf) + SAFETY*noise_i + tiny_a: the
    analytic side is computed in floating point too, and cannot hold a value below its
    dtype's smallest normal number tiny_a (a float32 product of 125 numbers ~0.4 is 0, its
    true value 1e-50): that much absolute error is rounding, not a bug.  The measured noise term
    matters where the gradient is a float32 sum of terms that cancel (a bias
    before batch norm, any gradient at an optimum): roundoff of the terms'
    size, which no scale of the gradient itself reveals."""
    scale = np.empty(spec.size)
    for leaf in spec.leaves:
        scale[leaf.slice] = _typical(analytic[leaf.slice])
    return scale, KAPPA * eps_a * (np.abs(analytic) + scale) + SAFETY * grad_noise + tiny_for_eps(eps_a)


def _typical(v: np.ndarray) -> float:
    """A typical magnitude of a gradient: the median of |v| (the mean where most are 0).

    Not the rms: a leaf of log(x) at x = [1e-10, ..., 3e4] has one entry of 1e10
    that must not set the scale by which an entry of 3e-5 is judged."""
    if v.size == 0:
        return 0.0
    m = np.abs(v)
    total = float(m.sum())
    if not math.isfinite(total):
        med = float(np.median(m))
    else:  # np.median without its NaN handling (none here): one partition
        k = m.size // 2
        part = np.partition(m, (k - 1, k) if m.size % 2 == 0 and k > 0 else k)
        med = float(part[k]) if m.size % 2 else 0.5 * (float(part[k - 1]) + float(part[k]))
    return med if med > 0 else total / m.size


def unresolved_passes(a, n, tol, scale, eps_a, floor, err):
    """Mask of entries whose agreement |a - n| <= tol verifies nothing (issue 20, A.2).

    A pass is a verification when its tolerance is below the values compared (tol < min(|a|,|n|):
    then a and n have one sign and differ by less than a factor 2), or when the analytic value is
    zero within its own measured noise (|a| at most the analytic floor) and either the numeric one is
    too (|n| at most SAFETY times its error: a gradient at an optimum) or the tolerance shows the
    entry negligible (tol < ZETA * scale, ``scale`` the gradient's typical magnitude: a bias before a
    normalisation beside unit weights).
    Otherwise a sign flip or a factor 2 would pass too: the entry is unresolved -- float32 erfcx at
    1e5, whose analytic side is roundoff (floor 2e-7) while the finite differences resolve -5.6e-11.
    A tolerance that is nothing but the dtype's underflow floor (tiny_a) is exact agreement of two
    zeros, not a lack of resolution."""
    aa = np.abs(np.asarray(a, dtype=np.float64))
    nn = np.abs(np.asarray(n, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        # the analytic value is zero within its own measured noise, and so is the numeric one or the
        # tolerance is far below the gradient's size: a verified ~0.  A genuine value (5e-13 of a leaf
        # beside a 1e8 one, above its floor) is no zero, and no tolerance above it verifies it
        zero = (aa <= floor) & ((nn <= SAFETY * err) | (tol < ZETA * scale))
        return ((tol >= np.minimum(aa, nn)) & ~zero
                & (tol > 4.0 * tiny_for_eps(eps_a)) & np.isfinite(nn))


def norm2(w) -> float:
    """||w||_2 without overflow: entries near 1e300 (a loss scaled by 1e300, log(p) at p ~ 1e-300) square
    to inf, which made fast mode's probe tolerances and detection threshold inf (issue 20, C.12)."""
    m = float(np.max(np.abs(w))) if np.size(w) else 0.0
    if not 0 < m < math.inf:
        return m
    w = np.asarray(w) / m
    return m * float(np.sqrt(np.dot(w, w)))


def typical_magnitude(v) -> float:
    """The gradient's typical magnitude over all its entries: its rms, from one dot product (no copy of
    an n-vector: fast mode at n = 1e6 holds a few n-vectors at most); the median where that overflows
    or is not finite."""
    v = np.asarray(v, dtype=np.float64)
    if v.size == 0:
        return 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        ss = float(np.dot(v, v))
    if math.isfinite(ss) and ss < 1e300:
        return math.sqrt(ss / v.size)
    return _typical(v[np.isfinite(v)])
