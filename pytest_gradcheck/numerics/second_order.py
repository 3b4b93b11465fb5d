"""Second order: check a Hessian, a Hessian-vector product, or a gradient's own derivative.

check_hessian(fun, params, hess=None, hvp=None, grad=None)
    Exactly one of ``hess`` (``hess(params)`` -> (n, n) array in the flat
    order of params: leaves in tree order, each row-major) or ``hvp``
    (``hvp(params, v)`` -> H v in the structure of params) is checked.

    * with ``grad`` (the gradient of fun, trusted or checked separately): the
      Hessian is the Jacobian of grad, so ``hess`` is checked entry by entry
      with check_jacobian(grad, params, hess) (result leaves "dgrad[..]/d.."),
      and ``hvp`` with check_jvp(grad, params, hvp) (H v = the derivative of
      grad along v; tangents are random signs times the entries' scales).
    * without ``grad``, from fun alone: H v is the gradient of
      psi_v(x) = d/dt f(x + t v) at t = 0, and psi_v is computed by a 5-point
      difference of f along v (step eps^(1/5) in units of the entries' scales:
      truncation ~h^4 f^(5), about 1e-13 relative, far below the noise that
      the difference amplifies).  check_gradient's machinery then compares
      the gradient of psi_v, by finite differences, with hvp(params, v) (or
      hess(params) @ v), with the noise of psi_v measured like any other
      function's.  ``n_probes`` random +-1 directions v (default 2): a single
      wrong Hessian entry H[r, j] shows in (H v)_r as exactly +-delta*v_j.

check_gradgrad(fun, params, grad, hvp=None)
    torch's gradgradcheck checks second derivatives computed by
    differentiating the backward pass.  For hand-written numpy code the
    corresponding question is whether ``grad`` is consistent to second
    order: (1) grad matches finite differences of fun (check_gradient);
    (2) grad is a gradient field: its Jacobian, by finite differences of grad,
    is symmetric (a Hessian), entry by entry, |J_rj - J_jr| within the error
    model of the two estimates (Richardson-refined central differences of
    grad: 4 calls of grad per input entry); (3) if ``hvp`` is given, it
    matches finite differences of grad (check_hessian with grad).  The worst
    of these is returned (kind "gradgrad"), and its ``n_evals`` counts calls
    of fun and of grad together.  (2) catches, for example, the gradient of
    x^T A x written as 2 A x for an unsymmetric A, without fun at all.

Layer: numerics, top.  Imports errors, pytree, frameworks (``ends_check``,
``scalar_of``) and the numerics below it, check.py and vector.py included;
nothing of numerics/ imports it.
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import GradcheckInputError
from ..frameworks.registry import ends_check
from .evaluate import own_numerics
from ..pytree import TreeSpec, build
from .assemble import assemble
from .check import check_gradient
from .full import full_check
from .problem import Problem, call_user, validate
from .result import GradcheckResult
from .stencils import SCHEMES
from .steps import entry_scales
from .trees import flatten
from .vector import (VecEval, VecProblem, check_jacobian, check_jvp, combine_worst, out_path, result_leaf,
                     scales_and_noise)
from .verdict import FAIL, PASS, Judge

N_PROBES = 2
#: the symmetry check of check_gradgrad builds the n x n Jacobian of grad up to this n
SYMMETRY_MAX = 2000


def _as_tree(spec, vec):
    def make(k, leaf):
        buf = np.array(vec[leaf.slice], dtype=np.float64).reshape(leaf.shape)
        return leaf.adapter.leaf_from_buffer(buf, leaf.original)
    return build(spec, make)


@ends_check
@own_numerics
def check_hessian(fun, params, hess=None, hvp=None, grad=None, *, method="central", eps=None, atol=None, rtol=None,
                  mode="full", seed=0, n_probes=N_PROBES) -> GradcheckResult:
    """Check an explicit Hessian or a Hessian-vector product; see the module docstring."""
    __tracebackhide__ = True
    if (hess is None) == (hvp is None):
        raise GradcheckInputError("check_hessian needs exactly one of hess=(params -> (n, n) array) or "
                                  "hvp=(params, v -> H v)")
    for name, f in (("hess", hess), ("hvp", hvp), ("grad", grad)):
        if f is not None and not callable(f):
            raise GradcheckInputError(f"{name} must be callable; got {type(f).__name__}")
    if isinstance(n_probes, bool) or not isinstance(n_probes, (int, np.integer)) or n_probes < 1:
        raise GradcheckInputError(f"n_probes must be a positive integer; got {n_probes!r}")
    validate(fun, method, mode, eps, atol, rtol, seed)
    if method == "complex":
        raise GradcheckInputError("method='complex' is not available for Hessians; use 'central' or 'central4'")
    x0, spec = flatten(params)
    n = spec.size

    def hess_matrix(p):
        # read through the adapters (a torch tensor that requires grad, bfloat16, jax) and kept in its
        # own dtype: check_jacobian judges a float32 Hessian by float32's rounding, not float64's
        raw = call_user(hess, p, what="hess")
        H, hspec = flatten(raw, name="hess")
        if H.size != n * n:
            shape = hspec.leaves[0].shape if len(hspec.leaves) == 1 else (H.size,)
            raise GradcheckInputError(f"hess returned an array of shape {shape}; expected ({n}, {n}) in the flat "
                                      f"order of params")
        dt = hspec.leaves[0].dtype if len(hspec.leaves) == 1 else np.dtype(np.float64)
        return H.astype(dt).reshape(n, n)

    if grad is not None:
        if hess is not None:
            res = check_jacobian(grad, params, hess_matrix, method=method, eps=eps, atol=atol, rtol=rtol, mode=mode,
                                 seed=seed, n_cotangents=n_probes, _kind="hessian", _out="grad")
            H = hess_matrix(params)
            asym = float(np.max(np.abs(H - H.T))) if H.size else 0.0
            scale = float(np.max(np.abs(H))) if H.size else 0.0
            if asym > 1e-8 * scale:
                res.messages.append(f"hess(params) is not symmetric: max |H - H^T| = {asym:.3g} (max |H| = "
                                    f"{scale:.3g}); a Hessian of a twice continuously differentiable fun is")
            return res
        return check_jvp(grad, params, hvp, method=method, eps=eps, atol=atol, rtol=rtol, seed=seed,
                         n_tangents=n_probes, _kind="hessian", _out="grad")

    # from fun alone: gradient of psi_v(x) = 5-point difference of f along v
    rng = np.random.default_rng([int(seed), 0x4E55])
    L = entry_scales(x0, spec)[0]  # each entry's own size, as in check_gradient
    s4 = SCHEMES["central4"]
    results = []
    for k in range(int(n_probes)):
        v = rng.choice([-1.0, 1.0], size=n) * L
        vt = _as_tree(spec, v)
        h = float(np.finfo(np.float64).eps) ** 0.2

        def psi(p, v=v, h=h):
            xv, _ = flatten(p)
            total = 0.0
            for o, w in zip(s4.offsets, s4.weights):
                total += w * float(np.real(_scalar(fun(_as_tree(spec, xv + (o * h) * v)))))
            return total / h

        if hvp is not None:
            def analytic(p, vt=vt):
                return call_user(hvp, p, vt, what="hvp")
        else:
            def analytic(p, v=v):
                return _as_tree(spec, hess_matrix(p) @ v)

        problem = Problem(psi, params, analytic, method, eps, atol, rtol, int(seed) + k, kind="hessian")
        problem.messages.append(f"probe {k + 1}: H v compared with the gradient of a 5-point difference of fun along "
                                f"v (v: random +-1 times each entry's scale, step {h:.2g})")
        if mode != "full":
            from . import fast
            if mode == "fast" or fast.prefers_fast(problem):
                r = fast.check_fast(problem)
                r.n_evals *= 4
                results.append(r)
                continue
        r = full_check(problem)
        r.n_evals *= 4  # each evaluation of psi is 4 evaluations of fun
        results.append(r)
    res = combine_worst(results, "hessian")
    res.seed = int(seed)
    return res


def _scalar(out):
    """fun's value as a Python number, through the adapters (a torch tensor that requires grad, a jax
    array) like every other evaluation of fun."""
    from ..frameworks.outputs import scalar_of

    return scalar_of(out)[0]


@ends_check
@own_numerics
def check_gradgrad(fun, params, grad, *, hvp=None, method="central", eps=None, atol=None, rtol=None, mode="full",
                   seed=0) -> GradcheckResult:
    """grad against fun, grad's Jacobian for symmetry, and hvp (if given) against grad; see the module docstring."""
    __tracebackhide__ = True
    if not callable(grad):
        raise GradcheckInputError(f"grad must be callable; got {type(grad).__name__}")
    results = [check_gradient(fun, params, grad, method=method, eps=eps, atol=atol, rtol=rtol, mode=mode, seed=seed)]
    x0, spec = flatten(params)
    if spec.size <= SYMMETRY_MAX:
        results.append(_symmetry(grad, params, method, eps, atol, rtol, seed))
    else:
        results[0].messages.append(f"gradgrad: symmetry of grad's Jacobian not checked ({spec.size} parameters, "
                                   f"more than {SYMMETRY_MAX}: it needs 4n calls of grad and an n x n matrix)")
    if hvp is not None:
        results.append(check_hessian(fun, params, hvp=hvp, grad=grad, method=method, eps=eps, atol=atol, rtol=rtol,
                                     mode=mode, seed=seed))
    order = {"fail": 2, "inconclusive": 1, "pass": 0}
    total = int(sum(r.n_evals for r in results))
    names = ["gradient vs fun"] + (["symmetry of grad's Jacobian"] if len(results) > 1 + (hvp is not None) else []) \
        + (["hvp vs grad"] if hvp is not None else [])
    worst_k = max(range(len(results)), key=lambda k: (order[results[k].status], results[k].max_ratio))
    res = results[worst_k]
    res.messages = list(res.messages) + [
        "gradgrad: " + "; ".join(f"{names[k]}: {r.status}" for k, r in enumerate(results))
        + f" (this report: {names[worst_k]})"]
    res.kind = "gradgrad"
    res.n_evals = total
    return res


def _symmetry(grad, params, method, eps, atol, rtol, seed):
    """Finite-difference Jacobian of grad (Richardson-refined), judged for symmetry entry by entry."""
    t0 = time.perf_counter()
    validate(grad, method, "full", eps, atol, rtol, seed)
    if method == "complex":
        method = "central"
    ev = VecEval(grad, params)
    n = ev.spec.size
    if ev.ospec.size != n:
        raise GradcheckInputError(f"grad returned {ev.ospec.size} numbers for {n} parameters")
    scheme = SCHEMES[method]
    L, rng, sigma = scales_and_noise(ev, seed, 0x5E3)
    eps_f = ev.eps_out
    y0 = ev.y0
    eps_eff = min(max(eps_f, float(np.median(sigma / np.maximum(np.abs(y0), 1e-300)))), 1e-2)
    base = scheme.base_step(eps_eff)
    rp = 4.0 ** scheme.order
    J = np.empty((n, n))
    E = np.empty((n, n))
    for j in range(n):
        d = np.zeros(n)
        d[j] = 1.0
        h = base * L[j] if eps is None else float(eps)
        D1 = _dir(ev, scheme, d, h)
        D2 = _dir(ev, scheme, d, h / 4.0)
        N = D2 + (D2 - D1) / (rp - 1.0)
        J[:, j] = N
        E[:, j] = np.abs(N - D2) + scheme.weight_norm * sigma / (h / 4.0) * (rp + 1.0) / (rp - 1.0)
    # result layout: d grad[..] / d in, like check_jacobian; "analytic" = J^T (what symmetry demands)
    leaves, pos, off = [], np.empty((n, n), dtype=np.int64), 0
    for ol in ev.ospec.leaves:
        for il in ev.spec.leaves:
            shape = tuple(ol.shape) + tuple(il.shape)
            leaves.append(result_leaf(f"d{out_path(ol.path, 'grad')}/d{il.path}", shape, off, ol, ol.dtype_name))
            pos[ol.slice, il.slice] = off + np.arange(ol.size * il.size).reshape(ol.size, il.size)
            off += ol.size * il.size
    spec = TreeSpec(None, leaves, n * n)
    analytic = np.empty(n * n)
    analytic[pos] = J.T
    numeric = np.empty(n * n)
    numeric[pos] = J
    err = np.empty(n * n)
    err[pos] = E + E.T  # both sides are estimates
    prob = VecProblem("gradgrad", method, int(seed), atol, rtol, spec, analytic, np.full(n * n, eps_f), ev,
                       [f"symmetry of grad's Jacobian: {n} columns by Richardson-refined {method} differences of "
                        f"grad; the 'analytic' side is the transposed entry J[j, r]"], t0)
    judge = Judge(prob)
    tol = judge.tol_vec(numeric, err)
    verdict = np.where(np.abs(analytic - numeric) <= tol, PASS, FAIL).astype(np.int8)
    res = assemble(prob, judge, numeric, err, verdict, {}, mode="full")
    res.n_params = int(n)
    if res.status != "pass":
        w = res.worst[0]
        res.diagnosis = {
            "kind": "bug" if res.status == "fail" else "unsettled", "entries": [], "pattern": {},
            "summary": (
                f"Compared grad's Jacobian (Richardson-refined {method} differences of grad, {n} columns) with its own "
                f"transpose on {n * n} entries: {res.counts['fail']} disagree; the worst is {w.where}, "
                f"{w.numeric:.6g} against {w.analytic:.6g} for the transposed entry, {w.ratio:.3g}x the tolerance. "
                f"A Hessian is symmetric, so grad cannot be the gradient of any scalar function. Likely cause: a "
                f"missing symmetrisation (the gradient of x^T A x written as 2 A x instead of (A + A^T) x) or a term "
                f"with its indices in the wrong order. Next: look at the term of grad that couples these two "
                f"entries.")}
    return res


def _dir(ev, scheme, d, h):
    vals = []
    for o in scheme.offsets:
        vals.append(ev.y0 if o == 0.0 else ev.call(ev.rounded(ev.x0 + (o * h) * d)))
    return sum(w * v for w, v in zip(scheme.weights, vals)) / h
