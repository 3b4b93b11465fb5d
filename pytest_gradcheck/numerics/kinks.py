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

Is the sample complete?  Measured by replication, never assumed.  The nudged points come in
batches: the first holds all the nudges above; each later one (``replicate_directions``) holds
NUDGE_PAIRS fresh antithetic pairs of random signs times random magnitudes (signs alone reach at
most 2^k pieces of a block of k entries, so a replicate of them would stop finding pieces because
the sign vectors ran out).  After each later batch the envelope is *measured* if that batch showed
no derivative outside the range so far and, at every point whose two one-sided derivatives agree
(a point whose differences cross no kink: a secant is no piece of its own), no derivative not seen
before, to the roundoff allowance: the piece set is sampled out, not merely its bulk (a hull test
alone stops after one batch of 8 points on 3 inputs driving 16 units, with the sampled range a
third short of the true one).  At most MAX_BATCHES = 4, measured on that layer's exact pieces
(enumerated; 300 seeds): a double ReLU (4 pieces) is measured at the second batch, while 16 units
on 3 inputs (about 240 pieces) are still finding new ones at the fourth in 98% of seeds; allowing
16 batches, 86% stop as "measured" by an 8-point batch that happened to meet only large pieces
seen before, with the range still short of the true one in most of them -- more batches buy
false completeness, at 2 calls per point and judged entry.

The rule: every sampled value is valid, so the envelope is their hull together with fwd and bwd,
widened only by the allowance for their roundoff (the judge's tolerance at their size, as in
refine.Chain).  Never an assumed number of units.  Only where the samples show a value other
than the two one-sided derivatives at params (beyond that allowance) does the several-kinks
reading apply: a single kink (|x| at 0) shows only those two everywhere nearby and keeps the
single-kink rule (fail outside [fwd, bwd]).  Otherwise:

* measured envelope: inside the hull inconclusive, outside it a failure (the derivative of no
  piece of fun seen nearby);
* not measured at the cap: inside the hull inconclusive; else inside the hull widened on each side
  by how far the batches moved it since the first (the growth measured, standing in for the pieces
  not yet seen) inconclusive, naming the unmeasured envelope; beyond even that a failure (a 2x or
  30x relu'(0) stays one).  Both reasons print the range, the points and batches, and what the last
  batch added.

The price: a framework convention no nudge reaches (a linear term plus a pair of opposite ReLUs:
f's finite differences cannot tell it from the line) fails, and its reason prints the sampled
range, so the user sees why.

The same nudged points judge two more irregular entries: a plateau failure in a check whose
other entries show kinks (``judge_plateau``: a tie can cancel along an entry's own axis), and an
entry where f is exactly flat (``judge_stair``: a designed staircase, whose two honest derivatives
are 0 and the trend slope).

Cost: f at each nudged point of a batch once per check (a later batch drawn when an entry first
asks for it), then 2 evaluations per nudged point of each batch an entry reads, for each entry
judged here (entries outside their one-sided derivatives only): 2 to 4 batches, 12 to 20 points
in the first and 8 in each later one.

Layer: numerics, middle (above refine, verdict; below entries).  Imports numpy, refine
(``real_value``) and verdict; reads a Problem and a Judge by their attributes.
"""

from __future__ import annotations

import itertools
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
    """The first batch's unit nudges (entries in [-1, 1] up to a ramp's length, multiplied by each
    entry's nudge size by the caller): random antithetic pairs, each leaf alone both ways, all
    leaves both ways, and row-major ramps over every leaf both ways (the module docstring)."""
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


def replicate_directions(rng, n):
    """A later batch's unit nudges: NUDGE_PAIRS fresh antithetic pairs, random signs times random
    magnitudes in (0, 1].  Signs alone reach at most 2^k pieces of a block of k entries (3 inputs
    driving 16 units: 8 of about 240), so a replicate of them stops widening the hull because the
    sign vectors ran out, not because the pieces did; random magnitudes reach every piece, each
    with the probability of its solid angle."""
    dirs = []
    for _ in range(NUDGE_PAIRS):
        u = rng.choice([-1.0, 1.0], size=n) * (1.0 - rng.random(n))
        dirs += [u, -u]
    return dirs


class Nudges:
    """The nudged points of one check (shared by its entries) and f at each, in batches: the first
    drawn at once, each later one (replicate_directions) on the first entry that asks for it."""

    def __init__(self, problem, steps):
        self.rng = np.random.default_rng([problem.seed, 0x4B1C])
        # one relative size for all entries (the median first step over scale): an entry with a
        # large first step of its own (a zero pixel, gradient 0) must not dominate every unit's
        # pre-activation, or all nudges switch the same two subsets that the coordinate itself does
        rel = float(np.median(np.asarray(steps, dtype=np.float64) / problem.L))
        self.size = NUDGE_FRACTION * rel * problem.L
        self.problem = problem
        self.batches = [self._draw(nudge_directions(self.rng, problem.spec, problem.n))]

    def _draw(self, dirs):
        problem = self.problem
        points = [problem.x0 + u * self.size for u in dirs]
        return points, [real_value(problem.ev.at_vector(x)) for x in points]

    @property
    def points(self):
        """The first batch's points (judge_plateau reads only these)."""
        return self.batches[0][0]

    def batch(self, b):
        """(points, values) of batch b, drawing the batches up to it."""
        while len(self.batches) <= b:
            self.batches.append(self._draw(replicate_directions(self.rng, self.problem.n)))
        return self.batches[b]

    def slopes(self, problem, i, b=0):
        """One-sided derivatives along entry i at every point of batch b (NaN where f is not
        finite), and the step taken."""
        h = DIFF_FRACTION * self.size[i]
        dt = problem.ev.buffer_dtype(i)  # fun sees entry i in this dtype: the step actually taken
        out = []
        for x, f0 in zip(*self.batch(b)):
            for sign in (1.0, -1.0):
                xp = x.copy()
                xp[i] = x[i] + sign * h
                step = float(dt.type(xp[i])) - float(dt.type(x[i]))
                out.append((real_value(problem.ev.at_vector(xp)) - f0) / step if step else math.nan)
        return np.array(out), h


def judge_several_kinks(problem, judge, i, kink, nudges, sigma):
    """(verdict, reason) for entry i, whose analytic value lies outside its one-sided derivatives
    ``kink`` = (lower, upper, step, roundoff): judged by several_kinks_rule against what the
    batches of nudged points give (module docstring)."""
    lo, hi, heff, R = kink
    h = DIFF_FRACTION * nudges.size[i]
    # one-sided differences at step h carry roundoff ~sqrt(2) sigma / h: the judge's allowance for it
    allow = max(judge.tol(i, max(abs(lo), abs(hi)), R),
                judge.tol(i, max(abs(lo), abs(hi)), math.sqrt(2.0) * sigma / h))
    batches = ((nudges.slopes(problem, i, b)[0], len(nudges.batch(b)[0])) for b in itertools.count())
    return several_kinks_rule(float(problem.analytic[i]), lo, hi, batches, allow, "one move of this entry")


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


def _new_pieces(near, seen, allow):
    """How many of a batch's points show, by their one-sided derivatives ``near`` (forward, backward
    at each point), a piece not among the values ``seen`` before (to ``allow``).  Only points whose two one-sided derivatives
    agree count: there both lie on the point's own piece, while a pair that disagrees has one
    difference crossing a kink (a secant: a value between two pieces, no piece of its own)."""
    pairs = np.asarray(near, dtype=np.float64).reshape(-1, 2)
    pairs = pairs[np.isfinite(pairs).all(axis=1) & (np.abs(pairs[:, 0] - pairs[:, 1]) <= allow)]
    if not pairs.size:
        return 0
    gap = np.abs(pairs[:, :1] - seen[np.isfinite(seen)][None, :]).min(axis=1)
    return int((gap > allow).sum())


#: the most batches of nudged points (the first, then replicates): see the module docstring's cost
MAX_BATCHES = 4


def several_kinks_rule(a, lo, hi, batches, allow, move):
    """(verdict, reason) for an analytic value ``a`` outside the one-sided derivatives ``lo``, ``hi``,
    given ``batches``, an iterable (read lazily, at most MAX_BATCHES) of (one-sided derivatives
    at a batch's nudged points, its number of points), and the allowance ``allow`` for their
    roundoff (the module docstring's rule; ``move`` names what moves: "one move of this entry",
    "one move along this direction").  Shared by the gradient check and the vector checks
    (directions.py: an output entry along a tangent or an input direction)."""
    low, high = lo, hi
    first = None
    other = measured = False
    n_points = n_batches = 0
    last = (0.0, 0.0)
    seen = np.array([lo, hi], dtype=np.float64)
    for b, (near, n) in zip(range(MAX_BATCHES), batches):
        near = np.asarray(near, dtype=np.float64)
        n_points, n_batches = n_points + n, b + 1
        fresh = _new_pieces(near, seen, allow) if b else 0
        near = near[np.isfinite(near)]
        if near.size:
            # several kinks show as values other than the two one-sided derivatives: a single kink
            # (|x| at 0) gives only those two at every nudged point, and keeps the single-kink rule
            other |= bool((np.minimum(np.abs(near - lo), np.abs(near - hi)) > allow).any())
            grew = (near.min() < low - allow) or (near.max() > high + allow)
            last = (max(0.0, low - float(near.min())), max(0.0, float(near.max()) - high))
            low, high = min(low, float(near.min())), max(high, float(near.max()))
            seen = np.concatenate([seen, near])
        else:
            grew, last = False, (0.0, 0.0)
        if b == 0:
            first = (low, high)
        elif not (grew or fresh):
            measured = True  # a whole replicate met only pieces seen before: the piece set is sampled out
            break
    seen = (f"{n_points} points nudged off params in {n_batches} batches (tie-breaks in both orders "
            f"included)")
    # why the envelope is not measured, in the last batch's numbers
    why = (f"the last batch still showed a derivative not seen before at {fresh} of its {n} points and moved "
           f"the range by {last[0]:.3g} below and {last[1]:.3g} above")
    if not other:
        return FAIL, (f"kink: the one-sided derivatives are {lo:.6g} and {hi:.6g}; the analytic value lies "
                      f"outside them (and {seen} show no other kink)")
    if low - allow <= a <= high + allow:
        still = "" if measured else f" (not all pieces were seen: {why})"
        return INCONCLUSIVE, (
            f"kink: several kinks at once -- the one-sided derivatives are {lo:.6g} and {hi:.6g} and the "
            f"analytic value lies outside them, but within {low:.6g} to {high:.6g}, the derivatives measured at "
            f"{seen}{still}: {move} crosses several kinks (units exactly at 0, ties), where a limit of "
            f"gradients can lie beyond both one-sided derivatives")
    if measured:
        return FAIL, (
            f"kink: the one-sided derivatives are {lo:.6g} and {hi:.6g}, and at {seen} the derivatives "
            f"measured lie within {low:.6g} to {high:.6g}; the last batch met no piece not seen before, and the "
            f"analytic value lies outside all of them, so it is the derivative of no piece of fun seen "
            f"nearby: a bug at the kink")
    # still widening at the cap: the pieces are not all seen, so the range is widened on each side
    # by how far the replicates moved it since the first batch (the growth measured, not assumed)
    grow = (first[0] - low, high - first[1])
    wide_lo, wide_hi = low - grow[0], high + grow[1]
    if wide_lo - allow <= a <= wide_hi + allow:
        return INCONCLUSIVE, (
            f"kink: several kinks at once, envelope not measured -- the one-sided derivatives are {lo:.6g} and "
            f"{hi:.6g} and the analytic value lies outside them; at {seen} the derivatives measured lie within "
            f"{low:.6g} to {high:.6g} ({first[0]:.6g} to {first[1]:.6g} after the first batch), but {why}: "
            f"{move} crosses more kinks than were sampled, and the analytic value lies within the range "
            f"widened by the growth since the first batch ({grow[0]:.3g} below, {grow[1]:.3g} above), "
            f"{wide_lo:.6g} to {wide_hi:.6g}, where a piece not yet seen may lie")
    return FAIL, (
        f"kink: the one-sided derivatives are {lo:.6g} and {hi:.6g}, and at {seen} the derivatives measured "
        f"lie within {low:.6g} to {high:.6g} ({first[0]:.6g} to {first[1]:.6g} after the first batch); "
        f"{why}; yet the analytic value lies outside even the range widened by the growth since the first "
        f"batch ({grow[0]:.3g} below, {grow[1]:.3g} above), {wide_lo:.6g} to {wide_hi:.6g}: a bug at the kink")


class DirectionNudges:
    """The nudged points of one vector check (directions.py) and fun's whole output at each, shared
    by its directions (tangents, or the input entries of a Jacobian), in batches as in Nudges;
    ``ev`` is a vector.VecEval.

    ``entry_steps``: how far the check's first step moves each input entry; the nudge is
    NUDGE_FRACTION of it (one relative size for all entries, as in Nudges)."""

    def __init__(self, ev, entry_steps, L, seed):
        self.rng = np.random.default_rng([int(seed), 0x4B1D])
        rel = float(np.median(np.asarray(entry_steps, dtype=np.float64) / L))
        self.size = NUDGE_FRACTION * rel * L
        self.ev = ev
        self.eps_buf = max(float(np.finfo(dt).eps) for dt in ev.dtypes)
        self.batches = [self._draw(nudge_directions(self.rng, ev.spec, L.size))]

    def _draw(self, dirs):
        points = [self.ev.rounded(self.ev.x0 + u * self.size) for u in dirs]
        return points, [self.ev.call(x) for x in points]

    def batch(self, b):
        """(points, outputs) of batch b, drawing the batches up to it."""
        while len(self.batches) <= b:
            self.batches.append(self._draw(replicate_directions(self.rng, self.size.size)))
        return self.batches[b]

    def step(self, d):
        """The step t along direction d that the one-sided derivatives are taken with."""
        sup = d != 0
        t = DIFF_FRACTION * float(np.median(self.size[sup] / np.abs(d[sup])))
        # a low-precision buffer rounds each moved entry: at 64 of its ulps or more the step taken is
        # d's direction to about 1%, which the one-sided roundoff allowance does not cover below that
        return max(t, 64.0 * self.eps_buf * float(np.max((np.abs(self.ev.x0) + self.size)[sup] / np.abs(d[sup]))))

    def slopes(self, d, b=0):
        """One-sided derivatives of every output along direction d at every point of batch b (rows;
        NaN where fun is not finite)."""
        ev, t = self.ev, self.step(d)
        out = []
        with np.errstate(invalid="ignore", over="ignore"):
            for x, y in zip(*self.batch(b)):
                for sign in (1.0, -1.0):
                    out.append((ev.call(ev.rounded(x + (sign * t) * d)) - y) / (sign * t))
        return np.array(out)
