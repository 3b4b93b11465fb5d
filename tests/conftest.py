"""Shared test setup (pytester comes from ``-p pytester`` in pyproject addopts).

pytester's in-process runs restore sys.modules afterwards, so a module first
imported inside a run is imported again by the next one.  Import the heavy ones
here, once: hypothesis (its plugin's summary imports it; ~4 s a run) and numpy
(a C extension that refuses to be loaded twice in one process; the plugin
imports it lazily, inside the inner run).
"""

import numpy  # noqa: F401

try:
    import hypothesis  # noqa: F401
except ImportError:  # pragma: no cover
    pass


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _inner_runs_without_randomly(request, monkeypatch):
    """A pytester run is a scenario its test spells out, outputs in order included: with
    pytest-randomly installed (a user's environment, autoloaded in inner runs too) its items
    ran shuffled and order-dependent fnmatch_lines failed.  Its outer shuffling of this suite
    stays.  Set after pytester's own setup, which clears PYTEST_ADDOPTS."""
    if "pytester" not in request.fixturenames:
        return
    request.getfixturevalue("pytester")
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:randomly")
