"""Several kinks at once: an analytic value outside one coordinate's one-sided derivatives,
judged against the derivatives actually sampled at points nudged off params before it is called
a bug.

Why one coordinate's one-sided derivatives are not enough.  A ReLU layer with a zero bias and
an all-zero input row puts every unit of that row exactly at its kink; so do a zero image
border through conv + ReLU, and ties in max-pool windows.  Moving one entry x_i by +t switches
on the units S+ that it pushes up, by -t the units S- it pushes down.  Near the point f is
piecewise linear in the entries, and the derivative along x_i on each piece is base + C(S) (S:
the kink units switched on), while the value a framework returns (relu'(0) = 0: ``base``; a
max-pool's first maximum in row-major order) is the derivative on one particular piece: a limit
of gradients at nearby points, hence valid, yet outside [fwd, bwd] whenever the pieces' changes
share a sign.  Refinement's kink test (refine.Chain) bounds only the single-kink case.

What nearby points give.  At a point x_k = x + u_k nudged by about NUDGE_FRACTION of each
entry's first step (far below the step, far above roundoff, so units at exactly 0 leave the
kink while f's smooth part barely moves) f is differentiable along x_i except at kinks a
distance ~|u_k| away, and its one-sided derivatives there, taken with a step DIFF_FRACTION
smaller still, are the derivatives on the pieces the nudge reached (a difference that does cross
one of those kinks is a secant: inside the hull of two such values).  These are finite
differences of f, not the user's grad: a gradient wrong at and around the kink cannot vouch for
itself.  The nudges (``nudge_directions``):

* NUDGE_PAIRS antithetic pairs of random signs: pieces reached by independent switches;
* each leaf alone moved by +-1 (all its entries one way, the rest of params still), and all
  leaves at once: a bias leaf moved down switches every unit it feeds off at once -- the
  relu'(0) = 0 piece, which random signs reach with probability 2^-K for K units;
* ramps over each leaf's entries in row-major order, both ways (x -+ s * rank): the pieces of
  the first and of the last maximum in every tie (pooling over a constant image), whatever the
  cotangents' signs.  The ramp's spacing is RAMP_SPACING of the nudge, above the difference
  step, so a difference never reorders a tie.

The rule: every sampled value is valid, so the envelope is their hull together with fwd and bwd,
widened only by the allowance for their roundoff (the judge's tolerance at their size, as in
refine.Chain).  Never an assumed number of units: the envelope is what was measured, and a value
outside every sampled piece fails.  Only where the samples show a value other than the two
one-sided derivatives at params (beyond that allowance) does the several-kinks reading apply: a
single kink (|x| at 0) shows only those two everywhere nearby and keeps the single-kink rule
(fail outside [fwd, bwd]).  The price: a framework convention no nudge reaches (a linear term
plus a pair of opposite ReLUs: f's finite differences cannot tell it from the line) fails, and
its reason prints the sampled range, so the user sees why.

The same nudged points judge two more irregular entries: a plateau failure in a check whose
other entries show kinks (``judge_plateau``: a tie can cancel along an entry's own axis), and an
entry where f is exactly flat (``judge_stair``: a designed staircase, whose two honest derivatives
are 0 and the trend slope).

Cost: f at each nudged point once per check, then 2 evaluations per nudged point for each entry
judged here (entries outside their one-sided derivatives only).

Layer: numerics, middle (above refine, verdict; below entries).  Imports numpy, refine
(``real_value``) and verdict; reads a Problem and a Judge by their attributes.
"""

from __future__ import annotations

import math

import numpy as np

from .refine import real_value
from .verdict import FAIL, INCONCLUSIVE

#: antithetic pairs of nudged points with random signs
NUDGE_PAIRS = 4
#: the most leaves moved one at a time (each both ways); beyond, only all leaves at once
LEAVES_ALONE = 8
#: the nudge, as a fraction of each entry's first finite-difference step (see the module docstring)
NUDGE_FRACTION = 1.0 / 64.0
#: the one-sided differences at a nudged point, as a fraction of the nudge
DIFF_FRACTION = 1.0 / 64.0
#: a ramp's spacing between consecutive entries, as a fraction of the nudge: above DIFF_FRACTION,
#: so that a difference taken at the ramped point never reorders a tie
RAMP_SPACING = 1.0 / 8.0


def nudge_directions(rng, spec, n):
    """Unit nudges (entries in [-1, 1] up to a ramp's length, multiplied by each entry's nudge
    size by the caller): random antithetic pairs, each leaf alone both ways, all leaves both ways,
    and row-major ramps over every leaf both ways (the module docstring)."""
    dirs = []
    for _ in range(NUDGE_PAIRS):
        u = rng.choice([-1.0, 1.0], size=n)
        dirs += [u, -u]
    leaves = list(spec.leaves)
    if len(leaves) > 1:
        for leaf in leaves[:LEAVES_ALONE]:
            u = np.zeros(n)
            u[leaf.slice] = 1.0
            dirs += [u, -u]
    dirs += [np.ones(n), -np.ones(n)]
    ramp = np.zeros(n)
    for leaf in leaves:
        k = leaf.slice.stop - leaf.slice.start
        ramp[leaf.slice] = RAMP_SPACING * (np.arange(k) - 0.5 * (k - 1))
    if np.any(ramp):
        dirs += [ramp, -ramp]
    return dirs


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
        for u in nudge_directions(rng, problem.spec, problem.n):
            x = problem.x0 + u * self.size
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
    ``kink`` = (lower, upper, step, roundoff): inconclusive inside the hull of what nearby points
    give (module docstring), a failure outside it."""
    lo, hi, heff, R = kink
    near, h = nudges.slopes(problem, i)
    # one-sided differences at step h carry roundoff ~sqrt(2) sigma / h: the judge's allowance for it
    allow = max(judge.tol(i, max(abs(lo), abs(hi)), R),
                judge.tol(i, max(abs(lo), abs(hi)), math.sqrt(2.0) * sigma / h))
    return several_kinks_rule(float(problem.analytic[i]), lo, hi, near, allow, len(nudges.points),
                              "one move of this entry")


def judge_plateau(problem, judge, i, est, err, nudges, sigma):
    """(verdict, reason) for entry i, failed on a plateau (``est`` +- ``err``) in a check where other
    entries showed kinks; None keeps the failure.

    Equal one-sided derivatives along one entry do not make f differentiable at a tie: with
    mixed-sign cotangents the bins an entry ties in can cancel along its own axis (a max-pool over
    a constant image: +c and -c) while the first-maximum tie-break gives it one bin's c, the
    derivative at the nearby point x - s * rank.  So the value is judged against what the nudged
    points measure (the ramps included): inside their hull inconclusive, outside it the failure
    stands.  A smooth f shows only est (to its curvature over the nudge) there, so a wrong value
    still fails."""
    near, h = nudges.slopes(problem, i)
    allow = max(judge.tol(i, est, err), judge.tol(i, est, math.sqrt(2.0) * sigma / h))
    near = near[np.isfinite(near)]
    if not near.size or not (np.abs(near - est) > allow).any():
        return None
    low, high = min(est, float(near.min())), max(est, float(near.max()))
    a = float(problem.analytic[i])
    if low - allow <= a <= high + allow:
        return INCONCLUSIVE, (
            f"kink: several kinks at once, tied or crossed off this entry's axis -- the one-sided derivatives "
            f"along this entry agree ({est:.6g}), yet at {len(nudges.points)} points nudged off params (tie-breaks "
            f"in both orders included) the derivatives measured lie within {low:.6g} to {high:.6g} and the "
            f"analytic value lies among them: fun is not differentiable here (ties, units at 0), and a "
            f"tie-break's gradient is a limit of gradients nearby")
    return None


#: a stair is a designed quantiser (torch.round(x, decimals=3), np.round) when f is exactly constant
#: over this fraction of the entry's scale either side: far above float32's rounding (6e-8), so a
#: function computing in float32 (whose a.e. derivative is 0 too) is not read as one
STAIR_WIDTH = 1e-5


def judge_stair(problem, judge, i, est, err):
    """(verdict, reason) for entry i that did not pass, where f is exactly flat over STAIR_WIDTH of
    the entry's scale either side (measured: 2 calls); None where f is not flat there.

    A staircase has two honest derivatives: 0 (the derivative almost everywhere: f is constant
    around params) and the trend slope ``est`` +- ``err`` that steps across many stairs measure (a
    straight-through estimator).  Either is inconclusive naming the staircase; a value matching
    neither fails."""
    x = float(problem.x0[i])
    dt = problem.ev.buffer_dtype(i)
    w = max(STAIR_WIDTH * max(abs(x), float(problem.L[i])), 1e3 * float(np.finfo(dt).eps) * abs(x))
    f0 = float(problem.ev.f0)
    a = float(problem.analytic[i])
    if not (math.isfinite(est) and math.isfinite(judge.tol(i, est, err))):
        return None  # no trend measured: nothing to call a convention, nor a value to match
    # flat only because the change a move of w makes is below f's rounding (sqrt at 1e-300 beside 1.0)
    # is no staircase: a designed one is flat where its slope would show
    if max(abs(a), abs(est)) * w <= 4.0 * abs(float(np.spacing(f0))):
        return None
    for sign in (1.0, -1.0):
        if real_value(problem.ev.at(i, dt.type(x + sign * w))) != f0:
            return None
    zero = abs(a) <= float(problem.floor[i])
    trend = math.isfinite(est) and math.isfinite(err) and abs(a - est) <= judge.tol(i, est, err)
    if zero or trend:
        which = "0, the derivative almost everywhere" if zero else "the trend slope (a straight-through estimator)"
        return INCONCLUSIVE, (
            f"staircase: fun is piecewise constant here (exactly flat within {w:.2g} of params along this "
            f"entry), and the analytic value is {which}; the trend across stairs is {est:.6g}: both are "
            f"conventions that finite differences cannot choose between")
    return FAIL, (
        f"staircase: fun is piecewise constant here (exactly flat within {w:.2g} of params along this entry); "
        f"the analytic value {a:.6g} matches neither 0 (the derivative almost everywhere) nor the trend "
        f"across stairs, {est:.6g} +- {judge.tol(i, est, err):.2g} (a straight-through estimator)")


def several_kinks_rule(a, lo, hi, near, allow, n_points, move):
    """(verdict, reason) for an analytic value ``a`` outside the one-sided derivatives ``lo``, ``hi``,
    given the one-sided derivatives ``near`` at ``n_points`` nudged points and the allowance
    ``allow`` for their roundoff (the module docstring's rule; ``move`` names what moves: "one
    move of this entry", "one move along the tangent").  Shared by the gradient check and the
    vector checks (vector.py: an output entry along a tangent or an input direction)."""
    near = np.asarray(near, dtype=np.float64)
    near = near[np.isfinite(near)]
    # several kinks show as values other than the two one-sided derivatives: a single kink (|x|
    # at 0) gives only those two at every nudged point, and keeps the single-kink rule
    other = np.minimum(np.abs(near - lo), np.abs(near - hi)) > allow
    if not other.any():
        return FAIL, (f"kink: the one-sided derivatives are {lo:.6g} and {hi:.6g}; the analytic value lies "
                      f"outside them (and {n_points} points nudged off params show no other kink)")
    low, high = min(lo, float(near.min())), max(hi, float(near.max()))
    if low - allow <= a <= high + allow:
        return INCONCLUSIVE, (
            f"kink: several kinks at once -- the one-sided derivatives are {lo:.6g} and {hi:.6g} and the "
            f"analytic value lies outside them, but within {low:.6g} to {high:.6g}, the derivatives measured at "
            f"{n_points} points nudged off params (tie-breaks in both orders included): {move} crosses several "
            f"kinks (units exactly at 0, ties), where a limit of gradients can lie beyond both one-sided "
            f"derivatives")
    return FAIL, (
        f"kink: the one-sided derivatives are {lo:.6g} and {hi:.6g}, and at {n_points} points nudged off "
        f"params (tie-breaks in both orders included) the derivatives measured lie within {low:.6g} to "
        f"{high:.6g}; the analytic value lies outside all of them, so it is the derivative of no piece "
        f"of fun seen nearby: a bug at the kink")


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
        for u in nudge_directions(rng, ev.spec, L.size):
            x = ev.rounded(ev.x0 + u * self.size)
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
