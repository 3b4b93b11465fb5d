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

Layer: numerics, middle (imported lazily by assemble.py).  Imports advice, causes, shapes (points 2
and 3 above), stencils and
verdict (``SAFETY``, the same margin the verdict uses); reads a Problem and a
result by their attributes.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from .advice import tries_for_unresolved
from .causes import (BLAME, BUG, BUG_AT_KINK, DISCONTINUITY, KIND, KINK, NONDETERMINISTIC, NONFINITE, SEVERAL_KINKS,
                     SPREAD, STAIRCASE, UNDERFLOW, UNRESOLVED, UNSETTLED, decide, entry_cause, message_causes)
from .shapes import TINY_REL, finite_difference_like, leaf_patterns, name_factor  # noqa: F401 (name_factor: API)
from .stencils import SCHEMES
from .verdict import FAIL, PASS, SAFETY

SWEEP_ENTRIES = 2
DECADES = tuple(range(1, 11))


# ---------------------------------------------------------------- sweeps
def _flat_index(spec, leaf_path, index):
    for leaf in spec.leaves:
        if leaf.path == leaf_path:
            named = getattr(leaf.adapter, "entry_index", None)
            if named is not None and named(leaf.original, 0) is not None:
                # entries named by coordinates (a sparse leaf's stored values): find the one so named
                return next((leaf.offset + j for j in range(leaf.size)
                             if tuple(named(leaf.original, j)) == tuple(index)), None)
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
        STAIRCASE: f"fun is piecewise constant at this scale (rounded or quantised values, or a cast to a lower "
                   f"precision inside fun): flat "
                   f"stretches hide its slope from small steps and its stairs are noise to larger ones, so "
                   f"{many} cannot be resolved.",
        NONFINITE: f"fun is not finite at the perturbed points of every usable step for {many}.",
        DISCONTINUITY: f"fun jumps at {many} (a step function, a branch switch): the one-sided differences grow "
                       f"like 1/step, so no derivative exists there for finite differences to judge.",
        UNSETTLED: f"The finite-difference estimates of {many} did not settle as the step changed (neither "
                   f"converging nor a plateau).",
        SPREAD: "A random-direction probe disagreed with the projection of the analytic gradient, but bisection "
                "found no single entry that disagrees on its own: the discrepancy is spread thinly over many "
                "entries (each below its tolerance), or the probe met a kink along its direction.",
    }[cause]


def _names(items):
    items = [repr(x) for x in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _wrong_leaves(problem, result):
    """The paths of the leaves with failed entries, in params' order."""
    verdict = np.asarray((result.entries or {}).get("verdict"))
    if verdict.ndim != 1 or verdict.size != problem.n:
        return [e.leaf for e in result.worst if e.verdict == "fail"][:1]
    return [leaf.path for leaf in problem.spec.leaves if (verdict[leaf.slice] == FAIL).any()]


def _tiny_discrepancy(result):
    """(min, max) of |a - n| / max(|a|, |n|) over the failed entries when all are below TINY_REL, else None."""
    ent = result.entries or {}
    verdict = np.asarray(ent.get("verdict"))
    a = np.asarray(ent.get("analytic"), dtype=float)
    n = np.asarray(ent.get("numeric"), dtype=float)
    if verdict.ndim != 1 or a.shape != verdict.shape or n.shape != verdict.shape:
        return None
    failed = np.flatnonzero(verdict == FAIL)
    if not failed.size:
        return None
    a, n = a[failed], n[failed]
    size = np.maximum(np.abs(a), np.abs(n))
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(n)) and np.all(size > 0)):
        return None
    rel = np.abs(a - n) / size
    hi = float(rel.max())
    return (float(rel.min()), hi) if hi < TINY_REL else None


def _floor_rtol(rel):
    """A round rtol a few times above a relative discrepancy rel (1e-9 -> 1e-08, 3e-9 -> 1e-08)."""
    return f"{10.0 ** math.ceil(math.log10(3.0 * rel)):.0e}"


def _next(cause, code, patterns, fd, problem, wrong=(), mode="full", tiny=None):
    if fd is not None:
        return (f"Next: compute the gradient exactly (by hand or by autodiff) instead of by {fd['scheme']} "
                f"differences; if an approximation is intended, judge it with a tolerance of its own size "
                f"(e.g. rtol={3 * fd['max_rel']:.1g}).")
    if tiny is not None:
        return (f"Next: look for a term in fun that {code} leaves out (an epsilon guard, a tiny regulariser); if it "
                f"is intended, pass rtol={_floor_rtol(tiny[1])} to this check.")
    # every wrong leaf, not the first: a fix of one of two wrong leaves leaves the test failing
    wrong = list(wrong) or list(patterns)
    if cause == BUG and patterns:
        if set(wrong) <= set(patterns):
            return (f"Next: check {code} where it computes {_names(wrong)}, for exactly "
                    f"{'that' if len(wrong) == 1 else 'those patterns'}.")
        return (f"Next: check {code} where it computes {_names(wrong)} (for {_names(list(patterns))}, exactly the "
                f"pattern above).")
    if cause == BUG and len(wrong) > 1:
        return f"Next: look at {code} where it computes {_names(wrong)}, for the entries listed above."
    return "Next: " + {
        BUG: f"look at {code} for the entries listed above.",
        BUG_AT_KINK: f"check the derivative {code} uses at the kink (the branch taken at a tie or at exactly 0).",
        KINK: "move the test point away from the kink (re-draw params so that no pre-activation, margin or tie "
              "sits exactly at 0: a nonzero bias, inputs without all-zero rows), or accept 'inconclusive' here.",
        UNDERFLOW: "rescale fun (e.g. return a log-likelihood instead of a likelihood) or move params so that its "
                   "values are normal numbers.",
        UNRESOLVED: f"try {tries_for_unresolved(problem)}.",
        STAIRCASE: ("if fun casts to a lower precision inside, cast data and params consistently; if it rounds "
                    "on purpose, check a smooth version of fun."),
        NONFINITE: "move params away from where fun is not finite, or pass a smaller eps.",
        UNSETTLED: ("rerun with another eps." if problem.method == "central4" else
                    "rerun with method='central4' or another eps."),
        DISCONTINUITY: "check the derivative on each side of the jump, at points off it.",
        SPREAD: ("run mode='full' to see every entry." if mode != "full" else
                 "check the entries listed above one at a time with a smaller problem."),
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
    if cls == "kink" and cause == DISCONTINUITY:
        return "the one-sided differences grow as the step shrinks: fun jumps at this point"
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
    tiny = _tiny_discrepancy(result) if cause == BUG else None
    if tiny is not None:
        lo, hi = tiny
        size = f"~{hi:.1g}" if lo >= 0.5 * hi else f"{lo:.1g} to {hi:.1g}"
        parts.append(f"The discrepancy is tiny: in every failed entry analytic and numeric differ by {size} relative, "
                     f"smaller than any wrong constant or index makes; it is what a term in fun that grad ignores "
                     f"gives, such as an epsilon guard (log(p + 1e-10) differentiated as log(p)). The check "
                     f"resolves differences down to f's roundoff; if one of this size is irrelevant to your test, "
                     f"set a relevance floor with rtol={_floor_rtol(hi)} (and atol for entries near 0): see "
                     f"docs/verdict.md, 'A relevance floor'.")
    for path, pat in list(patterns.items())[:3]:
        parts.append(f"Across leaf {path!r} ({pat['n_entries']} entries compared) the pattern is "
                     f"'{pat['label']}': {pat['explanation']}.")
    parts.append(_next(cause, _code(problem, result.kind), patterns, fd, problem,
                       _wrong_leaves(problem, result) if status == "fail" else (), result.mode, tiny))
    out = {"kind": KIND.get(cause, cause), "cause": cause, "summary": " ".join(parts), "entries": entries,
           "pattern": patterns}
    if fd is not None:
        out["finite_difference"] = fd
    return out


#: a few words per cause, for the worst entry of an inconclusive check
_SHORT = {KINK: "at a kink", SEVERAL_KINKS: "where one move crosses several kinks", UNDERFLOW: "where f underflows",
          UNRESOLVED: "too small for the finite differences to resolve", NONFINITE: "where fun is not finite",
          UNSETTLED: "whose estimates did not settle", DISCONTINUITY: "where fun jumps"}


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
