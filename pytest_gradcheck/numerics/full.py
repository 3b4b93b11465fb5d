"""Full mode: every entry checked, one step each, refined where it does not agree at once.

``full_check`` repeats f and grad at params (nondeterminism fails the check),
then runs entries.entry_estimates on all entries (or the complex step, checked
for analyticity first) and assembles the result.

Layer: numerics, upper (above problem, entries, assemble, verdict).  Imports
those, errors, result and stencils; never fast or the public checks.
"""

from __future__ import annotations

import numpy as np

from ..errors import GradcheckInputError
from .assemble import assemble, nondeterministic_result
from .entries import entry_estimates
from .problem import Problem
from .result import GradcheckResult
from .stencils import COMPLEX_STEP
from .verdict import FAIL, PASS, SAFETY, Judge

def full_check(problem: Problem) -> GradcheckResult:
    """Check every entry; refine only those that do not agree at the first step."""
    judge = Judge(problem)
    base_msgs = problem.check_base()
    if any(m.startswith("fun is nondeterministic") for m in base_msgs):
        return nondeterministic_result(problem, judge, base_msgs)
    problem.messages.extend(base_msgs)
    if problem.method == "complex":
        D, err = _complex_step(problem)
        with np.errstate(invalid="ignore"):  # NaN at entries held fixed
            verdict = np.where(np.abs(problem.analytic - D) <= judge.tol_vec(D, err), PASS, FAIL).astype(np.int8)
        est = (D, err, verdict, {})
    else:
        est = _finite_differences(problem, judge)
    checked = None if problem.held is None else ~problem.held
    where = problem.ev.modified_leaf()
    if where:
        raise GradcheckInputError(f"fun modified its input in place (leaf {where!r}); it must not change params")
    return assemble(problem, judge, *est, mode="full", checked=checked)


def _finite_differences(problem: Problem, judge: Judge):
    """Every entry but those held fixed: see entry_estimates."""
    idx = np.arange(problem.n) if problem.held is None else np.flatnonzero(~problem.held)
    return entry_estimates(problem, judge, idx)


def _complex_step(problem: Problem):
    """Im f(x + i h e_i)/h: no cancellation, error ~ eps*|f'|. Checked for analyticity first."""
    ev = problem.ev
    n = problem.n
    eps_f = ev.eps_out or float(np.finfo(np.float64).eps)
    h = COMPLEX_STEP * problem.L
    D = np.full(n, np.nan)
    for i in (range(n) if problem.held is None else np.flatnonzero(~problem.held)):
        v = ev.at(i, problem.x0[i] + 1j * h[i])
        if not isinstance(v, complex):
            raise GradcheckInputError("method='complex' needs complex-analytic code, but fun returned a real value "
                                      "for complex input")
        D[i] = v.imag / h[i]
    _check_analytic(problem, D)
    scale = np.empty(n)
    for leaf in problem.spec.leaves:
        d = D[leaf.slice]
        d = d[np.isfinite(d)]
        scale[leaf.slice] = float(np.sqrt(np.mean(d * d))) if d.size else 0.0
    err = 16.0 * eps_f * (np.abs(D) + scale)
    return D, err


def _check_analytic(problem, D):
    """A random directional derivative by complex step must match real central differences."""
    ev = problem.ev
    D = np.where(np.isfinite(D), D, 0.0)  # NaN at entries held fixed, which the direction does not move
    u = problem.rng.choice([-1.0, 1.0], size=problem.n) * problem.L
    sigma = float(np.finfo(np.float64).eps) * abs(ev.f0)
    ests = []
    for step in (1e-4, 2.5e-5):
        fp = ev.at_vector(problem.x0 + step * u).real
        fm = ev.at_vector(problem.x0 - step * u).real
        ests.append((fp - fm) / (2 * step))
    rich = ests[1] + (ests[1] - ests[0]) / 15.0
    err = abs(ests[1] - ests[0]) + 3 * sigma / 2.5e-5 * 10
    cs = float(np.dot(u, D))
    scale = float(np.dot(np.abs(u), np.abs(D)))
    if abs(cs - rich) > SAFETY * err + 1e-6 * scale:
        raise GradcheckInputError(
            f"method='complex' needs complex-analytic code: along a random direction the complex step gives "
            f"{cs:.6g} but real central differences give {rich:.6g}. fun probably uses abs, max, comparisons, "
            f"conj or .real on the perturbed values; use method='central'")
