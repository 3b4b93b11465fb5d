"""Calling the user's function on perturbed copies of the parameters.

The checker owns one set of buffers (numpy arrays, one per leaf) and a pytree
built from them.  Perturbing entry i writes one number into a buffer, calls
``fun``, and writes the old number back: O(1) work per evaluation when the
leaf aliases its buffer, which keeps the checker's overhead small next to a
cheap function.  The caller's arrays are never handed to ``fun``.

Floating-point warnings: the checker's own arithmetic meets overflow and 0/0 at
extreme steps and magnitudes (gradients near 1e308, steps past the float range)
and handles the inf / NaN it gets; under ``filterwarnings = error`` numpy's
RuntimeWarnings would turn that into raw tracebacks.  ``own_numerics`` (on every
public check) turns numpy's floating-point reports off for the check, and
``user_code()`` puts the caller's own settings back around every call of fun,
grad and the like, so the user's warnings filters still apply to their code.

Layer: numerics, bottom (beside trees.py).  Imports errors, pytree (``build``)
and frameworks.outputs (``scalar_of``); nothing else of numerics/.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools

import numpy as np

from ..errors import GradcheckInputError, GradcheckUserCodeError
from ..frameworks.outputs import scalar_of
from ..pytree import TreeSpec, builder, same_structure, unravel


#: the caller's numpy floating-point settings while a public check runs, else None
_CALLER_ERRSTATE: contextvars.ContextVar = contextvars.ContextVar("gradcheck_caller_errstate", default=None)

try:  # numpy >= 2 keeps its floating-point settings in one context variable (np.errstate sets it)
    from numpy._core._ufunc_config import _extobj_contextvar as _NUMPY_FP_STATE
except ImportError:  # pragma: no cover - a numpy that moved it: np.errstate, about 1 us more per call
    _NUMPY_FP_STATE = None

_NO_CONTEXT = contextlib.nullcontext()


def own_numerics(check):
    """Decorator for the public checks: numpy reports no floating-point errors of the checker's own
    arithmetic (it handles the inf and NaN), while ``user_code()`` restores the caller's settings."""
    @functools.wraps(check)
    def run(*args, **kwargs):
        __tracebackhide__ = True
        if _CALLER_ERRSTATE.get() is not None:  # a check inside a check (second order): already set
            return check(*args, **kwargs)
        token = _CALLER_ERRSTATE.set(np.geterr() if _NUMPY_FP_STATE is None else _NUMPY_FP_STATE.get())
        try:
            with np.errstate(all="ignore"):
                return check(*args, **kwargs)
        finally:
            _CALLER_ERRSTATE.reset(token)

    return run


class _CallerSettings:
    """Puts the caller's own numpy settings object back for the duration of a ``with`` (their
    np.seterrcall too): two context-variable operations, where an np.errstate built from
    np.geterr()'s dict costs ~1 us per call of fun -- a dozen calls at every check's setup."""

    __slots__ = ("state", "token")

    def __init__(self, state):
        self.state = state

    def __enter__(self):
        self.token = _NUMPY_FP_STATE.set(self.state)

    def __exit__(self, *exc):
        _NUMPY_FP_STATE.reset(self.token)


def user_code():
    """The context every call of the user's code runs in: the caller's numpy floating-point settings
    (their overflow in fun warns, or raises, exactly as outside the check)."""
    state = _CALLER_ERRSTATE.get()
    if state is None:
        return _NO_CONTEXT
    return np.errstate(**state) if _NUMPY_FP_STATE is None else _CallerSettings(state)


def beyond_entry(value, x: float) -> bool:
    """Is the point ``value`` of an entry at ``x`` further from x than |x| (a step that crosses 0 or
    leaves the entry's own scale, where fun's domain may end)?"""
    if isinstance(value, complex):
        return False  # the complex step stays at the real point
    return x != 0 and abs(float(value) - x) >= abs(x)


class Evaluator:
    """Evaluates ``fun`` at the base point with single entries perturbed."""

    def __init__(self, fun, spec: TreeSpec, x0: np.ndarray, dtypes: list, numpy_leaves: bool = False,
                 held: np.ndarray | None = None):
        self.fun = fun
        self.spec = spec
        self.x0 = x0
        self.n_evals = 0
        self.past_base = False  # set once fun has run at params (Problem._evaluator)
        self.eps_out = None
        self.owners: dict = {}  # output type -> the adapter that reads it (see scalar_of)
        self.buffers = [np.array(x0[leaf.slice], dtype=dt).reshape(leaf.shape)
                        for leaf, dt in zip(spec.leaves, dtypes)]
        self.flat = [b.reshape(-1) for b in self.buffers]
        # the base point in the buffers' dtypes: for float64 buffers x0's own slice (no copy; the
        # checker never writes into x0), else a rounded copy
        self.base_flat = [x0[leaf.slice] if f.dtype == x0.dtype else f.copy() for leaf, f in zip(spec.leaves, self.flat)]
        self.slices = [leaf.slice for leaf in spec.leaves]
        self._work = None  # one n-vector reused by along()
        # entries held fixed (non-finite in params): x - x0 is inf - inf there, the step taken is 0
        self.held = None if held is None else np.flatnonzero(held)
        # numpy_leaves: fun takes the buffers themselves (Adapter.takes_numpy_leaves), so they alias
        self.numpy_leaves = numpy_leaves
        self.objs = [b if numpy_leaves else leaf.adapter.leaf_from_buffer(b, leaf.original)
                     for leaf, b in zip(spec.leaves, self.buffers)]
        self.base_objs = list(self.objs)  # put back after a perturbation instead of rebuilt
        self.alias = [self._aliases(k) for k in range(len(spec.leaves))]
        # fun gets a new container structure on every call (same leaf objects): a fun that rebinds
        # p["w"] in what it got ("make a local copy") cannot cut the next call off the buffers
        self.make_tree = builder(spec)
        self.offsets = np.array([leaf.offset for leaf in spec.leaves], dtype=np.int64)
        self.leaf_of = _leaf_index(spec)
        self.domain_exits: list = []  # (entry, step, error) where fun raised beyond an entry's own size

    def _aliases(self, k: int) -> bool:
        """Does the k-th leaf object see writes to its buffer?  Tested, not assumed."""
        leaf, flat = self.spec.leaves[k], self.flat[k]
        if flat.size == 0 or not (self.numpy_leaves or leaf.adapter.aliases_buffer):
            return False
        old = flat[0]
        flat[0] = old * 0.5 if (old != 0 and np.isfinite(old)) else 1  # a value that differs from old
        try:
            seen = np.asarray(leaf.adapter.to_numpy(self.objs[k])).reshape(-1)[0] == flat[0]
        except Exception:
            seen = False
        flat[0] = old
        return bool(seen)

    @property
    def tree(self):
        """A fresh pytree of the current leaf objects (what fun is called with)."""
        return self.make_tree(self.objs)

    def local(self, idx: np.ndarray) -> np.ndarray:
        """The positions of flat entries ``idx`` within their leaves."""
        return idx - self.offsets[self.leaf_of[idx]]

    def buffer_dtype(self, i: int) -> np.dtype:
        return self.flat[self.leaf_of[i]].dtype

    def _refresh(self, k: int) -> None:
        leaf = self.spec.leaves[k]
        self.objs[k] = leaf.adapter.leaf_from_buffer(self.buffers[k], leaf.original)

    def call(self):
        """fun at the current buffers -> python scalar (float or complex)."""
        self.n_evals += 1
        try:
            with user_code():
                out = self.fun(self.make_tree(self.objs))
        except GradcheckInputError:
            raise
        except Exception as e:  # noqa: BLE001
            if not self.past_base:
                raise  # the caller decides (e.g. fun refusing float64 is retried in the params' dtypes)
            raise GradcheckUserCodeError(f"fun raised {type(e).__name__} at a point a finite-difference step "
                                         f"away from params (it ran at params): {e}") from e
        t = type(out)
        if t is float:
            return out
        value, eps = scalar_of(out, owners=self.owners, gradient_like=self._gradient_like)
        if self.eps_out is None or eps > self.eps_out:
            self.eps_out = eps
        return value

    def _gradient_like(self, obj) -> bool:
        return same_structure(self.spec, obj)

    def failed_at(self, i: int, value, error: BaseException) -> GradcheckUserCodeError:
        """The error for fun raising at params with entry i set to ``value``: names the entry and the step."""
        path, idx = unravel(self.spec, int(i))
        x = float(self.x0[i])
        step = complex(value) - x if isinstance(value, complex) else float(value) - x
        where = f"{path}{list(idx) if idx else ''}"
        point = (f"{where} + {step.imag:.3g}j" if isinstance(step, complex)
                 else f"{where} {'+' if step >= 0 else '-'} {abs(step):.3g}")
        err = GradcheckUserCodeError(f"fun raised {type(error).__name__} at a finite-difference step from params, "
                                     f"at params with {point} (= {value!r}); it ran at params: {error}")
        err.__cause__ = error
        return err

    def at(self, i: int, value):
        """fun with entry i set to ``value`` (rounded to the buffer's dtype); restores it."""
        k = self.leaf_of[i]
        j = i - self.offsets[k]
        flat = self.flat[k]
        old = flat[j]
        flat[j] = value
        if not self.alias[k]:
            self._refresh(k)
        try:
            return self.call()
        except GradcheckInputError as e:
            if self.past_base and beyond_entry(value, float(self.x0[i])):
                # a step larger than the entry itself (df = 1e6 stepped at its leaf's 1e10 scale to
                # -7.8e8) may leave fun's domain: a non-finite value there makes the steps shrink, as
                # a NaN does (issue 20 A.3); a raise within the entry's own size is the user's to see
                self.domain_exits.append((int(i), complex(value) - float(self.x0[i]) if isinstance(value, complex)
                                          else float(value) - float(self.x0[i]), e.__cause__ or e))
                return float("nan")
            raise self.failed_at(i, value, e.__cause__) if e.__cause__ is not None and self.past_base else e
        finally:
            flat[j] = old
            if not self.alias[k]:
                self._put_back(k)

    def along(self, d: np.ndarray, steps, a: np.ndarray) -> list:
        """fun at x0 + t*d for each t in ``steps``: a list of (value, a . (x - x0)), where x is the
        point fun actually saw (rounded to the buffers' dtypes), so that the projection uses the
        step actually taken.  Restores the base point once, at the end.

        The hot path of fast mode's probes: one reused work vector and a few vector operations per
        point, instead of fresh temporaries and a restore after every call."""
        x0 = self.x0
        if self._work is None:
            self._work = np.empty(x0.size)
        work = self._work
        out = []
        try:
            for t in steps:
                for k, sl in enumerate(self.slices):
                    # the point straight into the buffer (rounded there to its dtype), then the step
                    # it actually holds: three passes over n per point, no temporaries
                    w = work[sl]
                    np.multiply(d[sl], t, out=w)
                    np.add(w, x0[sl], out=self.flat[k], casting="unsafe")
                    np.subtract(self.flat[k], x0[sl], out=w)
                    if not self.alias[k]:
                        self._refresh(k)
                if self.held is not None:
                    work[self.held] = 0.0  # inf - inf there: those entries are held fixed
                proj = float(a @ work)
                try:
                    value = self.call()
                except GradcheckInputError as e:
                    beyond = np.flatnonzero((x0 != 0) & (np.abs(work) >= np.abs(x0)))
                    if not (self.past_base and e.__cause__ is not None and beyond.size):
                        raise
                    # a probe step larger than some entry itself may leave fun's domain (issue 20 A.3)
                    self.domain_exits.append((int(beyond[0]), float(work[beyond[0]]), e.__cause__))
                    value = float("nan")
                out.append((value, proj))
        finally:
            self.restore()
        return out

    def release_work(self) -> None:
        """Drop along()'s work vector (n floats) when no more directions will be evaluated."""
        self._work = None

    def at_vector(self, x: np.ndarray):
        """fun at a whole new point ``x`` (all entries); restores the base point."""
        for k, leaf in enumerate(self.spec.leaves):
            self.flat[k][:] = x[leaf.slice]
            if not self.alias[k]:
                self._refresh(k)
        try:
            return self.call()
        finally:
            self.restore()

    def _put_back(self, k: int) -> None:
        """The base-point leaf object again (no device copy for jax / CUDA leaves)."""
        self.objs[k] = self.base_objs[k]

    def restore(self) -> None:
        for k, base in enumerate(self.base_flat):
            self.flat[k][:] = base
            if not self.alias[k]:
                self._put_back(k)

    def modified_leaf(self) -> str | None:
        """Path of a leaf whose buffer no longer holds the base point (fun wrote into its input)."""
        for k, leaf in enumerate(self.spec.leaves):
            obj = self.objs[k]
            if self.alias[k] and tuple(getattr(obj, "shape", ())) == tuple(leaf.shape):
                # the object views the buffer: compare the buffer itself, no copy out of the framework
                if not _same(self.flat[k], self.base_flat[k]):
                    return leaf.path
                continue
            cur = np.asarray(leaf.adapter.to_numpy(self.objs[k]), dtype=np.complex128 if np.iscomplexobj(self.flat[k]) else np.float64).reshape(-1)
            base = self.x0[leaf.slice].astype(self.flat[k].dtype).astype(cur.dtype)
            if cur.shape != base.shape or not _same(cur, base):
                return leaf.path
        return None


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """np.array_equal(a, b, equal_nan=True) without its copies where no NaN is involved: with
    equal_nan numpy copies both arrays' non-NaN entries (2 of the n-vectors fast mode held at its
    peak at n = 1e6).  A NaN is only ever at an entry held fixed, so the plain comparison decides
    nearly always; the NaN-aware one runs only when it finds a difference."""
    return bool(np.array_equal(a, b)) or bool(np.array_equal(a, b, equal_nan=True))


def _leaf_index(spec: TreeSpec) -> np.ndarray:
    """Which leaf each flat entry belongs to, in the narrowest integer dtype: an n-vector of int64
    (plus one of local positions) was 2 of the ~40 n-vectors fast mode held at n = 1e6.  One leaf:
    a broadcast 0 (no memory)."""
    if len(spec.leaves) == 1:
        return np.broadcast_to(np.zeros(1, dtype=np.int8), (spec.size,))
    dt = np.min_scalar_type(len(spec.leaves))
    sizes = np.array([leaf.size for leaf in spec.leaves], dtype=np.int64)
    return np.repeat(np.arange(len(spec.leaves), dtype=dt), sizes)
