"""Diagnosis of a failed or inconclusive check: what the numbers say, and why.

The verdict decides, the diagnosis explains.  Its headline cause is causes.decide's, read from
the status and the reasons the verdict gave each entry (a confirmed plateau, a kink, several kinks
at once, underflow, unresolved, a staircase, nondeterminism...): a failure is explained as a wrong
analytic value, an inconclusive check by the cause its entries and messages give, never the other
way round.  The evidence below adds to that explanation in words that agree with it; it never
overrules the verdict (a sweep that looks like a V beside a confirmed failure is reported as one
step's looser tolerance, not as "a step-size artefact").

Two independent pieces of evidence:

1. The error-versus-step sweep.  For the worst few disagreeing entries the
   central difference is recomputed at h = L*10^-1 ... L*10^-10 (L the entry's
   scale) and |analytic - numeric(h)| is classified by its shape:

   ===========  =========================================================
   correct      falls with the scheme's order, bottoms out inside the
                error model's tolerance, rises with roundoff: a V
   bug          a flat plateau far above the tolerance at every usable h
   kink         flat while h is larger than the distance to the kink, then
                a cliff (a drop of more than 30x within one decade) into
                agreement
   noise        no trend: the error jumps up and down by large factors
   unresolved   as large as |a| at every step, within tolerance only because
                each step's tolerance is larger still (the steps, scaled by a
                tiny entry, are too small; or f underflows): no V
   ===========  =========================================================

   The tolerance at each h is SAFETY * 3*sum|w|*sigma/h + the analytic floor
   (sigma: the measured noise of f), the same model the verdict uses.

2. Bug shapes across a leaf, from the analytic vector a and the numeric
   vector n restricted to the leaf's entries that were checked (all of them
   in full mode, the localised ones in fast mode):

   * constant factor      a ~ c n (least squares, residual < 5%): c = -1 is
                          a sign flip, 2 / 0.5 a factor of two, 1/m or m a
                          missing or extra average over a dimension m of
                          some leaf (the batch), k/m a partial batch, 0 a
                          missing gradient
   * transposed           a ~ n^T for a square 2-D leaf
   * rolled / permuted    a ~ roll(n, k) along an axis; a is a permutation of n
   * swapped leaves       two leaves of the same shape with a_X ~ n_Y, a_Y ~ n_X
   * missing term         a - n ~ lam * params (an L2 term lam*W forgotten or
                          added twice), or a - n ~ constant

3. A gradient that is itself a finite difference (finite_difference_like): libraries that
   ship a forward-difference "gradient" agree to ~h relative, with a - n = (h/2) f''_ii for one
   h across entries (h |x_i| for a relative step; -h/2 for a backward difference).  When that
   model explains the failed entries, the diagnosis says "your gradient looks like a forward
   difference with step ~h" and no other bug shape.

The result is a JSON-safe dict: ``kind`` (bug | kink | nondeterministic | underflow |
unresolved | staircase | nonfinite | unsettled | spread), ``cause`` (the same, with bug_at_kink
and several_kinks apart), ``summary`` (one paragraph: what
was compared, what the numbers say, the likely cause, what to try next),
``entries`` ([{leaf, index, classification, sweep: [{"h", "error"}...],
tolerance: [...]}]), ``pattern`` ({leaf: {...}}) and, when 3. applies,
``finite_difference`` ({scheme, step, relative, n_entries, max_rel}).  At most
SWEEP_ENTRIES * len(DECADES) * 2 + 2 * FD_ENTRIES = 56 extra evaluations of f.

Layer: numerics, middle (imported lazily by assemble.py).  Imports causes, stencils and
verdict (``SAFETY``, the same margin the verdict uses); reads a Problem and a
result by their attributes.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from .causes import (BLAME, BUG, BUG_AT_KINK, KIND, KINK, NONDETERMINISTIC, NONFINITE, SEVERAL_KINKS, SPREAD,
                     STAIRCASE, UNDERFLOW, UNRESOLVED, UNSETTLED, decide, entry_cause, message_causes)
from .stencils import SCHEMES
from .verdict import FAIL, PASS, SAFETY

SWEEP_ENTRIES = 2
DECADES = tuple(range(1, 11))
#: relative residual below which a leaf-level bug shape is accepted
FIT = 0.05
#: leaves larger than this are not searched for rearranged entries
MAX_SEARCH = 1 << 16


# ---------------------------------------------------------------- sweeps
def _flat_index(spec, leaf_path, index):
    for leaf in spec.leaves:
        if leaf.path == leaf_path:
            if not leaf.shape:
                return leaf.offset
            return leaf.offset + int(np.ravel_multi_index(tuple(index), leaf.shape))
    return None


def sweep_entry(problem, i, scheme_name=None):
    """[(h, D(h), jump(h))] for entry i, h = L_i * 10^-k: central difference D and the gap between the
    one-sided differences (2 evaluations per step; the gap shrinks like h f'' where f is smooth and stays
    at the size of the jump in f' at a kink)."""
    ev = problem.ev
    x = float(problem.x0[i])
    L = float(problem.L[i])
    dt = ev.buffer_dtype(i)
    if dt.kind == "c":
        dt = np.dtype(np.float64)
    f0 = float(np.real(ev.f0))
    out = []
    for k in DECADES:
        h = L * 10.0 ** (-k)
        xp, xm = dt.type(x + h), dt.type(x - h)
        span = float(xp) - float(xm)
        if span == 0:
            continue
        fp = float(np.real(ev.at(i, xp)))
        fm = float(np.real(ev.at(i, xm)))
        hp, hm = float(xp) - x, x - float(xm)
        jump = abs((fp - f0) / hp - (f0 - fm) / hm) if hp > 0 and hm > 0 else math.nan
        out.append((span / 2.0, (fp - fm) / span, jump))
    return out


def classify(hs, errors, tol, jumps=None, analytic=None):
    """Shape of |a - D(h)| over decreasing h: correct | bug | kink | noise | unresolved.

    ``jumps``: |forward - backward difference| per h; when it stays large as h
    shrinks (instead of falling with h), a plateau is a kink at the point itself,
    not a bug.  ``analytic``: a; an error that stays as large as a quarter of |a| at every step,
    within tolerance only because each step's tolerance is larger still, resolved nothing
    ("unresolved": the steps are too small for this entry, or f underflows), which is no V."""
    e = np.asarray(errors, dtype=float)
    if jumps is not None:
        j = np.asarray(jumps, dtype=float)
        t = np.asarray(tol, dtype=float)
        ok = np.isfinite(j)
        if ok.sum() >= 3:
            jj, tt = j[ok], t[ok]
            # the last (smallest-h) half keeps a gap above tolerance, and it has not shrunk
            half = jj[len(jj) // 2:]
            if np.all(half > tt[len(jj) // 2:]) and half.min() > 0.3 * jj[:len(jj) // 2].max():
                return "kink"
    t = np.asarray(tol, dtype=float)
    ok = np.isfinite(e)
    if ok.sum() < 3:
        return "noise"
    e, t, hs = e[ok], t[ok], np.asarray(hs, dtype=float)[ok]
    le = np.log10(np.maximum(e, 1e-300))
    good = e <= t
    # the longest flat run (neighbours within a factor 2) of points above tolerance
    best_run, best_end, run = 0, -1, 0
    for k in range(len(le)):
        above = not good[k]
        if above and k > 0 and run > 0 and abs(le[k] - le[k - 1]) <= 0.3:
            run += 1
        else:
            run = 1 if above else 0
        if run > best_run:
            best_run, best_end = run, k
    if best_run >= 3:
        level = float(np.median(le[best_end - best_run + 1:best_end + 1]))
        after = le[best_end + 1:]
        if after.size and np.any(good[best_end + 1:] & (after <= level - 1.5)):
            return "kink"  # flat while h is larger than the kink's distance, then a cliff into agreement
        return "bug"
    if good.any():
        if analytic is not None and np.ptp(le) <= 0.5 and float(e.min()) >= 0.25 * abs(float(analytic)):
            return "unresolved"
        g = int(np.argmax(good))
        if g >= 2 and np.ptp(le[:g]) <= 0.7 and le[g - 1] - le[g] >= 1.5:
            return "kink"
        return "correct"
    d = np.diff(le)
    big = d[np.abs(d) > 0.5]
    if big.size >= 2 and np.any(np.sign(big[1:]) != np.sign(big[:-1])):
        return "noise"
    return "bug" if np.ptp(le) <= 1.0 else "noise"


# ---------------------------------------------------------------- patterns
def _rel(x, y):
    ny = float(np.linalg.norm(y))
    return float(np.linalg.norm(x - y)) / ny if ny > 0 else (0.0 if not np.any(x) else math.inf)


def _dims(spec):
    ds = set()
    for leaf in spec.leaves:
        ds.update(int(s) for s in leaf.shape if s > 1)
    return sorted(ds)


def name_factor(c, dims):
    """Readable name of a constant factor a = c * n."""
    if abs(c) < 0.02:
        return "x0", "the analytic gradient is zero where the numeric one is not (a gradient that is never written)"
    for target, label, why in ((-1.0, "x-1", "a sign flip"),
                               (2.0, "x2", "an extra factor 2 (e.g. the derivative of x^2 counted twice)"),
                               (0.5, "x0.5", "a missing factor 2 (e.g. the derivative of x^2 written as x)"),
                               (-2.0, "x-2", "a sign flip and a factor 2"),
                               (-0.5, "x-0.5", "a sign flip and a missing factor 2")):
        if abs(c - target) <= 0.02 * abs(target):
            return label, why
    for m in dims:
        if abs(c - 1.0 / m) <= 0.02 / m:
            return f"x1/{m}", f"an extra division by {m} (a size of the data or of a leaf: averaging twice?)"
        if abs(c - m) <= 0.02 * m:
            return f"x{m}", f"a missing division by {m} (a sum where the loss takes the mean over {m} items?)"
    r = round(c)
    if abs(r) >= 3 and abs(c - r) <= 0.02 * abs(c):
        return f"x{int(r)}", f"a missing division by {abs(int(r))} (a sum where the loss takes the mean over {abs(int(r))} items?)"
    if c != 0 and abs(1 / c) >= 3 and abs(1 / c - round(1 / c)) <= 0.02 * abs(1 / c):
        m = int(round(1 / c))
        return f"x1/{m}", f"an extra division by {abs(m)} (averaging twice?)"
    for m in dims:
        k = c * m
        if 0 < c < 1 and abs(k - round(k)) <= 0.02 and 1 <= round(k) < m:
            return f"x{int(round(k))}/{m}", (f"the gradient of only {int(round(k))} of {m} items (part of the batch "
                                             f"dropped in the backward pass?)")
    c2 = c * c
    for m in range(2, 1025):
        if abs(c2 - m) <= 0.02 * m and abs(c - round(c)) > 0.05:
            return f"x{'-' if c < 0 else ''}sqrt({m})", (f"an extra factor sqrt({m}) (a 1/sqrt(d) scale with d={m} "
                                                      f"applied in the forward pass but not in the backward pass?)")
        if abs(1.0 / c2 - m) <= 0.02 * m and abs(1.0 / c - round(1.0 / c)) > 0.05:
            return f"x{'-' if c < 0 else ''}1/sqrt({m})", f"an extra factor 1/sqrt({m}) (a 1/sqrt(d) scale applied twice?)"
    return f"x{c:.4g}", "a constant factor"


def _leaf_shape(leaf, a, n, x, full, dims):
    """The bug shape that explains the discrepancy a - n best, or None.

    A candidate model M(n) is accepted when it leaves at most 20% of the
    discrepancy unexplained (||a - M|| <= 0.2 ||a - n||) and fits a to FIT
    (||a - M|| <= FIT ||a||); among accepted ones the best fit wins.
    """
    disc = float(np.linalg.norm(a - n))
    na = float(np.linalg.norm(a))
    if disc == 0 or a.size == 0:
        return None
    cands = []

    def offer(model, pat, min_size=1):
        if a.size < min_size:
            return
        r = float(np.linalg.norm(a - model))
        if r <= 0.2 * disc and r <= FIT * max(na, disc):
            cands.append((r, len(cands), pat))

    if a.size >= 3 and float(n @ n) > 0:
        c = float(a @ n) / float(n @ n)
        label, why = name_factor(c, dims)
        offer(c * n, {"pattern": "factor", "factor": c, "label": label, "explanation": why})
    d = a - n
    if a.size >= 3 and float(x @ x) > 0:
        lam = float(d @ x) / float(x @ x)
        word = "an extra" if lam > 0 else "a missing"
        offer(n + lam * x, {"pattern": "missing_term", "lambda": -lam,
                            "label": f"{'+' if lam > 0 else '-'}{abs(lam):.3g}*{leaf.path}",
                            "explanation": f"analytic - numeric = {lam:.3g} x {leaf.path}: {word} term "
                                           f"{abs(lam):.3g}*{leaf.path} (an L2 regularisation "
                                           f"{'counted twice' if lam > 0 else 'left out of the backward pass'}?)"})
    if a.size >= 3:
        off = float(np.mean(d))
        offer(n + off, {"pattern": "offset", "offset": off, "label": f"offset {off:+.3g}",
                        "explanation": "analytic - numeric is the same constant for every entry (a stray additive "
                                       "term)"})
    if full and a.size >= 2:
        N = n.reshape(leaf.shape) if leaf.shape else n
        if N.ndim == 2 and N.shape[0] == N.shape[1]:
            offer(N.T.ravel(), {"pattern": "transposed", "label": "transposed",
                                "explanation": "the analytic gradient is the transpose of the numeric one (a .T "
                                               "missing or extra)"})
        axes_sets = [tuple(range(N.ndim))] + ([(ax,) for ax in range(N.ndim)] if N.ndim > 1 else [])
        for axes in axes_sets:
            offer(np.flip(N, axis=axes).ravel(), {
                "pattern": "flipped", "label": f"flipped along axis {','.join(map(str, axes))}", "axes": list(axes),
                "explanation": "the analytic entries are the numeric ones in reverse order (a kernel flipped: "
                               "convolution vs correlation?)"})
        for ax in range(N.ndim):
            for k in range(1, min(N.shape[ax], 64)):
                offer(np.roll(N, k, axis=ax).ravel(), {
                    "pattern": "rolled", "label": f"rolled by {k} along axis {ax}", "shift": k, "axis": ax,
                    "explanation": f"the analytic entries are the numeric ones shifted by {k} along axis {ax} (an "
                                   f"index off by {k})"})
        if N.ndim > 1:
            for k in range(1, min(n.size, 64)):
                offer(np.roll(n, k), {
                    "pattern": "rolled", "label": f"rolled by {k} (flat order)", "shift": k, "axis": None,
                    "explanation": f"the analytic entries are the numeric ones shifted by {k} positions in flat order "
                                   f"(an index off by {k})"})
        # a permutation: match sorted values (the model puts n's values in a's order)
        model = np.empty_like(n)
        model[np.argsort(a, kind="stable")] = np.sort(n, kind="stable")
        offer(model, {"pattern": "permuted", "label": "permuted",
                      "explanation": "the analytic entries are the numeric ones in a different order (wrong indexing "
                                     "or reshape)"}, min_size=3)
    if not cands:
        return None
    cands.sort(key=lambda t: (t[0], t[1]))
    return cands[0][2]


def leaf_patterns(problem, result):
    """{leaf path: pattern dict} for leaves with failed entries (an inconclusive one blames nothing)."""
    ent = result.entries or {}
    a_all = np.asarray(ent.get("analytic", problem.analytic), dtype=float)
    n_all = np.asarray(ent.get("numeric"), dtype=float)
    verdict = np.asarray(ent.get("verdict"))
    checked = np.asarray(ent.get("checked", np.ones(problem.n, dtype=bool)), dtype=bool)
    usable = checked & np.isfinite(n_all)
    dims = _dims(problem.spec)
    x0 = problem.x0
    out = {}
    bad_leaves = []
    for leaf in problem.spec.leaves:
        sl = leaf.slice
        if not (usable[sl] & (verdict[sl] == FAIL)).any():
            continue
        bad_leaves.append(leaf)
        m = usable[sl]
        a, n, x = a_all[sl][m], n_all[sl][m], x0[sl][m]
        frac = float(np.mean(verdict[sl][m] == FAIL)) if m.any() else 0.0
        # rearrangements (transpose, roll, flip, permutation) move most entries: only look for them
        # when a good part of the leaf disagrees, and in leaves small enough to search cheaply
        structural = bool(m.all()) and frac >= 0.2 and leaf.size <= MAX_SEARCH
        pat = _leaf_shape(leaf, a, n, x, structural, dims)
        if pat is not None:
            pat["n_entries"] = int(a.size)
            out[leaf.path] = pat
    # two leaves of the same shape swapped
    for i, X in enumerate(problem.spec.leaves):
        for Y in problem.spec.leaves[i + 1:]:
            if X.shape != Y.shape or X.size < 2 or X.size > MAX_SEARCH \
                    or not (usable[X.slice].all() and usable[Y.slice].all()):
                continue
            if X not in bad_leaves and Y not in bad_leaves:
                continue
            aX, aY, nX, nY = a_all[X.slice], a_all[Y.slice], n_all[X.slice], n_all[Y.slice]
            if _rel(aX, nY) <= FIT and _rel(aY, nX) <= FIT and _rel(nX, nY) > 4 * FIT:
                pat = {"pattern": "swapped", "label": f"{X.path} <-> {Y.path}", "with": Y.path,
                       "explanation": f"the gradients of {X.path} and {Y.path} are swapped (same shape, returned in "
                                      f"the wrong order or under the wrong key)"}
                pat["n_entries"] = int(X.size)
                out[X.path] = pat
                out[Y.path] = dict(pat, **{"with": X.path})
    return out


# ---------------------------------------------------------------- an analytic side that is a finite difference
def finite_difference_like(problem, result):
    """{"scheme", "step", "relative", "n_entries", "max_rel"} when the analytic side of the failed
    entries looks like a one-sided finite difference of f, else None.

    A forward difference at step h is off by (h/2) f''_ii + O(h^2) in entry i (its roundoff,
    ~eps|f|/h, is far smaller at the steps libraries use), so a - n = c f''_ii with one constant
    c = h/2 across entries (h = c' |x_i| for a step relative to each entry: the model c'|x_i| f''_ii);
    c < 0 is a backward difference.  f''_ii comes from a second difference at the step that
    balances its roundoff (L eps^(1/4)): 2 evaluations per entry, at most FD_ENTRIES entries.  One
    constant must explain all but FD_FIT of the discrepancy of at least FD_MIN_ENTRIES entries whose
    curvature differs (an equal f'' everywhere is a constant offset, which anything explains), and
    every entry must agree to FD_MAX_REL: a gradient off by more is no finite difference."""
    ent = result.entries or {}
    if not (getattr(problem, "sweepable", True) and hasattr(getattr(problem, "ev", None), "at")):
        return None
    numeric = np.asarray(ent.get("numeric"), dtype=float)
    verdict = np.asarray(ent.get("verdict"))
    ratio = np.nan_to_num(np.asarray(ent.get("ratio"), dtype=float), nan=0.0)
    failed = np.flatnonzero((verdict == FAIL) & np.isfinite(numeric))
    if failed.size < FD_MIN_ENTRIES:
        return None
    idx = failed[np.argsort(-ratio[failed], kind="stable")[:FD_ENTRIES]]
    a, n = problem.analytic[idx], numeric[idx]
    d = a - n
    size = np.maximum(np.maximum(np.abs(a), np.abs(n)), problem.grad_scale[idx])
    if not np.all(np.abs(d) <= FD_MAX_REL * size):
        return None
    ev = problem.ev
    f0 = float(np.real(ev.f0))
    eps_eff = float(getattr(problem, "eps_eff", None) or np.finfo(np.float64).eps)
    curv = np.empty(idx.size)
    for k, i in enumerate(idx.tolist()):
        x = float(problem.x0[i])
        dt = ev.buffer_dtype(i)
        H = float(problem.L[i]) * eps_eff ** 0.25
        xp, xm = float(dt.type(x + H)), float(dt.type(x - H))
        hp, hm = xp - x, x - xm
        if not (hp > 0 and hm > 0):
            return None
        fp, fm = float(np.real(ev.at(i, dt.type(xp)))), float(np.real(ev.at(i, dt.type(xm))))
        curv[k] = 2.0 * ((fp - f0) / hp - (f0 - fm) / hm) / (hp + hm)
    if not np.all(np.isfinite(curv)) or np.ptp(curv) <= FD_FIT * float(np.max(np.abs(curv))):
        return None
    best = None
    for relative, model in ((False, curv), (True, np.abs(problem.x0[idx]) * curv)):
        mm = float(model @ model)
        if mm <= 0:
            continue
        c = float(d @ model) / mm
        resid = float(np.linalg.norm(d - c * model)) / float(np.linalg.norm(d))
        if resid <= FD_FIT and (best is None or resid < best[0]):
            best = (resid, relative, c)
    if best is None:
        return None
    _, relative, c = best
    step = 2.0 * abs(c)
    # a step beyond FD_MAX_STEP of the entries' scale is no finite difference anyone ships: a - n
    # proportional to the curvature then says "the gradient at another point", not a quotient
    if not 0 < step <= FD_MAX_STEP * (1.0 if relative else float(np.median(problem.L[idx]))):
        return None
    return {"scheme": "forward" if c > 0 else "backward", "step": step, "relative": relative,
            "n_entries": int(idx.size), "max_rel": float(np.max(np.abs(d) / size))}


#: at least this many failed entries, of which at most FD_ENTRIES are used (2 evaluations each)
FD_MIN_ENTRIES = 3
FD_ENTRIES = 8
#: the model c f''_ii must leave at most this fraction of ||a - n|| unexplained
FD_FIT = 0.1
#: a finite-difference "gradient" agrees with the true one to far better than this (relative)
FD_MAX_REL = 1e-2
#: the largest step (relative to the entries' scale) taken for a finite difference
FD_MAX_STEP = 0.1


# ---------------------------------------------------------------- the report
def _explain(cause, k, problem):
    """One sentence for the check's cause (k: how many entries have it); contains CAUSE_WORDS[cause]."""
    many = f"{k} entr{'y' if k == 1 else 'ies'}" if k else "the gradient's entries"
    if cause == BUG:
        if problem.method == "complex":
            how = "the complex step, which has no cancellation error, differs from the analytic value beyond its tolerance"
        else:
            how = ("the finite differences at successive steps agree with each other and not with the analytic "
                   "value")
        return f"At {many} {how}: {BLAME} there."
    if cause == BUG_AT_KINK:
        return (f"At {many} fun has a kink, and the analytic value lies outside the one-sided derivatives and "
                f"outside what points nudged off params allow: it is not a valid subgradient, so "
                f"{BLAME} at the kink.")
    return {
        KINK: f"{many} sit at or very near a kink of fun (ReLU, abs, max, a tie): the one-sided derivatives differ "
              f"and the analytic value lies between them (a valid subgradient), which finite differences cannot "
              f"judge.",
        SEVERAL_KINKS: f"{many} sit where one move crosses several kinks at once (units exactly at 0, max-pool "
                       f"ties): the analytic value lies outside this point's one-sided derivatives but within what "
                       f"the one-sided derivatives at points nudged off params allow, so it may be a limit of "
                       f"nearby gradients, which finite differences cannot judge.",
        UNDERFLOW: f"fun underflows near params: its values are below the smallest normal number of its dtype, so "
                   f"they are 0 or subnormal and its finite differences cannot resolve {many}.",
        UNRESOLVED: f"The comparison is too coarse to resolve {many}: its tolerance (f's noise at every usable step, "
                    f"or the analytic side's own rounding allowance) is not below the values compared, so even a "
                    f"sign error or a factor 2 would pass.",
        STAIRCASE: f"fun is piecewise constant at this scale (quantised inputs, or a cast to float32 inside): flat "
                   f"stretches hide its slope from small steps and its stairs are noise to larger ones, so "
                   f"{many} cannot be resolved.",
        NONFINITE: f"fun is not finite at the perturbed points of every usable step for {many}.",
        UNSETTLED: f"The finite-difference estimates of {many} did not settle as the step changed (neither "
                   f"converging nor a plateau).",
        SPREAD: "A random-direction probe disagreed with the projection of the analytic gradient, but bisection "
                "found no single entry that disagrees on its own: the discrepancy is spread thinly over many "
                "entries (each below its tolerance), or the probe met a kink along its direction.",
    }[cause]


def _next(cause, code, patterns, fd):
    if fd is not None:
        return (f"Next: compute the gradient exactly (by hand or by autodiff) instead of by {fd['scheme']} "
                f"differences; if an approximation is intended, judge it with a tolerance of its own size "
                f"(e.g. rtol={3 * fd['max_rel']:.1g}).")
    if cause == BUG and patterns:
        return f"Next: check {code} where it computes {next(iter(patterns))!r}, for exactly that."
    return "Next: " + {
        BUG: f"look at {code} for the entries listed above.",
        BUG_AT_KINK: f"check the derivative {code} uses at the kink (the branch taken at a tie or at exactly 0).",
        KINK: "move the test point away from the kink (re-draw params so that no pre-activation, margin or tie "
              "sits exactly at 0: a nonzero bias, inputs without all-zero rows), or accept 'inconclusive' here.",
        UNDERFLOW: "rescale fun (e.g. return a log-likelihood instead of a likelihood) or move params so that its "
                   "values are normal numbers.",
        UNRESOLVED: "try method='complex' for complex-analytic code, a larger eps, or fun in float64.",
        STAIRCASE: "cast data and params consistently (all float32, or all float64), or check a smooth version "
                   "of fun.",
        NONFINITE: "move params away from where fun is not finite, or pass a smaller eps.",
        UNSETTLED: "rerun with method='central4' or another eps.",
        SPREAD: "run mode='full' to see every entry.",
    }[KINK if cause == SEVERAL_KINKS else cause]


def _evidence(cls, cause, e0):
    """What the sweep of the worst entry adds, in words that agree with the verdict's cause."""
    failed = cause in (BUG, BUG_AT_KINK)
    kinky = cause in (KINK, SEVERAL_KINKS, BUG_AT_KINK)
    errs = [p["error"] for p in e0["sweep"]]
    if cls == "bug":
        if kinky:
            return ("it does not shrink with the step, as at a kink at the point itself: the one-sided derivatives "
                    "differ by a jump that no step removes")
        if failed:
            return "it settles on a flat plateau: the finite differences agree with each other, step after step"
        return "it does not shrink with the step (single steps, a simpler error model than the verdict's)"
    if cls == "kink":
        return ("the one-sided differences keep disagreeing as the step shrinks, or the error drops sharply below "
                "some distance: fun has a kink at or very near this point")
    if cls == "noise":
        return "it jumps up and down without a trend: f is noisy at these steps"
    if cls == "unresolved":
        if failed:
            return ("steps scaled by this entry's own size are too small to resolve it; the verdict rests on the "
                    "larger steps its refinement took")
        return "it stays about as large as the entry itself, within each step's tolerance: no step resolves it"
    # "correct": within tolerance at some step
    if failed:
        return ("it comes within one single step's (looser) tolerance, but the refined estimates agree with each "
                "other and not with the analytic value, beyond their tighter tolerance")
    v = len(errs) > 2 and errs[0] >= 10 * min(errs) and errs.index(min(errs)) < len(errs) - 1
    return ("it falls with the step, rises again with roundoff (a V) and comes within the tolerance at the best "
            "step" if v else "it comes within the tolerance at some step")


def _code(problem, kind):
    """The user's code that computed the analytic side, in words."""
    if kind == "gradient":
        by = getattr(problem, "analytic_by", "grad")
        return {"fun": "the gradient your fun returns (grad=True)", "grad": "your grad function",
                "autodiff": "the derivative rules autodiff applies inside fun (a custom backward or custom_vjp, "
                            "or an operation without a derivative there)"}.get(by, by)
    return {"vjp": "your vjp function", "jvp": "your jvp function", "jacobian": "your jac function",
            "hessian": "your hess (or hvp) function", "gradgrad": "your grad function"}.get(kind, f"your {kind} code")


def diagnose(problem, result) -> dict:
    """JSON-safe diagnosis of a non-passing result (see the module docstring)."""
    try:
        return _diagnose(problem, result)
    except Exception as e:  # noqa: BLE001 - a diagnosis must never break the check itself
        return {"kind": "unknown", "summary": f"(no diagnosis: {type(e).__name__}: {e})", "entries": [],
                "pattern": {}}


def _entry_causes(result):
    """Counter of causes over the checked entries that did not pass (causes.entry_cause; an
    inconclusive entry without a reason is unresolved when a sign flip of it would pass too)."""
    ent = result.entries or {}
    verdict = np.asarray(ent.get("verdict"))
    checked = np.asarray(ent.get("checked", np.ones(verdict.size, dtype=bool)), dtype=bool)
    reasons = ent.get("reasons") or {}
    a = np.asarray(ent.get("analytic"), dtype=float)
    n = np.asarray(ent.get("numeric"), dtype=float)
    tol = np.asarray(ent.get("tolerance"), dtype=float)
    out = Counter()
    for i in np.flatnonzero(checked & (verdict != PASS)).tolist():
        name = "fail" if verdict[i] == FAIL else "inconclusive"
        cause = entry_cause(name, reasons.get(i, ""))
        if cause is None:
            cause = UNRESOLVED if abs(-a[i] - n[i]) <= tol[i] else UNSETTLED
        out[cause] += 1
    return out


def _diagnose(problem, result):
    what = {"gradient": "your gradient", "vjp": "your vector-Jacobian product", "jvp": "your Jacobian-vector product",
            "jacobian": "your Jacobian", "hessian": "your Hessian"}.get(result.kind, f"your {result.kind}")
    status = result.status
    bad = [e for e in result.worst if e.verdict != "pass"]
    counts = _entry_causes(result)
    said = message_causes(result.messages)
    worst = entry_cause(bad[0].verdict, bad[0].reason) if bad else None
    cause = decide(status, counts, said, worst)
    if cause == NONDETERMINISTIC:
        msg = next(m for m in result.messages if m.startswith("fun is nondeterministic"))
        return {"kind": NONDETERMINISTIC, "cause": NONDETERMINISTIC, "summary": msg, "entries": [], "pattern": {}}
    entries = _sweeps(problem, result, bad) if cause != SPREAD else []
    patterns = fd = None
    if status == "fail" and (result.entries or {}).get("numeric") is not None:
        fd = finite_difference_like(problem, result) if cause == BUG else None
        # a finite-difference gradient explains the whole discrepancy: no leaf shape besides it
        patterns = {} if fd is not None else leaf_patterns(problem, result)
    patterns = patterns or {}

    n_fail = result.counts.get("fail", 0)
    n_inc = result.counts.get("inconclusive", 0)
    method = {"central": "central differences", "forward": "forward differences", "backward": "backward differences",
              "central4": "5-point differences", "complex": "the complex step"}.get(problem.method, problem.method)
    head = f"Compared {what} (analytic) with {method} of fun (numeric) on {result.n_checked} entries"
    if result.mode == "fast":
        head += " (fast mode: random-direction probes, then the suspected entries one by one)"
    parts = [head + f": {n_fail} disagree" + (f" and {n_inc} could not be judged" if n_inc else "") + "."]
    k = counts.get(cause, 0) or (n_fail if status == "fail" else n_inc)
    parts.append(_explain(cause, k, problem))
    others = [f"{j} entr{'y' if j == 1 else 'ies'} {_SHORT[c]}" for c, j in counts.most_common()
              if c != cause and c in _SHORT]
    if others:
        parts.append(f"Besides, these could not be judged: {'; '.join(others)}.")
    if bad:
        w = bad[0]
        line = (f"The worst is {w.where}: analytic {w.analytic:.6g}, numeric {w.numeric:.6g}, "
                f"{w.ratio:.3g}x the tolerance {w.tolerance:.3g}")
        if w.verdict == "inconclusive":
            line += f", judged inconclusive ({_SHORT.get(entry_cause('inconclusive', w.reason), 'unresolved')})"
        parts.append(line + ".")
    if entries:
        e0 = entries[0]
        errs = [p["error"] for p in e0["sweep"]]
        where = e0["leaf"] + (str(e0["index"]) if e0["index"] else "")
        if errs:
            lo = min(errs)
            course = (f"stays at about {lo:.2g}" if lo >= 0.5 * errs[0] else
                      f"goes from {errs[0]:.2g} to a minimum of {lo:.2g}")
            parts.append(f"Sweeping the step from {e0['sweep'][0]['h']:.1g} down to {e0['sweep'][-1]['h']:.1g} at "
                         f"{where}, |analytic - numeric| {course}: {_evidence(e0['classification'], cause, e0)}.")
    if fd is not None:
        step = f"{fd['step']:.1g}" + (" x |params|" if fd["relative"] else "")
        parts.append(f"{what[0].upper() + what[1:]} looks like a {fd['scheme']} difference with step ~{step}: "
                     f"across the {fd['n_entries']} worst entries, analytic - numeric = "
                     f"{'+' if fd['scheme'] == 'forward' else '-'}(h/2) x f'' (the second derivative along each "
                     f"entry) with that one h, agreement {fd['max_rel']:.1g} relative at worst; a library that "
                     f"approximates the gradient numerically ships exactly this.")
    for path, pat in list(patterns.items())[:3]:
        parts.append(f"Across leaf {path!r} ({pat['n_entries']} entries compared) the pattern is "
                     f"'{pat['label']}': {pat['explanation']}.")
    parts.append(_next(cause, _code(problem, result.kind), patterns, fd))
    out = {"kind": KIND.get(cause, cause), "cause": cause, "summary": " ".join(parts), "entries": entries,
           "pattern": patterns}
    if fd is not None:
        out["finite_difference"] = fd
    return out


#: a few words per cause, for the worst entry of an inconclusive check
_SHORT = {KINK: "at a kink", SEVERAL_KINKS: "where one move crosses several kinks", UNDERFLOW: "where f underflows",
          UNRESOLVED: "too small for the finite differences to resolve", NONFINITE: "where fun is not finite",
          UNSETTLED: "whose estimates did not settle"}


def _sweeps(problem, result, bad):
    """Error-vs-step sweeps of the worst entries that did not pass (evidence for the plot and the text)."""
    if not (getattr(problem, "sweepable", True) and hasattr(getattr(problem, "ev", None), "at")):
        return []
    scheme_name = problem.method if problem.method in SCHEMES else "central"
    sigma = float(getattr(problem, "sigma", 0.0) or 0.0)
    if not sigma:
        eps_f = getattr(problem.ev, "eps_out", None) or float(np.finfo(np.float64).eps)
        sigma = eps_f * abs(float(np.real(problem.ev.f0)))
    entries = []
    for e in bad[:SWEEP_ENTRIES]:
        i = _flat_index(problem.spec, e.leaf, e.index)
        if i is None:
            continue
        pts = sweep_entry(problem, i, scheme_name)
        a = float(problem.analytic[i])
        hs = [h for h, _, _ in pts]
        errs = [abs(a - d) for _, d, _ in pts]
        jumps = [j for _, _, j in pts]
        floor = float(problem.floor[i]) if hasattr(problem, "floor") else 0.0
        tol = [SAFETY * 3.0 * sigma / h + floor for h in hs]
        entries.append({"leaf": e.leaf, "index": [int(k) for k in e.index],
                        "classification": classify(hs, errs, tol, jumps, analytic=a), "analytic": a,
                        "sweep": [{"h": float(h), "error": float(err)} for h, err in zip(hs, errs)
                                  if math.isfinite(err)],
                        "tolerance": [float(t) for t in tol]})
    return entries
