"""Reading a function's output as a scalar, through the adapter of its framework.

Layer: frameworks, top (beside the torch and jax adapters, which use it for their
batched evaluations).  Imports errors and frameworks.registry; never numerics/.
"""

from __future__ import annotations

import numpy as np

from ..errors import GradcheckInputError
from .registry import adapters

_EPS64 = float(np.finfo(np.float64).eps)
#: eps of each numpy scalar type seen (np.finfo and np.issubdtype cost ~3 us per output; a check
#: of a small numpy f reads a few dozen outputs, so they were a tenth of its fixed cost)
_EPS_OF_TYPE: dict = {np.float64: _EPS64, np.float32: float(np.finfo(np.float32).eps),
                      np.float16: float(np.finfo(np.float16).eps)}


def scalar_of(out, what: str = "fun", owners: dict | None = None, gradient_like=None):
    """(value, eps of its dtype) of a scalar output; GradcheckInputError otherwise.

    ``owners`` (type -> adapter) remembers which adapter read an output type, so that
    the thousands of outputs of one check skip the adapter lookup (~2 us each).
    ``gradient_like(obj)``: whether obj has params' structure; a pair whose second item
    does is what a grad=True fun returns, and only then is grad=True suggested."""
    if owners:
        ad = owners.get(type(out))
        if ad is not None:
            got = ad.scalar_output(out)
            if got is not None:
                return got
    eps = _EPS_OF_TYPE.get(type(out))
    if eps is not None:  # a real numpy float scalar, the usual output of a numpy fun
        return out.item(), eps
    if isinstance(out, (bool, np.bool_)):
        raise GradcheckInputError(f"{what} returned a boolean; it must return a number")
    if isinstance(out, float):
        return out, _EPS64
    if isinstance(out, int):
        return float(out), _EPS64
    if isinstance(out, complex):
        return out, _EPS64
    if isinstance(out, (np.ndarray, np.generic)):
        a = np.asarray(out)
        if a.size != 1:
            raise GradcheckInputError(
                f"{what} must return a scalar; it returned an array of shape {a.shape}. "
                f"For vector-valued functions use check_vjp, check_jvp or check_jacobian")
        if not np.issubdtype(a.dtype, np.number):
            raise GradcheckInputError(f"{what} returned a value of dtype {a.dtype}; it must return a number")
        eps = float(np.finfo(a.dtype).eps) if np.issubdtype(a.dtype, np.inexact) else float(np.finfo(np.float64).eps)
        return a.reshape(()).item(), eps
    for ad in adapters():
        if ad.owns(out):
            got = ad.scalar_output(out)
            if got is not None:
                if owners is not None:
                    owners[type(out)] = ad
                return got
            break
    if isinstance(out, tuple) and len(out) == 2:
        if gradient_like is not None and gradient_like(out[1]):
            raise GradcheckInputError(
                f"{what} must return a scalar; it returned a tuple of two whose second item has params' "
                f"structure. If it returns (value, gradient), as scipy.optimize.minimize(jac=True) "
                f"objectives do, pass grad=True")
        raise GradcheckInputError(
            f"{what} must return a scalar; it returned a tuple of two (the second a "
            f"{type(out[1]).__name__} without params' structure, e.g. a cache for backward). Check a "
            f"function that returns the value only: lambda p: {what}(p)[0]")
    raise GradcheckInputError(f"{what} must return a scalar (float or size-1 array); it returned {type(out).__name__}")
