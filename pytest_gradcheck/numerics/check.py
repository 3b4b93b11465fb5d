"""check_gradient: analytic gradient vs finite differences, entry by entry.

The verdict for entry i (model rule, the default):

    fail  iff  |a_i - n_i| > S * E_i + F_i   and the disagreement is confirmed

a_i  the analytic gradient (the user's), n_i the finite-difference estimate,
E_i  the estimated error of n_i: the standard deviation of its roundoff,
     sqrt(sum w_j^2)*sigma/h (sigma = measured noise of f, at least eps_f*|f|),
     plus truncation (from Richardson: how much the estimate moves when the
     step shrinks r-fold),
S    = SAFETY (10): ten standard deviations of roundoff, and a decade of margin
     on a truncation estimate that is good to an order of magnitude,
F_i  = KAPPA * eps_a * (|a_i| + rms of a over the leaf): the analytic side is
     itself computed in floating point with unit roundoff eps_a (its dtype);
     sums of up to ~KAPPA^2/4 terms accumulate about sqrt(terms)*eps_a of error.

"Confirmed" means two successive step sizes agree with each other and both
disagree with a_i (the flat plateau that a bug leaves in the error-vs-step
curve), and the one-sided derivatives do not reveal a kink.  At a kink that no
usable step can avoid, an analytic value between the one-sided derivatives is
"inconclusive" (a valid subgradient), one outside them is a failure.

With explicit atol/rtol the rule is |a_i - n_i| <= atol + rtol*|n_i|.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..errors import GradcheckInputError
from ..frameworks.base import batched_agrees
from ..frameworks.registry import ends_check
from ..frameworks.outputs import scalar_of
from ..pytree import build, unravel
from .evaluate import Evaluator
from .result import (EntryReport, GradcheckResult, LeafSummary, MAX_WORST, ratio_grid,
                     ratio_histogram)
from .stencils import COMPLEX_STEP, METHODS, SCHEMES
from .trees import flatten, flatten_like

SAFETY = 10.0
#: two calls at the same point may differ by this many units of roundoff
#: (eps*|f|) before the function counts as nondeterministic rather than noisy
NONDET_ULPS = 1e3
#: memory budget for batched evaluation (the (B, n) array of points, with room
#: for the framework's own copies)
BATCH_MEMORY = 256 * 2**20
KAPPA = 32.0
#: refinement: each level shrinks the step R_FACTOR-fold, at most MAX_LEVELS times
R_FACTOR = 4.0
MAX_LEVELS = 8
#: a first step is "too small" when roundoff alone forces a tolerance above
#: RHO_TARGET times the scheme's best relative accuracy eps^(p/(p+1))
RHO_TARGET = 1e3
#: a refined entry passes early only once its tolerance is below this fraction
#: of its scale (|a_i| + typical |a| in the leaf), or below 100x the scheme's
#: reach eps_eff^(p/(p+1)) when f is noisier; coarse passes wait for the last step
PASS_RESOLUTION = 1e-6
MODES = ("full", "fast", "auto")

PASS, FAIL, INCONCLUSIVE = 0, 1, 2
_VERDICT = {PASS: "pass", FAIL: "fail", INCONCLUSIVE: "inconclusive"}


class Problem:
    """Everything a check needs, prepared once: the flat point, the analytic
    gradient, the evaluator, the measured noise and the per-entry scales."""

    def __init__(self, fun, params, grad, method, eps, atol, rtol, seed, kind="gradient",
                 vectorized=None, batch_memory=BATCH_MEMORY):
        self.t0 = time.perf_counter()
        self.vectorized, self.batch_memory = vectorized, batch_memory
        self.method, self.eps, self.atol, self.rtol, self.seed, self.kind = method, eps, atol, rtol, seed, kind
        self.messages: list[str] = []
        self.rng = np.random.default_rng(seed)
        self.fun = fun
        self.x0, self.spec = flatten(params)
        if self.spec.size == 0:
            raise GradcheckInputError("params is empty: there is nothing to check")
        self.n = self.spec.size
        bad = ~np.isfinite(self.x0)
        if bad.any():
            path, idx = unravel(self.spec, int(np.flatnonzero(bad)[0]))
            raise GradcheckInputError(f"params is not finite at {path}{list(idx) if idx else ''}")
        self.analytic, self.eps_a = self._analytic(grad)
        self.ev = self._evaluator()
        self.leaf_of = self.ev.leaf_of
        self._scales()
        self.batched = self._batched()

    # -- the analytic side -------------------------------------------------
    def native_tree(self):
        """A fresh copy of params in their native dtypes (what grad is called with)."""
        def make(k, leaf):
            buf = np.array(self.x0[leaf.slice], dtype=leaf.dtype).reshape(leaf.shape)
            return leaf.adapter.leaf_from_buffer(buf, leaf.original)
        return build(self.spec, make)

    def _analytic(self, grad):
        if grad is None:
            adapters = [leaf.adapter for leaf in self.spec.leaves]

            def gradient(tree):
                for ad in adapters:
                    g = ad.gradient(self.fun, tree)
                    if g is not None:
                        return g
                raise GradcheckInputError(
                    "grad is required for plain numpy functions: pass grad=<function returning the gradient "
                    "of fun in the structure of params> (torch and jax can supply it by autodiff)")
        else:
            if not callable(grad):
                raise GradcheckInputError(f"grad must be callable; got {type(grad).__name__}")

            def gradient(tree):
                return _call_user(grad, tree, "grad")
        self._gradient = gradient
        tree = self.native_tree()
        vec, dtypes = flatten_like(gradient(tree), self.spec, "grad")
        copies = grad is None and all(leaf.adapter.gradient_copies_params for leaf in self.spec.leaves)
        where = None if copies else _modified(self.spec, tree, self.x0)
        if where:
            raise GradcheckInputError(f"grad modified its input in place (leaf {where!r}); it must not change params")
        self._grad_repeat = flatten_like(gradient(self.native_tree()), self.spec, "grad")[0] if grad is not None else vec
        eps_a = np.empty(self.n)
        for leaf, dt in zip(self.spec.leaves, dtypes):
            e = float(np.finfo(dt).eps) if np.issubdtype(dt, np.floating) else float(np.finfo(np.float64).eps)
            eps_a[leaf.slice] = max(e, leaf.eps if leaf.is_float else e)
        return vec, eps_a

    def gradient_noise(self) -> np.ndarray:
        """Per-entry noise of the analytic gradient, measured like f's (ECnoise).

        Only where the gradient is computed in less than float64: there its
        roundoff can exceed the kappa*eps floor, e.g. at an optimum, where
        every entry is a sum of terms that cancel to ~0 and the float32 result
        is pure roundoff.  8 extra calls of grad at points x0 + k*u (k = 1..8,
        u = random signs * L * spacing); zero for float64 gradients (no calls).

        The spacing, sqrt(eps) of each entry's dtype times its scale L, sits
        between two errors.  Far below it the points differ by a few quanta and
        the gradient's rounding errors are nearly the same at all of them, so
        their differences understate it (a float32 MLP at its optimum failed
        at 4 eps).  Far above it third differences measure the gradient's
        curvature, ~(spacing/L)^3 of its size, not its noise: at 4 sqrt(eps),
        0.35 L for bfloat16, that exceeded the gradient itself and swallowed a
        sign error.  At sqrt(eps) the points are 11 (bfloat16) to ~3000
        (float32) quanta apart, and the curvature term is 10x (bfloat16) to
        1000x below the dtype's eps.
        """
        f64 = float(np.finfo(np.float64).eps)
        if not (self.eps_a > f64).any():
            return np.zeros(self.n)
        return analytic_noise(lambda tree: flatten_like(self._gradient(tree), self.spec, "grad")[0], self.analytic,
                              self.x0, self.spec, self.L, np.random.default_rng([self.seed, 7]),
                              [leaf.slice for leaf in self.spec.leaves])

    # -- the numeric side ---------------------------------------------------
    def _evaluator(self):
        complex_step = self.method == "complex"
        wide = np.complex128 if complex_step else np.float64
        native = [leaf.dtype if (leaf.is_float and not complex_step) else np.dtype(wide) for leaf in self.spec.leaves]
        wide_all = [np.dtype(wide)] * len(self.spec.leaves)
        tries = [wide_all] if all(np.dtype(d) == np.dtype(wide) for d in native) else [wide_all, native]
        last_err = None
        nfun = self.fun
        for ad in {id(leaf.adapter): leaf.adapter for leaf in self.spec.leaves}.values():
            nfun = ad.numeric_fun(nfun)  # e.g. jax: evaluate float64 buffers in float64
        numpy_ok = not complex_step and all(leaf.adapter.takes_numpy_leaves(self.fun, leaf.original)
                                                for leaf in self.spec.leaves)
        for dtypes in tries:
            # the native attempt needs no x64-style wrapper unless some buffer is still wide (and a
            # wrapper may be what fails: jax retraces fun inside its x64 context, which some funs do not survive)
            wrapped = nfun if any(np.dtype(d) == np.dtype(wide) for d in dtypes) else self.fun
            ev = Evaluator(wrapped, self.spec, self.x0, dtypes)
            try:
                f0 = ev.call()
            except GradcheckInputError:
                raise
            except Exception as e:  # noqa: BLE001 - any failure of fun at float64 means "try native"
                last_err = e
                continue
            if numpy_ok:
                ev = _numpy_leaf_evaluator(wrapped, self.spec, self.x0, dtypes, f0) or ev
            if complex_step:
                if not isinstance(f0, complex) and not np.iscomplexobj(f0):
                    raise GradcheckInputError(
                        "method='complex' needs complex-analytic code, but fun returned a real value for complex "
                        "input (it discards the imaginary part: abs, comparisons, .real, casts to float)")
            if not np.isfinite(f0):
                if dtypes is not tries[-1]:
                    last_err = None
                    continue
                raise GradcheckInputError(f"fun returned {f0} at params; it must be finite there")
            if dtypes is not wide_all:
                self.messages.append(
                    f"fun did not run with float64 params ("
                    + (f"{type(last_err).__name__}: {str(last_err)[:120]}" if last_err else "a non-finite result")
                    + (" -- jax evaluates float64 inside jax.enable_x64, where some funs fail to trace"
                       if any(leaf.adapter.name == "jax" for leaf in self.spec.leaves) else "")
                    + "); the numeric side is computed in the params' own dtypes")
            ev.f0 = f0
            ev.past_base = True  # from now on fun failing is reported as such (Evaluator.call)
            return ev
        if complex_step and last_err is not None:
            raise GradcheckInputError(f"method='complex' needs fun to accept complex input; it raised "
                                      f"{type(last_err).__name__}: {last_err}") from last_err
        raise GradcheckInputError(f"fun raised {type(last_err).__name__} at params: {last_err}") from last_err

    def _batched(self):
        """A batch evaluator (many points per call) when the framework or the user offers one."""
        if self.vectorized is False or self.method == "complex":
            return None
        dtypes = [f.dtype for f in self.ev.flat]
        adapter = self.spec.leaves[0].adapter
        try:
            run = adapter.batched(self.fun, self.spec, dtypes, self.vectorized)
        except Exception as e:  # noqa: BLE001
            run, why = None, f"{type(e).__name__}: {e}"
        else:
            why = "the framework offers no batched evaluation"
        if run is not None and not self.vectorized and getattr(adapter, "validates_batches", False):
            return run  # the adapter checks its batches against plain calls before it uses them
        if run is not None:
            try:
                v = run(self.x0[None, :])
                ref = float(np.real(self.ev.f0))
                ok = v.shape == (1,) and batched_agrees(v[0], ref)
                why = f"the batched value {v[0]!r} differs from fun's {ref!r}" if not ok else ""
            except Exception as e:  # noqa: BLE001
                ok, why = False, f"{type(e).__name__}: {e}"
            if ok:
                return run
        if self.vectorized:
            raise GradcheckInputError(f"vectorized=True, but fun cannot be evaluated on a batch of points: {why}")
        return None

    def batch_rows(self) -> int:
        """Points per batched call: as many (n floats each) as fit the memory budget."""
        return max(1, int(self.batch_memory // (8 * max(self.n, 1) * 4)))

    def _scales(self):
        """Per-entry scale L (for steps) and per-leaf rms of the analytic gradient (for floors)."""
        self.L, self.room = entry_scales(self.x0, self.spec)
        self.grad_noise = self.gradient_noise()
        self.grad_scale, self.floor = analytic_floor(self.spec, self.analytic, self.eps_a, self.grad_noise)

    def check_base(self):
        """Repeat f at the base point and the gradient: nondeterminism fails the check."""
        f0 = self.ev.f0
        f1 = self.ev.call()
        msgs = []
        self.repeat_noise = abs(f1 - f0) if np.isfinite(f1) else math.inf
        eps_f = self.ev.eps_out or float(np.finfo(np.float64).eps)
        if f1 != f0 and self.repeat_noise <= NONDET_ULPS * eps_f * abs(f0):
            # summation order changing between calls (parallel reductions): roundoff-sized,
            # so it is noise like any other -- measured, and folded into sigma
            msgs.append(f"fun varies at the roundoff level between calls ({abs(f1 - f0):.2g} apart at the "
                        f"same params); treated as noise")
        elif f1 != f0:
            msgs.append(
                f"fun is nondeterministic: two evaluations at the same params gave {float(np.real(f0)):.17g} and "
                f"{float(np.real(f1)):.17g}. "
                f"Finite differences need a deterministic function: seed its random number generator inside fun "
                f"(e.g. np.random.default_rng(0)), or turn dropout/sampling off while checking")
        dg = np.abs(self._grad_repeat - self.analytic)
        if (dg > self.floor).any():
            i = int(np.argmax(dg - self.floor))
            path, idx = unravel(self.spec, i)
            msgs.append(f"grad is nondeterministic: two calls differ by {dg[i]:.3g} at {path}{list(idx) if idx else ''}, "
                        f"more than its floating-point floor; seed any randomness in grad")
        where = self.ev.modified_leaf()
        if where:
            raise GradcheckInputError(f"fun modified its input in place (leaf {where!r}); it must not change params")
        return msgs

    def measure_noise(self):
        """Noise sigma of f near x0, measured (Moré & Wild's ECnoise, robust variant).

        f is evaluated at 8 points x0 + k*u (u: random signs times each entry's
        scale times delta, rounded to a power of two), third differences of the 9 values are taken, and
        sigma = median|D3| / (0.6745*sqrt(20)) (D3 of i.i.d. noise has variance
        20 sigma^2; the median ignores a kink crossed by a window).

        Up to three spacings, each tried only when the one before saw nothing:
        delta = 64 ulps, where the smooth part of D3 (about delta^3 times the
        third derivative) is far below roundoff even when |x| is no measure of
        f's scale (params ~1e4 in a function varying on the scale of 1); then
        delta = 4 sqrt(eps), coarse enough to see f round its input to float32
        internally; then delta = eps^(1/4), for a result quantised far above the
        change one entry makes (a float32 loss of 3000 weak features moves by
        less than its quantum over 4 sqrt(eps)).  "Saw nothing" is fewer than 4
        of the 8 values differing from f0, or a median |D3| of exactly 0 with
        repeated values (a staircase: most windows lie on one step; distinct
        values with D3 = 0 are a smooth f whose rounding is the same at points
        this close, and keep the floor).  The result is at least
        eps_f*|f0| and the spread of repeated calls.
        """
        ev = self.ev
        eps_f = ev.eps_out or float(np.finfo(np.float64).eps)
        f0 = float(np.real(ev.f0))
        floor = max(eps_f * abs(f0), getattr(self, "repeat_noise", 0.0))
        if self.method == "complex":
            return floor, eps_f
        buf_eps = max(float(np.finfo(f.dtype).eps) for f in ev.flat)
        signs = self.rng.choice([-1.0, 1.0], size=self.n) * self.L
        sigma = None
        for delta in (64.0 * buf_eps, 4.0 * math.sqrt(buf_eps), buf_eps ** 0.25):
            # powers of two: x0 + k*u is then exact, so the points are equally spaced
            # (unequal spacing of x ~ 1e4 would show up as 'noise' of size ulp(x) |f'|)
            u = np.sign(signs) * np.exp2(np.round(np.log2(np.abs(signs) * delta)))
            vals = np.array([f0] + [float(np.real(ev.at_vector(self.x0 + k * u))) for k in range(1, 9)])
            if not np.isfinite(vals).all():
                continue
            if np.count_nonzero(vals[1:] != f0) < 4:
                continue  # f does not resolve this spacing: no information about its noise
            med = float(np.median(np.abs(np.diff(vals, 3))))
            if med == 0.0 and np.unique(vals).size < vals.size:
                continue  # a quantised f, most windows on one step of its staircase: look coarser
            sigma = med / (0.6745 * math.sqrt(20.0))
            break
        self.noise_raw = sigma
        return (floor if sigma is None else max(sigma, floor)), eps_f


def _numpy_leaf_evaluator(nfun, spec, x0, dtypes, f0):
    """An evaluator handing fun views of its buffers (Adapter.takes_numpy_leaves), if fun gives the
    very same value with them at the base point; None otherwise.  Its count of evaluations starts
    at 2: the call made with framework leaves and the confirming one."""
    ev = Evaluator(nfun, spec, x0, dtypes, numpy_leaves=True)
    try:
        v = ev.call()
    except GradcheckInputError:
        return None
    except Exception:  # noqa: BLE001 - fun needs its framework's arrays after all
        return None
    if not (v == f0 or (np.isnan(v) and np.isnan(f0))) or ev.modified_leaf():
        return None
    ev.n_evals = 2
    return ev


def entry_scales(x, spec):
    """(L, room) per entry of the flat point ``x``: the scale its steps follow and how far they may
    grow.  Every checker (gradient, fast mode, vector, Hessian) takes its steps from these."""
    L = np.empty(x.size)
    room = np.empty(x.size)
    rms_all = _rms(x)
    for leaf in spec.leaves:
        v = x[leaf.slice]
        rms = _rms(v)
        # an entry's own magnitude is its scale (log(x) at x = 1e-10 must not be
        # stepped by the leaf's 1e4); exact zeros borrow the leaf's
        L[leaf.slice] = np.where(v != 0, np.abs(v), rms if rms > 0 else 1.0)
        # how far steps may grow: the largest of the entry's, its leaf's and all params'
        # scale (a bias of 1e-13 beside unit weights needs steps far above its own size)
        room[leaf.slice] = np.maximum(L[leaf.slice], max(rms, rms_all))
    return L, room


def analytic_noise(read, base, x0, spec, L, rng, pool, live_only=False):
    """Per-entry noise of an analytic result (a gradient, Jacobian or JVP, flat ``base`` at x0):
    ECnoise of ``read(tree)`` at x0 + k*u, k = 1..8, u = random signs * L * sqrt(eps of each input
    leaf's dtype) (see Problem.gradient_noise for why that spacing).  Six third differences per
    entry give a rough estimate, so each slice in ``pool`` is raised to its 90th percentile (of the
    entries that vary at all, with ``live_only``: a sparse Jacobian's exact zeros must not dilute
    it).  Zeros when the result cannot be read or is not finite nearby."""
    eps = np.empty(x0.size)
    for leaf in spec.leaves:  # the analytic side sees the inputs in their own dtypes: their quanta
        eps[leaf.slice] = leaf.eps
    u = rng.choice([-1.0, 1.0], size=x0.size) * L * np.sqrt(eps)
    rows = [base]
    for k in range(1, 9):
        x = x0 + k * u

        def make(kk, leaf, x=x):
            buf = np.array(x[leaf.slice], dtype=leaf.dtype).reshape(leaf.shape)
            return leaf.adapter.leaf_from_buffer(buf, leaf.original)
        try:
            row = read(build(spec, make))
        except GradcheckInputError:
            return np.zeros(base.size)  # not finite nearby: no noise estimate, keep the floor
        if not np.all(np.isfinite(row)):
            return np.zeros(base.size)
        rows.append(row)
    d3 = np.diff(np.array(rows), 3, axis=0)
    sig = np.median(np.abs(d3), axis=0) / (0.6745 * math.sqrt(20.0))
    for sl in pool:
        vals = sig[sl]
        src = vals[vals > 0] if live_only else vals
        if src.size:
            sig[sl] = np.maximum(vals, np.quantile(src, 0.9))
    return sig


def analytic_floor(spec, analytic, eps_a, grad_noise=0.0):
    """(typical |a| per entry's leaf, the floor F_i) for an analytic side in ``spec``'s layout.

    F_i = KAPPA*eps_a*(|a_i| + typical |a| in the leaf) + SAFETY*noise_i: the
    analytic side is computed in floating point too.  The measured noise term
    matters where the gradient is a float32 sum of terms that cancel (a bias
    before batch norm, any gradient at an optimum): roundoff of the terms'
    size, which no scale of the gradient itself reveals."""
    scale = np.empty(spec.size)
    for leaf in spec.leaves:
        scale[leaf.slice] = _typical(analytic[leaf.slice])
    return scale, KAPPA * eps_a * (np.abs(analytic) + scale) + SAFETY * grad_noise


def _rms(v: np.ndarray) -> float:
    """Root mean square without overflow (gradients near 1e308 exist: exp(709))."""
    if v.size == 0:
        return 0.0
    with np.errstate(over="ignore", under="ignore"):
        ss = float(np.dot(v, v))
    if 1e-290 < ss < 1e300:  # the sum of squares neither overflowed nor lost precision to underflow
        return math.sqrt(ss / v.size)
    m = float(np.max(np.abs(v)))
    if m == 0 or not math.isfinite(m):
        return m
    return m * float(np.sqrt(np.mean(np.square(v / m))))


def _typical(v: np.ndarray) -> float:
    """A typical magnitude of a gradient: the median of |v| (the mean where most are 0).

    Not the rms: a leaf of log(x) at x = [1e-10, ..., 3e4] has one entry of 1e10
    that must not set the scale by which an entry of 3e-5 is judged."""
    if v.size == 0:
        return 0.0
    m = np.abs(v)
    total = float(m.sum())
    if not math.isfinite(total):
        med = float(np.median(m))
    else:  # np.median without its NaN handling (none here): one partition
        k = m.size // 2
        part = np.partition(m, (k - 1, k) if m.size % 2 == 0 and k > 0 else k)
        med = float(part[k]) if m.size % 2 else 0.5 * (float(part[k - 1]) + float(part[k]))
    return med if med > 0 else total / m.size


def _call_user(f, arg, what):
    __tracebackhide__ = True
    try:
        return f(arg)
    except GradcheckInputError:
        raise
    except Exception as e:  # noqa: BLE001
        raise GradcheckInputError(f"{what} raised {type(e).__name__}: {e}") from e


def _modified(spec, tree, x0):
    """Path of a leaf of ``tree`` (built by native_tree) that no longer equals x0."""
    vec, _ = flatten_like(tree, spec, "params")
    for leaf in spec.leaves:
        base = x0[leaf.slice].astype(leaf.dtype).astype(np.float64)
        if not np.array_equal(vec[leaf.slice], base):
            return leaf.path
    return None


def _validate(fun, method, mode, eps, atol, rtol, seed):
    if not callable(fun):
        raise GradcheckInputError(f"fun must be callable; got {type(fun).__name__}")
    if method not in METHODS:
        raise GradcheckInputError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if mode not in MODES:
        raise GradcheckInputError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    for name, v in (("eps", eps), ("atol", atol), ("rtol", rtol)):
        if v is not None:
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not math.isfinite(v) or v < 0:
                raise GradcheckInputError(f"{name} must be a finite non-negative number or None; got {v!r}")
    if eps is not None and eps == 0:
        raise GradcheckInputError("eps must be positive (it is the first finite-difference step)")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise GradcheckInputError(f"seed must be a non-negative integer; got {seed!r}")


class Judge:
    """The tolerance rule: model (S*E + F) or explicit (atol + rtol*|n|)."""

    def __init__(self, problem: Problem):
        self.explicit = problem.atol is not None or problem.rtol is not None
        self.atol = float(problem.atol or 0.0)
        self.rtol = float(problem.rtol or 0.0)
        self.floor = problem.floor

    def tol(self, i, numeric, err):
        if self.explicit:
            return self.atol + self.rtol * abs(numeric)
        return SAFETY * err + self.floor[i]

    def tol_vec(self, numeric, err, idx=None):
        """Tolerances of all entries, or of the entries ``idx`` (numeric and err then aligned with idx)."""
        if self.explicit:
            return self.atol + self.rtol * np.abs(numeric)
        return SAFETY * err + (self.floor if idx is None else self.floor[idx])

    def describe(self):
        if self.explicit:
            return {"rule": "explicit", "atol": self.atol, "rtol": self.rtol, "safety": None}
        return {"rule": "model", "atol": None, "rtol": None, "safety": SAFETY, "kappa": KAPPA}


# ---------------------------------------------------------------------------
@ends_check
def check_gradient(fun, params, grad=None, *, method="central", eps=None, atol=None, rtol=None,
                   mode="auto", seed=0, vectorized=None, batch_memory=BATCH_MEMORY,
                   n_probes=None) -> GradcheckResult:
    """Compare ``grad(params)`` with finite differences of ``fun`` at ``params``.

    fun(params) returns a scalar; params is an array, a number, or a dict / list /
    tuple of them; grad(params) returns the same structure (``None``: use the
    framework's autodiff, torch or jax).  ``method``: "central" (default),
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
    Never modifies params; the same inputs and seed give the same result.
    """
    __tracebackhide__ = True
    _validate(fun, method, mode, eps, atol, rtol, seed)
    if n_probes is not None:  # rejected before fun is first called
        from .fast import probe_count
        probe_count(n_probes)
    problem = Problem(fun, params, grad, method, eps, atol, rtol, int(seed),
                      vectorized=vectorized, batch_memory=batch_memory)
    if mode != "full":
        from . import fast  # lazily: full mode does not need it
        if mode == "fast" or fast.prefers_fast(problem):
            return fast.check_fast(problem, n_probes)
    return full_check(problem)


def full_check(problem: Problem) -> GradcheckResult:
    """Check every entry; refine only those that do not agree at the first step."""
    judge = Judge(problem)
    base_msgs = problem.check_base()
    if any(m.startswith("fun is nondeterministic") for m in base_msgs):
        return _nondeterministic_result(problem, judge, base_msgs)
    problem.messages.extend(base_msgs)
    if problem.method == "complex":
        D, err = _complex_step(problem)
        verdict = np.where(np.abs(problem.analytic - D) <= judge.tol_vec(D, err), PASS, FAIL).astype(np.int8)
        est = (D, err, verdict, {})
    else:
        est = _finite_differences(problem, judge)
    where = problem.ev.modified_leaf()
    if where:
        raise GradcheckInputError(f"fun modified its input in place (leaf {where!r}); it must not change params")
    return assemble(problem, judge, *est, mode="full")


def _nondeterministic_result(problem, judge, msgs):
    n = problem.n
    verdict = np.full(n, INCONCLUSIVE, dtype=np.int8)
    nan = np.full(n, np.nan)
    res = assemble(problem, judge, nan, nan, verdict, {}, mode="full", status="fail")
    res.messages = msgs + res.messages
    res.diagnosis = {"kind": "nondeterministic", "summary": msgs[0]}
    return res


def _steps(problem: Problem, scheme, sigma: float, eps_eff: float) -> np.ndarray:
    """First step per entry, balancing roundoff sigma/h against truncation h^p |f^(p+1)|.

    With |f^(p+1)| modelled as g/L^p (g = |a_i| + the leaf's rms gradient, L the
    entry's scale) the balance is h = (sigma L^p / g)^(1/(p+1)); for sigma =
    eps|f| and |f| = g L this is the textbook eps^(1/(p+1)) L.  Clipped to
    [eps^(1/(p+1)) L / 256, L] and to at least 16 ulps of x in its buffer dtype.
    """
    if problem.eps is not None:
        return np.full(problem.n, float(problem.eps))
    p = scheme.order
    L = problem.L
    g = np.abs(problem.analytic) + problem.grad_scale
    plain = scheme.base_step(eps_eff) * L
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(g > 0, (sigma * L**p / g) ** (1.0 / (p + 1)), plain)
    h = np.clip(np.nan_to_num(h, nan=1.0), plain / 256.0, L)
    for k, leaf in enumerate(problem.spec.leaves):
        dt = problem.ev.flat[k].dtype
        x = problem.x0[leaf.slice].astype(dt)
        h[leaf.slice] = np.maximum(h[leaf.slice], 16.0 * np.spacing(np.abs(x)).astype(np.float64))
    return h


def noise_level(problem: Problem):
    """Measure f's noise once per check (cached on the problem): (sigma, eps_eff).

    eps_eff = sigma/|f0| is the relative precision f is really computed to
    (at least its dtype's eps), which sets the default steps."""
    if getattr(problem, "sigma", None) is not None:
        return problem.sigma, problem.eps_eff
    sigma, eps_f = problem.measure_noise()
    f0 = float(np.real(problem.ev.f0))
    eps_eff = min(max(eps_f, sigma / abs(f0)) if f0 != 0 else eps_f, 1e-2)
    if sigma > 1e3 * eps_f * abs(f0) and f0 != 0:
        problem.messages.append(
            f"fun is noisy at the {sigma / abs(f0):.1g} level relative to its value (about "
            f"{sigma / (eps_f * abs(f0)):.0f} units of roundoff); it probably computes in lower precision than it "
            f"returns. Steps and tolerances follow the measured noise")
    problem.sigma, problem.eps_eff = sigma, eps_eff
    return sigma, eps_eff


def _finite_differences(problem: Problem, judge: Judge):
    """Every entry: see entry_estimates."""
    return entry_estimates(problem, judge, np.arange(problem.n))


def entry_estimates(problem: Problem, judge: Judge, idx: np.ndarray):
    """Entry-wise estimates and verdicts for the entries ``idx`` (full mode uses all of them;
    fast mode the suspects it localised).

    Stage A: one step per entry from the error model, 2 evaluations (central).
    Stage B: refine the entries that do not agree at once.  Returns full-length
    arrays (numeric, err, verdict) with NaN / INCONCLUSIVE outside ``idx``, and
    reasons keyed by global index.
    """
    scheme = SCHEMES[problem.method]
    sigma, eps_eff = noise_level(problem)
    f0 = float(problem.ev.f0)
    idx = np.asarray(idx, dtype=np.int64)
    a = problem.analytic[idx]
    h = _steps(problem, scheme, sigma, eps_eff)[idx]
    offs = [o for o in scheme.offsets if o != 0.0]
    D, heff, vals, actual = _first_step(problem, scheme, offs, h, idx)
    R = scheme.weight_norm * sigma / heff
    # A step scaled by a tiny |x| (params ~1e-6 in a function that varies on the
    # scale of 1) drowns the estimate in roundoff: R ~ sigma/h.  Where the
    # tolerance that roundoff alone forces is far above what the scheme can
    # reach (RHO_TARGET x its optimal relative error), take a larger first step.
    # The symptom: the second difference f(x+h) - 2f(x) + f(x-h) is lost in the
    # noise (it is ~ f'' h^2, far above sigma at a well-chosen step).
    target = RHO_TARGET * eps_eff ** (scheme.order / (scheme.order + 1.0)) * (np.abs(a) + problem.grad_scale[idx])
    second = _second_difference(offs, vals, f0)
    loose = np.flatnonzero((SAFETY * R > target) & (target > 0) & np.isfinite(R) & (np.abs(second) < 100.0 * sigma))
    if problem.eps is None and loose.size:
        grow = np.minimum(SAFETY * R[loose] / target[loose], R_FACTOR ** MAX_LEVELS)
        # never beyond the entry's own scale: far above it a difference quotient
        # measures the far field (a plateau at 0 for anything bounded), not f'
        h[loose] = np.minimum(h[loose] * R_FACTOR ** np.ceil(np.log(grow) / np.log(R_FACTOR)),
                              np.maximum(problem.room[idx[loose]], h[loose]))
        D2, heff2, vals2, actual2 = _first_step(problem, scheme, offs, h[loose], idx[loose])
        D[loose], heff[loose] = D2, heff2
        vals[:, loose], actual[:, loose] = vals2, actual2
        R = scheme.weight_norm * sigma / heff
    n = problem.n
    numeric = np.full(n, np.nan)
    err = np.full(n, np.nan)
    verdict = np.full(n, INCONCLUSIVE, dtype=np.int8)
    numeric[idx], err[idx], verdict[idx] = D, R, PASS
    reasons: dict[int, str] = {}
    tol = judge.tol_vec(numeric, err)[idx]
    todo = np.flatnonzero(~(np.abs(D - a) <= tol))
    fwd, bwd = _onesided(offs, vals, actual, f0, scheme.uses_center)
    for c in todo:
        i = int(idx[c])
        numeric[i], err[i], verdict[i], why = _refine(problem, judge, scheme, i, h[c], D[c], fwd[c], bwd[c], sigma)
        if why:
            reasons[i] = why
    _mark_unresolved(problem, judge, idx, h, numeric, err, verdict, reasons)
    return numeric, err, verdict, reasons


def _larger_steps(problem, judge, scheme, i, h):
    """A chain from 256 h down to 4 h (at most the scale of the entry or its leaf) for one entry:
    (estimate, error, verdict) or None."""
    sigma = problem.sigma
    ks = [k for k in (4, 3, 2, 1) if h * R_FACTOR**k <= problem.room[i]]  # not beyond its leaf's scale
    if len(ks) < 2:
        return None
    chain = _Chain(problem, judge, scheme, i, sigma)
    chain.informative = math.inf  # any pass will do here; resolution is judged by the caller
    chain.start(*_level(problem, scheme, i, h * R_FACTOR**ks[0])[:3])
    for k in ks[1:]:
        got = chain.feed(*_level(problem, scheme, i, h * R_FACTOR**k))
        if got is not None:
            return got
    return None


def _mark_unresolved(problem, judge, idx, h, numeric, err, verdict, reasons):
    """A pass that a sign flip would also get is no verification: inconclusive.

    Only for entries above the analytic floor (below it, an entry is zero to
    the precision of its dtype, and agreeing with ~0 is the right answer)."""
    if judge.explicit:
        return
    a = problem.analytic[idx]
    fd_bound = SAFETY * err[idx]
    tol = judge.tol_vec(numeric, err)[idx]
    weak = (verdict[idx] == PASS) & (np.abs(a) > problem.floor[idx]) & (np.abs(-a - numeric[idx]) <= tol)
    scheme = SCHEMES[problem.method]
    for c in np.flatnonzero(weak):
        i = int(idx[c])
        # first try larger steps (less roundoff): a tiny |x_i| may have set too small a scale
        got = _larger_steps(problem, judge, scheme, i, h[c])
        if got is not None:
            n_i, e_i, v_i = got
            t_i = judge.tol(i, n_i, e_i)
            if v_i == FAIL or abs(-problem.analytic[i] - n_i) > t_i:
                numeric[i], err[i], verdict[i] = got
                continue
        verdict[i] = INCONCLUSIVE
        reasons[i] = (f"unresolved: finite differences pin this entry down only to +-{fd_bound[c]:.2g}, more than "
                      f"its value {a[c]:.3g} (f's noise is {getattr(problem, 'sigma', 0.0):.2g}); even a sign "
                      f"error would go unnoticed. Try method='complex', a larger eps, or float64")


def _first_step(problem, scheme, offs, h, idx):
    """Stage A for entries ``idx`` at steps ``h`` (aligned with idx): estimates, steps taken, raw values."""
    ev, x0 = problem.ev, problem.x0
    vals = np.empty((len(offs), idx.size))
    actual = np.empty((len(offs), idx.size))
    dts = [f.dtype for f in ev.flat]
    lof = ev.leaf_of[idx]
    for t, o in enumerate(offs):
        for k, dt in enumerate(dts):
            m = lof == k
            if m.any():
                xi = x0[idx[m]]
                actual[t, m] = (xi + o * h[m]).astype(dt).astype(np.float64) - xi
    if problem.batched is not None:
        _stage_a_batched(problem, offs, actual, vals, idx)
    else:
        _stage_a_calls(ev, problem, offs, actual, vals, idx)
    full_vals = _with_center(scheme, offs, vals, float(ev.f0))
    full_actual = _with_center(scheme, offs, actual, 0.0)
    D, heff = _combine(scheme, full_vals, full_actual)
    return D, heff, vals, actual


def _stage_a_calls(ev, problem, offs, actual, vals, idx):
    """The hot loop: perturb one entry, call fun, restore.

    O(1) per call on leaves that alias their buffers; everything the loop
    touches is a Python list so that the checker's own cost per call stays
    well under a microsecond (benchmarks/bench_core.py measures it).
    """
    x0 = problem.x0
    T, m = len(offs), idx.size
    ks = ev.leaf_of[idx].tolist()
    js = ev.local[idx].tolist()
    points = [(x0[idx] + actual[t]).tolist() for t in range(T)]
    out = [[None] * m for _ in range(T)]
    flats, alias, fun, tree = ev.flat, ev.alias, ev.fun, ev.tree
    done = 0
    try:
        for c in range(m):
            k, j = ks[c], js[c]
            if alias[k]:
                flat = flats[k]
                old = flat[j]
                for t in range(T):
                    flat[j] = points[t][c]
                    out[t][c] = fun(tree)
                flat[j] = old
            else:
                for t in range(T):
                    out[t][c] = ev.at(int(idx[c]), points[t][c])
                    ev.n_evals -= 1  # counted below with the others
            done += T
    finally:
        ev.n_evals += done
        ev.restore()
    for t in range(T):
        row = out[t]
        if all(type(v) is float for v in row):
            vals[t] = row
        else:
            vals[t] = [_real(ev, v) for v in row]


def _stage_a_batched(problem, offs, actual, vals, idx):
    """Stage A through a batch evaluator: chunks of perturbed points, one call each.
    n_evals counts the points evaluated, not the calls."""
    m, x0 = idx.size, problem.x0
    rows = problem.batch_rows()
    for t in range(len(offs)):
        for s in range(0, m, rows):
            e = min(m, s + rows)
            pts = np.repeat(x0[None, :], e - s, axis=0)
            sel = idx[s:e]
            pts[np.arange(e - s), sel] = x0[sel] + actual[t, s:e]
            vals[t, s:e] = _call_user(problem.batched, pts, "fun (evaluated on a batch of steps from params)")
            problem.ev.n_evals += e - s


def _real(ev, out):
    """A float from one output of fun (numpy or framework scalar); records its dtype's eps."""
    if type(out) is float:
        return out
    value, eps = scalar_of(out, owners=ev.owners)
    if ev.eps_out is None or eps > ev.eps_out:
        ev.eps_out = eps
    return _real_value(value)


def _real_value(v):
    if isinstance(v, complex):
        return v.real
    return float(v)


def _with_center(scheme, offs, arr, center):
    if not scheme.uses_center:
        return arr
    rows = []
    it = iter(arr)
    for o in scheme.offsets:
        rows.append(np.full(arr.shape[1], center) if o == 0.0 else next(it))
    return np.array(rows)


def _combine(scheme, values, actual):
    """D = sum w_j f_j / h_eff with h_eff the step actually taken, ((x+h)-x)."""
    o = np.array(scheme.offsets)
    span = (actual[-1] - actual[0]) / (o[-1] - o[0])
    w = np.array(scheme.weights)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        D = (w * values).sum(axis=0) / span
    return D, span


def _second_difference(offs, vals, f0):
    """The evidence that a step is lost in noise: f(x+h) - 2 f(x) + f(x-h) where the
    stencil has both sides; for one-sided schemes the first difference itself."""
    if -1.0 in offs and 1.0 in offs:
        return vals[offs.index(1.0)] - 2.0 * f0 + vals[offs.index(-1.0)]
    return vals[0] - f0


def _onesided(offs, vals, actual, f0, need_center):
    """Forward and backward one-sided derivatives at the first step (NaN where a side is missing)."""
    n = vals.shape[1]
    fwd = np.full(n, np.nan)
    bwd = np.full(n, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        for t, o in enumerate(offs):
            if o == 1.0:
                fwd = (vals[t] - f0) / actual[t]
            if o == -1.0:
                bwd = (f0 - vals[t]) / (-actual[t])
    return fwd, bwd


def _level(problem, scheme, i, h):
    """Scheme estimate, one-sided derivatives and step actually taken at step h for entry i."""
    ev = problem.ev
    x = problem.x0[i]
    dt = ev.buffer_dtype(i)
    offs = sorted(set(o for o in scheme.offsets if o != 0.0) | {-1.0, 1.0})
    got = {}
    for o in offs:
        p = dt.type(x + o * h)
        got[o] = (_real_value(ev.at(i, p)), float(p) - x)
    f0 = float(ev.f0)
    values = np.array([[f0 if o == 0.0 else got[o][0]] for o in scheme.offsets])
    actual = np.array([[0.0 if o == 0.0 else got[o][1]] for o in scheme.offsets])
    D, heff = _combine(scheme, values, actual)
    with np.errstate(divide="ignore", invalid="ignore"):
        fwd = (got[1.0][0] - f0) / got[1.0][1]
        bwd = (f0 - got[-1.0][0]) / (-got[-1.0][1])
    finite = all(np.isfinite(v[0]) for v in got.values())
    return float(D[0]), float(fwd), float(bwd), float(heff[0]), finite


class _Chain:
    """Estimates of one entry's derivative at steps shrinking R_FACTOR-fold, judged as they come.

    Kink test, level against level: for a smooth f the one-sided derivatives
    move towards each other symmetrically as h shrinks (fwd - bwd ~ h f''); a
    kink inside the stencil moves one side only, or neither while their gap
    stays.  Levels touched by a kink restart the Richardson chain, so no
    estimate that straddles the kink is trusted.

    A failure needs the plateau a bug leaves: twice in a row, an estimate
    (plain or Richardson-extrapolated) moved less between two steps than a
    tenth of its distance from the analytic value (no asymptotic credit).
    """

    def __init__(self, problem, judge, scheme, i, sigma):
        self.judge, self.i, self.sigma = judge, i, sigma
        self.a = problem.analytic[i]
        self.floor = problem.floor[i]
        # an early pass must be informative: a tolerance within PASS_RESOLUTION of the
        # entry's scale, or 100x what the scheme can reach at f's noise if that is more
        # (else refine on; when the steps run out, any pass counts)
        eps_eff = getattr(problem, "eps_eff", None) or float(np.finfo(np.float64).eps)
        reach = 100.0 * eps_eff ** (scheme.order / (scheme.order + 1.0))
        self.informative = max(PASS_RESOLUTION, reach) * (abs(self.a) + problem.grad_scale[i]) + self.floor
        self.rp = R_FACTOR ** scheme.order
        self.wnorm = scheme.weight_norm
        self.prev_D = self.prev_N = self.prev_fb = self.prev_diff = None
        self.best, self.best_err = math.nan, math.inf
        # a disagreement found at a smaller step that a pass of this chain must resolve (set for the
        # chain from larger steps, whose estimates are less precise than stage A's): see _refine
        self.disc0 = math.inf
        self.streak = 0
        self.state = "unsettled"
        self.kink = None

    def start(self, D, fwd, bwd):
        """The first level: only a reference for the next one."""
        self.prev_D = D if np.isfinite(D) else None
        self.prev_fb = (fwd, bwd) if np.isfinite(fwd) and np.isfinite(bwd) else None
        self.best = D

    def feed(self, D, fwd, bwd, heff, finite):
        """Take one level; return (estimate, error, verdict) when decided, else None."""
        judge, i, a, sigma = self.judge, self.i, self.a, self.sigma
        if not finite or not np.isfinite(D):
            self.state, self.prev_D, self.prev_N, self.prev_fb, self.streak = "nonfinite", None, None, None, 0
            self.prev_diff = None
            return None
        R = self.wnorm * sigma / heff
        noise1 = SAFETY * math.sqrt(2.0) * sigma / heff + self.floor
        kinky = False
        if self.prev_fb is not None and np.isfinite(fwd) and np.isfinite(bwd):
            dfw, dbw = fwd - self.prev_fb[0], bwd - self.prev_fb[1]
            moved = max(abs(dfw), abs(dbw)) > noise1
            asym = abs(dfw + dbw) > 0.5 * (abs(dfw) + abs(dbw))
            gap, prev_gap = abs(fwd - bwd), abs(self.prev_fb[0] - self.prev_fb[1])
            stuck = gap > noise1 and gap > 0.5 * prev_gap
            kinky = (moved and asym) or stuck
        self.prev_fb = (fwd, bwd) if np.isfinite(fwd) and np.isfinite(bwd) else None
        if kinky:
            widen = judge.tol(i, max(abs(fwd), abs(bwd)), R)
            lo, hi = min(fwd, bwd) - widen, max(fwd, bwd) + widen
            self.kink = (min(fwd, bwd), max(fwd, bwd), heff, R)
            self.state = "kink-in" if lo <= a <= hi else "kink-out"
            self.prev_D, self.prev_N, self.prev_diff, self.streak = None, None, None, 0
            self.best, self.best_err = D, math.inf
            return None
        if self.prev_D is None:
            # first clean level after a reset: strict (roundoff-only) pass test, no confirmation yet
            self.prev_D, self.best, self.best_err, self.state = D, D, math.inf, "unsettled"
            if abs(D - a) <= judge.tol(i, D, R):
                return D, R, PASS
            return None
        rp = self.rp
        diff = abs(D - self.prev_D)
        # converged: the estimates settle as the scheme's order says (each difference
        # r^p/4 times smaller than the last) or differ by noise only.  Far from the
        # asymptotic regime (a step far above f's scale) they do neither.
        converged = diff <= SAFETY * 2.0 * R or (self.prev_diff is not None and diff <= self.prev_diff * 4.0 / rp)
        self.prev_diff = diff
        N = D + (D - self.prev_D) / (rp - 1.0)
        cands = [(D, abs(D - self.prev_D) / (rp - 1.0) + R, abs(D - self.prev_D) + R)]
        if self.prev_N is not None:
            cands.append((N, abs(N - self.prev_N) + R * (rp + 1.0) / (rp - 1.0),
                          abs(N - self.prev_N) + R * (rp + 1.0) / (rp - 1.0)))
        self.prev_N, self.prev_D = N, D
        for est, e, _ in cands:
            if e < self.best_err:
                self.best, self.best_err = est, e
        t = judge.tol(i, self.best, self.best_err)
        if abs(self.best - a) <= t and t <= self.informative and t < self.disc0:
            return self.best, self.best_err, PASS
        if converged and any(abs(est - a) > judge.tol(i, est, e_cons) for est, _, e_cons in cands):
            self.state = "disagree"
            self.streak += 1
            if self.streak >= 2:
                return self.best, self.best_err, FAIL
        else:
            self.state, self.streak = "unsettled", 0
        return None

    def final(self):
        """Verdict when the steps run out: (estimate, error, verdict, reason)."""
        b, e = self.best, self.best_err
        if self.state in ("unsettled", "disagree") and math.isfinite(e) and \
                abs(b - self.a) <= self.judge.tol(self.i, b, e):
            return b, e, PASS, ""
        if self.state in ("kink-in", "kink-out"):
            # Report against the nearer one-sided derivative, with the one-sided roundoff as
            # the error, so that ratio > 1 means "outside the subgradient interval".
            k = self.kink
            b = k[0] if abs(self.a - k[0]) <= abs(self.a - k[1]) else k[1]
            e = k[3]
            if self.state == "kink-in" and not k[0] <= self.a <= k[1]:
                e = max(e, abs(self.a - b) / SAFETY)
            elif self.state == "kink-in":
                b = self.a
        if self.state == "kink-in":
            k = self.kink
            return b, e, INCONCLUSIVE, (
                f"kink: fun is not differentiable within {k[2]:.2g} of this point; the one-sided derivatives are "
                f"{k[0]:.6g} and {k[1]:.6g} and the analytic value lies between them (a valid subgradient)")
        if self.state == "kink-out":
            k = self.kink
            return b, e, FAIL, (f"kink: the one-sided derivatives are {k[0]:.6g} and {k[1]:.6g}; "
                                f"the analytic value lies outside them")
        if self.state == "nonfinite":
            return b, e, INCONCLUSIVE, "fun is not finite at the perturbed points of every usable step"
        if self.state == "disagree":
            return b, e, FAIL, "the two smallest usable steps agree with each other, not with the analytic value"
        return b, e, INCONCLUSIVE, "the finite-difference estimates did not settle as the step changed"


def _refine(problem, judge, scheme, i, h0, D0, fwd0, bwd0, sigma):
    """Stage B for one entry: a chain of shrinking steps from h0; if that does not
    settle (roundoff grows as h shrinks), a second chain from R_FACTOR^2 h0 down to h0."""
    x = problem.x0[i]
    dt = problem.ev.buffer_dtype(i)
    hmin = 16.0 * float(np.spacing(dt.type(abs(x)))) if x != 0 else 16.0 * float(np.finfo(dt).tiny)
    chain = _Chain(problem, judge, scheme, i, sigma)
    chain.start(D0, fwd0, bwd0)
    h = h0
    # an explicit first step may sit far above f's scale: allow twice the levels
    for _ in range(MAX_LEVELS if problem.eps is None else 2 * MAX_LEVELS):
        h = h / R_FACTOR
        if h < hmin:
            break
        got = chain.feed(*_level(problem, scheme, i, h))
        if got is not None:
            return (*got, "")
    first = chain.final()
    if chain.state != "unsettled" or h0 * R_FACTOR**2 > max(problem.room[i], h0):
        return first
    up = _Chain(problem, judge, scheme, i, sigma)
    up.start(*_level(problem, scheme, i, h0 * R_FACTOR**2)[:3])
    # larger steps cost truncation: an early pass of theirs must be tighter than the disagreement
    # stage A found at h0, or it would overrule a more precise estimate with a less precise one
    # (central4 at a loss scale of 1e-8 passed an error of 30x its tolerance that way)
    up.disc0 = abs(D0 - problem.analytic[i]) if np.isfinite(D0) else math.inf
    for lvl in (_level(problem, scheme, i, h0 * R_FACTOR), (D0, fwd0, bwd0, h0, bool(np.isfinite(D0)))):
        got = up.feed(*lvl)
        if got is not None:
            return (*got, "")
    second = up.final()
    return second if second[2] == FAIL else first


def _complex_step(problem: Problem):
    """Im f(x + i h e_i)/h: no cancellation, error ~ eps*|f'|. Checked for analyticity first."""
    ev = problem.ev
    n = problem.n
    eps_f = ev.eps_out or float(np.finfo(np.float64).eps)
    h = COMPLEX_STEP * problem.L
    D = np.empty(n)
    for i in range(n):
        v = ev.at(i, problem.x0[i] + 1j * h[i])
        if not isinstance(v, complex):
            raise GradcheckInputError("method='complex' needs complex-analytic code, but fun returned a real value "
                                      "for complex input")
        D[i] = v.imag / h[i]
    _check_analytic(problem, D)
    scale = np.empty(n)
    for leaf in problem.spec.leaves:
        d = D[leaf.slice]
        scale[leaf.slice] = float(np.sqrt(np.mean(d * d)))
    err = 16.0 * eps_f * (np.abs(D) + scale)
    return D, err


def _check_analytic(problem, D):
    """A random directional derivative by complex step must match real central differences."""
    ev = problem.ev
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


# ---------------------------------------------------------------------------
def assemble(problem: Problem, judge: Judge, numeric, err, verdict, reasons, *, mode, status=None,
             checked=None) -> GradcheckResult:
    """Per-entry arrays -> GradcheckResult (worst entries, leaf summaries, histogram)."""
    a = problem.analytic
    n = problem.n
    checked = np.ones(n, dtype=bool) if checked is None else checked
    ci = np.flatnonzero(checked)  # fast mode checks few entries: work on those, not on all n
    # per-entry numbers of the checked entries (NaN elsewhere: numeric is NaN there)
    sub = None if ci.size == n else ci
    tol, ratio, diff, rel = (np.full(n, np.nan) for _ in range(4)) if sub is not None else (None,) * 4
    with np.errstate(invalid="ignore", divide="ignore"):
        a_c = a if sub is None else a[sub]
        n_c = numeric if sub is None else numeric[sub]
        t_c = judge.tol_vec(n_c, err if sub is None else err[sub], sub)
        d_c = np.abs(a_c - n_c)
        r_c = np.where(t_c > 0, d_c / t_c, np.where(d_c == 0, 0.0, np.inf))
        denom = np.maximum(np.maximum(np.abs(a_c), np.abs(n_c)), problem.grad_scale if sub is None else problem.grad_scale[sub])
        e_c = np.where(denom > 0, d_c / denom, 0.0)
    if sub is None:
        tol, diff, ratio, rel = t_c, d_c, r_c, e_c
    else:
        tol[sub], diff[sub], ratio[sub], rel[sub] = t_c, d_c, r_c, e_c
    m = checked & np.isfinite(diff)
    cv = verdict[ci]
    counts = {"pass": int((cv == PASS).sum()), "fail": int((cv == FAIL).sum()),
              "inconclusive": int((cv == INCONCLUSIVE).sum())}
    if status is None:
        status = "fail" if counts["fail"] else ("inconclusive" if counts["inconclusive"] else "pass")
    # worst first: failures, then inconclusive, then passes; within each, by ratio
    order_key = np.where(cv == FAIL, 2.0, np.where(cv == INCONCLUSIVE, 1.0, 0.0))
    r = np.nan_to_num(ratio[ci], nan=-1.0, posinf=1e308)
    idx = ci[np.lexsort((-r, -order_key))[:MAX_WORST]]
    worst = []
    for i in idx:
        path, index = unravel(problem.spec, int(i))
        worst.append(EntryReport(path, index, float(a[i]), float(numeric[i]), float(err[i]), float(tol[i]),
                                 _VERDICT[int(verdict[i])], reasons.get(int(i), "")))
    leaves = []
    for leaf in problem.spec.leaves:
        sl = leaf.slice
        c = checked[sl]
        if c.size and not c.any():
            leaves.append(LeafSummary(leaf.path, leaf.shape, leaf.dtype_name, 0.0,
                                      {"pass": 0, "fail": 0, "inconclusive": 0}, None))
            continue
        v = verdict[sl]
        lr = np.where(c, np.nan_to_num(ratio[sl], nan=0.0), 0.0)
        leaves.append(LeafSummary(leaf.path, leaf.shape, leaf.dtype_name,
                                  float(lr.max()) if lr.size else 0.0,
                                  {"pass": int(((v == PASS) & c).sum()), "fail": int(((v == FAIL) & c).sum()),
                                   "inconclusive": int(((v == INCONCLUSIVE) & c).sum())},
                                  ratio_grid(lr, leaf.shape) if c.all() else None))
    res = GradcheckResult(
        status=status, kind=problem.kind, mode=mode, method=problem.method, seed=problem.seed,
        n_params=n, n_checked=int(checked.sum()), n_evals=problem.ev.n_evals,
        max_abs_error=float(diff[m].max()) if m.any() else 0.0,
        max_rel_error=float(rel[m].max()) if m.any() else 0.0,
        max_ratio=float(np.nan_to_num(ratio[m], nan=0.0).max()) if m.any() else 0.0,
        tolerance=judge.describe(), counts=counts,
        histogram=ratio_histogram(ratio[m]), worst=worst, leaves=leaves,
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
