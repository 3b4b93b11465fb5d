"""The engine of the JVP and Jacobian checks: finite differences of fun's whole output along a
direction (a tangent, or one input entry), judged output by output.

``check_directions`` runs, per direction, a Richardson chain of shrinking steps for all outputs at
once (``_Column``: pass, a failure confirmed on a plateau, or inconclusive), with the gradient
check's kink test (refine.Chain) output by output: one-sided differences that show a kink along the
direction keep that output from a plateau failure (a central difference across a kink is the mean
of the one-sided derivatives, constant as the step shrinks).  An output still at a kink when the
steps run out is judged as the gradient check judges an entry (``_judge_kinks``): inconclusive
between the one-sided derivatives; outside them, against the one-sided derivatives along the same
direction at points nudged off the inputs (kinks.DirectionNudges, kinks.several_kinks_rule: one
move may cross several kinks at once, a ReLU layer at zero bias with an all-zero input row), a
failure only outside everything those allow.

Layer: numerics, beside entries (above refine, kinks, verdict).  Imports numpy, refine's step
constants, kinks and verdict; reads vector.VecEval by its attributes (y0, x0, call, rounded).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from .kinks import DirectionNudges, several_kinks_rule
from .refine import MAX_LEVELS, PASS_RESOLUTION, R_FACTOR, one_side_moved
from .verdict import FAIL, INCONCLUSIVE, PASS, SAFETY


def _directional(ev, scheme, x0, d, h, with_curvature=False):
    """Scheme estimate of the output's derivative along d at step h, and the one-sided differences
    (forward, backward; their gap is the kink test's); with ``with_curvature`` also the second
    difference f(x+hd) - 2 f(x) + f(x-hd) per output."""
    vals = {0.0: ev.y0}
    for o in sorted(set(scheme.offsets) | {-1.0, 1.0}):
        if o != 0.0:
            vals[o] = ev.call(ev.rounded(x0 + (o * h) * d))
    D = sum(w * vals[o] for o, w in zip(scheme.offsets, scheme.weights)) / h
    fwd, bwd = (vals[1.0] - ev.y0) / h, (ev.y0 - vals[-1.0]) / h
    if not with_curvature:
        return D, fwd, bwd
    return D, fwd, bwd, vals[1.0] - 2.0 * ev.y0 + vals[-1.0]


class _Column:
    """Richardson chain for all outputs of one direction: pass / fail (plateau) / inconclusive, with
    refine.Chain's kink test output by output: a level whose one-sided differences show a kink
    restarts that output's chain and keeps it from a plateau failure (a central difference across
    a kink is the mean of the one-sided derivatives, constant as h shrinks); outputs still at a
    kink when the steps run out are ``kinked``, with the one-sided derivatives in ``kink``."""

    def __init__(self, a, tolf, rp, one_sided):
        self.a, self.tolf, self.rp, self.one_sided = a, tolf, rp, one_sided
        m = a.size
        self.best = np.full(m, np.nan)
        self.best_err = np.full(m, np.inf)
        self.verdict = np.full(m, -1, dtype=np.int8)
        self.streak = np.zeros(m, dtype=np.int8)
        self.prev_D = np.full(m, np.nan)  # NaN: no level yet, or the last one was at a kink
        self.prev_N = np.full(m, np.nan)
        self.prev_fb = None
        self.kink = np.full((m, 3), np.nan)  # lower, upper one-sided derivative, roundoff R
        self.kinked = np.zeros(m, dtype=bool)

    def _kinky(self, fwd, bwd, R):
        """refine.Chain's kink test against the previous level: one side moved and not the other,
        or a gap between them that does not shrink with h (both above the one-sided roundoff)."""
        prev, self.prev_fb = self.prev_fb, (fwd, bwd)
        if prev is None:
            self.trunc = np.zeros(fwd.size)
            return np.zeros(fwd.size, dtype=bool)
        r1 = self.one_sided * R
        noise1 = np.maximum(self.tolf(0.0 * R, r1), SAFETY * r1)
        with np.errstate(invalid="ignore"):
            dfw, dbw = fwd - prev[0], bwd - prev[1]
            moved = np.maximum(np.abs(dfw), np.abs(dbw)) > noise1
            gap = np.abs(fwd - bwd)
            stuck = (gap > noise1) & (gap > 0.5 * np.abs(prev[0] - prev[1]))
            # one-sided derivatives that agree within their noise claim no kink at this level (refine.Chain)
            kinky = ((moved & one_side_moved(dfw, dbw)) | stuck) & (gap > noise1)
            # the one-sided derivatives' truncation, measured by the side that moved less (refine.Chain)
            self.trunc = np.where(np.isfinite(dfw + dbw), np.minimum(np.abs(dfw), np.abs(dbw)), 0.0)
        return kinky & np.isfinite(fwd + bwd + prev[0] + prev[1])

    def feed(self, D, R, fwd, bwd):
        open_ = self.verdict < 0
        a, tolf, rp = self.a, self.tolf, self.rp
        kinky = open_ & self._kinky(fwd, bwd, R)
        self.kinked = np.where(open_, kinky, self.kinked)
        if kinky.any():
            self.kink[kinky] = np.stack([np.minimum(fwd, bwd), np.maximum(fwd, bwd), R + self.trunc], axis=1)[kinky]
            self.best, self.best_err = np.where(kinky, D, self.best), np.where(kinky, np.inf, self.best_err)
            self.streak[kinky] = 0
        live = open_ & ~kinky
        fresh = live & np.isnan(self.prev_D)  # first level, or first after a kink: strict pass test only
        with np.errstate(invalid="ignore"):
            ok = fresh & np.isfinite(D) & (np.abs(D - a) <= tolf(D, R))
            self.best = np.where(fresh, D, self.best)
            self.best_err = np.where(ok, R, np.where(fresh, np.inf, self.best_err))
            cont = live & ~fresh
            N = D + (D - self.prev_D) / (rp - 1.0)
            cands = [(D, np.abs(D - self.prev_D) / (rp - 1.0) + R),
                     (N, np.abs(N - self.prev_N) + R * (rp + 1.0) / (rp - 1.0))]  # NaN prev_N: never better
            for est, e in cands:
                better = cont & (e < self.best_err) & np.isfinite(est)
                self.best = np.where(better, est, self.best)
                self.best_err = np.where(better, e, self.best_err)
            ok |= cont & (np.abs(self.best - a) <= tolf(self.best, self.best_err))
            dis = cont & ~ok & (np.abs(D - a) > tolf(D, np.abs(D - self.prev_D) + R))
        self.verdict[ok] = PASS
        self.streak = np.where(dis, self.streak + 1, np.where(cont & ~ok, 0, self.streak))
        self.verdict[cont & ~ok & (self.streak >= 2)] = FAIL
        self.prev_D, self.prev_N = np.where(kinky, np.nan, D), np.where(kinky, np.nan, N)

    def done(self):
        return bool(np.all(self.verdict >= 0))

    def finish(self):
        und = self.verdict < 0
        self.kinked &= und
        self.verdict[und & ~self.kinked & (self.streak >= 1)] = FAIL
        self.verdict[self.verdict < 0] = INCONCLUSIVE
        return self.best, self.best_err, self.verdict


def _judge_kinks(col, d, h, tol, sigma, nudges, explicit):
    """Verdicts of the outputs still at a kink along d (the gradient check's rule, refine.Chain.final
    and kinks.py): inconclusive between the one-sided derivatives; outside them, judged against the
    one-sided derivatives at nudged points (several kinks crossed by one move), unless the
    tolerance is explicit.  Updates col.best / best_err / verdict; returns {output: reason}."""
    reasons = {}
    rows = np.flatnonzero(col.kinked)
    if rows.size == 0:
        return reasons
    lo, hi, R = col.kink.T  # every output (the tolerances are per output), NaN where no kink
    size = np.maximum(np.abs(lo), np.abs(hi))
    with np.errstate(invalid="ignore"):
        widen = tol(size, R)
    a = col.a
    near = None
    for r in rows.tolist():
        k = r
        b = lo[k] if abs(a[k] - lo[k]) <= abs(a[k] - hi[k]) else hi[k]
        col.best[r], col.best_err[r] = b, R[k]
        if lo[k] - widen[k] <= a[k] <= hi[k] + widen[k]:
            col.verdict[r] = INCONCLUSIVE
            if lo[k] <= a[k] <= hi[k]:
                col.best[r] = a[k]
            else:
                col.best_err[r] = max(R[k], abs(a[k] - b) / SAFETY)
            reasons[r] = (f"kink along this direction: fun is not differentiable within {h:.2g} of this point; "
                          f"the one-sided derivatives are {lo[k]:.6g} and {hi[k]:.6g} and the analytic value lies "
                          f"between them (a valid subgradient)")
            continue
        col.verdict[r] = FAIL
        if explicit or nudges is None:
            reasons[r] = (f"kink: the one-sided derivatives are {lo[k]:.6g} and {hi[k]:.6g}; "
                          f"the analytic value lies outside them")
            continue
        if near is None:
            near = _batched_slopes(nudges(), d)
            with np.errstate(invalid="ignore"):
                allow0 = tol(size, math.sqrt(2.0) * sigma / nudges().step(d))
        batches = ((near(b)[:, r], len(nudges().batch(b)[0])) for b in itertools.count())
        col.verdict[r], reasons[r] = several_kinks_rule(float(a[k]), lo[k], hi[k], batches,
                                                        max(widen[k], allow0[k]), "one move along this direction")
    return reasons


def _batched_slopes(nudges, d):
    """b -> the one-sided derivatives of every output along d at batch b's nudged points, each batch
    computed once for all of d's outputs (an output stops asking once its envelope is measured)."""
    held = {}

    def near(b):
        if b not in held:
            held[b] = nudges.slopes(d, b)
        return held[b]
    return near


def _unresolved(a, D, R, tol):
    """Outputs whose analytic value is above its floor, yet a sign flip of it would pass as well:
    the finite difference verified nothing about them (its roundoff swamps them)."""
    t = tol(D, R)
    return (np.abs(a) > tol(D, 0.0 * R)) & (np.abs(-a - D) <= t) & (np.abs(a - D) <= t)


def _lost_in_roundoff(a, R, second, sigma, tol):
    """The first step is too small: some output above its floor is judged to no better than
    PASS_RESOLUTION of its size, while every output's second difference is lost in f's noise (fun
    is linear at this step, so a larger one costs no truncation): the gradient check's step-up."""
    weak = (np.abs(a) > tol(a, 0.0 * R)) & (SAFETY * R > PASS_RESOLUTION * np.abs(a))
    return bool(weak.any()) and bool(np.all(np.abs(second) < 100.0 * sigma))


def check_directions(ev, scheme, dirs, steps, analytic_cols, judge_tol, sigma, max_steps=None, explicit=False,
                      nudges=None):
    """For each direction k: D_k vs analytic_cols[k] (m-vectors); returns (numeric, err, verdict) as
    (K, m) and a {output: reason} per direction (the outputs at a kink: _judge_kinks; ``nudges``
    gives the check's kinks.DirectionNudges, built on first use).

    A first step lost in roundoff (a leaf of 1e-13 beside unit ones: its own size is no measure
    of how fun varies in it) grows R_FACTOR-fold while some output stays unresolved, up to
    ``max_steps[k]`` (the inputs' scale, as in the gradient check); outputs still unresolved
    at the end are inconclusive, not passed (unless atol/rtol were given: ``explicit``)."""
    K = len(dirs)
    m = ev.y0.size
    num = np.full((K, m), np.nan)
    err = np.full((K, m), np.nan)
    ver = np.zeros((K, m), dtype=np.int8)
    reasons = []
    rp = R_FACTOR ** scheme.order
    one_sided = math.sqrt(2.0) / scheme.weight_norm  # a one-sided difference's roundoff, in units of R
    for k in range(K):
        d, h, a = dirs[k], steps[k], analytic_cols[k]
        tol = (lambda D, R, k=k: judge_tol(k, D, R))
        col = _Column(a, tol, rp, one_sided)
        if max_steps is None:
            D, fwd, bwd = _directional(ev, scheme, ev.x0, d, h)
        else:
            D, fwd, bwd, second = _directional(ev, scheme, ev.x0, d, h, with_curvature=True)
            while h * R_FACTOR <= max_steps[k] and _lost_in_roundoff(a, scheme.weight_norm * sigma / h, second,
                                                                     sigma, tol):
                h *= R_FACTOR
                D, fwd, bwd, second = _directional(ev, scheme, ev.x0, d, h, with_curvature=True)
        col.feed(D, scheme.weight_norm * sigma / h, fwd, bwd)
        hh = h
        for _ in range(0 if col.done() else MAX_LEVELS):  # the first level only passes; refine the rest
            hh /= R_FACTOR
            D, fwd, bwd = _directional(ev, scheme, ev.x0, d, hh)
            col.feed(D, scheme.weight_norm * sigma / hh, fwd, bwd)
            if col.done():
                break
        b, e, v = col.finish()
        reasons.append(_judge_kinks(col, d, hh, tol, sigma, nudges, explicit))
        if not explicit:
            v[(v == PASS) & _unresolved(a, b, e, tol)] = INCONCLUSIVE
        num[k], err[k], ver[k] = b, e, v
    return num, err, ver, reasons


def lazy_nudges(ev, entry_steps, L, seed):
    """The check's kinks.DirectionNudges, built when a kink first needs them (fun at each point of
    the first batch; later batches when an output's envelope asks for them)."""
    held = []
    return lambda: held[0] if held else held.append(DirectionNudges(ev, entry_steps, L, seed)) or held[0]
