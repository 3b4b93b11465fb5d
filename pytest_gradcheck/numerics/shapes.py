"""Bug shapes across a leaf, and an analytic side that is itself a finite difference.

Read by the diagnosis (diagnose.py's docstring, points 2 and 3, says what each shape means):
``leaf_patterns`` fits the analytic vector a of each leaf with failed entries against models of the
numeric vector n (a constant factor, a missing L2 term, an offset, a transpose, a roll, a flip, a
permutation, two leaves swapped); ``finite_difference_like`` asks whether a - n is (h/2) f'' for one
step h, as a library that ships a forward difference gives.  Every fit is done on vectors divided by
their largest entry, so values near 1e300 fit as well as values near 1.

Layer: numerics, below the diagnosis.  Imports verdict (FAIL); reads a Problem and a result by
their attributes.
"""

from __future__ import annotations

import math

import numpy as np

from .verdict import FAIL

#: relative residual below which a leaf-level bug shape is accepted
FIT = 0.05
#: leaves larger than this are not searched for rearranged entries
MAX_SEARCH = 1 << 16


# ---------------------------------------------------------------- patterns
def _unit(*vs):
    """The largest magnitude among vs (1 when all are 0 or not finite): products and norms are taken of
    vectors divided by it, because entries near 1e300 (a loss scaled by 1e300, log(p) at p ~ 1e-300)
    overflow a dot product to inf and turn every fitted constant into inf/inf = NaN."""
    m = max((float(np.max(np.abs(v))) for v in vs if np.size(v)), default=0.0)
    return m if 0 < m < math.inf else 1.0


def _rel(x, y):
    s = _unit(x, y)
    x, y = np.asarray(x) / s, np.asarray(y) / s
    ny = float(np.linalg.norm(y))
    return float(np.linalg.norm(x - y)) / ny if ny > 0 else (0.0 if not np.any(x) else math.inf)


def _dims(spec):
    ds = set()
    for leaf in spec.leaves:
        ds.update(int(s) for s in leaf.shape if s > 1)
    return sorted(ds)


def name_factor(c, dims):
    """Readable name of a constant factor a = c * n."""
    if abs(c - 1.0) < TINY_REL:
        return (f"x(1{c - 1.0:+.1g})", f"a uniform relative discrepancy of ~{abs(c - 1.0):.1g} (analytic = numeric x "
                f"(1{c - 1.0:+.1g})): a term in fun that grad ignores (an epsilon guard such as log(p + 1e-10) or "
                f"sqrt(x + eps)?)")
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
    if a.size == 0:
        return None
    # fit on rescaled vectors (see _unit); s and sx turn the fitted lam and offset back into the user's units
    s, sx = _unit(a, n), _unit(x)
    a, n, x = a / s, n / s, x / sx
    disc = float(np.linalg.norm(a - n))
    na = float(np.linalg.norm(a))
    if disc == 0:
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
        lam = float(d @ x) / float(x @ x) * s / sx
        word = "an extra" if lam > 0 else "a missing"
        offer(n + lam * sx / s * x, {"pattern": "missing_term", "lambda": -lam,
                            "label": f"{'+' if lam > 0 else '-'}{abs(lam):.3g}*{leaf.path}",
                            "explanation": f"analytic - numeric = {lam:.3g} x {leaf.path}: {word} term "
                                           f"{abs(lam):.3g}*{leaf.path} (an L2 regularisation "
                                           f"{'counted twice' if lam > 0 else 'left out of the backward pass'}?)"})
    if a.size >= 3:
        off = float(np.mean(d)) * s
        offer(n + off / s, {"pattern": "offset", "offset": off, "label": f"offset {off:+.3g}",
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
    # in units of the largest value (see _unit); the curvature below too, so the fitted step needs no conversion
    unit = _unit(a, n)
    a, n = a / unit, n / unit
    d = a - n
    size = np.maximum(np.maximum(np.abs(a), np.abs(n)), problem.grad_scale[idx] / unit)
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
        curv[k] = 2.0 * ((fp - f0) / hp - (f0 - fm) / hm) / (hp + hm) / unit
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
    resid, relative, c = best
    # a constant factor that explains a - n as well is the simpler cause (grad 1.01x of -1/p is also "a
    # backward difference with a 2% relative step" of log p, where |x| f'' is proportional to f')
    if float(n @ n) > 0:
        cf = float(d @ n) / float(n @ n)
        if float(np.linalg.norm(d - cf * n)) <= max(resid, FD_FIT) * float(np.linalg.norm(d)):
            return None
    step = 2.0 * abs(c)  # d and the model are both in units of `unit`: c is a step in params' units
    # a quotient computed at step h carries f's roundoff, ~eps |f| / h in every entry, around the model;
    # an analytic side far cleaner than that is no finite difference but an exact derivative of a
    # slightly different f: log(p + e) differentiated as log(p) is off by -e f'' exactly, "a backward
    # difference with step 2e" that no library can take (its roundoff would be 1e6 times larger)
    h_i = step * (np.abs(problem.x0[idx]) if relative else 1.0)
    roundoff = float(np.finfo(np.float64).eps) * abs(f0) / np.maximum(h_i, 1e-300) / unit
    seen = resid * float(np.linalg.norm(d)) / math.sqrt(idx.size)
    if seen < FD_CLEAN * float(np.median(roundoff)):
        return None
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
#: a finite difference's scatter around its model is at least this fraction of its roundoff eps|f|/h
FD_CLEAN = 1e-2
#: failed entries whose |a - n| is below this fraction of |n| everywhere: a discrepancy no constant or
#: indexing mistake in code makes (those are 1e-3 and up), but a tiny term in fun that grad ignores does
TINY_REL = 1e-6
