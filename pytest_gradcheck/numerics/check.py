"""check_gradient: analytic gradient vs finite differences, entry by entry or by probes.

Only the public entry point: validate the arguments, prepare the Problem, pick
full or fast mode (``mode="auto"``: fast above fast.AUTO_FULL_MAX parameters)
and return the result.  The verdict rule is verdict.py's; the stages are
full.py (every entry) and fast.py (random probes, then localisation).

Layer: numerics, top of the gradient check (above problem, full, fast).
Imports those and frameworks.registry (``ends_check``); fast is imported lazily
(full mode does not need it).  second_order.py sits above it (it calls
check_gradient); vector.py beside it, on full.py and the pieces below.
"""

from __future__ import annotations

import numpy as np

from ..frameworks.registry import ends_check
from .budget import DEFAULT_TIME_LIMIT, guard_full, time_limit_value, tracking
from .evaluate import own_numerics
from .full import full_check
from .problem import BATCH_MEMORY, Problem, validate
from .result import GradcheckResult
from .stencils import SCHEMES


@ends_check
@own_numerics
def check_gradient(fun, params, grad=None, *, method="central", eps=None, atol=None, rtol=None,
                   mode="auto", seed=0, vectorized=None, batch_memory=BATCH_MEMORY,
                   n_probes=None, time_limit=DEFAULT_TIME_LIMIT) -> GradcheckResult:
    """Compare ``grad(params)`` with finite differences of ``fun`` at ``params``.

    fun(params) returns a scalar; params is an array, a number, or a dict / list /
    tuple of them; grad(params) returns the same structure (``None``: use the
    framework's autodiff, torch or jax; ``True``: fun returns (value, gradient),
    the scipy.optimize.minimize(jac=True) convention).  ``method``: "central" (default),
    "forward", "backward", "central4" (5-point) or "complex" (complex step, for
    complex-analytic code).  ``eps``: first step (absolute); by default one per
    entry from the error model.  ``atol``/``rtol``: switch from the error-model
    rule to |a - n| <= atol + rtol*|n|.  ``mode``: "full" (every entry),
    "fast" (random directions, then localisation) or "auto" (the default: full
    up to 2000 parameters, fast above).  ``vectorized``:
    True when fun (numpy) accepts a leading batch axis on every leaf, so many
    perturbed points go in one call; None lets torch/jax use vmap when it works;
    False evaluates one point per call.  ``n_probes``: random directions of
    fast mode (default 10: any error with one entry above the threshold
    escapes with probability <= 2^-10; a single wrong entry is caught by any
    number of probes; each probe costs 2 evaluations with central differences).
    ``time_limit``: a full check estimated (one timed call x its evaluations) to take
    longer is refused with the numbers (None: no limit); one over 10 s warns
    (SlowCheckWarning), and a long one reports progress (numerics/budget.py).
    Never modifies params; the same inputs and seed give the same result.
    """
    __tracebackhide__ = True
    validate(fun, method, mode, eps, atol, rtol, seed)
    time_limit = time_limit_value(time_limit)
    if n_probes is not None:  # rejected before fun is first called
        from .fast import probe_count
        probe_count(n_probes)
    problem = Problem(fun, params, grad, method, eps, atol, rtol, int(seed),
                      vectorized=vectorized, batch_memory=batch_memory)
    result = None
    if mode != "full":
        from . import fast  # lazily: full mode does not need it
        if mode == "fast" or fast.prefers_fast(problem):
            result = fast.check_fast(problem, n_probes)
    if result is None:
        steps = 1 if method == "complex" else sum(1 for o in SCHEMES[method].offsets if o != 0.0)
        n_entries = problem.n - (0 if problem.held is None else int(problem.held.sum()))
        progress = guard_full(steps * n_entries, problem.ev.call, time_limit, problem.n)
        with tracking(progress):
            result = full_check(problem)
    problem.check_untouched("fun")  # a mutation of fun's data after the first calls voids the result
    _name_ignored_params(problem, result)
    return result


#: points tried, and how far every entry moves there (relative, at least this much absolute)
IGNORE_PROBES, IGNORE_MOVE = 3, 1e-2


def _name_ignored_params(problem, result) -> None:
    """A failed check whose fun returns exactly the same value wherever some leaves of params are
    moved, while the analytic gradient there is not zero, is fun ignoring those leaves (it reads a
    model's own variables or a global instead of the params it is given): say so, instead of
    blaming the analytic values.  Candidates: the leaves whose finite differences are all exactly 0
    (every leaf when the result has no per-entry numbers, as in fast mode)."""
    if result.status != "fail" or problem.n == 0:
        return
    numeric = (result.entries or {}).get("numeric")
    numeric = None if numeric is None else np.nan_to_num(np.asarray(numeric, dtype=float))
    quiet = [leaf for leaf in problem.spec.leaves if leaf.size and np.any(problem.analytic[leaf.slice] != 0)
             and (numeric is None or not np.any(numeric[leaf.slice]))]
    if not quiet:
        return
    move = np.zeros(problem.n, dtype=bool)
    for leaf in quiet:
        move[leaf.slice] = True
    if problem.spec.held is not None:
        move &= ~problem.spec.held
    x0, f0 = problem.x0, problem.ev.f0
    rng = np.random.default_rng(problem.seed)
    for _ in range(IGNORE_PROBES):
        x = x0.copy()
        x[move] += IGNORE_MOVE * rng.standard_normal(int(move.sum())) * np.maximum(np.abs(x0[move]), 1.0)
        if problem.ev.at_vector(x) != f0:
            return
    nz = int(sum(np.count_nonzero(problem.analytic[leaf.slice]) for leaf in quiet))
    size = sum(leaf.size for leaf in quiet)
    every = len(quiet) == len(problem.spec.leaves)
    what = "params" if every else "params leaf " + ", ".join(repr(leaf.path) for leaf in quiet)
    why = (f"fun ignores {what}: it returned exactly {f0!r} at {IGNORE_PROBES} points where every entry x of "
           f"{'params' if every else 'th' + ('ose leaves' if len(quiet) > 1 else 'at leaf')} was moved at random "
           f"by about {IGNORE_MOVE:.0%} of max(|x|, 1), while your gradient is nonzero at {nz} of its {size} entries. "
           f"fun does not read {'the params it is given' if every else 'that part of the params it is given'} (does "
           f"it read a model's own variables, or a global, instead of its argument?); the numeric column is 0 for "
           f"that reason. Next: make fun compute its value from its argument")
    result.diagnosis = dict(result.diagnosis or {}, summary=why, ignores_params=[leaf.path for leaf in quiet])
