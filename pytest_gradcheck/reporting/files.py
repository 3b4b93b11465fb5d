"""Safe writes of the files the plugin produces: the baseline and the reports.

Layer: reporting.  Standard library only; knows nothing of pytest or of what
the files contain.

* :func:`write_text_atomic`: the text goes to a temporary file beside the
  target, flushed to disk, then ``os.replace``-d over it, so a reader - or a
  run interrupted half-way - sees the old file or the new one, never a part of
  one.  The temporary file is removed on any exception, KeyboardInterrupt
  included.
* :func:`locked`: an exclusive lock for one path, held across a
  read-merge-write (two ``--gradcheck-update-baseline`` runs at the same time
  must not lose each other's entries).  ``fcntl.flock`` on a sidecar
  ``PATH.lock`` file where there is one (POSIX); elsewhere the sidecar is
  created with ``O_EXCL`` and its existence is the lock.  The sidecar is
  removed on release, so no stray file is left next to a committed baseline.
"""

from __future__ import annotations

import contextlib
import os
import time

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

#: how long :func:`locked` waits for another holder.  A run holds the lock only
#: while it re-reads, merges and writes one file (milliseconds); a minute means
#: the holder is stuck (stopped in a debugger) or, without fcntl, a stale lock
#: file left by a killed run, and the error then names the lock file.
LOCK_TIMEOUT_S = 60.0
#: polling interval while waiting for the lock (short: the wait is short)
LOCK_POLL_S = 0.02


class LockTimeout(OSError):
    """The lock of a file could not be taken in time."""


def write_text_atomic(path: str | os.PathLike, text: str) -> str:
    """Write ``text`` (UTF-8) to ``path`` atomically; parents are created.  Returns the path."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # a leftover of a killed process that had our pid
    try:
        # O_EXCL: never write through something another user put at the temporary name
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with open(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # KeyboardInterrupt too: no half-written file, no temporary left behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


@contextlib.contextmanager
def locked(path: str | os.PathLike, timeout: float = LOCK_TIMEOUT_S):
    """Hold an exclusive lock for ``path`` while the ``with`` body runs (see the module docstring)."""
    lock_path = os.fspath(path) + ".lock"
    os.makedirs(os.path.dirname(os.path.abspath(lock_path)) or ".", exist_ok=True)
    deadline = time.monotonic() + timeout
    if fcntl is not None:
        fd = _acquire_flock(lock_path, deadline)
        try:
            yield lock_path
        finally:
            # unlink while still holding it: a waiter that opened the old inode sees it is gone and retries
            with contextlib.suppress(OSError):
                os.unlink(lock_path)
            os.close(fd)
    else:
        fd = _acquire_exclusive_create(lock_path, deadline)
        try:
            yield lock_path
        finally:
            os.close(fd)  # first: Windows does not unlink an open file
            with contextlib.suppress(OSError):
                os.unlink(lock_path)


def _timeout(lock_path: str) -> LockTimeout:
    return LockTimeout(f"another process has held the lock {lock_path} for more than {LOCK_TIMEOUT_S:g} s; "
                       "if no other pytest run is writing this file, delete the lock file")


def _acquire_flock(lock_path: str, deadline: float) -> int:
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise _timeout(lock_path) from None
                    time.sleep(LOCK_POLL_S)
            # the previous holder unlinks the file before releasing it: a lock on that old inode
            # guards nothing, so take the lock again on the file now at the path
            try:
                current = os.stat(lock_path)
            except FileNotFoundError:
                current = None
            held = os.fstat(fd)
            if current is not None and (current.st_ino, current.st_dev) == (held.st_ino, held.st_dev):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _acquire_exclusive_create(lock_path: str, deadline: float) -> int:
    while True:
        try:
            return os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            if time.monotonic() > deadline:
                raise _timeout(lock_path) from None
            time.sleep(LOCK_POLL_S)
