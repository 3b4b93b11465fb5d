"""TensorFlow tensors and variables as leaves: eager ``tf.Tensor``, ``tf.Variable`` and
Keras 3 variables, float16 / bfloat16 / float32 / float64.

Imported only once the user has imported tensorflow (see registry._load_optional).

* Leaves are rebuilt as new eager tensors (``aliases_buffer`` is False): a perturbed
  leaf is ``tf.constant`` of the checker's buffer, never the caller's Variable, which
  is only read (``.numpy()``) and so never changed.  A symbolic tensor (a graph or
  Keras tensor: fun's inside, not a value) is refused, naming the leaf.
* The finite differences hand fun float64 tensors for float32 leaves (the core falls
  back to the leaves' own dtypes, and says so, when fun refuses them: e.g. it mixes
  in a float32 constant).  A ``tf.function`` fun is traced once per dtype signature:
  every evaluation passes eager tensors of the same shapes and dtypes, never new
  Python values, so it does not retrace.
* ``gradient``: grad=None is ``tf.GradientTape`` over fresh tensors of the leaves'
  own dtypes, so ``tf.custom_gradient`` rules are what is checked.  A fun whose
  output the tape cannot connect to any leaf (it reads a model's own variables,
  or leaves the tape through ``.numpy()``) is refused, as torch's adapter refuses
  an output that does not require grad.
* ``batched``: ``tf.vectorized_map`` of fun inside one ``tf.function`` per check, only
  where a timed trial on the first real chunk says it is faster than one call per
  point (as torch's vmap), and its value agrees with a plain call.

Layer: frameworks, top.  Imports errors, pytree, frameworks.base and
frameworks.outputs; never numerics/.
"""

from __future__ import annotations

import sys

import numpy as np
import tensorflow as tf

from ..errors import GradcheckInputError, GradcheckUserCodeError
from ..pytree import TreeSpec, build, structure
from .base import Adapter, batch_dispatcher, not_a_scalar, timed_choice

_F64_EPS = float(np.finfo(np.float64).eps)
#: below this many parameters vectorized_map is not tried (tracing it costs more than 2n calls)
MIN_BATCH_PARAMS = 64
#: from this many on neither: every batched point is a full copy of the n parameters (see torch_adapter)
MAX_BATCH_PARAMS = 4096
#: points per vectorized call, capped so that one call's inputs stay near this many float64 numbers
SUB_BATCH_FLOATS = 2**20
#: rows timed each way (vectorized_map vs one call per point) before choosing the faster


def _keras_variable():
    """keras.Variable when keras is imported (Keras 3 variables are tf Tensors, not tf.Variables)."""
    keras = sys.modules.get("keras")
    return getattr(keras, "Variable", None) if keras is not None else None


def _keras_symbolic(leaf) -> bool:
    keras = sys.modules.get("keras")
    kt = getattr(keras, "KerasTensor", None) if keras is not None else None
    return kt is not None and isinstance(leaf, kt)


def _is_symbolic(leaf) -> bool:
    if _keras_symbolic(leaf):
        return True
    return isinstance(leaf, tf.Tensor) and not hasattr(leaf, "numpy")


def _dtype(leaf) -> tf.DType:
    return tf.as_dtype(leaf.dtype)


def _eps_of(dtype) -> float:
    dt = tf.as_dtype(dtype)
    if not dt.is_floating and not dt.is_complex:
        return _F64_EPS
    if dt == tf.bfloat16:
        return 2.0 ** -7
    return float(np.finfo(dt.as_numpy_dtype).eps)


def _value(leaf):
    """The leaf's current value as an eager tensor (a Keras variable's ``.value``)."""
    kv = _keras_variable()
    if kv is not None and isinstance(leaf, kv):
        return leaf.value
    if isinstance(leaf, tf.Variable):
        return leaf.read_value()
    return leaf


class TfAdapter(Adapter):
    name = "tensorflow"
    aliases_buffer = False
    gradient_copies_params = True  # the tape watches fresh tensors; eager tensors are immutable
    validates_batches = True  # decide() compares a batched value with a plain call

    def owns(self, leaf):
        if isinstance(leaf, (tf.Tensor, tf.Variable)) or _keras_symbolic(leaf):
            return True
        kv = _keras_variable()
        return kv is not None and isinstance(leaf, kv)

    def to_numpy(self, leaf):
        if _is_symbolic(leaf):
            raise GradcheckInputError(
                f"is a symbolic tensor ({type(leaf).__name__}, a graph or Keras placeholder with no values); "
                f"pass an eager tensor or a tf.Variable (build params outside tf.function)")
        t = _value(leaf)
        a = np.array(t.numpy(), copy=True)
        if t.dtype == tf.bfloat16 or (t.dtype.is_floating and not np.issubdtype(a.dtype, np.floating)):
            a = a.astype(np.float32)  # bfloat16: no numpy dtype; float32 holds it exactly
        return a

    def native_dtype(self, leaf):
        return _dtype(leaf).name

    def eps(self, leaf):
        return _eps_of(leaf.dtype)

    def leaf_from_buffer(self, buffer, like):
        buf = np.array(buffer, copy=True).reshape(tuple(like.shape))
        dt = _dtype(like)
        if buf.dtype == np.float32 and dt in (tf.bfloat16,):
            return tf.cast(tf.constant(buf), dt)  # float32 stand-in: fun and grad get the leaf's own dtype
        return tf.constant(buf)

    def scalar_output(self, out):
        if _is_symbolic(out):
            return None
        t = _value(out)
        if t.shape.num_elements() != 1:
            raise not_a_scalar("a tensor", t.shape, "tf.reduce_sum(out)")
        if t.dtype == tf.bool:
            raise GradcheckInputError("fun returned a boolean tensor; it must return a number")
        a = np.asarray(t.numpy()).reshape(())
        if not np.issubdtype(a.dtype, np.number):
            a = a.astype(np.float32)  # bfloat16
        return a.item(), _eps_of(t.dtype)

    # -- analytic side ----------------------------------------------------------
    def gradient(self, fun, params):
        node, leaves = structure(params)
        if not leaves or not all(self.owns(x) for x in leaves):
            return None  # mixed trees: the tape cannot differentiate numpy leaves
        work = [tf.identity(_value(x)) for x in leaves]
        bad = next((w for w in work if not w.dtype.is_floating), None)
        if bad is not None:
            raise GradcheckInputError(
                f"grad=None uses tf.GradientTape, which needs floating-point tensors; a leaf has dtype "
                f"{bad.dtype.name}. Pass grad= or make the leaf a float tensor")
        tree = build(TreeSpec(node, leaves, 0), lambda k, _: work[k])
        try:
            with tf.GradientTape() as tape:
                for w in work:
                    tape.watch(w)
                out = fun(tree)
        except GradcheckInputError:
            raise
        except Exception as e:  # noqa: BLE001
            raise GradcheckUserCodeError(f"fun raised {type(e).__name__}: {e}") from e
        if not isinstance(out, (tf.Tensor, tf.Variable)):
            raise GradcheckInputError(
                f"grad=None needs fun to return a tf tensor so tf.GradientTape can differentiate it; it returned "
                f"{type(out).__name__} (avoid .numpy(), float() or numpy inside fun, or pass grad=)")
        if out.shape.num_elements() != 1:
            raise GradcheckInputError(f"fun must return a scalar; it returned a tensor of shape {tuple(out.shape)}")
        try:  # runs the user's tf.custom_gradient rules, if any
            grads = tape.gradient(out, work)
        except Exception as e:  # noqa: BLE001
            raise GradcheckUserCodeError(f"grad=None: tf.GradientTape's backward pass through fun raised "
                                         f"{type(e).__name__}: {e}") from e
        if all(g is None for g in grads):
            raise GradcheckInputError(
                "grad=None: fun's output is not connected to params on the tf.GradientTape (does fun read a "
                "model's own variables instead of the params it is given, or leave the tape through .numpy(), "
                "numpy or tf.stop_gradient?); pass grad= to check a gradient computed another way")
        out_leaves = [tf.zeros_like(w) if g is None else tf.convert_to_tensor(g) for g, w in zip(grads, work)]
        return build(TreeSpec(node, leaves, 0), lambda k, _: out_leaves[k])

    # -- batched finite differences --------------------------------------------
    def batched(self, fun, spec, dtypes, vectorized):
        if not all(self.owns(leaf.original) for leaf in spec.leaves):
            return None
        if vectorized is None and not MIN_BATCH_PARAMS <= spec.size < MAX_BATCH_PARAMS:
            return None
        if any(np.dtype(d) == np.float32 and _dtype(leaf.original) == tf.bfloat16
               for d, leaf in zip(dtypes, spec.leaves)):
            return None  # float32 stand-ins of bfloat16 leaves: plain calls rebuild them in their own dtype
        from .outputs import scalar_of

        shapes = [tuple(leaf.shape) for leaf in spec.leaves]

        def call_on(ts):
            return fun(build(spec, lambda k, leaf: ts[k]))

        if vectorized:
            evaluate = lambda *ts: call_on(ts)  # noqa: E731 - the user promises a leading batch axis
        else:
            # one tf.function per check, traced once (the batch axis is left open): vectorized_map called
            # eagerly would wrap and trace fun anew on every chunk
            sig = [tf.TensorSpec((None,) + s, tf.as_dtype(np.dtype(d))) for s, d in zip(shapes, dtypes)]
            evaluate = tf.function(lambda *ts: tf.vectorized_map(lambda row: call_on(row), ts,
                                                                 fallback_to_while_loop=False),
                                   input_signature=sig, reduce_retracing=True)

        sub = max(8, SUB_BATCH_FLOATS // max(spec.size, 1))

        def decide(points):
            run_batched(points[:1])  # the trace, not timed: it is paid once per check
            return timed_choice(points, run_batched, run_single)

        def run_batched(points):
            if points.shape[0] > sub and not vectorized:
                return np.concatenate([run_chunk(points[s:s + sub]) for s in range(0, points.shape[0], sub)])
            return run_chunk(points)

        owners: dict = {}

        def run_single(points):
            vals = np.empty(points.shape[0])
            for r in range(points.shape[0]):
                row = points[r]
                ts = [tf.constant(np.array(row[leaf.slice], dtype=dtypes[k]).reshape(shapes[k]))
                      for k, leaf in enumerate(spec.leaves)]
                v, _ = scalar_of(call_on(ts), owners=owners)
                vals[r] = v.real if isinstance(v, complex) else v
            return vals

        def run_chunk(points):
            B = points.shape[0]
            ts = [tf.constant(np.ascontiguousarray(points[:, leaf.slice], dtype=dtypes[k]).reshape((B,) + shapes[k]))
                  for k, leaf in enumerate(spec.leaves)]
            out = evaluate(*ts)
            if not isinstance(out, tf.Tensor) or out.shape.num_elements() != B:
                shape = tuple(out.shape) if isinstance(out, tf.Tensor) else type(out).__name__
                if vectorized:
                    raise GradcheckInputError(
                        f"vectorized=True: fun was given a batch of {B} points (a leading axis on every leaf) and "
                        f"must return {B} values; it returned {shape}")
                raise ValueError(f"batched fun returned {shape}; expected {B} values")
            return np.asarray(tf.cast(tf.reshape(out, (B,)), tf.float64).numpy())

        return batch_dispatcher(vectorized, run_single, run_batched, decide)
