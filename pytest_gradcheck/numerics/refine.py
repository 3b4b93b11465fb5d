"""Refinement of one entry's derivative: shrinking steps, Richardson, kinks, confirmation.

``level`` evaluates the scheme and both one-sided derivatives at one step;
``Chain`` judges the estimates of one entry as the step shrinks R_FACTOR-fold
(Richardson extrapolation, the kink test, a failure confirmed on a plateau);
``refine`` is stage B for one entry (a chain down from the first step, then one
from larger steps).  Fast mode runs the same Chain along a probe direction.

Layer: numerics, middle (above verdict).  Imports numpy and verdict; reads a
Problem, a Judge and a Scheme by their attributes.
"""

from __future__ import annotations

import math

import numpy as np

from .verdict import FAIL, INCONCLUSIVE, PASS, SAFETY

#: refinement: each level shrinks the step R_FACTOR-fold, at most MAX_LEVELS times
R_FACTOR = 4.0
MAX_LEVELS = 8
#: a refined entry passes early only once its tolerance is below this fraction
#: of its scale (|a_i| + typical |a| in the leaf), or below 100x the scheme's
#: reach eps_eff^(p/(p+1)) when f is noisier; coarse passes wait for the last step
PASS_RESOLUTION = 1e-6


def one_side_moved(dfw, dbw):
    """The kink test's asymmetry: as the step shrinks, one one-sided derivative moved and the other
    did not (less than a quarter as far).  A smooth f moves both: by -+h f''/2 (opposite ways) plus
    h^2 f'''/6 (the same way, the only term where f'' = 0: a score at a least-squares optimum), so
    a rule that reads a same-way move as a kink calls smooth points kinks.  Arrays or floats."""
    a, b = np.abs(dfw), np.abs(dbw)
    return np.minimum(a, b) < 0.25 * np.maximum(a, b)


def real_value(v):
    if isinstance(v, complex):
        return v.real
    return float(v)


def combine(scheme, values, actual):
    """D = sum w_j f_j / h_eff with h_eff the step actually taken, ((x+h)-x)."""
    o = np.array(scheme.offsets)
    span = (actual[-1] - actual[0]) / (o[-1] - o[0])
    w = np.array(scheme.weights)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        D = (w * values).sum(axis=0) / span
    return D, span


def level(problem, scheme, i, h):
    """Scheme estimate, one-sided derivatives and step actually taken at step h for entry i."""
    ev = problem.ev
    x = problem.x0[i]
    dt = ev.buffer_dtype(i)
    offs = sorted(set(o for o in scheme.offsets if o != 0.0) | {-1.0, 1.0})
    got = {}
    for o in offs:
        p = dt.type(x + o * h)
        got[o] = (real_value(ev.at(i, p)), float(p) - x)
    f0 = float(ev.f0)
    values = np.array([[f0 if o == 0.0 else got[o][0]] for o in scheme.offsets])
    actual = np.array([[0.0 if o == 0.0 else got[o][1]] for o in scheme.offsets])
    D, heff = combine(scheme, values, actual)
    with np.errstate(divide="ignore", invalid="ignore"):
        fwd = (got[1.0][0] - f0) / got[1.0][1]
        bwd = (f0 - got[-1.0][0]) / (-got[-1.0][1])
    finite = all(np.isfinite(v[0]) for v in got.values())
    return float(D[0]), float(fwd), float(bwd), float(heff[0]), finite


class Chain:
    """Estimates of one entry's derivative at steps shrinking R_FACTOR-fold, judged as they come.

    Kink test, level against level: for a smooth f the one-sided derivatives
    move towards each other symmetrically as h shrinks (fwd - bwd ~ h f''); a
    kink inside the stencil moves one side only, or neither while their gap
    stays.  Levels touched by a kink restart the Richardson chain, so no
    estimate that straddles the kink is trusted.

    A failure needs the plateau a bug leaves: twice in a row, an estimate
    (plain or Richardson-extrapolated) moved less between two steps than a
    tenth of its distance from the analytic value (no asymptotic credit).
    """

    def __init__(self, problem, judge, scheme, i, sigma):
        self.judge, self.i, self.sigma = judge, i, sigma
        self.a = problem.analytic[i]
        self.floor = problem.floor[i]
        # an early pass must be informative: a tolerance within PASS_RESOLUTION of the
        # entry's scale, or 100x what the scheme can reach at f's noise if that is more
        # (else refine on; when the steps run out, any pass counts)
        eps_eff = getattr(problem, "eps_eff", None) or float(np.finfo(np.float64).eps)
        reach = 100.0 * eps_eff ** (scheme.order / (scheme.order + 1.0))
        self.informative = max(PASS_RESOLUTION, reach) * (abs(self.a) + problem.grad_scale[i]) + self.floor
        self.rp = R_FACTOR ** scheme.order
        self.wnorm = scheme.weight_norm
        self.prev_D = self.prev_N = self.prev_fb = self.prev_diff = None
        self.best, self.best_err = math.nan, math.inf
        # a disagreement found at a smaller step that a pass of this chain must resolve (set for the
        # chain from larger steps, whose estimates are less precise than stage A's): see refine
        self.disc0 = math.inf
        self.streak = 0
        self.state = "unsettled"
        self.kink = None
        self.prev_fb_was = None
        self.prev_h = None  # the step of the previous level
        self.jump = None  # fun's jump (f(x+) - f(x-)) when the one-sided differences grow like 1/h

    def start(self, D, fwd, bwd):
        """The first level: only a reference for the next one."""
        self.prev_D = D if np.isfinite(D) else None
        self.prev_fb = (fwd, bwd) if np.isfinite(fwd) and np.isfinite(bwd) else None
        self.best = D

    def feed(self, D, fwd, bwd, heff, finite):
        """Take one level; return (estimate, error, verdict) when decided, else None."""
        judge, i, a, sigma = self.judge, self.i, self.a, self.sigma
        if not finite or not np.isfinite(D):
            self.state, self.prev_D, self.prev_N, self.prev_fb, self.streak = "nonfinite", None, None, None, 0
            self.prev_diff = None
            return None
        R = self.wnorm * sigma / heff
        noise1 = SAFETY * math.sqrt(2.0) * sigma / heff + self.floor
        kinky = False
        self.prev_fb_was = self.prev_fb
        if self.prev_fb is not None and np.isfinite(fwd) and np.isfinite(bwd):
            dfw, dbw = fwd - self.prev_fb[0], bwd - self.prev_fb[1]
            moved = max(abs(dfw), abs(dbw)) > noise1
            gap, prev_gap = abs(fwd - bwd), abs(self.prev_fb[0] - self.prev_fb[1])
            stuck = gap > noise1 and gap > 0.5 * prev_gap
            kinky = (moved and one_side_moved(dfw, dbw)) or stuck
            if stuck and gap > 0.5 * R_FACTOR * prev_gap > 0.0 and self.prev_h:
                # a gap growing like 1/h is no kink (a kink's gap stays as h shrinks): a jump when
                # gap * h, the jump's size, holds with its sign; otherwise roundoff the measured
                # noise underrates (a huge log-likelihood), which claims nothing
                same = (fwd - bwd) * (self.prev_fb[0] - self.prev_fb[1]) > 0.0
                if same and abs(gap * heff - prev_gap * self.prev_h) <= 0.25 * gap * heff:
                    self.state, self.jump = "jump", (fwd - bwd) * heff
                    self.prev_fb, self.prev_h = (fwd, bwd), heff
                    self.prev_D, self.prev_N, self.prev_diff, self.streak = None, None, None, 0
                    return None
                self.prev_D, self.prev_N, self.prev_diff, self.streak = None, None, None, 0
                kinky = False
        self.prev_fb = (fwd, bwd) if np.isfinite(fwd) and np.isfinite(bwd) else None
        self.prev_h = heff
        if kinky and abs(fwd - bwd) <= noise1:
            # one side crossed a kink at some distance and this step no longer reaches it: the
            # one-sided derivatives agree within their noise, so this level claims no kink here;
            # only the levels that straddled it are dropped (restart the Richardson chain)
            self.prev_D, self.prev_N, self.prev_diff, self.streak = None, None, None, 0
            kinky = False
        if kinky:
            # each one-sided derivative carries truncation as well as roundoff: measured by the side
            # that moved less since the last level (the smooth side; its error at this step is
            # about a third of that move, taken whole), so that a value equal to a side's limit
            # is not read as outside it (a unit a short way off the point: the smooth side is
            # still 3e-6 relative from its limit at the step where the other side crosses)
            trunc = min(abs(dfw), abs(dbw)) if self.prev_fb_was is not None else 0.0
            widen = judge.tol(i, max(abs(fwd), abs(bwd)), R + trunc)
            lo, hi = min(fwd, bwd) - widen, max(fwd, bwd) + widen
            self.kink = (min(fwd, bwd), max(fwd, bwd), heff, R + trunc)
            self.state = "kink-in" if lo <= a <= hi else "kink-out"
            self.prev_D, self.prev_N, self.prev_diff, self.streak = None, None, None, 0
            self.best, self.best_err = D, math.inf
            return None
        if self.prev_D is None:
            # first clean level after a reset: strict (roundoff-only) pass test, no confirmation yet
            self.prev_D, self.best, self.best_err, self.state = D, D, math.inf, "unsettled"
            if abs(D - a) <= judge.tol(i, D, R):
                return D, R, PASS
            return None
        rp = self.rp
        diff = abs(D - self.prev_D)
        # converged: the estimates settle as the scheme's order says (each difference
        # r^p/4 times smaller than the last) or differ by noise only.  Far from the
        # asymptotic regime (a step far above f's scale) they do neither.
        converged = diff <= SAFETY * 2.0 * R or (self.prev_diff is not None and diff <= self.prev_diff * 4.0 / rp)
        self.prev_diff = diff
        N = D + (D - self.prev_D) / (rp - 1.0)
        cands = [(D, abs(D - self.prev_D) / (rp - 1.0) + R, abs(D - self.prev_D) + R)]
        if self.prev_N is not None:
            cands.append((N, abs(N - self.prev_N) + R * (rp + 1.0) / (rp - 1.0),
                          abs(N - self.prev_N) + R * (rp + 1.0) / (rp - 1.0)))
        self.prev_N, self.prev_D = N, D
        for est, e, _ in cands:
            if e < self.best_err:
                self.best, self.best_err = est, e
        t = judge.tol(i, self.best, self.best_err)
        if abs(self.best - a) <= t and t <= self.informative and t < self.disc0:
            return self.best, self.best_err, PASS
        if converged and any(abs(est - a) > judge.tol(i, est, e_cons) for est, _, e_cons in cands):
            self.state = "disagree"
            self.streak += 1
            if self.streak >= 2:
                return self.best, self.best_err, FAIL
        else:
            self.state, self.streak = "unsettled", 0
        return None

    def final(self):
        """Verdict when the steps run out: (estimate, error, verdict, reason)."""
        b, e = self.best, self.best_err
        if self.state in ("unsettled", "disagree") and math.isfinite(e) and \
                abs(b - self.a) <= self.judge.tol(self.i, b, e):
            return b, e, PASS, ""
        if self.state in ("kink-in", "kink-out"):
            # Report against the nearer one-sided derivative, with the one-sided roundoff as
            # the error, so that ratio > 1 means "outside the subgradient interval".
            k = self.kink
            b = k[0] if abs(self.a - k[0]) <= abs(self.a - k[1]) else k[1]
            e = k[3]
            if self.state == "kink-in" and not k[0] <= self.a <= k[1]:
                e = max(e, abs(self.a - b) / SAFETY)
            elif self.state == "kink-in":
                b = self.a
        if self.state == "kink-in":
            k = self.kink
            return b, e, INCONCLUSIVE, (
                f"kink: fun is not differentiable within {k[2]:.2g} of this point; the one-sided derivatives are "
                f"{k[0]:.6g} and {k[1]:.6g} and the analytic value lies between them (a valid subgradient)")
        if self.state == "kink-out":
            k = self.kink
            return b, e, FAIL, (f"kink: the one-sided derivatives are {k[0]:.6g} and {k[1]:.6g}; "
                                f"the analytic value lies outside them")
        if self.state == "jump":
            return b, math.inf, INCONCLUSIVE, (
                f"discontinuity: fun jumps by about {self.jump:.3g} within {self.prev_h:.2g} of this point (its "
                f"one-sided differences grow like 1/step): it has no derivative there, and a one-sided or "
                f"almost-everywhere derivative cannot be judged by differences across the jump")
        if self.state == "nonfinite":
            return b, e, INCONCLUSIVE, "fun is not finite at the perturbed points of every usable step"
        if self.state == "disagree":
            return b, e, FAIL, "the two smallest usable steps agree with each other, not with the analytic value"
        return b, e, INCONCLUSIVE, "the finite-difference estimates did not settle as the step changed"


def refine(problem, judge, scheme, i, h0, D0, fwd0, bwd0, sigma, kinks=None):
    """Stage B for one entry: a chain of shrinking steps from h0; if that does not
    settle (roundoff grows as h shrinks), a second chain from R_FACTOR^2 h0 down to h0.
    ``kinks``: a dict that receives kinks[i] = (lower, upper one-sided derivative, step, roundoff)
    when the verdict is a failure outside a kink's one-sided derivatives (kinks.py judges those
    again: one coordinate's move may cross several kinks at once)."""
    x = problem.x0[i]
    dt = problem.ev.buffer_dtype(i)
    hmin = 16.0 * float(np.spacing(dt.type(abs(x)))) if x != 0 else 16.0 * float(np.finfo(dt).tiny)
    chain = Chain(problem, judge, scheme, i, sigma)
    chain.start(D0, fwd0, bwd0)
    h = h0
    # an explicit first step may sit far above f's scale: allow twice the levels
    for _ in range(MAX_LEVELS if problem.eps is None else 2 * MAX_LEVELS):
        h = h / R_FACTOR
        if h < hmin:
            break
        got = chain.feed(*level(problem, scheme, i, h))
        if got is not None:
            return (*got, "")
    first = chain.final()
    if chain.state == "kink-out" and kinks is not None:
        kinks[i] = chain.kink
    if chain.state != "unsettled" or h0 * R_FACTOR**2 > max(problem.room[i], h0):
        return first
    up = Chain(problem, judge, scheme, i, sigma)
    up.start(*level(problem, scheme, i, h0 * R_FACTOR**2)[:3])
    # larger steps cost truncation: an early pass of theirs must be tighter than the disagreement
    # stage A found at h0, or it would overrule a more precise estimate with a less precise one
    # (central4 at a loss scale of 1e-8 passed an error of 30x its tolerance that way)
    up.disc0 = abs(D0 - problem.analytic[i]) if np.isfinite(D0) else math.inf
    for lvl in (level(problem, scheme, i, h0 * R_FACTOR), (D0, fwd0, bwd0, h0, bool(np.isfinite(D0)))):
        got = up.feed(*lvl)
        if got is not None:
            return (*got, "")
    second = up.final()
    if first[2] == PASS and up.state == "kink-out":
        # the smaller steps went below a kink or singularity that the larger ones straddle (a
        # branch point 1e-8 away: lambertw at -1/e + 1e-8) and converged there: that stands
        return first
    return second if second[2] == FAIL else first
