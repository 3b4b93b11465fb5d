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
