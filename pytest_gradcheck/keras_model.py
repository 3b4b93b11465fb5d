"""Keras 3 models: their loss checked with respect to the trainable weights.

Importing this module imports tensorflow and keras (use it from code that uses them)::

    from pytest_gradcheck import check_module
    check_module(model, lambda out: keras.ops.mean((out - y) ** 2), x).raise_for_status()

or, spelled out (the report names entries by the variables' paths, e.g.
``sequential/dense/kernel[3, 2]``)::

    check_gradient(model_fun(model, loss, x), model_params(model))

``model_fun`` evaluates the model with ``model.stateless_call`` on the weights it is
given, so the model's own variables are never read or changed.  Keras casts the
values it is given to each variable's dtype, so a float32 model's finite
differences run in float32 (the core measures that noise and picks its steps from
it; the result's messages say so); declare the model with ``dtype="float64"`` for
float64 differences.  The analytic gradient is tf.GradientTape's (grad=None).

Layer: public API, above the numerics (it calls check_gradient through the package).
"""

from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

from .errors import GradcheckInputError

__all__ = ["model_params", "model_fun", "check_module", "is_keras_model"]


def is_keras_model(obj) -> bool:
    return isinstance(obj, keras.layers.Layer)


def _trainable(model) -> list:
    if not is_keras_model(model):
        raise GradcheckInputError(f"a Keras model (keras.Model or keras.layers.Layer) is needed; got "
                                  f"{type(model).__name__}")
    if not model.built:
        raise GradcheckInputError(
            f"{type(model).__name__} is not built, so it has no weights yet: call it once on an input "
            f"(model(x)) or model.build(input_shape) before checking it")
    vs = list(model.trainable_variables)
    if not vs:
        raise GradcheckInputError(f"{type(model).__name__} has no trainable weights to check")
    return vs


def _names(variables) -> list[str]:
    """The variables' paths ("sequential/dense/kernel"), made unique if two coincide."""
    out: list[str] = []
    for i, v in enumerate(variables):
        name = getattr(v, "path", None) or v.name
        out.append(name if name not in out else f"{name}#{i}")
    return out


def model_params(model) -> dict:
    """``{path: tensor}`` copies of the model's trainable weights (eager tensors, not the variables)."""
    vs = _trainable(model)
    return {name: tf.identity(v.value) for name, v in zip(_names(vs), vs)}


def model_fun(model, loss: Callable | None = None, *inputs, **kwargs) -> Callable:
    """``fun(params) = loss(model(*inputs, **kwargs))`` with the trainable weights replaced by
    ``params`` (``model.stateless_call``; the model's variables are untouched).  ``loss=None``:
    the model's output must be a scalar."""
    vs = _trainable(model)
    names = _names(vs)
    frozen = [v.value for v in model.non_trainable_variables]

    def fun(params):
        missing = [n for n in names if n not in params]
        if missing:
            raise GradcheckInputError(f"params has no entry for the model's weight(s) {missing}")
        out, _ = model.stateless_call([params[n] for n in names], frozen, *inputs, **kwargs)
        return loss(out) if loss is not None else out

    fun.__name__ = f"{type(model).__name__}_loss"
    return fun


def check_module(model, loss: Callable | None = None, *inputs, grad=None, **check_options):
    """check_gradient of ``loss(model(*inputs))`` with respect to the model's trainable weights."""
    from . import check_gradient

    res = check_gradient(model_fun(model, loss, *inputs), model_params(model), grad, **check_options)
    narrow = sorted({v.dtype for v in _trainable(model) if v.dtype != "float64"})
    if narrow:
        res.messages.append(
            f"Keras evaluates the model in its weights' dtype ({', '.join(map(str, narrow))}): the finite "
            f"differences ran in that precision (declare the model with dtype='float64' for float64 differences)")
    return res
