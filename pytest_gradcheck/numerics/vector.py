"""Vector-valued functions: check a VJP, a JVP or an explicit Jacobian.

``fun(inputs)`` returns an array or a pytree of arrays; ``inputs`` is a pytree
like check_gradient's params.  All three return a GradcheckResult with the same
verdict machinery as check_gradient (``kind`` = "vjp", "jvp", "jacobian").

check_vjp(fun, inputs, vjp)
    ``vjp(inputs, cotangent)`` returns the gradient of <fun(inputs), cotangent>
    with respect to inputs (a backward pass: ``lambda x, g: backward(g,
    forward(x)[1])``).  For each of ``n_cotangents`` random cotangents c this
    is exactly a gradient check of the scalar phi(x) = <fun(x), c> against
    vjp(x, c), so it reuses check_gradient entirely (full, fast or auto mode,
    error model, diagnosis).  c has random signs times magnitudes uniform in
    [1, 1.5), divided by the rms of its output leaf, so that every output leaf
    weighs the same whatever its scale.  Why signs rather than Gaussian weights:
    a single wrong Jacobian entry J[r, j] then shows up in the VJP as at least
    +-delta/rms at input j (never shrunk by a small random weight: a N(0,1)
    weight is below 0.1 with probability 8%).  Why not plain +-1: a column of
    +-1 sums to an exact 0 (a bias over an even batch) and two wrong entries in
    one column cancel, each with probability 1/2; with the magnitudes both have
    probability 0.

check_jvp(fun, inputs, jvp)
    ``jvp(inputs, tangent)`` returns the directional derivative of fun's
    output along ``tangent`` (same structure as fun's output).  Tangents are
    random signs times each input entry's scale |x_i| (the step full mode would
    take is the same fraction of every entry; a leaf far smaller than the
    others barely moves the tangent, so its errors are check_jacobian's or
    check_vjp's to find).  The numeric side is the central
    difference of the whole output along the tangent, output entry by output
    entry (a few evaluations per tangent whatever the size, so ``mode`` is
    accepted and validated but every mode is this one), with the same error
    model as check_gradient: roundoff
    sqrt(sum w^2) sigma_r / h (sigma_r: the measured noise of output r, at
    least eps*|y_r|), Richardson refinement for entries that disagree, and a
    failure only on a confirmed plateau -- or, for an output whose one-sided
    differences along the tangent show a kink (a ReLU unit at exactly 0), the
    gradient check's kink rule: inconclusive between the one-sided derivatives
    or within what they give at nudged points (several kinks crossed at once),
    a failure outside (directions.py).

check_jacobian(fun, inputs, jac)
    ``jac(inputs)`` returns the Jacobian as either (a) a 2-D array (m, n) with
    rows in the flat order of fun's outputs and columns in the flat order of
    inputs (leaves in tree order, each row-major), or (b) for a single output
    array and a single input array, an array of shape out_shape + in_shape,
    or (c) a nested structure "outputs of inputs" (like jax.jacobian): for
    each output leaf, a structure like inputs whose leaves have shape
    out_shape + in_shape.  mode="full" perturbs each input entry (2n
    evaluations, every Jacobian entry is judged, with the same kink rule as the
    JVP's along each input entry; result leaves are named
    "d<out>/d<in>" with shape out_shape + in_shape); mode="fast" checks the
    VJPs J^T c through check_vjp's fast mode instead.

Layer: numerics, public checks (above full.py; beside check.py, which it does
not import).  Imports errors, pytree, frameworks.registry (``ends_check``) and
the numerics below it: problem, verdict, steps, noise, directions (the JVP and
Jacobian engine), full, assemble.
``VecEval``, ``VecProblem``, ``combine_worst``... are public for second_order.py.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..errors import GradcheckInputError
from ..frameworks.registry import ends_check
from .evaluate import own_numerics
from ..pytree import Leaf, TreeSpec, build
from .assemble import assemble
from .directions import check_directions, lazy_nudges
from .full import full_check
from .noise import analytic_noise
from .problem import Problem, call_user, validate
from .result import GradcheckResult
from .stencils import SCHEMES
from .steps import entry_scales
from .trees import flatten, flatten_like, unflatten
from .verdict import INCONCLUSIVE, SAFETY, Judge, analytic_floor

_F64_EPS = float(np.finfo(np.float64).eps)

N_COTANGENTS = 2
N_TANGENTS = 2


# ---------------------------------------------------------------- helpers
def out_path(path: str, root: str = "out") -> str:
    """Output leaf path: 'out', 'out[0]', "out['key']", "out['key'][1]"."""
    if path == "params":
        return root
    if path.startswith("["):
        return root + path
    k = path.find("[")
    key, rest = (path, "") if k < 0 else (path[:k], path[k:])
    return f"{root}[{key!r}]{rest}"


def _output_spec(out):
    try:
        vec, spec = flatten(out, name="fun's output")
    except GradcheckInputError as e:
        raise GradcheckInputError(str(e).replace("params leaf", "output leaf")) from e
    return vec, spec


def _leaves_numpy(out, spec, complex_ok=False):
    """fun's output read in the structure of ``spec`` (float64, or complex128 when complex_ok)."""
    if complex_ok:
        from ..frameworks.registry import adapter_for
        parts = []

        def visit(o):
            if isinstance(o, dict):
                for v in o.values():
                    visit(v)
            elif isinstance(o, (list, tuple)):
                for v in o:
                    visit(v)
            else:
                ad = adapter_for(o)
                parts.append(np.asarray(ad.to_numpy(o) if ad is not None else o).ravel())
        visit(out)
        v = np.concatenate(parts) if parts else np.zeros(0)
        if v.size != spec.size:
            raise GradcheckInputError(f"fun's output changed size: {v.size} entries, expected {spec.size}")
        return v.astype(np.complex128)
    vec, _ = flatten_like(out, spec, "fun's output")
    return vec


def combine_worst(results, kind):
    """One result from several (one per cotangent / tangent): the worst, with summed costs."""
    order = {"fail": 2, "inconclusive": 1, "pass": 0}
    worst = max(results, key=lambda r: (order[r.status], r.max_ratio))
    worst.kind = kind
    worst.n_evals = int(sum(r.n_evals for r in results))
    worst.duration_s = float(sum(r.duration_s for r in results))
    k = results.index(worst)
    if len(results) > 1:
        worst.messages = list(worst.messages) + [
            f"{len(results)} random {'cotangents' if kind in ('vjp', 'jacobian') else 'tangents'} checked; "
            f"this report is number {k + 1} (the worst); statuses: {', '.join(r.status for r in results)}"]
    if worst.escape_probability is not None:
        worst.escape_probability = float(np.prod([r.escape_probability for r in results
                                                  if r.escape_probability is not None]))
    return worst


# ---------------------------------------------------------------- VJP
@ends_check
@own_numerics
def check_vjp(fun, inputs, vjp, *, method="central", eps=None, atol=None, rtol=None, mode="full", seed=0,
              n_cotangents=N_COTANGENTS) -> GradcheckResult:
    """Check ``vjp(inputs, cotangent)`` (the gradient of <fun(inputs), cotangent>) against finite differences.

    See the module docstring.  ``n_cotangents`` random cotangents from ``seed``;
    the worst of the checks is returned (its ``n_evals`` is the total).
    """
    __tracebackhide__ = True
    return _vjp_check(fun, inputs, vjp, method, eps, atol, rtol, mode, seed, n_cotangents, "vjp")


def _vjp_check(fun, inputs, vjp, method, eps, atol, rtol, mode, seed, n_cotangents, kind):
    validate(fun, method, mode, eps, atol, rtol, seed)
    if not callable(vjp):
        raise GradcheckInputError(f"vjp must be callable; got {type(vjp).__name__}")
    if isinstance(n_cotangents, bool) or not isinstance(n_cotangents, (int, np.integer)) or n_cotangents < 1:
        raise GradcheckInputError(f"n_cotangents must be a positive integer; got {n_cotangents!r}")
    y0 = call_user(fun, inputs, what="fun")
    yvec, ospec = _output_spec(y0)
    if ospec.size == 0:
        raise GradcheckInputError("fun's output is empty: there is nothing to check")
    rng = np.random.default_rng([int(seed), 0xC07])
    complex_step = method == "complex"
    out_dtype = np.result_type(*[leaf.dtype for leaf in ospec.leaves])
    if not np.issubdtype(out_dtype, np.floating):
        out_dtype = np.dtype(np.float64)
    results = []
    for k in range(int(n_cotangents)):
        # random signs times magnitudes in [1, 1.5): never below 1 (a wrong entry is never shrunk), and
        # no column of +-1 can sum to an exact 0 (a linear layer's bias over an even batch did at seed 11,
        # hiding any error there; issue 20 C.10)
        c = rng.choice([-1.0, 1.0], size=ospec.size) * (1.0 + 0.5 * rng.random(ospec.size))
        for leaf in ospec.leaves:
            v = yvec[leaf.slice]
            rms = float(np.sqrt(np.mean(v * v))) if v.size else 0.0
            if rms > 0 and math.isfinite(rms):
                c[leaf.slice] /= rms

        def make(kk, leaf, c=c):
            buf = np.array(c[leaf.slice], dtype=leaf.dtype if np.issubdtype(leaf.dtype, np.floating)
                           else np.float64).reshape(leaf.shape)
            return leaf.adapter.leaf_from_buffer(buf, leaf.original)

        def phi(x, c=c):
            y = fun(x)
            if complex_step:
                v = _leaves_numpy(y, ospec, complex_ok=True)
                return complex(v @ c)
            v = _leaves_numpy(y, ospec)
            return np.asarray(float(v @ c), dtype=out_dtype)

        def grad(x, c=c, make=make):
            return vjp(x, build(ospec, make))

        problem = Problem(phi, inputs, grad, method, eps, atol, rtol, int(seed) + k, kind=kind)
        if mode != "full":
            from . import fast
            if mode == "fast" or fast.prefers_fast(problem):
                results.append(fast.check_fast(problem))
                continue
        results.append(full_check(problem))
    res = combine_worst(results, kind)
    res.seed = int(seed)
    return res


# ---------------------------------------------------------------- JVP and Jacobian engine
class VecEval:
    """Evaluates fun at points of the flat input space; returns flat float64 outputs."""

    def __init__(self, fun, inputs, hold=False):
        self.fun = fun
        self.x0, self.spec = flatten(inputs, name="inputs")
        if self.spec.size == 0:
            raise GradcheckInputError("inputs is empty: there is nothing to check")
        bad = ~np.isfinite(self.x0)
        self.held = None
        if bad.any():
            # check_jacobian holds non-finite entries fixed (-inf masks), as check_gradient does:
            # no step moves them (L = 0 there) and their columns are not judged
            if not hold or bad.all():
                raise GradcheckInputError("inputs is not finite" if not hold else
                                          "inputs has no finite entry: there is nothing to check")
            self.held = bad
        self.n_evals = 0
        self.dtypes = [np.dtype(np.float64)] * len(self.spec.leaves)
        try:
            y = self.call(self.x0)
        except Exception:  # noqa: BLE001 - try the inputs' own dtypes
            self.dtypes = [leaf.dtype for leaf in self.spec.leaves]
            y = None
        if y is None or not np.all(np.isfinite(y)):
            self.dtypes = [leaf.dtype for leaf in self.spec.leaves]
            y = self.call(self.x0)
        self.y0 = y
        if not np.all(np.isfinite(y)):
            raise GradcheckInputError("fun's output is not finite at inputs")
        self.eps_out = max(float(np.finfo(leaf.dtype).eps) if np.issubdtype(leaf.dtype, np.floating)
                           else float(np.finfo(np.float64).eps) for leaf in self.ospec.leaves)

    def tree(self, x):
        return unflatten(self.spec, x, self.dtypes)

    def native_tree(self):
        return unflatten(self.spec, self.x0)

    def rounded(self, x):
        out = x.copy()
        for leaf, dt in zip(self.spec.leaves, self.dtypes):
            if dt != np.float64:
                out[leaf.slice] = x[leaf.slice].astype(dt).astype(np.float64)
        return out

    def call(self, x):
        self.n_evals += 1
        out = call_user(self.fun, self.tree(x), what="fun")
        if not hasattr(self, "ospec"):
            _, self.ospec = _output_spec(out)
        return flatten_like(out, self.ospec, "fun's output")[0]


class VecProblem:
    """What assemble() and Judge need, for entries that are output entries (JVP) or
    Jacobian entries; ``analytic`` is the user's side, in the layout of ``spec``."""

    sweepable = False

    def __init__(self, kind, method, seed, atol, rtol, spec, analytic, eps_a, ev, messages, t0, noise=0.0):
        self.kind, self.method, self.seed, self.atol, self.rtol = kind, method, seed, atol, rtol
        self.spec, self.analytic, self.ev, self.messages, self.t0 = spec, analytic, ev, messages, t0
        self.n = spec.size
        self.grad_scale, self.floor = analytic_floor(spec, analytic, eps_a, noise)
        self.x0 = np.zeros(self.n)
        self.L = np.ones(self.n)


def result_leaf(path, shape, offset, like, dtype_name):
    size = int(np.prod(shape)) if shape else 1
    return Leaf(path, tuple(shape), offset, size, like.adapter, None, like.dtype, dtype_name, like.eps)


def _analytic_noise(read, base, ev, L, seed, leaves):
    """noise.analytic_noise of a Jacobian or JVP (flat ``base``) read by ``read(tree)``, pooled per
    result leaf over the entries that vary.  float32's 1 - tanh(x)^2 near saturation, for one, is a
    cancellation whose rounding no kappa*eps of the entry's own size covers."""
    return analytic_noise(read, base, ev.x0, ev.spec, L, np.random.default_rng([int(seed), 0x7AC]),
                          [leaf.slice for leaf in leaves], live_only=True)


def _noise(ev, rng, x0, L, delta_rel):
    """Per-output noise sigma_r (ECnoise along a random direction; at least eps*|y_r|)."""
    u = rng.choice([-1.0, 1.0], size=x0.size) * L * delta_rel
    ys = [ev.y0] + [ev.call(ev.rounded(x0 + k * u)) for k in range(1, 9)]
    Y = np.array(ys)
    floor = ev.eps_out * np.abs(ev.y0)
    if not np.all(np.isfinite(Y)):
        return floor
    d3 = np.diff(Y, 3, axis=0)
    sigma = np.median(np.abs(d3), axis=0) / (0.6745 * math.sqrt(20.0))
    return np.maximum(sigma, floor)


def _prepare_vec(fun, inputs, method, mode, eps, atol, rtol, seed, hold=False):
    validate(fun, method, mode, eps, atol, rtol, seed)
    if method == "complex":
        raise GradcheckInputError("method='complex' is supported by check_gradient and check_vjp; use "
                                  "'central' or 'central4' for JVP and Jacobian checks")
    ev = VecEval(fun, inputs, hold=hold)
    if ev.ospec.size == 0:
        raise GradcheckInputError("fun's output is empty: there is nothing to check")
    L, rng, sigma = scales_and_noise(ev, seed, 0x7A9)
    return ev, L, rng, sigma


def _nudge_scales(steps, L, live):
    """(entry steps, scales) over every input entry for kinks.DirectionNudges: a held entry gets a
    scale of 1 and the median step-to-scale ratio of the others, so the nudges' relative size is
    the live entries' own (a held entry stays non-finite wherever it is nudged)."""
    steps_full = np.ones(L.size)
    L_full = np.ones(L.size)
    L_full[live] = L[live]
    ratio = np.asarray(steps, dtype=np.float64) / L[live]
    steps_full[:] = float(np.median(ratio))
    steps_full[live] = steps
    return steps_full, L_full


def scales_and_noise(ev, seed, stream):
    """Per-input-entry scales L (steps.entry_scales: |x|, so that a 2e-6 beside a 3e3 in one leaf is
    not stepped by 1e3), the seeded
    generator (``stream`` keeps each checker's draws apart) and the output noise."""
    held = getattr(ev, "held", None)
    x = ev.x0 if held is None else np.where(held, 0.0, ev.x0)
    L = entry_scales(x, ev.spec)[0]
    if held is not None:
        L[held] = 0.0  # every step and noise probe leaves a held entry where it is
    rng = np.random.default_rng([int(seed), stream])
    buf_eps = max(float(np.finfo(dt).eps) for dt in ev.dtypes)
    return L, rng, _noise(ev, rng, x, L, 4.0 * math.sqrt(buf_eps))


def _native_eps(tree, n=None):
    """Unit roundoff of each leaf of an analytic result in its own dtype (bfloat16 is read as float32
    numbers but rounds as bfloat16); [] (or n float64 eps) when the tree cannot be read that way."""
    try:
        _, spec = flatten(tree, name="result")
        return [leaf.eps for leaf in spec.leaves] if n is None or len(spec.leaves) == n else [_F64_EPS] * n
    except GradcheckInputError:
        return [] if n is None else [_F64_EPS] * n


def _eps_of(dtypes):
    return max(float(np.finfo(dt).eps) if np.issubdtype(dt, np.floating) else float(np.finfo(np.float64).eps)
               for dt in dtypes)


@ends_check
@own_numerics
def check_jvp(fun, inputs, jvp, *, method="central", eps=None, atol=None, rtol=None, mode="full", seed=0,
              n_tangents=N_TANGENTS, _kind="jvp", _out="out") -> GradcheckResult:
    """Check ``jvp(inputs, tangent)`` (the derivative of fun's output along tangent) against
    central differences of fun along the tangent; see the module docstring."""
    __tracebackhide__ = True
    t0 = time.perf_counter()
    if not callable(jvp):
        raise GradcheckInputError(f"jvp must be callable; got {type(jvp).__name__}")
    if isinstance(n_tangents, bool) or not isinstance(n_tangents, (int, np.integer)) or n_tangents < 1:
        raise GradcheckInputError(f"n_tangents must be a positive integer; got {n_tangents!r}")
    ev, L, rng, sigma = _prepare_vec(fun, inputs, method, mode, eps, atol, rtol, seed)
    scheme = SCHEMES[method]
    eps_f = ev.eps_out
    y0 = ev.y0
    f_scale = float(np.max(np.abs(y0))) if y0.size else 0.0
    eps_eff = min(max(eps_f, float(np.median(sigma / np.maximum(np.abs(y0), 1e-300)))), 1e-2) if f_scale else eps_f
    h = scheme.base_step(eps_eff) if eps is None else float(eps)
    results = []
    nudges = lazy_nudges(ev, h * L if eps is None else np.full(L.size, h), L, seed)
    for k in range(int(n_tangents)):
        s = rng.choice([-1.0, 1.0], size=ev.x0.size)
        d = s * L if eps is None else s
        tangent = unflatten(ev.spec, d)  # params leaves are floating (trees.flatten refuses others)
        jv = call_user(jvp, ev.native_tree(), tangent, what="jvp")
        a, dts = flatten_like(jv, ev.ospec, "jvp's output")
        eps_a = np.empty(a.size)
        native = _native_eps(jv, len(dts))
        for leaf, dt, e in zip(ev.ospec.leaves, dts, native):
            eps_a[leaf.slice] = max(_eps_of([dt, leaf.dtype]), e) if np.issubdtype(dt, np.floating) else eps_f
        # result leaves: fun's output leaves
        leaves = [result_leaf(out_path(lf.path, _out), lf.shape, lf.offset, lf, lf.dtype_name)
                  for lf in ev.ospec.leaves]
        spec = TreeSpec(ev.ospec.node, leaves, ev.ospec.size)
        messages = []
        noise = 0.0
        if (eps_a > _F64_EPS).any():
            noise = _analytic_noise(lambda tree, tangent=tangent: flatten_like(
                call_user(jvp, tree, tangent, what="jvp"), ev.ospec, "jvp's output")[0], a, ev, L, int(seed) + k, leaves)
        prob = VecProblem(_kind, method, int(seed), atol, rtol, spec, a, eps_a, ev, messages, t0, noise)
        judge = Judge(prob)

        def jt(_k, D, R, prob=prob, judge=judge):
            return judge.tol_vec(D, R)

        t_max = float(np.min(entry_scales(ev.x0, ev.spec)[1] / L)) * h if eps is None else None
        num, err, ver, why = check_directions(ev, scheme, [d], [h], [a], jt, sigma,
                                               None if t_max is None else [t_max], judge.explicit, nudges)
        messages.append(f"tangent {k + 1}: random +-1 times each input entry's scale, step {h:.3g} along it")
        res = assemble(prob, judge, num[0], err[0], ver[0], why[0], mode="full")
        results.append(res)
    res = combine_worst(results, _kind)
    res.n_evals = ev.n_evals
    res.n_params = int(ev.x0.size)
    return res


def _read_jacobian(J, ev):
    """The user's Jacobian as an (m, n) float64 array (see the module docstring for the layouts)."""
    m, n = ev.ospec.size, ev.spec.size
    try:
        vec, spec = flatten(J, name="jac's output")
    except GradcheckInputError as e:
        raise GradcheckInputError(f"jac returned something unreadable: {e}") from e
    if vec.size != m * n:
        raise GradcheckInputError(
            f"jac returned {vec.size} numbers; a Jacobian of {m} outputs by {n} inputs has {m * n} "
            f"(as an (m, n) = ({m}, {n}) array, out_shape + in_shape, or outputs-of-inputs nested)")
    if len(spec.leaves) == 1:
        leaf = spec.leaves[0]
        okshapes = [(m, n)]
        if len(ev.ospec.leaves) == 1 and len(ev.spec.leaves) == 1:
            okshapes.append(tuple(ev.ospec.leaves[0].shape) + tuple(ev.spec.leaves[0].shape))
        if leaf.shape not in okshapes and not (leaf.size == 1 and m * n == 1):
            raise GradcheckInputError(f"jac returned an array of shape {leaf.shape}; expected one of {okshapes}")
        return vec.reshape(m, n), [leaf.dtype]
    if len(spec.leaves) != len(ev.ospec.leaves) * len(ev.spec.leaves):
        raise GradcheckInputError(
            f"jac returned {len(spec.leaves)} arrays; expected one (m, n) array or {len(ev.ospec.leaves)} x "
            f"{len(ev.spec.leaves)} blocks (outputs of inputs)")
    out = np.empty((m, n))
    k = 0
    for ol in ev.ospec.leaves:
        for il in ev.spec.leaves:
            blk = spec.leaves[k]
            if blk.size != ol.size * il.size:
                raise GradcheckInputError(
                    f"jac block for {out_path(ol.path)} / {il.path} has shape {blk.shape}; expected "
                    f"{tuple(ol.shape) + tuple(il.shape)}")
            out[ol.slice, il.slice] = vec[blk.slice].reshape(ol.size, il.size)
            k += 1
    return out, [lf.dtype for lf in spec.leaves]


@ends_check
@own_numerics
def check_jacobian(fun, inputs, jac, *, method="central", eps=None, atol=None, rtol=None, mode="full", seed=0,
                   n_cotangents=N_COTANGENTS, _kind="jacobian", _out="out") -> GradcheckResult:
    """Check an explicit Jacobian ``jac(inputs)`` against finite differences of ``fun``;
    see the module docstring for the accepted layouts and modes."""
    __tracebackhide__ = True
    t0 = time.perf_counter()
    if not callable(jac):
        raise GradcheckInputError(f"jac must be callable; got {type(jac).__name__}")
    if mode != "full":
        ev0 = VecEval(fun, inputs, hold=True)

        def vjp(x, c):
            Jm, _ = _read_jacobian(call_user(jac, x, what="jac"), ev0)
            cv, _ = flatten_like(c, ev0.ospec, "cotangent")
            g = Jm.T @ cv
            return unflatten(ev0.spec, g, [np.float64] * len(ev0.spec.leaves))

        if mode == "auto":
            from .fast import AUTO_FULL_MAX
            if ev0.spec.size <= AUTO_FULL_MAX:
                mode = "full"
        if mode != "full":
            return _vjp_check(fun, inputs, vjp, method, eps, atol, rtol, "fast", seed, n_cotangents, _kind)
    ev, L, rng, sigma = _prepare_vec(fun, inputs, method, "full", eps, atol, rtol, seed, hold=True)
    scheme = SCHEMES[method]
    jac_out = call_user(jac, ev.native_tree(), what="jac")
    Jm, dts = _read_jacobian(jac_out, ev)
    jac_native_eps = _native_eps(jac_out)
    held = np.zeros(Jm.shape[1], dtype=bool) if ev.held is None else ev.held
    Jm[:, held] = 0.0  # columns of held inputs: not checked, whatever jac wrote there is not read
    if not np.all(np.isfinite(Jm)):
        r, c = np.argwhere(~np.isfinite(Jm))[0]
        raise GradcheckInputError(f"jac is not finite at row {r}, column {c}")
    m, n = Jm.shape
    eps_f = ev.eps_out
    y0 = ev.y0
    eps_eff = min(max(eps_f, float(np.median(sigma / np.maximum(np.abs(y0), 1e-300)))), 1e-2)
    eps_a = _eps_of(list(dts) + [lf.dtype for lf in ev.ospec.leaves])
    if jac_native_eps:
        eps_a = max(eps_a, max(jac_native_eps))
    # result layout: blocks d<out>/d<in>, each out_shape + in_shape row-major
    leaves, pos = [], np.empty((m, n), dtype=np.int64)
    off = 0
    for ol in ev.ospec.leaves:
        for il in ev.spec.leaves:
            shape = tuple(ol.shape) + tuple(il.shape)
            leaves.append(result_leaf(f"d{out_path(ol.path, _out)}/d{il.path}", shape, off, ol,
                                       f"{ol.dtype_name}"))
            pos[ol.slice, il.slice] = off + np.arange(ol.size * il.size).reshape(ol.size, il.size)
            off += ol.size * il.size
    spec = TreeSpec(None, leaves, m * n)
    analytic = np.empty(m * n)
    analytic[pos] = Jm
    noise = np.zeros(m * n)
    if eps_a > _F64_EPS:
        def read(tree):
            J = _read_jacobian(call_user(jac, tree, what="jac"), ev)[0]
            out = np.empty(m * n)
            out[pos] = J
            return out
        noise = _analytic_noise(read, analytic, ev, L, seed, leaves)
    prob = VecProblem(_kind, method, int(seed), atol, rtol, spec, analytic, np.full(m * n, eps_a), ev, [], t0,
                       noise)
    judge = Judge(prob)
    dirs, steps, cols = [], [], []
    base = scheme.base_step(eps_eff)
    live = np.flatnonzero(~held)
    for j in live:
        d = np.zeros(n)
        d[j] = 1.0
        hj = base * L[j] if eps is None else float(eps)
        xj = ev.rounded(ev.x0 + hj * d)[j] - ev.x0[j]
        xm = ev.x0[j] - ev.rounded(ev.x0 - hj * d)[j]
        dirs.append(d)
        steps.append(0.5 * (xj + xm) if xj > 0 and xm > 0 else hj)
        cols.append(Jm[:, j])

    def jt(j, D, R):
        if judge.explicit:
            return judge.atol + judge.rtol * np.abs(D)
        return SAFETY * R + prob.floor[pos[:, j]]

    room = None if eps is not None else entry_scales(np.where(held, 0.0, ev.x0), ev.spec)[1][live]
    num, err, ver, why = check_directions(ev, scheme, dirs, steps, cols, lambda c, D, R: jt(int(live[c]), D, R),
                                           sigma, None if room is None else list(room),
                                           judge.explicit, lazy_nudges(ev, *_nudge_scales(steps, L, live), seed))
    numeric = np.full(m * n, np.nan)
    errv = np.full(m * n, np.nan)
    verdict = np.full(m * n, INCONCLUSIVE, dtype=np.int8)
    numeric[pos[:, live]] = num.T
    errv[pos[:, live]] = err.T
    verdict[pos[:, live]] = ver.T
    reasons = {int(pos[r, live[c]]): why_r for c, rs in enumerate(why) for r, why_r in rs.items()}
    prob.messages.append(f"{live.size} input entries perturbed one at a time; all {m} outputs compared per column")
    checked = None
    if held.any():
        checked = np.ones(m * n, dtype=bool)
        checked[pos[:, held].ravel()] = False
        prob.messages.append(f"{int(held.sum())} non-finite input entr{'y' if held.sum() == 1 else 'ies'} held fixed "
                             f"and not checked (their Jacobian columns are not judged), as check_gradient does")
    res = assemble(prob, judge, numeric, errv, verdict, reasons, mode="full", checked=checked)
    res.n_params = int(n)
    return res
