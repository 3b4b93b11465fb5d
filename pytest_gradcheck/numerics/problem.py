"""Problem: a check's inputs, validated and prepared once.

``validate`` rejects bad arguments before fun is first called; ``Problem``
flattens params, computes the analytic side, builds the evaluator (native or
float64 buffers, batched when the framework offers it), and derives the
per-entry scales and analytic floors every stage of a check reads.

Layer: numerics, middle (above evaluate, trees, verdict, steps, noise).  Imports
errors, pytree, frameworks.base (``batched_agrees``) and those modules; never
the stages (refine, entries, full, fast) or the public checks.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..errors import GradcheckInputError, GradcheckUserCodeError
from ..frameworks.base import batched_agrees
from ..pytree import unravel
from .evaluate import Evaluator, user_code
from .noise import gradient_noise
from .reach import Reach
from .steps import entry_scales
from .stencils import METHODS
from .trees import flatten, flatten_like, unflatten
from .verdict import analytic_floor

#: two calls at the same point may differ by this many units of roundoff
#: (eps*|f|) before the function counts as nondeterministic rather than noisy
NONDET_ULPS = 1e3
#: memory budget for batched evaluation (the (B, n) array of points, with room
#: for the framework's own copies)
BATCH_MEMORY = 256 * 2**20
#: check_gradient's modes: every entry, random probes, or full up to fast.AUTO_FULL_MAX parameters
MODES = ("full", "fast", "auto")


class Problem:
    """Everything a check needs, prepared once: the flat point, the analytic
    gradient, the evaluator, the measured noise and the per-entry scales."""

    def __init__(self, fun, params, grad, method, eps, atol, rtol, seed, kind="gradient",
                 vectorized=None, batch_memory=BATCH_MEMORY):
        self.t0 = time.perf_counter()
        check_batch_memory(batch_memory)
        self.vectorized, self.batch_memory = vectorized, batch_memory
        self.method, self.eps, self.atol, self.rtol, self.seed, self.kind = method, eps, atol, rtol, seed, kind
        self.messages: list[str] = []
        self.rng = np.random.default_rng(seed)
        if isinstance(grad, np.bool_) and grad:  # np.True_ (a flag read from numpy data) is True
            grad = True
        # what wrote the analytic side, for the diagnosis to name it: the user's grad, their
        # (value, gradient) fun, autodiff through fun, or what a wrapper's grad says it runs
        # (check_function: "MyFunction.backward")
        self.analytic_by = "autodiff" if grad is None else (
            "fun" if grad is True else str(getattr(grad, "gradcheck_name", "grad")))
        if grad is True:  # scipy.optimize.minimize(jac=True): fun returns (value, gradient)
            self.fun, grad = value_part(fun), gradient_part(fun)
        else:
            self.fun = fun
        self.x0, self.spec = flatten(params)
        if self.spec.size == 0:
            raise GradcheckInputError("params is empty: there is nothing to check")
        self.n = self.spec.size
        self.held = self._held()
        # the arrays fun and grad can reach besides params (closures, globals, self): a change
        # to one of them is named as in-place mutation, not mistaken for nondeterminism
        self.reach = Reach({"fun": fun, "grad": None if getattr(grad, "value_and_grad", False) or not callable(grad)
                            else grad})
        self.analytic, self.eps_a = self._analytic(grad)
        self.check_untouched("grad" if callable(grad) and not getattr(grad, "value_and_grad", False) else "fun")
        self.ev = self._evaluator()
        self.check_untouched("fun")
        self.leaf_of = self.ev.leaf_of
        self._scales()
        self.batched = self._batched()
        self.batching_pays = None  # decided by stage A's timed trial (entries._stage_a_batched)

    def _held(self):
        """The non-finite entries of params (-inf attention masks): held fixed at their values, not
        checked (a bool mask), or None.  Every step along a direction leaves them where they are
        (their scale L is 0; inf + a finite step is inf), and the gradient is not read there."""
        bad = ~np.isfinite(self.x0)
        if not bad.any():
            return None
        if bad.all():
            raise GradcheckInputError("params has no finite entry: there is nothing to check "
                                      "(non-finite entries are held fixed and not checked)")
        where = []
        for i in np.flatnonzero(bad)[:3]:
            path, idx = unravel(self.spec, int(i))
            where.append(f"{path}{list(idx) if idx else ''} = {self.x0[i]}")
        n_bad = int(bad.sum())
        self.messages.append(
            f"{n_bad} non-finite entr{'y' if n_bad == 1 else 'ies'} of params held fixed and not checked "
            f"({', '.join(where)}{', ...' if n_bad > 3 else ''}); the {self.n - n_bad} finite entries are checked")
        self.spec.held = bad
        return bad

    # -- the analytic side -------------------------------------------------
    def native_tree(self):
        """A fresh copy of params in their native dtypes (what grad is called with)."""
        return unflatten(self.spec, self.x0)

    def _analytic(self, grad):
        if grad is None:
            adapters = [leaf.adapter for leaf in self.spec.leaves]

            def gradient(tree):
                for ad in adapters:
                    with user_code():
                        g = ad.gradient(self.fun, tree)
                    if g is not None:
                        return g
                raise GradcheckInputError(
                    "grad is required for plain numpy functions: pass grad=<function returning the gradient "
                    "of fun in the structure of params> (torch and jax can supply it by autodiff), or grad=True "
                    "when fun returns (value, gradient) as scipy.optimize.minimize(jac=True) objectives do")
        else:
            if not callable(grad):
                raise GradcheckInputError(
                    f"grad must be callable, None (torch/jax autodiff) or True (fun returns (value, gradient), "
                    f"as scipy.optimize.minimize(jac=True) objectives do); got {type(grad).__name__}")

            what = "fun (grad=True: it returns (value, gradient))" if getattr(grad, "value_and_grad", False) else "grad"

            def gradient(tree):
                return call_user(grad, tree, what=what)
        self.gradient_of = gradient  # params tree -> analytic gradient tree
        tree = self.native_tree()
        vec, dtypes = flatten_like(gradient(tree), self.spec, "grad")
        copies = grad is None and all(leaf.adapter.gradient_copies_params for leaf in self.spec.leaves)
        where = None if copies else _modified(self.spec, tree, self.x0)
        if where:
            raise GradcheckInputError(f"grad modified its input in place (leaf {where!r}); it must not change params")
        self._grad_repeat = flatten_like(gradient(self.native_tree()), self.spec, "grad")[0] if grad is not None else vec
        per_leaf = []
        self.grad_dtypes = []
        for leaf, dt in zip(self.spec.leaves, dtypes):
            e = float(np.finfo(dt).eps) if np.issubdtype(dt, np.floating) else float(np.finfo(np.float64).eps)
            per_leaf.append(max(e, leaf.eps if leaf.is_float else e))
            self.grad_dtypes.append(leaf.dtype_name if e <= leaf.eps else str(np.dtype(dt)))
            if leaf.is_float and e > leaf.eps:
                # a float32 gradient of float64 code (a cast in grad) is judged at float32's precision:
                # it passes with a smaller margin, and the user may not know the cast is there (issue 20 C.13)
                self.messages.append(
                    f"grad returns {np.dtype(dt)} for leaf {leaf.path!r} whose params are {leaf.dtype_name}: "
                    f"the gradient is judged at {np.dtype(dt)}'s precision (eps {e:.3g}), not {leaf.dtype_name}'s")
        if len(set(per_leaf)) == 1:  # one value for all: a broadcast, not an n-vector (read-only)
            return vec, np.broadcast_to(np.float64(per_leaf[0]), (self.n,))
        eps_a = np.empty(self.n)
        for leaf, e in zip(self.spec.leaves, per_leaf):
            eps_a[leaf.slice] = e
        return vec, eps_a

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
            ev = Evaluator(wrapped, self.spec, self.x0, dtypes, held=self.held)
            try:
                f0 = ev.call()
            except GradcheckInputError:
                raise
            except Exception as e:  # noqa: BLE001 - any failure of fun at float64 means "try native"
                last_err = e
                continue
            if numpy_ok:
                ev = _numpy_leaf_evaluator(wrapped, self.spec, self.x0, dtypes, f0) or ev
            if not complex_step and (isinstance(f0, complex) or np.iscomplexobj(f0)):
                raise GradcheckInputError(
                    f"fun returned a complex value ({f0!r}) at params; gradients are checked for real-valued "
                    f"functions: return a real number (e.g. .real, abs(...)**2), or use method='complex' if fun "
                    f"is real on real input and complex-analytic")
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
                    "fun did not run with float64 params ("
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
        raise GradcheckUserCodeError(f"fun raised {type(last_err).__name__} at params: {last_err}") from last_err

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
        if run is not None:
            run = _in_user_code(run)
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
        held = self.held
        self.L, self.room = entry_scales(self.x0 if held is None else np.where(held, 0.0, self.x0), self.spec)
        if held is not None:
            self.L[held] = self.room[held] = 0.0  # no step moves an entry that is held fixed
        self.grad_noise = gradient_noise(self)
        self.grad_scale, self.floor = analytic_floor(self.spec, self.analytic, self.eps_a, self.grad_noise)
        if held is not None:
            self.grad_scale[held] = self.floor[held] = 0.0  # nothing is judged there
        elif len(self.spec.leaves) == 1:  # one typical |a| for every entry: a broadcast, not an n-vector
            self.grad_scale = np.broadcast_to(np.float64(self.grad_scale[0]), (self.n,))
        self._grad_repeat_msg = self._compare_grad_repeat()
        del self._grad_repeat  # an n-vector no later stage needs

    def _compare_grad_repeat(self):
        """The message for a gradient that differs between two calls by more than its floor, or None."""
        if self._grad_repeat is self.analytic:
            return None
        dg = np.abs(self._grad_repeat - self.analytic)
        dg -= self.floor
        if not (dg > 0).any():
            return None
        i = int(np.argmax(dg))
        path, idx = unravel(self.spec, i)
        return (f"grad is nondeterministic: two calls differ by {abs(self._grad_repeat[i] - self.analytic[i]):.3g} "
                f"at {path}{list(idx) if idx else ''}, more than its floating-point floor; seed any randomness in grad")

    def check_untouched(self, who: str) -> None:
        """GradcheckInputError when an array fun or grad can reach changed since the check began
        (``who`` ran last).  The arrays are not restored: the caller's arrays are not ours to write."""
        if self.reach.changed() is None:
            return
        scratch = self.reach.settle(self._rerun(who), self.x0, self._distant_points())
        if scratch:
            self.messages.append(
                f"{who} writes into arrays it owns on every call ({', '.join(scratch)}); what they hold follows "
                f"each call's input (calls elsewhere and one at params again left the same bytes), so they are "
                f"scratch buffers, not in-place mutation of data it reads")
        if self.reach.changed() is None:
            return
        unread = self.reach.unread(self._rerun(who), self.x0, self.seed)
        if unread:
            self.messages.append(
                f"{who} changes arrays it never reads ({', '.join(unread)}): replacing their contents left its "
                f"value at params bit for bit the same, so they are side effects (a counter, a running mean, "
                f"a log), not data of the function")
        got = self.reach.changed()
        if got is None:
            return
        owner, where = got
        raise GradcheckInputError(
            f"{who} modified an array in place that it does not own: {where} (reached from {owner}) changed "
            f"during the check, and what it holds depends on earlier calls, not only on the latest one's input "
            f"(so it is no scratch buffer). A checked function must not change its inputs or the data it reads: "
            f"e.g. `dout = R; dout[x <= 0] = 0` writes into R (copy first: `dout = R.copy()`). Every later call "
            f"would see other data, so the finite differences would not be of the same function")

    def _rerun(self, who: str):
        """``who`` (the function that ran last) as a function of a flat point, returning what it
        returned (fun's value, or the flat gradient): for Reach.settle."""
        if who == "fun" and getattr(self, "ev", None) is not None:
            return lambda x: self.ev.at_vector(x)
        return lambda x: flatten_like(self.gradient_of(unflatten(self.spec, x)), self.spec, "grad")[0]

    def _distant_points(self) -> list[np.ndarray]:
        """Points where the function's data, if it were corrupted along, would be corrupted
        differently: params with every sign flipped (a ReLU mask written into the data flips
        everywhere), and params moved by about their own scale in every entry (seeded)."""
        _, room = entry_scales(self.x0, self.spec)
        rng = np.random.default_rng([self.seed, 0x5C4A])
        with np.errstate(invalid="ignore", over="ignore"):
            return [np.where(self.x0 != 0, -self.x0, room), self.x0 + room * rng.standard_normal(self.n)]

    def check_base(self):
        """Repeat f at the base point and the gradient: nondeterminism fails the check."""
        f0 = self.ev.f0
        f1 = self.ev.call()
        self.check_untouched("fun")
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
        if self._grad_repeat_msg:
            msgs.append(self._grad_repeat_msg)
        where = self.ev.modified_leaf()
        if where:
            raise GradcheckInputError(f"fun modified its input in place (leaf {where!r}); it must not change params")
        return msgs


def _numpy_leaf_evaluator(nfun, spec, x0, dtypes, f0):
    """An evaluator handing fun views of its buffers (Adapter.takes_numpy_leaves), if fun gives the
    very same value with them at the base point; None otherwise.  Its count of evaluations starts
    at 2: the call made with framework leaves and the confirming one."""
    ev = Evaluator(nfun, spec, x0, dtypes, numpy_leaves=True, held=spec.held)
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


def _modified(spec, tree, x0):
    """Path of a leaf of ``tree`` (built by native_tree) that no longer equals x0."""
    vec, _ = flatten_like(tree, spec, "params")
    for leaf in spec.leaves:
        base = x0[leaf.slice].astype(leaf.dtype).astype(np.float64)
        if spec.held is not None:  # read as 0 there by flatten_like; compare the finite entries
            base = np.where(spec.held[leaf.slice], 0.0, base)
        if not np.array_equal(vec[leaf.slice], base):
            return leaf.path
    return None


def _in_user_code(run):
    """A batch evaluator run with the caller's floating-point settings (it calls their fun)."""
    def batched(points):
        with user_code():
            return run(points)
    return batched


def _split(out):
    """(value, gradient) from what a grad=True fun returned; GradcheckInputError otherwise."""
    if isinstance(out, (tuple, list)) and len(out) == 2:
        return out
    got = f"a {type(out).__name__} of length {len(out)}" if isinstance(out, (tuple, list)) else type(out).__name__
    raise GradcheckInputError(f"grad=True means fun returns (value, gradient), as scipy.optimize.minimize(jac=True) "
                              f"objectives do; it returned {got}")


def value_part(fun):
    """fun for the numeric side of a grad=True check: the value only (the gradient it also returns is
    computed and dropped; perturbed points need only the value)."""
    def value(tree):
        return _split(fun(tree))[0]
    return value


def gradient_part(fun):
    """grad for a grad=True check: the gradient fun returns with its value at params."""
    def gradient(tree):
        return _split(fun(tree))[1]
    gradient.value_and_grad = True
    return gradient


def call_user(f, *args, what):
    """``f(*args)``; any exception but GradcheckInputError becomes a GradcheckUserCodeError (a
    GradcheckInputError too) naming ``what`` raised it, with the user's exception as its cause."""
    __tracebackhide__ = True
    try:
        with user_code():
            return f(*args)
    except GradcheckInputError:
        raise
    except Exception as e:  # noqa: BLE001
        raise GradcheckUserCodeError(f"{what} raised {type(e).__name__}: {e}") from e


def check_batch_memory(batch_memory) -> None:
    """``batch_memory`` is a positive, finite number of bytes; GradcheckInputError otherwise."""
    ok = (not isinstance(batch_memory, bool) and isinstance(batch_memory, (int, float, np.integer, np.floating))
          and math.isfinite(batch_memory) and batch_memory > 0)
    if not ok:
        raise GradcheckInputError(f"batch_memory must be a positive number of bytes (the memory batched evaluation "
                                  f"may use, default {BATCH_MEMORY}); got {batch_memory!r}")


def validate(fun, method, mode, eps, atol, rtol, seed):
    """The arguments every checker shares, rejected with a clear error before fun is first called."""
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
