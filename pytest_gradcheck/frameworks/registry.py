"""Which adapter owns a leaf.  numpy is built in; torch and jax are added lazily
when their modules are already imported (we never import a framework the user
did not), and third parties add theirs with :func:`register_adapter` or the
``pytest_gradcheck.adapters`` entry point group (see frameworks/__init__.py)."""

from __future__ import annotations

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


def _load_optional() -> None:
    """Hook for the optional framework adapters; replaced by frameworks/__init__."""


def adapters() -> list[Adapter]:
    _load_optional()
    return _ADAPTERS + [_NUMPY]


def adapter_for(leaf) -> Adapter | None:
    for a in adapters():
        if a.owns(leaf):
            return a
    return None
