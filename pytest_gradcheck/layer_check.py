"""check_layer: the gradients of a layer object with ``forward(x)`` / ``backward(dout)``.

The commonest shape of existing numpy deep-learning code is a layer object::

    out = layer.forward(x)
    dx = layer.backward(dout)      # and the parameter gradients stored on the layer

check_layer turns that shape into one gradient check of the scalar loss
``L = sum(forward(x) * R)`` (``R`` drawn from ``seed``, the shape of the output)
with respect to the input and the parameters: ``backward(R)`` is the layer's
gradient of L.  It never touches the caller's layer: every evaluation runs on a
fresh deep copy of a snapshot taken at the start, so

* accumulated gradients are reset before each backward (``.grad`` set to zeros,
  a ``grads`` dict's entries set to zeros), whatever the layer held before;
* randomness is held fixed: a layer's own ``numpy.random.Generator`` (or
  RandomState) is copied with the layer, so every call draws the same dropout
  mask; numpy's global RNG is set to one state before each call and restored
  after the check;
* state a forward updates for later calls (BatchNorm's running mean and
  variance, counters) changes only the throwaway copy: no "mutation" verdict.

Parameters are found on the layer (or named with ``params=``), in the three
usual spellings:

* objects with ``.data`` (an array) and ``.grad`` (the accumulated gradient);
* a dict ``layer.params`` with the gradients in ``layer.grads`` after backward;
* array attributes ``W`` with the gradient in ``dW`` (or ``grad_W``) after backward.

Inputs: one array, or a tuple of arrays for ``forward(x, h)``, in which case
backward returns a tuple of input gradients in the same order.  Integer inputs
(Embedding's indices) are held fixed; so is every input with ``wrt_input=False``.

Layer: public API helpers, above the numerics (calls check_gradient).  Imports
errors and numerics.check; numpy only.
"""

from __future__ import annotations

import copy

import numpy as np

from .errors import GradcheckInputError
from .numerics.check import check_gradient

__all__ = ["check_layer"]

#: the gradient attribute of an array attribute NAME, in the order they are looked for
_GRAD_SPELLINGS = ("d{}", "grad_{}", "{}_grad")


def _is_param_object(value) -> bool:
    return isinstance(getattr(value, "data", None), np.ndarray) and hasattr(value, "grad")


def _is_float_array(value) -> bool:
    return isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.inexact)


class _Slot:
    """One parameter of the layer: where its value and its gradient live."""

    def __init__(self, name, style, key):
        self.name, self.style, self.key = name, style, key

    def value(self, layer):
        if self.style == "object":
            return getattr(layer, self.key).data
        if self.style == "dict":
            return layer.params[self.key]
        return getattr(layer, self.key)

    def set(self, layer, array):
        # the copy owns its arrays: the layer never holds (or mutates) the check's buffers
        if self.style == "object":
            getattr(layer, self.key).data = np.array(array, dtype=self.value(layer).dtype)
        elif self.style == "dict":
            layer.params[self.key] = np.array(array, dtype=layer.params[self.key].dtype)
        else:
            setattr(layer, self.key, np.array(array, dtype=getattr(layer, self.key).dtype))

    def reset_grad(self, layer):
        """Zero the accumulated gradient, so backward's result is this call's alone."""
        zeros = np.zeros_like(self.value(layer))
        if self.style == "object":
            getattr(layer, self.key).grad = zeros
        elif self.style == "dict":
            grads = getattr(layer, "grads", None)
            if isinstance(grads, dict) and self.key in grads:
                grads[self.key] = zeros
        else:
            name = self.grad_attr(layer)
            if name is not None:
                setattr(layer, name, zeros)

    def grad_attr(self, layer):
        for spelling in _GRAD_SPELLINGS:
            name = spelling.format(self.key)
            if isinstance(getattr(layer, name, None), np.ndarray):
                return name
        return None

    def grad(self, layer):
        if self.style == "object":
            g = getattr(layer, self.key).grad
        elif self.style == "dict":
            g = (getattr(layer, "grads", None) or {}).get(self.key)
        else:
            name = self.grad_attr(layer)
            g = None if name is None else getattr(layer, name)
        if g is None:
            raise GradcheckInputError(
                f"check_layer: after backward the layer holds no gradient for parameter {self.name!r} "
                f"({self._where()}); backward must store it there"
            )
        return g

    def _where(self):
        if self.style == "object":
            return f"layer.{self.key}.grad"
        if self.style == "dict":
            return f"layer.grads[{self.key!r}]"
        return " or ".join("layer." + s.format(self.key) for s in _GRAD_SPELLINGS)


def _find_slots(layer, params, probe) -> list:
    """The layer's parameters: named by ``params``, or found by the three spellings.

    ``probe`` is a copy of the layer after one forward/backward: the ``W``/``dW``
    spelling is recognised by the gradient attribute backward actually wrote.
    """
    found = {}
    for key, value in vars(layer).items():
        if _is_param_object(value) and np.issubdtype(value.data.dtype, np.inexact):
            found[key] = _Slot(key, "object", key)
    if isinstance(getattr(layer, "params", None), dict):
        for key, value in layer.params.items():
            if _is_float_array(value):
                found.setdefault(str(key), _Slot(str(key), "dict", key))
    attributes = {}
    for key, value in vars(layer).items():
        if key in found or not _is_float_array(value):
            continue
        slot = _Slot(key, "attribute", key)
        name = slot.grad_attr(probe)
        if name is not None and getattr(probe, name).shape == value.shape:
            attributes[key] = (slot, name)
    grad_names = {name for _, name in attributes.values()}
    for key, (slot, _) in attributes.items():
        if key not in grad_names:  # dW is W's gradient, not a parameter of its own
            found[key] = slot
    if params is None:
        return list(found.values())
    if isinstance(params, str) or not all(isinstance(p, str) for p in params):
        raise GradcheckInputError(f"check_layer: params must be a list of parameter names; got {params!r}")
    missing = [p for p in params if p not in found]
    if missing:
        raise GradcheckInputError(
            f"check_layer: params {missing} are not parameters of the layer (found: "
            f"{', '.join(found) or 'none'}); a parameter is an object with .data/.grad, an entry of "
            f"layer.params with its gradient in layer.grads, or an array W with its gradient in dW"
        )
    return [found[p] for p in params]


class _Harness:
    """fun and grad of the check: each call runs on a fresh copy of the snapshot."""

    def __init__(self, layer, inputs, wrt, slots, forward_kwargs, seed):
        self.snapshot = copy.deepcopy(layer)
        self.inputs = tuple(np.array(x, copy=True) if isinstance(x, np.ndarray) else x for x in inputs)
        self.wrt, self.slots, self.kwargs = wrt, slots, dict(forward_kwargs or {})
        self.seed = seed
        self.global_rng = np.random.get_state()
        self.cotangent = None

    def _fresh(self, p):
        layer = copy.deepcopy(self.snapshot)
        for slot in self.slots:
            slot.set(layer, p[slot.name])
        inputs = list(self.inputs)
        for i, k in enumerate(self.wrt):
            inputs[k] = np.array(p["x"][i], dtype=self.inputs[k].dtype)
        np.random.set_state(self.global_rng)  # a dropout drawing from numpy's global RNG draws the same mask
        return layer, inputs

    def _forward(self, layer, inputs):
        out = layer.forward(*inputs, **self.kwargs)
        if not isinstance(out, np.ndarray):
            raise GradcheckInputError(
                f"check_layer: forward must return one numpy array; got {type(out).__name__}")
        if self.cotangent is None:
            self.cotangent = np.random.default_rng(self.seed).standard_normal(out.shape)
        if out.shape != self.cotangent.shape:
            raise GradcheckInputError(
                f"check_layer: forward returned shape {out.shape}, earlier {self.cotangent.shape}")
        return out

    def fun(self, p):
        layer, inputs = self._fresh(p)
        return float(np.sum(self._forward(layer, inputs) * self.cotangent))

    def run_backward(self, layer, inputs):
        self._forward(layer, inputs)
        for slot in self.slots:
            slot.reset_grad(layer)
        dx = layer.backward(self.cotangent.copy())
        if len(self.inputs) == 1:
            if isinstance(dx, tuple):
                raise GradcheckInputError(
                    "check_layer: backward returned a tuple for a layer of one input; it must return dx "
                    "and store the parameter gradients on the layer (pass several inputs as a tuple)")
            dx = (dx,)
        elif not isinstance(dx, (tuple, list)) or len(dx) != len(self.inputs):
            raise GradcheckInputError(
                f"check_layer: forward takes {len(self.inputs)} inputs, so backward must return a tuple "
                f"of {len(self.inputs)} input gradients; got {type(dx).__name__}")
        return dx

    def grad(self, p):
        layer, inputs = self._fresh(p)
        dx = self.run_backward(layer, inputs)
        g = {slot.name: np.asarray(slot.grad(layer)) for slot in self.slots}
        if self.wrt:
            for k in self.wrt:
                if dx[k] is None:
                    raise GradcheckInputError(f"check_layer: backward returned None for input {k}")
            g["x"] = [np.asarray(dx[k]) for k in self.wrt]
        return g


def check_layer(layer, x, *, params=None, wrt_input=True, forward_kwargs=None, method="central",
                eps=None, atol=None, rtol=None, mode="auto", seed=0, n_probes=None):
    """Check a layer's ``backward`` against finite differences of its ``forward``.

    ``layer``: an object with ``forward(*inputs, **forward_kwargs)`` returning one
    array and ``backward(dout)`` returning the input gradient (a tuple of them for
    several inputs) and storing the parameter gradients (see the module's doc).
    ``x``: the input array, or a tuple of inputs.  ``params``: parameter names to
    check (default: every parameter found).  ``wrt_input``: also check the input
    gradients (integer inputs are always held fixed).  The other keywords are
    check_gradient's.  Entries are named ``x[0][i, j]`` (the first checked input)
    and ``W[i, j]`` (parameters by name).  The layer and x are never modified.
    Returns the GradcheckResult.
    """
    __tracebackhide__ = True
    for name in ("forward", "backward"):
        if not callable(getattr(layer, name, None)):
            raise GradcheckInputError(f"check_layer: layer must have a {name}() method; "
                                      f"{type(layer).__name__} has none")
    inputs = tuple(x) if isinstance(x, tuple) else (x,)
    if not inputs or not all(isinstance(v, np.ndarray) for v in inputs):
        raise GradcheckInputError("check_layer: x must be a numpy array or a tuple of numpy arrays")
    wrt = [k for k, v in enumerate(inputs) if wrt_input and np.issubdtype(v.dtype, np.inexact)]
    harness = _Harness(layer, inputs, wrt, [], forward_kwargs, seed)
    # one forward/backward on a copy finds the W/dW spelling by what backward writes
    probe, probe_inputs = harness._fresh({"x": [inputs[k] for k in wrt]})
    harness.run_backward(probe, probe_inputs)
    harness.slots = _find_slots(harness.snapshot, params, probe)
    if "x" in {s.name for s in harness.slots}:
        raise GradcheckInputError("check_layer: a parameter named 'x' clashes with the input's name")
    tree = {slot.name: np.array(slot.value(harness.snapshot), dtype=np.float64) for slot in harness.slots}
    if wrt:
        tree["x"] = [np.array(inputs[k], dtype=np.float64) for k in wrt]
    if not tree:
        raise GradcheckInputError(
            "check_layer: nothing to check: no float input (or wrt_input=False) and no parameter found")
    try:
        return check_gradient(harness.fun, tree, harness.grad, method=method, eps=eps, atol=atol,
                              rtol=rtol, mode=mode, seed=seed, vectorized=False, n_probes=n_probes)
    finally:
        np.random.set_state(harness.global_rng)
