"""Which adapter owns a leaf.  numpy is built in; torch, jax and tensorflow are added lazily
when their modules are already imported (we never import a framework the user
did not), and third parties add theirs with :func:`register_adapter` or the
``pytest_gradcheck.adapters`` entry point group (see hookspecs.py).

Layer: frameworks, middle.  Imports base and hookspecs (and loads torch_adapter /
jax_adapter / tf_adapter by name, once their framework is imported); never numerics/."""

from __future__ import annotations

import sys

from .base import Adapter, NumpyAdapter

_ADAPTERS: list[Adapter] = []
_NUMPY = NumpyAdapter()


def register_adapter(adapter: Adapter, first: bool = True) -> None:
    """Make ``adapter`` known; later registrations win over earlier ones."""
    if any(type(a) is type(adapter) for a in _ADAPTERS):
        return
    if first:
        _ADAPTERS.insert(0, adapter)
    else:
        _ADAPTERS.append(adapter)


_PLUGINS_DONE = False
#: errors raised while loading third-party adapters (shown by diagnostics, never fatal)
PLUGIN_ERRORS: list[str] = []
#: optional built-in adapters: framework module -> (our module, class)
_OPTIONAL = {"torch": ("torch_adapter", "TorchAdapter"), "jax": ("jax_adapter", "JaxAdapter"),
             "tensorflow": ("tf_adapter", "TfAdapter")}
#: framework module -> its adapter instance, or None when loading it failed (not retried)
_LOADED: dict = {}


def _load_optional() -> None:
    """Register the torch / jax / tensorflow adapters once their modules are imported by the
    user (we never import them ourselves), and third-party adapters from the
    ``pytest_gradcheck.adapters`` entry points (once).  Cheap: called on every
    adapter lookup.  An adapter dropped from the list (a test restoring the
    registry) is registered again."""
    global _PLUGINS_DONE
    if not _PLUGINS_DONE:
        _PLUGINS_DONE = True
        _load_plugins()
    for mod, (ours, cls) in _OPTIONAL.items():
        if sys.modules.get(mod) is not None:  # None: an import blocked on purpose (sys.modules[mod] = None)
            adapter = _LOADED.get(mod, False)
            if adapter is False:
                adapter = _LOADED[mod] = _make_builtin(ours, cls)
            if adapter is not None and adapter not in _ADAPTERS:
                register_adapter(adapter)


def _make_builtin(module: str, cls: str):
    """An instance of a built-in optional adapter, or None (with a warning) when it cannot be loaded."""
    import importlib

    try:
        return getattr(importlib.import_module(f".{module}", __package__), cls)()
    except Exception as e:  # noqa: BLE001 - e.g. a partially installed torch/jax
        PLUGIN_ERRORS.append(f"{cls}: {type(e).__name__}: {e}")
        import warnings

        warnings.warn(f"pytest-gradcheck: the {cls} could not be loaded ({type(e).__name__}: {e}); leaves of that "
                      f"framework are not supported in this process", RuntimeWarning, stacklevel=4)
        return None


def _load_plugins() -> None:
    """Adapters from the ``pytest_gradcheck.adapters`` entry-point group (pluggy)."""
    try:
        import pluggy

        from . import hookspecs

        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        pm.load_setuptools_entrypoints(hookspecs.ENTRY_POINT_GROUP)
        for got in pm.hook.pytest_gradcheck_adapters():
            for adapter in got or ():
                if not isinstance(adapter, Adapter):
                    raise TypeError(f"pytest_gradcheck_adapters returned {type(adapter).__name__}, not an Adapter")
                register_adapter(adapter, first=False)
    except Exception as e:  # noqa: BLE001 - a broken third-party plugin must not break every check
        PLUGIN_ERRORS.append(f"{type(e).__name__}: {e}")
        import warnings

        warnings.warn(f"pytest-gradcheck: loading adapters from entry points failed: {type(e).__name__}: {e}",
                      RuntimeWarning, stacklevel=2)


def adapters() -> list[Adapter]:
    _load_optional()
    return _ADAPTERS + [_NUMPY]


def adapter_for(leaf) -> Adapter | None:
    for a in adapters():
        if a.owns(leaf):
            return a
    return None


def unsupported(obj) -> str:
    """Why a leaf of this type cannot be read, and the way out: the frameworks supported (each
    once the user has imported it) and the conversion that makes the leaf a numpy array."""
    out = (f"unsupported type {type(obj).__name__}; supported: numpy arrays and Python numbers, torch tensors, "
           f"jax arrays, tensorflow tensors and Variables (Keras variables too), or dicts/lists/tuples of them")
    if hasattr(obj, "numpy") and callable(obj.numpy):
        return out + " (convert it with .numpy(), which gives a numpy array)"
    if hasattr(obj, "__array__"):
        return out + " (convert it with np.asarray(...))"
    return out + " (convert it to a numpy array, e.g. np.asarray(...) or .numpy())"


def ends_check(check):
    """Decorator for the public checks: every adapter's ``end_check`` runs once the check is over,
    however it ends (jax: caches that evaluating fun inside its x64 context may have left behind)."""
    import functools

    @functools.wraps(check)
    def run(*args, **kwargs):
        __tracebackhide__ = True
        try:
            return check(*args, **kwargs)
        finally:
            for a in _ADAPTERS:
                a.end_check()

    return run
