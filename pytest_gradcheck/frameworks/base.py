"""The interface between the numerics and an array framework.

The numerics work on one flat float64 numpy vector.  An adapter knows how a
framework's leaves (numpy arrays, torch tensors, jax arrays...) are read into
that vector and rebuilt from it, and, optionally, how to get the analytic
gradient by automatic differentiation.

Leaves are rebuilt from *buffers*: numpy arrays owned by the checker, in the
dtype the function is evaluated in.  When ``aliases_buffer`` is true the leaf
made by ``leaf_from_buffer`` shares memory with the buffer, so the checker can
perturb one entry in place (O(1) per evaluation) instead of rebuilding the
leaf for every evaluation.

Layer: frameworks, bottom.  Imports numpy and pytree (``build``), nothing else of
the package.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable

import numpy as np

from ..errors import GradcheckInputError


def batched_agrees(batched_value, plain_value) -> bool:
    """A batched evaluation reproduces the plain one: finite, and equal to float32-level
    accuracy (1e3 float32 ulps; vmap may reorder reductions, a different function differs
    grossly).  The one rule the core and every adapter use before trusting a batch."""
    return bool(np.isfinite(batched_value)) and abs(batched_value - plain_value) <= \
        1e3 * float(np.finfo(np.float32).eps) * max(abs(plain_value), 1e-300)


#: until a batched evaluator has proved itself, chunks of fewer points than this are evaluated by
#: plain calls (the core's check of the base point, fast mode's ~20 probe points), so they never pay
#: a framework's one-time batching set-up (torch.func.vmap ~1-2 s per process, an XLA compile)
MIN_BATCH_ROWS = 64


def batch_dispatcher(vectorized, run_single, run_batched, decide):
    """``run(points)`` for an adapter's ``batched``: plain calls for small chunks until decided,
    then the mode ``decide(points)`` chose on the first chunk of at least MIN_BATCH_ROWS
    points.  ``decide`` returns (mode, values): "batched" or "single", and the chunk's values.
    ``vectorized=True`` (the user promises a batch axis) skips the decision."""
    state = {"mode": "batched" if vectorized else None}

    def run(points):
        mode = state["mode"]
        if points.shape[0] == 0:
            return np.zeros(0)
        if mode == "single" or (mode is None and points.shape[0] < MIN_BATCH_ROWS):
            return run_single(points)
        if mode == "batched":
            return run_batched(points)
        state["mode"], values = decide(points)
        return values

    return run


#: rows a batching trial times each way (batched, then plain calls) on the first real chunk
PROBE_ROWS = 16


def timed_choice(points, run_batched, run_single):
    """(mode, values) for a chunk: the batched evaluator and plain calls timed on PROBE_ROWS rows
    each, the batched value checked against a plain call, and the faster way evaluating the rest.
    A batched evaluator that raises (fun not vectorizable) or changes fun's value gives plain calls
    (which raise again if the error is fun's own); mode None where the chunk is too small to time
    both ways (decide on a later chunk).  ``decide`` for batch_dispatcher (torch, TensorFlow)."""
    k = min(PROBE_ROWS, points.shape[0])
    t0 = time.perf_counter()
    try:
        head = run_batched(points[:k])
    except Exception:  # noqa: BLE001 - not vectorizable (a GradcheckInputError raised under vmap too)
        return "single", run_single(points)
    t1 = time.perf_counter()
    mid = run_single(points[k:2 * k])
    t2 = time.perf_counter()
    if not batched_agrees(head[0], run_single(points[:1])[0]):  # batching changes fun's value
        return "single", np.concatenate([run_single(points[:k]), mid, run_single(points[2 * k:])])
    if mid.size < k:
        return None, np.concatenate([head, mid])
    mode = "batched" if (t1 - t0) <= (t2 - t1) else "single"
    rest = run_batched(points[2 * k:]) if mode == "batched" else run_single(points[2 * k:])
    return mode, np.concatenate([head, mid, rest])


def not_a_scalar(what: str, shape, reduce_hint: str = "") -> GradcheckInputError:
    """The error for a fun that returned ``what`` ("a tensor", "an array") of ``shape`` instead of a
    scalar: the vector checks named, and how to reduce it in the framework (``reduce_hint``)."""
    hint = f" (or reduce the output, e.g. {reduce_hint})" if reduce_hint else ""
    return GradcheckInputError(
        f"fun must return a scalar; it returned {what} of shape {tuple(shape)}. "
        f"For vector-valued functions use check_vjp, check_jvp or check_jacobian{hint}")


class Adapter:
    """Base class; subclass it for a framework and register it (see registry.py)."""

    #: short name shown in reports ("numpy", "torch", "jax")
    name: str = "base"
    #: True when leaf_from_buffer returns a view of the buffer's memory
    aliases_buffer: bool = False
    #: True when ``gradient`` never hands the given leaves to fun (it differentiates copies, or
    #: leaves are immutable): the check that fun left params unchanged is then skipped there
    gradient_copies_params: bool = False
    #: True when ``batched`` (for vectorized=None) checks its batched values against plain calls
    #: before relying on them (base.batch_dispatcher's ``decide``); the core then skips its own check
    #: at the base point, which would cost one uncounted evaluation
    validates_batches: bool = False

    def owns(self, leaf: Any) -> bool:
        """True when ``leaf`` is an array or scalar of this framework."""
        raise NotImplementedError

    def to_numpy(self, leaf: Any) -> np.ndarray:
        """A new numpy array with the leaf's values, in the leaf's own dtype
        (float16/bfloat16 may be widened to float32; integer dtypes stay integer)."""
        raise NotImplementedError

    def read_like(self, obj: Any, like: Any) -> np.ndarray | None:
        """``obj`` (a gradient leaf) read in the layout of this adapter's params leaf ``like``, or None
        for the default (obj's own adapter's to_numpy).  A torch sparse params leaf is checked on its
        stored values, so its gradient (sparse or dense) is read at their coordinates."""
        return None

    def entry_index(self, like: Any, j: int) -> tuple | None:
        """The name of flat entry j of params leaf ``like`` when it is not j's position in the leaf's
        shape (a sparse tensor's j-th stored value: its coordinates), else None."""
        return None

    def leaf_from_buffer(self, buffer: np.ndarray, like: Any) -> Any:
        """A leaf of the same kind (and device) as ``like`` holding ``buffer``'s
        values in ``buffer``'s dtype."""
        raise NotImplementedError

    def native_dtype(self, leaf: Any) -> str:
        """The leaf's dtype name as the framework spells it ("float32", "bfloat16")."""
        return str(self.to_numpy(leaf).dtype)

    def eps(self, leaf: Any) -> float:
        """Unit roundoff (machine epsilon) of the leaf's native dtype."""
        dt = np.asarray(self.to_numpy(leaf)).dtype
        return float(np.finfo(dt).eps) if np.issubdtype(dt, np.inexact) else float(np.finfo(np.float64).eps)

    def scalar_output(self, out: Any) -> tuple[float, float] | None:
        """``(value, eps)`` for a scalar output of this framework, or None if not ours."""
        return None

    def batched(self, fun: Callable, spec, dtypes: list, vectorized: bool | None):
        """A callable evaluating ``fun`` at many points in one call, or None.

        The callable takes a (B, n) float64 numpy array of flat points (rows in
        the order of ``spec.leaves``) and returns a (B,) float64 numpy array of
        values.  ``vectorized``: True means the user promises ``fun`` accepts a
        leading batch axis on every leaf; None lets the adapter decide (e.g. try
        its framework's vmap); False is never passed here.  ``dtypes`` are the
        numpy dtypes the leaves are evaluated in.
        """
        return None

    def numeric_fun(self, fun: Callable) -> Callable:
        """``fun`` as the numeric side should call it (default: ``fun`` itself).

        The jax adapter wraps it in ``jax.enable_x64(True)`` so that float64
        buffers are evaluated in float64 without changing the user's global
        ``jax_enable_x64`` setting."""
        return fun

    def gradient(self, fun: Callable, params: Any) -> Any | None:
        """The gradient of ``fun`` at ``params`` by this framework's autodiff, in
        the structure of ``params``; None when the adapter cannot differentiate."""
        return None

    def end_check(self) -> None:
        """Called after every public check (registry.ends_check): undo process state the check
        left behind (jax: clears its caches after fun ran inside a thread-local x64 context)."""

    def takes_numpy_leaves(self, fun: Callable, leaf: Any) -> bool:
        """True when ``fun`` may be handed numpy arrays in place of this leaf on the numeric side
        (a jitted jax function converts numpy arguments in its compiled dispatch, as it does its
        own arrays).  The evaluator then passes views of its buffers: a perturbation is one write,
        not a new framework array per evaluation.  It is confirmed at the base point (the value
        must equal the one from framework leaves exactly) before it is used."""
        return False


def _ml_float(dtype) -> bool:
    """A float dtype of ml_dtypes (bfloat16, float8_*): numpy kind 'V', so not np.floating."""
    ml = sys.modules.get("ml_dtypes")  # only ever set when the user's arrays came from it
    if ml is None or dtype.kind != "V":
        return False
    try:
        ml.finfo(dtype)
    except Exception:  # noqa: BLE001 - an integer type of ml_dtypes (int4) or a structured dtype
        return False
    return True


class NumpyAdapter(Adapter):
    """numpy arrays, numpy scalars and Python numbers.

    bfloat16 / float8 arrays of ml_dtypes (jax's numpy dtypes) are read as float32, which
    holds them exactly, like torch's bfloat16; the native-dtype side (grad) gets arrays of
    the leaf's own dtype back, and the eps is that dtype's."""

    name = "numpy"
    aliases_buffer = True

    def owns(self, leaf):
        return isinstance(leaf, (np.ndarray, np.generic, float, int, complex)) and not isinstance(leaf, bool)

    def to_numpy(self, leaf):
        a = np.array(leaf, copy=True)
        return a.astype(np.float32) if _ml_float(a.dtype) else a

    def native_dtype(self, leaf):
        return str(np.asarray(leaf).dtype)

    def eps(self, leaf):
        dt = np.asarray(leaf).dtype
        if _ml_float(dt):
            return float(sys.modules["ml_dtypes"].finfo(dt).eps)
        return super().eps(leaf)

    def leaf_from_buffer(self, buffer, like):
        if isinstance(like, (np.ndarray, np.generic)) and buffer.dtype == np.float32 and _ml_float(like.dtype):
            # float32 is only the stand-in for bfloat16 / float8 (to_numpy): the native side gets its own dtype
            out = buffer.astype(like.dtype).reshape(np.shape(like))
            return out if isinstance(like, np.ndarray) else out.reshape(())[()]
        if isinstance(like, np.ndarray):
            return buffer.reshape(np.shape(like))
        if isinstance(like, np.generic):
            return buffer.dtype.type(buffer.reshape(()))
        # Python numbers come back as Python numbers (complex for the complex step)
        v = buffer.reshape(()).item()
        return v

    def batched(self, fun, spec, dtypes, vectorized):
        if not vectorized:
            return None
        from ..pytree import build

        def run(points):
            B = points.shape[0]

            def make(k, leaf):
                vals = points[:, leaf.slice].astype(dtypes[k]).reshape((B,) + leaf.shape)
                return vals if isinstance(leaf.original, np.ndarray) or leaf.shape == () else vals

            out = np.asarray(fun(build(spec, make)))
            if out.size != B:
                raise ValueError(
                    f"vectorized=True: fun was given a batch of {B} points (a leading axis on every leaf) and "
                    f"must return {B} values; it returned shape {out.shape}")
            return out.reshape(B).astype(np.float64)

        return run

    def scalar_output(self, out):
        if isinstance(out, (float, int)) and not isinstance(out, bool):
            return float(out), float(np.finfo(np.float64).eps)
        if isinstance(out, (np.ndarray, np.generic)):
            a = np.asarray(out)
            eps = float(np.finfo(a.dtype).eps) if np.issubdtype(a.dtype, np.inexact) else float(np.finfo(np.float64).eps)
            return a, eps
        return None
