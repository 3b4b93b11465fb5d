"""Safe writes of the files the plugin produces: the baseline and the reports.

Layer: plugin side, report data (the lowest reporting layer).  Standard
library only; knows nothing of pytest or of what the files contain.

* :func:`write_target`: where a write to a path lands.  A symlink is written
  through: the link stays, its target gets the new content (a report path that
  links into a shared folder keeps linking there).  A target that is not a
  regular file (a device, a FIFO, a directory) is refused, and so is a
  read-only one: a 0444 baseline says "do not rewrite me", so the run says
  how to make it writable rather than replacing it (:class:`RefusedTarget`).
* :func:`write_text_atomic`: the text goes to a temporary file beside the
  target, flushed to disk, then ``os.replace``-d over it, so a reader - or a
  run interrupted half-way - sees the old file or the new one, never a part of
  one.  The temporary file is removed on any exception, KeyboardInterrupt and SIGTERM
  included.  The target's permission bits are kept (the temporary file would
  otherwise bring the umask's).
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
import signal
import stat
import threading
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


@contextlib.contextmanager
def terminate_as_interrupt():
    """While the body runs, SIGTERM (a CI job cancelled, ``kill``) raises KeyboardInterrupt as
    Ctrl-C does, instead of ending the process on the spot: the ``finally`` clauses of
    :func:`write_text_atomic` and :func:`locked` then remove the temporary and the lock file,
    and the caller reports the interruption in one line.  The previous handler is restored
    afterwards.  Only the main thread can set handlers: elsewhere the body runs as it is."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


class LockTimeout(OSError):
    """The lock of a file could not be taken in time."""


class RefusedTarget(OSError):
    """A path the plugin will not write: not a regular file, or read-only."""


def write_target(path: str | os.PathLike) -> str:
    """The file a write to ``path`` replaces: ``path`` with symlinks resolved.

    Raises :class:`RefusedTarget` when that file exists and is not a regular
    file, or is read-only (no write bit, or not writable by this user: root
    ignores permission bits, this check does not).
    """
    path = os.fspath(path)
    target = os.path.realpath(path)
    shown = path if target == os.path.abspath(path) else f"{path} (a link to {target})"
    try:
        st = os.stat(target)
    except OSError:  # absent (created by the write), or unreachable: the write reports that itself
        return target
    if not stat.S_ISREG(st.st_mode):
        raise RefusedTarget(f"{shown} is not a regular file; give the path of a file to write")
    if not st.st_mode & 0o222 or not os.access(target, os.W_OK):
        raise RefusedTarget(f"{shown} is read-only (mode {stat.S_IMODE(st.st_mode):o}); pytest-gradcheck does not "
                            f"replace a read-only file: make it writable (chmod u+w) to update it")
    return target


def write_text_atomic(path: str | os.PathLike, text: str) -> str:
    """Write ``text`` (UTF-8) to :func:`write_target` of ``path`` atomically, keeping its
    permission bits; parents are created.  Returns ``path``."""
    path = os.fspath(path)
    target = write_target(path)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = None  # a new file: the umask decides, as for any file the user creates
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = f"{target}.tmp{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # a leftover of a killed process that had our pid
    with terminate_as_interrupt():
        _write_replace(tmp, target, text, mode)
    return path


def _write_replace(tmp: str, target: str, text: str, mode: int | None) -> None:
    try:
        # O_EXCL: never write through something another user put at the temporary name
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with open(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:  # KeyboardInterrupt (and SIGTERM, see above) too: no half-written file, no temporary
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def locked(path: str | os.PathLike, timeout: float = LOCK_TIMEOUT_S):
    """Hold an exclusive lock for ``path`` while the ``with`` body runs (see the module docstring).

    The lock sits beside the resolved target, so runs that reach one file through
    different links share it."""
    lock_path = os.path.realpath(os.fspath(path)) + ".lock"
    os.makedirs(os.path.dirname(lock_path), exist_ok=True)
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
