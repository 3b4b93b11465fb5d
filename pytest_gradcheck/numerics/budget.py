"""How long a full check will take, said before it starts; progress while it runs.

``mode="full"`` evaluates fun at two points per entry (central differences) at
least: on 3e6 parameters of a fun taking 50 ms that is 3.5 days of work.  Before
a full check with at least GUARD_MIN_EVALS evaluations, TIMED_CALLS calls of fun
at params are timed and the estimate (evaluations x the fastest call, a lower
bound: refinement of entries that do not agree at once costs more) is

* over ``time_limit`` seconds: refused with a GradcheckInputError that gives the
  numbers and the ways out (mode="fast", a larger or no time_limit);
* over WARN_SECONDS: a :class:`SlowCheckWarning` with the numbers;

and a check running past PROGRESS_AFTER seconds reports its progress every
PROGRESS_EVERY seconds to the progress sink: the plugin's terminal when it runs
under pytest (set with :func:`progress_sink`), else sys.stderr.

Layer: numerics, foundations.  Imports errors only; never pytest.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import time
import warnings

from ..errors import GradcheckInputError

#: below this many evaluations no call is timed (the extra call would be a visible share of the work)
GUARD_MIN_EVALS = 4096
#: calls of fun timed for the estimate (their fastest is used): under 0.1% of GUARD_MIN_EVALS
TIMED_CALLS = 3
#: an estimate above this many seconds is announced with a SlowCheckWarning
WARN_SECONDS = 10.0
#: check_gradient's default time_limit (seconds; None: no limit)
DEFAULT_TIME_LIMIT = 3600.0
#: progress is first reported after this many seconds, then every PROGRESS_EVERY seconds
PROGRESS_AFTER = 5.0
PROGRESS_EVERY = 10.0

_SINK: contextvars.ContextVar = contextvars.ContextVar("gradcheck_progress_sink", default=None)
_CURRENT: contextvars.ContextVar = contextvars.ContextVar("gradcheck_progress", default=None)


class SlowCheckWarning(UserWarning):
    """A full check estimated to take longer than WARN_SECONDS."""


@contextlib.contextmanager
def _bound(var: contextvars.ContextVar, value):
    """``var`` set to ``value`` inside the block, restored after it."""
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


def progress_sink(write):
    """Send progress lines to ``write(text)`` (the plugin: its terminal reporter) inside the block."""
    return _bound(_SINK, write)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


class Progress:
    """Progress of one check: ``tick(done)`` with the evaluations done so far."""

    def __init__(self, total: int, what: str):
        self.total, self.what = int(total), what
        self.t0 = time.perf_counter()
        self.next_report = self.t0 + PROGRESS_AFTER

    def tick(self, done: int) -> None:
        now = time.perf_counter()
        if now < self.next_report:
            return
        self.next_report = now + PROGRESS_EVERY
        elapsed = now - self.t0
        left = elapsed * (self.total - done) / done if 0 < done < self.total else 0.0
        line = (f"gradcheck: {self.what}: {done:,} of about {self.total:,} evaluations "
                f"({100.0 * done / max(self.total, 1):.0f}%), {_duration(elapsed)} so far, about {_duration(left)} left")
        _emit(_SINK.get(), line)


def _emit(write, line: str) -> None:
    """One progress line to the sink (else stderr); a progress line never breaks a check."""
    try:
        if write is not None:
            write(line)
        else:
            print(line, file=sys.stderr, flush=True)
    except Exception:  # noqa: BLE001
        pass


def current_progress():
    """The Progress of the check running now, or None (the hot loops call its tick)."""
    return _CURRENT.get()


def tracking(progress):
    """``progress`` is the running check's (current_progress) inside the block."""
    return _bound(_CURRENT, progress)


def time_limit_value(time_limit):
    """``time_limit`` validated: a positive number of seconds, or None (no limit)."""
    if time_limit is None:
        return None
    if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)) or not time_limit > 0:
        raise GradcheckInputError(f"time_limit must be a positive number of seconds or None; got {time_limit!r}")
    return float(time_limit)


def guard_full(n_evals: int, call, time_limit, n_params: int) -> Progress:
    """Estimate a full check of ``n_evals`` evaluations by timing ``call()`` (one evaluation of fun
    at params); refuse it above ``time_limit``, warn above WARN_SECONDS.  Returns its Progress."""
    if n_evals < GUARD_MIN_EVALS:
        return Progress(n_evals, "full check")
    times = []
    for _ in range(TIMED_CALLS):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    per_call = min(times)  # the least disturbed by a first-call cost or a busy machine
    seconds = per_call * n_evals
    numbers = (f"mode='full' on {n_params:,} parameters needs at least {n_evals:,} evaluations of fun, "
               f"{per_call * 1e3:.3g} ms each (fastest of {TIMED_CALLS} timed calls): about {_duration(seconds)}")
    if time_limit is not None and seconds > time_limit:
        raise GradcheckInputError(
            f"{numbers}, over time_limit={time_limit:g} s. Use mode='fast' (2 evaluations per random "
            f"direction, 10 directions by default, then only the entries they point at) or mode='auto', "
            f"or raise time_limit (time_limit=None: no limit)")
    if seconds > WARN_SECONDS:
        text = f"{numbers}; progress is reported every {PROGRESS_EVERY:g} s"
        write = _SINK.get()
        if write is not None:
            # under the plugin: a line on the terminal, not a warning -- a suite run with
            # filterwarnings = error would turn a warning into an error of a passing check
            _emit(write, f"gradcheck: {text}")
        else:
            warnings.warn(SlowCheckWarning(text), stacklevel=4)
    return Progress(n_evals, "full check")
