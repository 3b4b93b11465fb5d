"""The pluggy hook through which third-party packages add a framework adapter.

A package that wants pytest-gradcheck to read its arrays declares an entry
point in the group ``pytest_gradcheck.adapters`` pointing at a module (or
object) that implements the hook below::

    # pyproject.toml of the third-party package
    [project.entry-points."pytest_gradcheck.adapters"]
    mylib = "mylib.gradcheck_adapter"

    # mylib/gradcheck_adapter.py
    from pytest_gradcheck.frameworks import Adapter, hookimpl

    class MyLibAdapter(Adapter):
        name = "mylib"
        def owns(self, leaf): ...
        def to_numpy(self, leaf): ...
        def leaf_from_buffer(self, buffer, like): ...

    @hookimpl
    def pytest_gradcheck_adapters():
        return [MyLibAdapter()]

The entry points are loaded once, the first time an adapter is looked up.
Code that runs anyway (a conftest, a test module) can simply call
``pytest_gradcheck.frameworks.register_adapter(MyLibAdapter())``.

Layer: frameworks, bottom.  Imports pluggy only.
"""

from __future__ import annotations

import pluggy

PROJECT = "pytest_gradcheck"
ENTRY_POINT_GROUP = "pytest_gradcheck.adapters"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def pytest_gradcheck_adapters():
    """Return a list of :class:`pytest_gradcheck.frameworks.Adapter` instances.

    Called once per process.  Adapters returned here are tried before the
    built-in numpy adapter; an adapter whose type is already registered is
    ignored.
    """
