"""jax arrays as leaves (of any pytree of dicts / lists / tuples).

Imported only once the user has imported jax (see registry._load_optional).

* Leaves are immutable, so ``aliases_buffer`` is False: a perturbed leaf is a
  new array (``jnp.asarray`` of a private copy of the checker's buffer -- on CPU
  jax may alias large numpy arrays -- on the original's device when it was
  committed to one).
* ``jax_enable_x64``: when it is off (jax's default), float64 buffers would be
  silently cast to float32.  The adapter builds float64 leaves and evaluates
  ``fun`` inside ``jax.enable_x64(True)`` (a thread-local context manager;
  the user's global setting is never changed), so the finite differences run
  in float64.  Jitted functions are retraced for the x64 state automatically.
  A ``fun`` that casts to float32 internally stays float32; the core measures
  its noise and picks the steps from it.
* ``gradient``: grad=None is ``jax.grad(fun)`` at the params' own dtypes
  (custom_vjp / custom_jvp rules included); inside the x64 context only when a
  leaf is float64 (with x64 off jax would compute it in float32 precision and
  call the result float64).  For a jitted fun, ``jax.jit(jax.grad(fun))`` is
  cached per function, so it is traced once, not on every check.
* ``batched``: ``jax.jit(jax.vmap(fun))`` over a leading axis of every leaf,
  every chunk padded to one power-of-two batch size so XLA compiles once
  per function (compiled evaluators are cached per function and tree structure).

Layer: frameworks, top.  Imports errors, pytree, frameworks.base and
frameworks.outputs; never numerics/.
"""

from __future__ import annotations

import weakref

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import GradcheckInputError, GradcheckUserCodeError
from .base import Adapter, batch_dispatcher, batched_agrees, not_a_scalar

_F64_EPS = float(np.finfo(np.float64).eps)
_WIDE = (np.dtype(np.float64), np.dtype(np.complex128))
#: below this many parameters vmap is not tried (compiling the batched function
#: costs more than 2n calls of a small problem)
MIN_BATCH_PARAMS = 64
#: points per batched call: a power of two chosen so that one call's inputs stay near
#: this many float64 numbers; every chunk (the core's check of the base point too) is
#: padded to it, so that XLA compiles one batch shape per function
SUB_BATCH_FLOATS = 2**20


def _x64_on() -> bool:
    return bool(jax.config.jax_enable_x64)


#: set when fun was traced or run inside the x64 context while x64 is off (see JaxAdapter.end_check)
_ENTERED_X64 = {"yes": False}


def _x64():
    """The context manager that turns x64 on for this thread only: ``jax.enable_x64(True)``
    (jax >= 0.7), ``jax.experimental.enable_x64()`` in older releases."""
    if not _x64_on():
        _ENTERED_X64["yes"] = True
    cm = getattr(jax, "enable_x64", None)
    if cm is not None:
        return cm(True)
    from jax.experimental import enable_x64  # older jax

    return enable_x64(True)


def _stand_in(dtype) -> bool:
    """True for a float dtype numpy does not have natively (bfloat16, float8: ml_dtypes), whose values
    the checker holds as float32 (to_numpy)."""
    return jnp.issubdtype(dtype, jnp.floating) and not np.issubdtype(np.dtype(dtype), np.floating)


def _eps_of(dtype) -> float:
    try:
        if jnp.issubdtype(dtype, jnp.inexact):
            return float(jnp.finfo(dtype).eps)
    except Exception:  # noqa: BLE001
        pass
    return _F64_EPS


#: jitted batch evaluators per (fun, tree structure), so that repeated checks of
#: the same function compile once
_JIT_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


#: jax.jit(jax.grad(fun)) per jitted fun: jax.grad traces fun on every call (~2 ms for a small MLP),
#: a jitted gradient traces once per argument signature
_GRAD_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _grad_of(fun):
    """jax.grad(fun), jitted and cached when fun is itself jitted (then tracing it once is what its
    author asked for: a jitted fun already ignores later changes to the Python state it closes over)."""
    if not callable(getattr(fun, "lower", None)):
        return jax.grad(fun)
    try:
        g = _GRAD_CACHE.get(fun)
        if g is None:
            g = _GRAD_CACHE[fun] = jax.jit(jax.grad(fun))
        return g
    except TypeError:  # not weak-referenceable
        return jax.jit(jax.grad(fun))


class _Structure:
    """The tree structure of a spec without its leaves (so cached evaluators hold no user arrays);
    enough for trees.build, which only reads ``node`` and ``leaves[k]``."""

    def __init__(self, spec):
        self.node = spec.node
        self.leaves = [None] * len(spec.leaves)


class JaxAdapter(Adapter):
    name = "jax"
    aliases_buffer = False
    gradient_copies_params = True  # jax arrays are immutable
    validates_batches = True  # decide() compares a batched value with a plain call

    def owns(self, leaf):
        return isinstance(leaf, jax.Array) and not isinstance(leaf, jax.core.Tracer)

    def to_numpy(self, leaf):
        a = np.array(leaf, copy=True)
        if not np.issubdtype(a.dtype, np.number) and jnp.issubdtype(leaf.dtype, jnp.floating):
            a = a.astype(np.float32)  # bfloat16 / float8 (ml_dtypes): float32 holds them exactly
        return a

    def native_dtype(self, leaf):
        return str(leaf.dtype)

    def eps(self, leaf):
        return _eps_of(leaf.dtype)

    def leaf_from_buffer(self, buffer, like):
        # a private copy: on CPU jax may alias a (large, aligned) numpy array instead of copying it,
        # and the checker writes into its buffers; jax arrays must never change under jax's feet
        buf = np.array(buffer, copy=True).reshape(tuple(like.shape))
        if buf.dtype == np.float32 and _stand_in(like.dtype):
            buf = buf.astype(like.dtype)  # bfloat16 / float8 travel as float32; fun and grad get their own dtype
        if buf.dtype in _WIDE and not _x64_on():
            with _x64():
                return self._put(buf, like)
        return self._put(buf, like)

    @staticmethod
    def _put(buf, like):
        if getattr(like, "committed", False):
            try:
                return jax.device_put(buf, like.sharding)
            except Exception:  # noqa: BLE001 - exotic shardings: fall back to the default device
                pass
        return jnp.asarray(buf)

    def scalar_output(self, out):
        if out.size != 1:
            raise not_a_scalar("an array", out.shape)
        a = np.asarray(out).reshape(())
        if a.dtype == bool:
            raise GradcheckInputError("fun returned a boolean array; it must return a number")
        if not np.issubdtype(a.dtype, np.number):
            a = a.astype(np.float32)
        return a.item(), _eps_of(out.dtype)

    def numeric_fun(self, fun):
        if _x64_on():
            return fun

        def in_x64(params):
            with _x64():
                return fun(params)

        in_x64.__wrapped__ = fun
        return in_x64

    def end_check(self):
        # jax 0.10 caches some traces without the x64 state: a fun indexing with a numpy int array,
        # traced inside enable_x64 during the check, then raised TypeError (int64 vs int32) in the
        # user's own later calls, eager ones included.  Clearing jax's caches after such a check
        # costs the next jitted calls a compile, and leaves the process as the user had it.
        if _ENTERED_X64["yes"]:
            _ENTERED_X64["yes"] = False
            jax.clear_caches()

    def takes_numpy_leaves(self, fun, leaf):
        # a jitted function (it has .lower) turns numpy arguments into device arrays in its C++
        # dispatch (~7 us a leaf; jnp.asarray from Python costs ~50 us) and runs the same compiled
        # code for them; a leaf committed to a device must stay there, so it keeps jax arrays
        return (callable(getattr(fun, "lower", None)) and not getattr(leaf, "committed", False)
                and not _stand_in(leaf.dtype))  # a bfloat16 leaf's buffer holds float32 stand-ins

    # -- analytic side ----------------------------------------------------------
    def gradient(self, fun, params):
        try:
            if not _x64_on() and any(np.dtype(leaf.dtype) in _WIDE for leaf in jax.tree_util.tree_leaves(params)):
                # float64 leaves with x64 off: jax would compute the gradient in float32 precision and
                # return it as float64, failing a correct rule at ~1e-7; the finite differences run in
                # float64 (numeric_fun), so the gradient does too -- in this thread, for this call only
                with _x64():
                    return _grad_of(fun)(params)
            return _grad_of(fun)(params)
        except GradcheckInputError:
            raise
        except Exception as e:  # noqa: BLE001
            raise GradcheckUserCodeError(
                f"grad=None: jax.grad(fun) failed with {type(e).__name__}: {e}. fun must return a real scalar "
                f"and be traceable by jax (or pass grad=)") from e

    # -- batched finite differences --------------------------------------------
    def batched(self, fun, spec, dtypes, vectorized):
        from ..pytree import build

        if vectorized is None and spec.size < MIN_BATCH_PARAMS:
            return None
        nleaves = len(spec.leaves)
        wide = any(np.dtype(d) in _WIDE for d in dtypes) and not _x64_on()
        shapes = [tuple(leaf.shape) for leaf in spec.leaves]

        if vectorized:
            def evaluate(*ls):
                return fun(build(spec, lambda k, leaf: ls[k]))
        else:
            key = (repr(spec.node), tuple(shapes))
            try:
                per_fun = _JIT_CACHE.setdefault(fun, {})
                fref = weakref.ref(fun)  # the cache must not keep fun (and its compiled code) alive
            except TypeError:
                per_fun = {}
                fref = lambda: fun  # noqa: E731 - not weak-referenceable: no cache, a plain reference
            evaluate = per_fun.get(key)
            if evaluate is None:
                node = _Structure(spec)

                def g(*ls):
                    return fref()(build(node, lambda k, leaf: ls[k]))
                evaluate = jax.jit(jax.vmap(g, in_axes=(0,) * nleaves))
                per_fun[key] = evaluate

        cap = 1 << min(10, max(3, (SUB_BATCH_FLOATS // max(spec.size, 1)).bit_length() - 1))

        # the first chunk of at least MIN_BATCH_ROWS points (base.batch_dispatcher; smaller ones never
        # pay an XLA compile) is checked against a plain call; a fun that vmap/jit cannot run gets plain calls
        def decide(points):
            try:
                out = run_batched(points)
            except Exception:  # noqa: BLE001 - not vmappable / jittable (a GradcheckInputError under vmap
                out = None       # too); plain calls raise again if the error is fun's own
            ok = out is not None and batched_agrees(out[0], run_single(points[:1])[0])
            return ("batched", out) if ok else ("single", run_single(points))

        def run_batched(points):
            if points.shape[0] > cap and not vectorized:
                return np.concatenate([run_chunk(points[s:s + cap]) for s in range(0, points.shape[0], cap)])
            return run_chunk(points)

        def run_single(points):
            from .outputs import scalar_of

            vals = np.empty(points.shape[0])
            for r in range(points.shape[0]):
                row = points[r]
                tree = build(spec, lambda k, leaf: self.leaf_from_buffer(
                    np.array(row[leaf.slice], dtype=dtypes[k]), leaf.original))
                if wide:
                    with _x64():
                        v, _ = scalar_of(fun(tree))
                else:
                    v, _ = scalar_of(fun(tree))
                vals[r] = v.real if isinstance(v, complex) else v
            return vals

        def run_chunk(points):
            B = points.shape[0]
            P = B if vectorized else cap  # one batch shape per check: XLA compiles once
            if P != B:
                points = np.concatenate([points, np.repeat(points[-1:], P - B, axis=0)])
            blocks = [np.ascontiguousarray(points[:, leaf.slice], dtype=dtypes[k]).reshape((P,) + shapes[k])
                      for k, leaf in enumerate(spec.leaves)]
            if wide:
                with _x64():
                    out = np.asarray(evaluate(*[jnp.asarray(b) for b in blocks]))
            else:
                out = np.asarray(evaluate(*[jnp.asarray(b) for b in blocks]))
            if out.size != P:
                if vectorized:
                    raise GradcheckInputError(
                        f"vectorized=True: fun was given a batch of {P} points (a leading axis on every leaf) and "
                        f"must return {P} values; it returned shape {out.shape}")
                raise ValueError(f"batched fun returned shape {out.shape}; expected {P} values")
            out = out.reshape(P)[:B]
            if np.iscomplexobj(out):
                out = out.real
            if not np.issubdtype(out.dtype, np.number):
                out = out.astype(np.float32)
            return out.astype(np.float64)

        return batch_dispatcher(vectorized, run_single, run_batched, decide)
