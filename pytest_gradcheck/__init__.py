"""pytest-gradcheck: check hand-written gradients against finite differences.

Public names are imported lazily (PEP 562): the pytest entry point imports this
package in every pytest run of an environment that has it installed, and that
must not cost a numpy import or break when an optional part is broken.

Layer: public API, above the numerics and frameworks.  Imports nothing at import
time; each public name is loaded from the module named in ``_PUBLIC`` on first use.
"""

from importlib import import_module

__version__ = "0.1.0"

_PUBLIC = {
    "check_gradient": ".numerics.check",
    "check_vjp": ".numerics.vector",
    "check_jvp": ".numerics.vector",
    "check_jacobian": ".numerics.vector",
    "check_hessian": ".numerics.second_order",
    "check_gradgrad": ".numerics.second_order",
    "check_layer": ".layer_check",
    "GradcheckResult": ".numerics.result",
    "GradcheckError": ".errors",
    "GradcheckInputError": ".errors",
    "GradcheckUserCodeError": ".errors",
    "model": ".discovery",
    "check_function": ".torch_function",      # torch: imported only when asked for
    "check_module": ".modules",          # torch nn.Module or Keras model
    "register_adapter": ".frameworks.registry",
    "Adapter": ".frameworks.base",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    try:
        module = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module 'pytest_gradcheck' has no attribute {name!r}") from None
    # not cached in globals(): resolving through sys.modules each time keeps the
    # names consistent when a host (pytester's in-process runs) re-imports modules
    return getattr(import_module(module, __name__), name)


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
