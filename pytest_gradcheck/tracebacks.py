"""Which traceback frames are the plugin's own, and the filters that hide them.

A failed or unusable check raises deep inside the checker (numerics, adapters,
the fixture's call path); those frames are noise to a user, who needs their own
line and the message.  pytest hides its own frames the same way (and
``--full-trace`` shows everything, ours included).

Layer: plugin side (which frames are ours).  Imports nothing of this package.
"""

from __future__ import annotations

import os
from pathlib import Path

#: the package's directory: every frame from a file below it is ours
PACKAGE_DIR = Path(os.path.abspath(__file__)).parent


def is_own_file(filename) -> bool:
    """A file of this package."""
    return PACKAGE_DIR in Path(os.path.abspath(str(filename))).parents


def is_own_or_pytest_frame(entry) -> bool:
    """A frame of this package, of pytest or of pluggy: not the user's code."""
    import _pytest
    import pluggy

    path = Path(os.path.abspath(str(entry.path)))
    for package in (_pytest, pluggy):
        if Path(os.path.abspath(package.__file__)).parent in path.parents:
            return True
    return is_own_file(path)


def without_own_frames(traceback):
    """``traceback`` (a pytest Traceback) less the frames of this package.

    The last frame left carries the exception's message: it gets the configured
    style back if pytest had shortened it as a middle frame.  May be empty (then
    pytest says that all entries are hidden and how to see them).
    """
    kept = traceback.filter(lambda entry: not is_own_file(entry.path))
    if len(kept) == len(traceback) or not kept:
        return kept
    return type(traceback)([*kept[:-1], kept[-1].with_repr_style(None)])


def hide_own_frames(item) -> None:
    """Make ``item`` (a test function) leave this package's frames out of its failure
    reports, on top of pytest's own filtering.  Nothing changes for a test whose
    traceback does not pass through this package, nor under ``--full-trace``
    (pytest does not filter then)."""
    original = getattr(item, "_traceback_filter", None)  # pytest >= 7.4
    if original is None or getattr(original, "hides_gradcheck_frames", False):
        return

    def traceback_filter(excinfo):
        return without_own_frames(original(excinfo))

    traceback_filter.hides_gradcheck_frames = True
    item._traceback_filter = traceback_filter
