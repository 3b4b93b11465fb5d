"""The arrays a user's function can reach besides its argument, fingerprinted to name in-place mutation.

A gradient written the cs231n way, ``dout = R; dout[x <= 0] = 0``, zeroes the
upstream gradient ``R`` that the test closes over: every later call sees other
data, and the check would blame "nondeterminism" (or pass on corrupted data).
``Reach`` records a fingerprint of every numpy array (and CPU torch tensor)
that ``fun`` or ``grad`` can name -- closure variables, default arguments,
module globals its code uses, the attributes of a bound method's ``self`` or
of a callable object, the arguments of a ``functools.partial``, one level into
lists / tuples / dicts held there, and the same for plain functions it reaches
that way (``forward`` called by ``fun``) -- and ``changed()`` says which one no
longer matches.  The arrays are only read, never restored or copied.

Fingerprints are CRC-32 checksums of the bytes (~1 GB/s, zlib): a check
hashes at most MAX_BYTES per snapshot, so a function closing over a large data
set costs at most a fraction of a second; arrays beyond the budget are not
watched.

Layer: numerics, bottom.  Imports numpy only: nothing of the package.
"""

from __future__ import annotations

import functools
import sys
import types
import zlib

import numpy as np

#: bytes hashed per snapshot: 256 MiB is ~0.25 s at zlib's ~1 GB/s, taken three or four times per check
MAX_BYTES = 256 * 2**20
#: functions followed from the checked one (fun -> forward -> layer): enough for the helpers a
#: hand-written loss calls, without walking a whole library
MAX_FUNCTIONS = 16
#: items looked at in one list / tuple / dict held by a function (a cache of thousands is not data)
MAX_ITEMS = 64


def _as_numpy(obj):
    """A read-only numpy view of ``obj``'s data, or None when it is not an array we can watch."""
    if isinstance(obj, np.ndarray):
        return obj if obj.dtype != object else None
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.Tensor):
        try:
            if obj.device.type != "cpu" or obj.layout != torch.strided:
                return None
            return obj.detach().numpy()
        except Exception:  # noqa: BLE001 - bfloat16 and other dtypes numpy cannot view
            return None
    return None


def _fingerprint(a: np.ndarray) -> int:
    data = a if a.flags.c_contiguous else np.ascontiguousarray(a)
    return zlib.crc32(memoryview(data).cast("B")) if data.size else 0


class Reach:
    """Fingerprints of the arrays ``functions`` (name -> callable) can reach, taken now."""

    def __init__(self, functions: dict):
        self.watched: list[tuple[str, str, object, np.ndarray, int]] = []  # (owner, where, obj, view, crc)
        seen: set = set()
        budget = [MAX_BYTES]
        for owner, fn in functions.items():
            if fn is None or isinstance(fn, bool):
                continue
            self._walk(owner, fn, seen, budget)

    # -- what a function can name --------------------------------------
    def _walk(self, owner, fn, seen, budget):
        todo = [(fn, "")]
        visited: set = set()
        while todo and len(visited) < MAX_FUNCTIONS:
            f, prefix = todo.pop(0)
            if id(f) in visited:
                continue
            visited.add(id(f))
            for where, value in self._names(f, prefix):
                if isinstance(value, types.FunctionType) and value is not f and prefix == "":
                    todo.append((value, f"{where} -> "))  # one level of helpers: fun -> forward
                    continue
                self._add(owner, where, value, seen, budget, depth=0)

    @staticmethod
    def _names(f, prefix):
        """(description, value) of everything ``f`` can name besides its arguments."""
        out = []
        if isinstance(f, functools.partial):
            out += [(f"{prefix}partial argument {i}", v) for i, v in enumerate(f.args)]
            out += [(f"{prefix}partial argument {k}", v) for k, v in (f.keywords or {}).items()]
            out += Reach._names(f.func, prefix)
            return out
        if isinstance(f, types.MethodType):
            obj = f.__self__
            out += [(f"{prefix}self.{k}", v) for k, v in list(getattr(obj, "__dict__", {}).items())[:MAX_ITEMS]]
            f = f.__func__
        elif not isinstance(f, types.FunctionType) and hasattr(f, "__dict__"):  # a callable object
            out += [(f"{prefix}{type(f).__name__}.{k}", v) for k, v in list(vars(f).items())[:MAX_ITEMS]]
            f = getattr(type(f), "__call__", None)
        code = getattr(f, "__code__", None)
        if code is None:
            return out
        for name, cell in zip(code.co_freevars, getattr(f, "__closure__", None) or ()):
            try:
                out.append((f"{prefix}{name}", cell.cell_contents))
            except ValueError:  # an empty cell (a variable not assigned yet)
                pass
        names = code.co_varnames[code.co_argcount - len(f.__defaults__ or ()):code.co_argcount]
        out += [(f"{prefix}default of {n}", v) for n, v in zip(names, f.__defaults__ or ())]
        out += [(f"{prefix}default of {n}", v) for n, v in (f.__kwdefaults__ or {}).items()]
        g = getattr(f, "__globals__", {})
        out += [(f"{prefix}global {n}", g[n]) for n in code.co_names if n in g]
        return out

    def _add(self, owner, where, value, seen, budget, depth):
        view = _as_numpy(value)
        if view is not None:
            if id(value) in seen or view.nbytes > budget[0]:
                return
            seen.add(id(value))
            budget[0] -= view.nbytes
            self.watched.append((owner, where, value, view, _fingerprint(view)))
            return
        if depth > 0:
            return
        if isinstance(value, (list, tuple)):
            for i, v in enumerate(value[:MAX_ITEMS]):
                self._add(owner, f"{where}[{i}]", v, seen, budget, depth + 1)
        elif isinstance(value, dict):
            for k, v in list(value.items())[:MAX_ITEMS]:
                self._add(owner, f"{where}[{k!r}]", v, seen, budget, depth + 1)

    # -- what changed ----------------------------------------------------
    def changed(self) -> tuple[str, str] | None:
        """(owner, where) of the first watched array whose contents changed since the snapshot."""
        for owner, where, _obj, view, crc in self.watched:
            if _fingerprint(view) != crc:
                return owner, where
        return None

    def settle(self, call, x0, elsewhere) -> list[str]:
        """Stop watching the changed arrays that are scratch: what they hold after a call follows
        from that call's input alone.  Returns their descriptions.

        A stateful layer writes its activations into buffers it owns (``np.dot(X, w, out=self.h)``)
        on every call: harmless, the next call overwrites them.  Corruption (``dout = R; dout[x <= 0]
        = 0``) accumulates: what the array holds depends on every earlier call.  So ``call`` (the
        function that ran last) runs at x0, at the points ``elsewhere`` and at x0 again: an array
        holding the same bytes after both calls at x0, while call returned the same value at x0 both
        times, is scratch.  Anything else (an exception, a different value) leaves it watched."""
        changed = [k for k, (_o, _w, _obj, view, crc) in enumerate(self.watched) if _fingerprint(view) != crc]
        if not changed:
            return []
        try:
            first = call(x0)
            held = [_fingerprint(self.watched[k][3]) for k in changed]
            for x in elsewhere:
                call(x)
            again = call(x0)
        except Exception:  # noqa: BLE001 - the caller reports the change as mutation
            return []
        if not np.array_equal(np.asarray(first), np.asarray(again), equal_nan=True):
            return []
        scratch = {k for k, crc in zip(changed, held) if _fingerprint(self.watched[k][3]) == crc}
        names = [self.watched[k][1] for k in sorted(scratch)]
        self.watched = [w for k, w in enumerate(self.watched) if k not in scratch]
        return names

    def unread(self, call, x0, seed: int) -> list[str]:
        """Stop watching the changed arrays whose contents do not influence what ``call`` returns:
        side effects (a call counter, a running mean, a log buffer) the function writes and never
        reads.  Returns their descriptions.

        Measured, not guessed from names: for each changed array, ``call`` runs at x0 with the array
        as it is and again with every entry of it replaced (seeded random values); the same return
        value, bit for bit, means the array is not read.  The array is then left as the first of the
        two calls left it (as if the function had run once more).  An exception, a different value or
        an array numpy cannot write leaves it watched, so data the function reads still fails."""
        rng = np.random.default_rng([int(seed), 0x5EF])
        found = []
        for k, (_owner, where, _obj, view, crc) in enumerate(self.watched):
            if _fingerprint(view) == crc or not view.flags.writeable or view.size == 0:
                continue
            before = view.copy()
            try:
                first = call(x0)
                after_first = view.copy()
                np.copyto(view, _other_values(before, rng))
                try:
                    second = call(x0)
                finally:
                    np.copyto(view, after_first)
            except Exception:  # noqa: BLE001 - the caller reports the change as mutation
                continue
            if np.array_equal(np.asarray(first), np.asarray(second), equal_nan=True):
                found.append(k)
        names = [self.watched[k][1] for k in found]
        self.watched = [w for k, w in enumerate(self.watched) if k not in set(found)]
        return names


def _other_values(a: np.ndarray, rng) -> np.ndarray:
    """``a`` with every entry replaced by another value of its dtype (never the same one)."""
    if a.dtype == bool:
        return ~a
    if np.issubdtype(a.dtype, np.integer):
        return (a + rng.integers(1, 4, size=a.shape)).astype(a.dtype)
    if np.issubdtype(a.dtype, np.inexact):
        with np.errstate(all="ignore"):
            shift = (np.abs(np.nan_to_num(a)) + 1.0) * (0.5 + rng.random(a.shape))
            return (np.nan_to_num(a) + shift).astype(a.dtype)
    return a.copy()
