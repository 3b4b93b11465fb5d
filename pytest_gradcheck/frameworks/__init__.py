"""Framework adapters: numpy built in; torch, jax and tensorflow registered lazily once the
user has imported them; others through :func:`register_adapter` or the
``pytest_gradcheck.adapters`` entry-point group (see :mod:`.hookspecs`).

Layer: frameworks, below the numerics.  Modules here import errors, pytree and
each other, never numerics/ (the numerics call the adapters, not the reverse).

Nothing here imports torch, jax or tensorflow.  The torch helpers (``check_function``,
``module_params``, ``module_fun``, ``check_module``, ``find_functions``) call
check_gradient, so they sit above the numerics, in
:mod:`pytest_gradcheck.torch_function`, imported on demand.
"""

from .base import Adapter, NumpyAdapter
from .hookspecs import hookimpl
from .registry import adapter_for, adapters, register_adapter

__all__ = ["Adapter", "NumpyAdapter", "register_adapter", "adapter_for", "adapters", "hookimpl"]
