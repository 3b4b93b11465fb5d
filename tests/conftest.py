"""Shared test setup (pytester comes from ``-p pytester`` in pyproject addopts)."""

try:  # Import hypothesis once for the whole session: pytester's in-process runs
    import hypothesis  # noqa: F401  # restore sys.modules afterwards, so a module
except ImportError:  # pragma: no cover  # first imported inside a run (by the
    pass  # hypothesis plugin's terminal summary) is imported again by every run (~4 s each).
