"""Per-entry arrays -> GradcheckResult: counts, worst entries, leaf summaries, histogram.

Every checker (full, fast, vector, Hessian) ends here; a result that is not a
pass gets its diagnosis (diagnose.py, imported lazily).  Also the result of a
nondeterministic function, which no finite difference can check.

Layer: numerics, middle (above result, pytree, verdict, problem).  Imports those and,
lazily, diagnose; problem (for Problem).
"""

from __future__ import annotations

import time

import numpy as np

from ..pytree import unravel
from .problem import Problem
from .result import EntryReport, GradcheckResult, LeafSummary, MAX_WORST, ratio_grid, ratio_histogram
from .verdict import FAIL, INCONCLUSIVE, PASS, SAFETY, VERDICT_NAMES, Judge, typical_magnitude, unresolved_passes

_BIG = np.finfo(np.float64).max


def _no_nan(r, nan, posinf=_BIG):
    """np.nan_to_num(r, nan=nan, posinf=posinf) for float64 ratios, without its dtype inspection
    (three calls were ~5% of a small check's own time)."""
    return np.where(np.isnan(r), nan, np.minimum(np.maximum(r, -_BIG), posinf))


def _counts(v):
    """Entries per verdict (count_nonzero: a third of the cost of a boolean .sum() on small arrays)."""
    return {"pass": int(np.count_nonzero(v == PASS)), "fail": int(np.count_nonzero(v == FAIL)),
            "inconclusive": int(np.count_nonzero(v == INCONCLUSIVE))}


def assemble(problem: Problem, judge: Judge, numeric, err, verdict, reasons, *, mode, status=None,
             checked=None) -> GradcheckResult:
    """Per-entry arrays -> GradcheckResult (worst entries, leaf summaries, histogram)."""
    a = problem.analytic
    n = problem.n
    checked = np.ones(n, dtype=bool) if checked is None else checked
    ci = np.flatnonzero(checked)  # fast mode checks few entries: work on those, not on all n
    # per-entry numbers of the checked entries; tolerance and ratio are reported for every entry
    # (NaN where unchecked: numeric is NaN there), differences only over the checked ones
    sub = None if ci.size == n else ci
    with np.errstate(invalid="ignore", divide="ignore"):
        a_c = a if sub is None else a[sub]
        n_c = numeric if sub is None else numeric[sub]
        t_c = judge.tol_vec(n_c, err if sub is None else err[sub], sub)
        d_c = np.abs(a_c - n_c)
        r_c = np.where(t_c > 0, d_c / t_c, np.where(d_c == 0, 0.0, np.inf))
        denom = np.maximum(np.maximum(np.abs(a_c), np.abs(n_c)), problem.grad_scale if sub is None else problem.grad_scale[sub])
        e_c = np.where(denom > 0, d_c / denom, 0.0)
    if not judge.explicit:
        _unresolved_to_inconclusive(problem, ci, a_c, n_c, t_c, err, verdict, reasons)
    else:
        _unmeasured_failures(ci, d_c, err, verdict, reasons)
    if sub is None:
        tol, ratio = t_c, r_c
    else:
        tol, ratio = np.full(n, np.nan), np.full(n, np.nan)
        tol[sub], ratio[sub] = t_c, r_c
    m_c = np.isfinite(d_c)  # over the checked entries (ci)
    cv = verdict[ci]
    counts = _counts(cv)
    if status is None:
        status = "fail" if counts["fail"] else ("inconclusive" if counts["inconclusive"] else "pass")
    # worst first: failures, then inconclusive, then passes; within each, by ratio
    order_key = np.where(cv == FAIL, 2.0, np.where(cv == INCONCLUSIVE, 1.0, 0.0))
    r = _no_nan(r_c, -1.0, 1e308)
    idx = ci[np.lexsort((-r, -order_key))[:MAX_WORST]]
    worst = []
    for i in idx:
        path, index = unravel(problem.spec, int(i))
        worst.append(EntryReport(path, index, float(a[i]), float(numeric[i]), float(err[i]), float(tol[i]),
                                 VERDICT_NAMES[int(verdict[i])], reasons.get(int(i), "")))
    leaves = []
    gdt = getattr(problem, "grad_dtypes", None) or [None] * len(problem.spec.leaves)
    bounds = np.searchsorted(ci, [leaf.offset for leaf in problem.spec.leaves] + [n])
    for k, leaf in enumerate(problem.spec.leaves):
        lo, hi = bounds[k], bounds[k + 1]  # the checked entries of this leaf: ci[lo:hi]
        if leaf.size and lo == hi:
            leaves.append(LeafSummary(leaf.path, leaf.shape, leaf.dtype_name, 0.0,
                                      {"pass": 0, "fail": 0, "inconclusive": 0}, None, gdt[k]))
            continue
        v = cv[lo:hi]
        lr = _no_nan(r_c[lo:hi], 0.0)
        leaves.append(LeafSummary(leaf.path, leaf.shape, leaf.dtype_name,
                                  float(lr.max()) if lr.size else 0.0,
                                  _counts(v),
                                  ratio_grid(lr, leaf.shape) if hi - lo == leaf.size else None, gdt[k]))
    res = GradcheckResult(
        status=status, kind=problem.kind, mode=mode, method=problem.method, seed=problem.seed,
        n_params=n, n_checked=int(checked.sum()), n_evals=problem.ev.n_evals,
        n_held=int(held.sum()) if (held := getattr(problem, "held", None)) is not None else 0,
        max_abs_error=float(d_c[m_c].max()) if m_c.any() else 0.0,
        max_rel_error=float(e_c[m_c].max()) if m_c.any() else 0.0,
        max_ratio=float(_no_nan(r_c[m_c], 0.0).max()) if m_c.any() else 0.0,
        tolerance=judge.describe(), counts=counts,
        histogram=ratio_histogram(r_c[m_c]), worst=worst, leaves=leaves,
        messages=list(problem.messages), duration_s=time.perf_counter() - problem.t0,
        entries={"analytic": a, "numeric": numeric, "error_estimate": err, "tolerance": tol,
                 "ratio": ratio, "verdict": verdict, "checked": checked, "reasons": reasons},
    )
    if res.status != "pass":
        try:
            from .diagnose import diagnose  # lazily; present once diagnosis is built
        except ImportError:
            diagnose = None
        if diagnose is not None and res.diagnosis is None:
            res.diagnosis = diagnose(problem, res)
    return res


def _unresolved_to_inconclusive(problem, ci, a_c, n_c, t_c, err, verdict, reasons):
    """Passes whose tolerance is not below the values compared (verdict.unresolved_passes) become
    inconclusive, with the numbers that make them so, in every mode and kind: a sign flip or a
    factor 2 of such an entry would have passed as well (issue 20 A.2, issue 24 item 2)."""
    passing = verdict[ci] == PASS
    if not passing.any():
        return
    gs = problem.grad_scale[ci] if np.ndim(problem.grad_scale) else problem.grad_scale
    scale = np.maximum(gs, typical_magnitude(problem.analytic))
    eps_a = getattr(problem, "eps_a", 2.0**-52)
    eps_c = eps_a[ci] if np.ndim(eps_a) and np.size(eps_a) == problem.n else eps_a
    bad = passing & unresolved_passes(a_c, n_c, t_c, scale, eps_c, problem.floor[ci], err[ci])
    if not bad.any():
        return
    sigma = getattr(problem, "sigma", None)
    for c in np.flatnonzero(bad):
        i = int(ci[c])
        verdict[i] = INCONCLUSIVE
        fl, fd = float(problem.floor[i]), SAFETY * float(err[i])
        why = (f"the analytic side's own rounding allowance {fl:.2g} (its dtype's precision and the measured "
               f"noise of the gradient) sets it" if fl >= fd else
               f"the finite differences' error {fd:.2g} sets it" + (f" (f's noise is {sigma:.2g})" if sigma else ""))
        reasons[i] = (f"unresolved: the tolerance {t_c[c]:.3g} is not below the values compared (analytic "
                      f"{a_c[c]:.4g}, numeric {n_c[c]:.4g}) nor below a tenth of the gradient's typical size "
                      f"{scale[c]:.3g}, so a sign flip or a factor 2 of this entry would pass too; {why}")


def _unmeasured_failures(ci, d_c, err, verdict, reasons):
    """With explicit atol/rtol a failure still needs finite differences that resolve the difference:
    |a - n| above SAFETY times the estimate's own error.  sqrt at [1e-300, 1.0] has a derivative
    of 5e149 that no usable step resolves (f = 1 + 1e-150 rounds to 1): the estimate 0 with an error
    of 1e285 shows no bug, whatever the user's tolerance (issue 24 item 1)."""
    failing = verdict[ci] == FAIL
    if not failing.any():
        return
    with np.errstate(invalid="ignore"):
        bound = SAFETY * err[ci]
        weak = failing & ~(d_c > bound)
    for c in np.flatnonzero(weak):
        i = int(ci[c])
        verdict[i] = INCONCLUSIVE
        reasons[i] = (f"unresolved: |analytic - numeric| = {d_c[c]:.3g} exceeds atol + rtol*|numeric| but not "
                      f"the finite differences' own error bound {bound[c]:.3g} ({SAFETY:g} x their error "
                      f"estimate): no usable step resolves this entry, so the difference shows no bug")


def nondeterministic_result(problem, judge, msgs):
    """A failure without a judged entry: fun gave two values at the same point.  The messages come
    first, where the diagnosis reads them (its cause is causes.NONDETERMINISTIC; no sweep is run)."""
    n = problem.n
    verdict = np.full(n, INCONCLUSIVE, dtype=np.int8)
    nan = np.full(n, np.nan)
    problem.messages[:0] = msgs
    return assemble(problem, judge, nan, nan, verdict, {}, mode="full", status="fail")
