"""Several kinks at once: an analytic value outside one coordinate's one-sided derivatives,
judged against the gradients at nearby points before it is called a bug.

Why one coordinate's one-sided derivatives are not enough.  A ReLU layer with a zero bias and
an all-zero input row puts every unit of that row exactly at its kink; so do a zero image
border through conv + ReLU, and ties in overlapping max-pool windows.  Moving one entry x_i by
+t switches on the units S+ that it pushes up, by -t the units S- it pushes down.  Near the
point, f is (to first order) piecewise linear in the entries, and the derivative along x_i on
each piece is

    base + sum_{j in S} c_j        (S: the kink units switched on, c_j: unit j's contribution)

so the one-sided derivatives are base + C(S+) and base + C(S-), while the value a framework
returns with relu'(0) = 0, ``base``, is the piece with S empty: a limit of gradients at nearby
points (a tiny negative nudge of the bias switches every unit off), hence a valid element of
the Clarke subdifferential, yet outside [fwd, bwd] whenever the c_j of S+ and of S- share a
sign.  Refinement's kink test (refine.Chain) bounds only the single-kink case.

What nearby points give.  At x_k = x + delta*u_k (u_k random signs times each entry's first
step, delta = NUDGE_FRACTION: far below the step, far above roundoff, so units at exactly 0 leave
the kink while f's smooth part barely moves) f is differentiable along x_i except at kinks a
distance ~delta away, and its one-sided derivatives there, taken with a step DIFF_FRACTION
smaller still, are base + C(S) for the subsets S the nudge switched on (a difference that does
cross one of those kinks is a secant: a convex combination of two such values, inside their
hull).  These are finite differences of f, not the user's grad: a gradient that is wrong at and
around the kink (a doubled bias) cannot vouch for itself.  NUDGE_PAIRS antithetic pairs +-u_k
(complementary subsets) cost 2*NUDGE_PAIRS evaluations of f per check plus 4*NUDGE_PAIRS per
entry judged here.

The valid values.  S+ and S- together are the K units one move switches, so every valid value
base + C(S) lies within sum|c_j|/2 of the middle m = (fwd + bwd)/2 = base + C(all)/2, and the
extreme ones (S empty: the relu'(0) = 0 value; S = all) sit at exactly +-C(all)/2 when all c_j
share a sign -- the case random nudges almost never reach (each unit is switched with
probability 1/2: all K at once with 2^-K), and the hull of the sampled values, even widened by
its width, misses for K above ~10 (measured: a zero corner pixel through a 3-channel conv).
What the nudges do estimate is the spread: a nudged value minus m is sum c_j e_j / 2 with
random signs e_j, of mean square sum c_j^2 / 4, and sum|c_j| <= sqrt(K) sqrt(sum c_j^2) =
2 sqrt(K) rms(nudged - m).  So with at most K_MAX units switched by one move, every valid value
lies within

    r = max(sqrt(K_MAX) * rms(nudged - m), max |v - m| over fwd, bwd and the nudged values)

of m (the second term: the values seen are valid themselves), plus the kink test's allowance
(the judge's tolerance at the one-sided derivatives' size and their roundoff, as in
refine.Chain).  An analytic value within it is inconclusive (kink, "several kinks at once"),
outside it a failure.  All this only where the nudged one-sided derivatives show a value other
than the two at params (beyond that allowance): a single kink (|x| at 0) shows only those two
everywhere nearby, and keeps the single-kink rule (fail outside [fwd, bwd]).  rms from 16 values is good to about +-30%, well inside sqrt(K_MAX) = 8.
The price: where one move switches many units, much of the range is valid, and a wrong value
inside it (a doubled bias whose move switches 50 border units) is only inconclusive -- a value
there IS a limit of gradients at some nearby point, so no sound rule can fail it.  Where the
units do not switch independently (two nudged points give one value: _switched_together), the
spread bound does not hold, and the count bound K_MAX * (largest change seen) replaces it.

Layer: numerics, middle (above refine, verdict; below entries).  Imports numpy, refine
(``real_value``) and verdict; reads a Problem and a Judge by their attributes.
"""

from __future__ import annotations

import math

import numpy as np

from .refine import real_value
from .verdict import FAIL, INCONCLUSIVE

#: antithetic pairs of nudged points
NUDGE_PAIRS = 4
#: the most kink units one entry's move is assumed to switch at once (a zero image row through a
#: 3x3 convolution of 3 channels: 27; a zero input row of a dense layer: its width)
K_MAX = 64
#: the nudge, as a fraction of each entry's first finite-difference step (see the module docstring)
NUDGE_FRACTION = 1.0 / 64.0
#: the one-sided differences at a nudged point, as a fraction of the nudge
DIFF_FRACTION = 1.0 / 64.0


class Nudges:
    """The nudged points of one check (shared by its entries) and f at each."""

    def __init__(self, problem, steps):
        rng = np.random.default_rng([problem.seed, 0x4B1C])
        # one relative size for all entries (the median first step over scale): an entry with a
        # large first step of its own (a zero pixel, gradient 0) must not dominate every unit's
        # pre-activation, or all nudges switch the same two subsets that the coordinate itself does
        rel = float(np.median(np.asarray(steps, dtype=np.float64) / problem.L))
        self.size = NUDGE_FRACTION * rel * problem.L
        self.points, self.values = [], []
        for _ in range(NUDGE_PAIRS):
            u = rng.choice([-1.0, 1.0], size=problem.n) * self.size
            for sign in (1.0, -1.0):
                x = problem.x0 + sign * u
                self.points.append(x)
                self.values.append(real_value(problem.ev.at_vector(x)))

    def slopes(self, problem, i):
        """One-sided derivatives along entry i at every nudged point (NaN where f is not finite)."""
        h = DIFF_FRACTION * self.size[i]
        dt = problem.ev.buffer_dtype(i)  # fun sees entry i in this dtype: the step actually taken
        out = []
        for x, f0 in zip(self.points, self.values):
            for sign in (1.0, -1.0):
                xp = x.copy()
                xp[i] = x[i] + sign * h
                step = float(dt.type(xp[i])) - float(dt.type(x[i]))
                out.append((real_value(problem.ev.at_vector(xp)) - f0) / step if step else math.nan)
        return np.array(out), h


def judge_several_kinks(problem, judge, i, kink, nudges, sigma):
    """(verdict, reason) for entry i, whose analytic value lies outside its one-sided derivatives
    ``kink`` = (lower, upper, step, roundoff): inconclusive inside the widened hull of what
    nearby points give (module docstring), a failure outside it."""
    lo, hi, heff, R = kink
    near, h = nudges.slopes(problem, i)
    # one-sided differences at step h carry roundoff ~sqrt(2) sigma / h: the judge's allowance for it
    allow = max(judge.tol(i, max(abs(lo), abs(hi)), R),
                judge.tol(i, max(abs(lo), abs(hi)), math.sqrt(2.0) * sigma / h))
    return several_kinks_rule(float(problem.analytic[i]), lo, hi, near, allow, len(nudges.points),
                              "one move of this entry")


def several_kinks_rule(a, lo, hi, near, allow, n_points, move):
    """(verdict, reason) for an analytic value ``a`` outside the one-sided derivatives ``lo``, ``hi``,
    given the one-sided derivatives ``near`` at ``n_points`` nudged points and the allowance
    ``allow`` for their roundoff (the module docstring's rule; ``move`` names what moves: "one
    move of this entry", "one move along the tangent").  Shared by the gradient check and the
    vector checks (vector.py: an output entry along a tangent or an input direction)."""
    near = np.asarray(near, dtype=np.float64)
    together = _switched_together(near, lo, hi, allow)
    near = near[np.isfinite(near)]
    mid = 0.5 * (lo + hi)
    dev = near - mid
    # several kinks show as values other than the two one-sided derivatives: a single kink (|x|
    # at 0) gives only those two at every nudged point, and keeps the single-kink rule
    other = np.abs(np.minimum(np.abs(near - lo), np.abs(near - hi))) > allow
    several = bool(other.any())
    seen = max(abs(hi - mid), float(np.max(np.abs(dev))) if dev.size else 0.0)
    r = max(math.sqrt(K_MAX) * float(np.sqrt(np.mean(dev * dev))) if dev.size else 0.0, seen) if several else seen
    if several and abs(a - mid) <= r + allow:
        return INCONCLUSIVE, (
            f"kink: several kinks at once -- the one-sided derivatives are {lo:.6g} and {hi:.6g} and the "
            f"analytic value lies outside them, but within {mid - r:.6g} to {mid + r:.6g}, what the one-sided "
            f"derivatives at {n_points} points nudged off params allow: {move} "
            f"crosses several kinks (units exactly at 0, ties), where a limit of gradients can lie beyond "
            f"both one-sided derivatives")
    if not several:
        return FAIL, (f"kink: the one-sided derivatives are {lo:.6g} and {hi:.6g}; the analytic value lies "
                      f"outside them (and {n_points} points nudged off params show no other kink)")
    if together:  # the spread no longer bounds the extremes: K_MAX units, none above the largest change seen
        r = max(r, K_MAX * seen)
        if abs(a - mid) <= r + allow:
            return INCONCLUSIVE, (
                f"kink: several kinks at once, switched together -- the one-sided derivatives are {lo:.6g} and "
                f"{hi:.6g} and the analytic value lies outside them and outside what points nudged off params "
                f"give, but some of those points gave the same derivative: the kinks switch in few patterns "
                f"(many units driven by few inputs), and a framework's convention at the kinks (relu'(0) = 0 "
                f"for all of them) can then return a value nothing nearby shows, anywhere within "
                f"{mid - r:.6g} to {mid + r:.6g} ({K_MAX} units, none changing the derivative more than the "
                f"largest change seen)")
        return FAIL, (
            f"kink: the one-sided derivatives are {lo:.6g} and {hi:.6g}; the analytic value lies beyond "
            f"{mid - r:.6g} to {mid + r:.6g}, what even {K_MAX} kinks switched together could give if none "
            f"changes the derivative more than the largest change seen at {n_points} points nudged off "
            f"params: a bug at the kink")
    return FAIL, (
        f"kink: the one-sided derivatives are {lo:.6g} and {hi:.6g}, and at {n_points} points nudged "
        f"off params they allow {mid - r:.6g} to {mid + r:.6g} even if one move switched {K_MAX} kinks at "
        f"once; the analytic value lies outside, so it is no limit of gradients nearby: a bug at the kink")


def _switched_together(near, lo, hi, allow) -> bool:
    """Two nudged points (``near``: point-major, two sides each) with the same derivative, other
    than lo or hi: the kinks did not switch independently.

    The bound sqrt(K_MAX) * rms rests on each unit switching with its own random sign.  Under that
    model two of the 2 * NUDGE_PAIRS points share a pattern with probability ~28 / 2^K for K units
    (0.04% at K = 16), and two patterns with one value is a coincidence.  A shared value means the
    units switch in few patterns: driven by a few inputs (3 input features into 16 ReLUs: a nudge's
    signs on 3 entries give at most 8 patterns), or few units.  Then the spread of the nudged
    values says nothing about the extremes: relu'(0) = 0 for every unit gives a value that no
    nearby point shows when no nudge can switch them all off (a linear term and a pair of opposite
    ReLUs give the same f, so no finite difference of f can tell that value from others).  The
    bound left is a count: K_MAX units, none changing the derivative by more than the largest
    change seen (2 * seen), so within K_MAX * seen of the middle."""
    pts = near.reshape(-1, 2)
    with np.errstate(invalid="ignore"):
        v = np.where(np.isfinite(pts).all(axis=1), pts.mean(axis=1), np.nan)
    v = v[np.isfinite(v) & (np.minimum(np.abs(v - lo), np.abs(v - hi)) > allow)]
    v.sort()
    return bool(v.size > 1 and (np.diff(v) <= allow).any())


class DirectionNudges:
    """The nudged points of one vector check (vector.py) and fun's whole output at each, shared by
    its directions (tangents, or the input entries of a Jacobian); ``ev`` is a vector.VecEval.

    ``entry_steps``: how far the check's first step moves each input entry; the nudge is
    NUDGE_FRACTION of it (one relative size for all entries, as in Nudges)."""

    def __init__(self, ev, entry_steps, L, seed):
        rng = np.random.default_rng([int(seed), 0x4B1D])
        rel = float(np.median(np.asarray(entry_steps, dtype=np.float64) / L))
        self.size = NUDGE_FRACTION * rel * L
        self.ev = ev
        self.eps_buf = max(float(np.finfo(dt).eps) for dt in ev.dtypes)
        self.points, self.values = [], []
        for _ in range(NUDGE_PAIRS):
            u = rng.choice([-1.0, 1.0], size=L.size) * self.size
            for sign in (1.0, -1.0):
                x = ev.rounded(ev.x0 + sign * u)
                self.points.append(x)
                self.values.append(ev.call(x))

    def slopes(self, d):
        """One-sided derivatives of every output along direction d at every nudged point (rows; NaN
        where fun is not finite), and the step t along d they were taken with."""
        ev, sup = self.ev, d != 0
        t = DIFF_FRACTION * float(np.median(self.size[sup] / np.abs(d[sup])))
        # a low-precision buffer rounds each moved entry: at 64 of its ulps or more the step taken is
        # d's direction to about 1%, which the one-sided roundoff allowance does not cover below that
        t = max(t, 64.0 * self.eps_buf * float(np.max((np.abs(ev.x0) + self.size)[sup] / np.abs(d[sup]))))
        out = []
        with np.errstate(invalid="ignore", over="ignore"):
            for x, y in zip(self.points, self.values):
                for sign in (1.0, -1.0):
                    out.append((ev.call(ev.rounded(x + (sign * t) * d)) - y) / (sign * t))
        return np.array(out), t
