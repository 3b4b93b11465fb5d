"""PyTorch helpers: custom ``autograd.Function`` checks and ``nn.Module`` losses.

Importing this module imports torch (use it from code that uses torch).

Custom functions::

    from pytest_gradcheck.torch_function import check_function
    result = check_function(MySoftplus, torch.randn(5, dtype=torch.float64, requires_grad=True))
    result.raise_for_status()

Inputs that are not float tensors with ``requires_grad=True`` are held fixed.
Several outputs are reduced with random cotangents ``c_j`` (drawn from
``seed``): the check compares the Function's backward, applied to ``c``, with
finite differences of ``sum_j <out_j, c_j>`` -- a vector-Jacobian product
check, which catches a wrong backward for any output with probability one.
A backward that returns None for an input that requires grad counts as a zero
gradient, so it fails whenever the true gradient is not zero.

Discovery convention (used by the plugin to collect Functions from a module):
an ``autograd.Function`` subclass is checkable when it has a
``sample_inputs()`` staticmethod/classmethod, or the module defines
``<ClassName>_inputs`` (a tuple of inputs, or a function returning one).
:func:`find_functions` lists them; :func:`sample_inputs` returns the inputs.

Modules::

    from pytest_gradcheck.torch_function import check_module
    check_module(model, lambda out: F.mse_loss(out, y), x).raise_for_status()

or, spelled out (the report names entries by ``named_parameters()``, e.g.
``fc1.weight[3, 2]``)::

    check_gradient(module_fun(model, loss, x), module_params(model))

``module_fun`` evaluates the model with ``torch.func.functional_call`` on the
parameters it is given, casting floating inputs and buffers to the
parameters' dtype, so a float32 model's finite differences run in float64
while the analytic gradient (autograd, ``grad=None``) stays float32.  The
model itself is never modified (buffers are copied for each call).

Layer: public API, above the numerics (it calls check_gradient through the
package).  Imports errors and the package's public names; the plugin imports it.
"""

from __future__ import annotations

import inspect
import types
from typing import Any, Callable

import numpy as np
import torch

from .errors import GradcheckInputError

__all__ = ["check_function", "find_functions", "sample_inputs", "module_params", "module_fun", "check_module"]


# ---------------------------------------------------------------------------
# nn.Module
def module_params(model: "torch.nn.Module", trainable_only: bool = True) -> dict:
    """``{name: tensor}`` copies of the model's parameters (``named_parameters()`` names);
    frozen parameters are left out unless ``trainable_only=False``."""
    out = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad or not trainable_only}
    if not out:
        raise GradcheckInputError(f"{type(model).__name__} has no trainable parameters to check")
    return out


def module_fun(model: "torch.nn.Module", loss: Callable | None = None, *inputs, **kwargs) -> Callable:
    """``fun(params) = loss(model(*inputs, **kwargs))`` with the model's parameters replaced by ``params``
    (``torch.func.functional_call``).  ``loss=None``: the model's output must be a scalar."""
    if not isinstance(model, torch.nn.Module):
        raise GradcheckInputError(f"module_fun needs an nn.Module; got {type(model).__name__}")
    buffers = dict(model.named_buffers())

    def cast(v, dt):
        if isinstance(v, torch.Tensor) and v.is_floating_point() and v.dtype != dt:
            return v.to(dt)
        return v

    def fun(params):
        dt = next((t.dtype for t in params.values() if isinstance(t, torch.Tensor) and t.is_floating_point()),
                  None)
        state = {k: (b.to(dt) if (dt is not None and b.is_floating_point()) else b).clone() for k, b in buffers.items()}
        state.update(params)
        args = tuple(cast(v, dt) for v in inputs) if dt is not None else inputs
        kw = {k: cast(v, dt) for k, v in kwargs.items()} if dt is not None else kwargs
        out = torch.func.functional_call(model, state, args, kw)
        return loss(out) if loss is not None else out

    fun.__name__ = f"{type(model).__name__}_loss"
    return fun


def check_module(model: "torch.nn.Module", loss: Callable | None = None, *inputs, grad=None, **check_options):
    """check_gradient of ``loss(model(*inputs))`` with respect to the model's trainable parameters."""
    from . import check_gradient

    return check_gradient(module_fun(model, loss, *inputs), module_params(model), grad, **check_options)


# ---------------------------------------------------------------------------
# custom autograd.Function
def _input_names(fn_cls, n: int) -> list[str]:
    try:
        sig = inspect.signature(fn_cls.forward)
        names = [p.name for p in sig.parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if names and names[0] in ("ctx", "self"):
            names = names[1:]
        # with setup_context, forward has no ctx argument
    except (TypeError, ValueError):
        names = []
    out = []
    for i in range(n):
        nm = names[i] if i < len(names) else f"input{i}"
        out.append(nm if nm not in out else f"{nm}{i}")
    return out


def _as_tuple(outs) -> tuple:
    return outs if isinstance(outs, (tuple, list)) else (outs,)


def check_function(fn_cls, *inputs, seed: int = 0, **check_options):
    """Check a custom ``torch.autograd.Function``'s backward against finite differences of its forward.

    ``inputs``: the positional arguments of ``fn_cls.apply``; float tensors with
    ``requires_grad=True`` are checked, everything else is held fixed.  Without
    inputs, the Function's sample inputs are used (see :func:`sample_inputs`).
    ``check_options`` go to :func:`pytest_gradcheck.check_gradient`
    (method, eps, atol, rtol, mode, vectorized...).  Returns a GradcheckResult
    (kind "vjp"); call ``.raise_for_status()`` to fail a test.
    """
    from . import check_gradient

    if not (isinstance(fn_cls, type) and issubclass(fn_cls, torch.autograd.Function)):
        raise GradcheckInputError(f"check_function needs a torch.autograd.Function subclass; got {fn_cls!r}")
    if not inputs:
        inputs = sample_inputs(fn_cls)
    names = _input_names(fn_cls, len(inputs))
    diff = [i for i, v in enumerate(inputs)
            if isinstance(v, torch.Tensor) and v.is_floating_point() and v.requires_grad]
    skipped = [names[i] for i in range(len(inputs)) if i not in diff]
    if not diff:
        raise GradcheckInputError(
            f"check_function({fn_cls.__name__}): no input is a float tensor with requires_grad=True, so there is "
            f"no gradient to check")
    keys = [names[i] for i in diff]
    params = {k: inputs[i].detach().clone() for k, i in zip(keys, diff)}

    def args_with(p):
        args = list(inputs)
        for k, i in zip(keys, diff):
            args[i] = p[k]
        for i, v in enumerate(args):
            if isinstance(v, torch.Tensor) and i not in diff:
                args[i] = v.detach()
        return args

    # which outputs are differentiable: float outputs that require grad when the checked inputs do
    probe = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    with torch.enable_grad():
        outs0 = _as_tuple(fn_cls.apply(*args_with(probe)))
    live = [j for j, o in enumerate(outs0)
            if isinstance(o, torch.Tensor) and o.is_floating_point() and o.requires_grad]
    if not live:
        raise GradcheckInputError(
            f"check_function({fn_cls.__name__}): no output requires grad (is every output marked "
            f"non-differentiable, or does forward return non-float values?)")
    gen = torch.Generator().manual_seed(int(seed))
    cot = {}
    for j in live:
        # each output's cotangent is scaled by 1/rms(output), so outputs of very different magnitudes
        # weigh alike in sum_j <out_j, c_j> (else the largest drowns the others' roundoff budget)
        c = torch.randn(tuple(outs0[j].shape), generator=gen, dtype=torch.float64)
        o = outs0[j].detach().to(device="cpu", dtype=torch.float64)
        rms = float(o.pow(2).mean().sqrt()) if o.numel() else 0.0
        cot[j] = c / rms if rms > 0 and np.isfinite(rms) else c
    cot_dev = {j: c.to(outs0[j].device) for j, c in cot.items()}

    def fun(p):
        with torch.no_grad():
            outs = _as_tuple(fn_cls.apply(*args_with(p)))
            s = None
            for j in live:
                o = outs[j]
                c = cot_dev[j]
                term = (o.to(torch.float64) * c).sum() if o.dtype != torch.float64 else (o * c).sum()
                s = term if s is None else s + term
        return s

    def grad(p):
        work = {k: v.detach().clone().requires_grad_(True) for k, v in p.items()}
        with torch.enable_grad():
            outs = _as_tuple(fn_cls.apply(*args_with(work)))
            os_, cs = [], []
            for j in live:
                o = outs[j]
                if isinstance(o, torch.Tensor) and o.requires_grad:
                    os_.append(o)
                    cs.append(cot_dev[j].to(o.dtype))
            gs = torch.autograd.grad(os_, [work[k] for k in keys], grad_outputs=cs, allow_unused=True) if os_ \
                else [None] * len(keys)
        return {k: (torch.zeros_like(work[k]) if g is None else g.detach()) for k, g in zip(keys, gs)}

    grad.gradcheck_name = f"{fn_cls.__name__}.backward"  # what the diagnosis names as the analytic side
    res = check_gradient(fun, params, grad, seed=seed, **check_options)
    res.kind = "vjp"
    note = (f"check_function({fn_cls.__name__}): backward applied to random cotangents (seed {seed}) for "
            f"output{'s' if len(live) > 1 else ''} {live} vs finite differences of sum_j <out_j, c_j>")
    if skipped:
        note += f"; held fixed (no gradient checked): {', '.join(skipped)}"
    res.messages.append(note)
    return res


# ---------------------------------------------------------------------------
# discovery
def sample_inputs(fn_cls, module: types.ModuleType | None = None) -> tuple:
    """The sample inputs of a Function: ``fn_cls.sample_inputs()`` or ``<module>.<Name>_inputs``
    (a tuple, or a callable returning one).  A single tensor is wrapped in a tuple."""
    if module is None:
        import sys

        module = sys.modules.get(getattr(fn_cls, "__module__", ""), None)
    got: Any = None
    if callable(getattr(fn_cls, "sample_inputs", None)):
        got = fn_cls.sample_inputs()
    elif module is not None and hasattr(module, f"{fn_cls.__name__}_inputs"):
        got = getattr(module, f"{fn_cls.__name__}_inputs")
        if callable(got):
            got = got()
    else:
        raise GradcheckInputError(
            f"{fn_cls.__name__} has no sample inputs: give it a staticmethod sample_inputs() returning a tuple of "
            f"inputs for apply(), or define {fn_cls.__name__}_inputs in its module")
    if isinstance(got, list):
        got = tuple(got)
    if not isinstance(got, tuple):
        got = (got,)
    return got


def find_functions(module: types.ModuleType) -> list:
    """The ``torch.autograd.Function`` subclasses in ``module`` that have sample inputs, sorted by name."""
    found = []
    for name, obj in sorted(vars(module).items()):
        if not (isinstance(obj, type) and issubclass(obj, torch.autograd.Function)):
            continue
        if obj is torch.autograd.Function or getattr(obj, "__module__", "").startswith("torch."):
            continue
        if callable(getattr(obj, "sample_inputs", None)) or hasattr(module, f"{obj.__name__}_inputs"):
            found.append(obj)
    return found
