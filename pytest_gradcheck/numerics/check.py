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
    return result
