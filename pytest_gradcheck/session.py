"""The state of one pytest run, kept in ``config.stash``: options and check records.

Everything a reporter needs is in :attr:`GradcheckSession.records`: a list of
JSON-safe check records ``{"nodeid", "label", "duration_s", "result"}``.  On
the controller (or a run without xdist) it holds every record of the run;
under xdist the workers' records arrive on their test reports
(``report.gradcheck_records``) and are collected in
``pytest_runtest_logreport``.

Records are counted per *attempt* of a test, as pytest counts reports: an
attempt runs from ``pytest_runtest_logstart`` to ``pytest_runtest_logfinish``
(pytest-rerunfailures calls both around every attempt), and its records join
:attr:`GradcheckSession.records` when it finishes, unless one of its reports
was a ``rerun``: then the next attempt replaces them.  The check labels of an
item restart at "check" in every attempt (they are cleared with its teardown
report), so a rerun check keeps its key ``nodeid::label``.

Other parts of the package read it with::

    from pytest_gradcheck.session import get_session
    records = get_session(config).records

Layer: plugin side, the run's state.  Imports pytest and options; never the numerics
(records are JSON-safe dicts).
"""

from __future__ import annotations

import math
import time

import pytest

from . import options as _options


class GradcheckSession:
    """One run's gradcheck state.  Create with :func:`get_session`."""

    def __init__(self, config):
        self.config = config
        #: True in an xdist worker process
        self.is_worker = hasattr(config, "workerinput")
        #: check records of the run (controller: all of them, in the order their attempts finished;
        #: put in the serial order of the tests at the end of the session, :meth:`sort_records`)
        self.records: list[dict] = []
        #: nodeid -> the current attempt's records (not yet in ``records``)
        self._attempts: dict[str, list] = {}
        #: nodeids whose current attempt had a ``rerun`` report: its records are dropped
        self._superseded: set[str] = set()
        #: keys (``nodeid::label``) of failed checks whose full report pytest prints in FAILURES
        self.shown_in_failures: set[str] = set()
        self._base_options: dict | None = None
        self._summary: str | None = None
        #: external model modules (ini ``gradcheck_models``, entry points), loaded lazily
        self.external = None
        #: paths of files whose models were already collected (no duplicates)
        self.collected_model_paths: set = set()
        #: nodeid -> its place in the serial order of the run (see :meth:`sort_records`)
        self.test_order: dict[str, int] = {}

    @property
    def base_options(self) -> dict:
        """Built-in < ini < command line, resolved once (a copy)."""
        if self._base_options is None:
            self._base_options = _options.resolve_base(self.config)
        return dict(self._base_options)

    @property
    def summary(self) -> str:
        """all | failures | none."""
        if self._summary is None:
            self._summary = _options.resolve_summary(self.config)
        return self._summary

    def add_record(self, record: dict) -> None:
        """Keep a record and tell ``pytest_gradcheck_result`` implementations."""
        self.records.append(record)
        self.config.hook.pytest_gradcheck_result(config=self.config, record=record)

    def begin_attempt(self, nodeid: str) -> None:
        """A test attempt starts (``pytest_runtest_logstart``); a still open one of the same
        test (no logfinish came) is finished first."""
        if nodeid in self._attempts:
            self.end_attempt(nodeid)

    def add_report_records(self, report) -> None:
        """Keep the records a test report carries with its test's current attempt."""
        records = getattr(report, "gradcheck_records", None) or ()
        nodeid = report.nodeid
        if records and hasattr(report, "wasxfail"):
            mark_expected_failure(records, report)
        if records and report.failed and self.config.getoption("tbstyle", "auto") not in ("no", "line"):
            # the check's GradcheckError message (worst entries, diagnosis) is in FAILURES
            from .reporting.json_report import record_key

            self.shown_in_failures.update(record_key(r) for r in records
                                          if (r.get("result") or {}).get("status") == "fail")
        self._attempts.setdefault(nodeid, []).extend(records)
        if report.outcome == "rerun":  # pytest-rerunfailures: this attempt is repeated
            self._superseded.add(nodeid)
        if nodeid in self._superseded:
            # JUnit XML adds every report's properties to the test case: only the last attempt's count
            props = getattr(report, "user_properties", None)
            if props:
                props[:] = [p for p in props if not _is_gradcheck_property(p)]

    def end_attempt(self, nodeid: str) -> None:
        """A test attempt finished (``pytest_runtest_logfinish``): its records count, unless
        it is being rerun."""
        records = self._attempts.pop(nodeid, [])
        if nodeid in self._superseded:
            self._superseded.discard(nodeid)
            return
        for record in records:
            self.add_record(record)

    def finish_attempts(self) -> None:
        """Count the records of attempts that never finished (an interrupted run, a crashed
        xdist worker): they are all this run has of those tests."""
        for nodeid in list(self._attempts):
            self.end_attempt(nodeid)

    def set_test_order(self, nodeids) -> None:
        """The tests in the order a serial run runs them (the first collection that reports
        it: every xdist worker collects the same list)."""
        if not self.test_order:
            self.test_order = {nodeid: i for i, nodeid in enumerate(nodeids)}

    def sort_records(self) -> None:
        """Put the records in the serial order of their tests (stable: a test's own checks keep
        the order they ran in), so that the terminal table, the JSON ``checks`` list and the
        HTML report read the same with and without xdist, not in completion order."""
        last = len(self.test_order)
        self.records.sort(key=lambda r: self.test_order.get(r.get("nodeid"), last))

    def counts(self) -> dict:
        """Number of checks per status (pass, fail, inconclusive, error)."""
        from .reporting.json_report import STATUSES, record_status

        out = {s: 0 for s in STATUSES}
        for rec in self.records:
            status = record_status(rec)
            out[status] = out.get(status, 0) + 1
        return out


_SESSION_KEY = pytest.StashKey[GradcheckSession]()
#: per item: records made in the current phase, not yet attached to a report
PENDING_KEY = pytest.StashKey[list]()
#: per item: labels used so far in the current attempt (cleared by :func:`end_item_attempt`)
LABELS_KEY = pytest.StashKey[set]()


def get_session(config) -> GradcheckSession:
    """The run's :class:`GradcheckSession` (created on first use)."""
    session = config.stash.get(_SESSION_KEY, None)
    if session is None:
        session = config.stash[_SESSION_KEY] = GradcheckSession(config)
    return session


def json_safe(obj):
    """``obj`` as plain JSON data: numpy scalars to Python numbers, tuples to lists,
    NaN to None, infinities to +-1e308, unknown objects to their ``str``.

    Records cross process boundaries (pytest-xdist, execnet) and end up in JSON
    files, so nothing else may get into them, whatever a checker returns.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        if math.isnan(obj):
            return None
        if math.isinf(obj):
            return math.copysign(1e308, obj)
        return float(obj)
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    item = getattr(obj, "item", None)  # numpy scalars and 0-d arrays
    if callable(item) and getattr(obj, "ndim", 0) == 0:
        try:
            return json_safe(item())
        except (TypeError, ValueError):
            pass
    tolist = getattr(obj, "tolist", None)  # small arrays
    if callable(tolist):
        return json_safe(tolist())
    return str(obj)


def make_record(nodeid: str, label: str, duration_s: float, result) -> dict:
    """The JSON-safe check record of one completed check."""
    return {
        "nodeid": nodeid,
        "label": label,
        "duration_s": float(duration_s),
        "result": json_safe(result.to_dict()),
    }


def add_pending(item, record: dict) -> None:
    item.stash.setdefault(PENDING_KEY, []).append(record)


# -- checks that never finished ------------------------------------------------------
#
# A check is *started* (start_check) before the checker runs and *finished* with its
# record (finish_check).  When the checker raises -- the user's code crashed, the input is
# unusable, pytest-timeout interrupted it -- check_raised turns the started check into an
# "error" record, kept with its exception until the phase's report is made: it counts if
# that exception (or one it caused) ended the phase, and is dropped when the test caught it
# (``pytest.raises(GradcheckInputError)`` tests the checker, it is not a check) or skipped.

#: per item: the check running now, {"label", "kind", "start"}
STARTED_KEY = pytest.StashKey[dict]()
#: per item: [(error record, exception)] of checks that raised in the current phase
RAISED_KEY = pytest.StashKey[list]()
#: per item: [(record, GradcheckError)] of checks that failed in the current phase
FAILED_KEY = pytest.StashKey[list]()

#: how much of an exception's message a record keeps: one line of a summary, not a report
MAX_MESSAGE = 300

#: error types of an "error" record (``record["error"]["type"]``)
ERROR_TYPES = ("user_code", "input", "interrupted", "internal")


def start_check(item, label: str, kind: str) -> None:
    item.stash[STARTED_KEY] = {"label": label, "kind": kind, "start": time.perf_counter()}


def finish_check(item, record: dict) -> None:
    if STARTED_KEY in item.stash:
        del item.stash[STARTED_KEY]
    add_pending(item, record)


def check_failed(item, record: dict, exc: BaseException) -> None:
    """The finished check ``record`` failed and raises ``exc``: if the phase does not end with
    it (the test caught it, or skipped after it), the check counts as "caught" (take_pending)."""
    item.stash.setdefault(FAILED_KEY, []).append((record, exc))


def check_raised(item, exc: BaseException) -> None:
    """The started check of ``item`` raised ``exc``: keep its error record for the report."""
    started = item.stash.get(STARTED_KEY, None)
    if started is None:
        return
    del item.stash[STARTED_KEY]
    record = make_error_record(item.nodeid, started["label"], started["kind"],
                               time.perf_counter() - started["start"], exc)
    item.stash.setdefault(RAISED_KEY, []).append((record, exc))


def _chain(exc: BaseException | None) -> list:
    """``exc`` and the exceptions it was raised from or during, innermost last."""
    out = []
    while exc is not None and all(exc is not e for e in out):
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def take_pending(item, excinfo=None) -> list:
    """The records of the phase that just ended (and forget them): completed checks, and
    checks that raised the exception ``excinfo`` (the phase's) ended the phase with."""
    records = item.stash.get(PENDING_KEY, None) or []
    item.stash[PENDING_KEY] = []
    raised = item.stash.get(RAISED_KEY, None) or []
    item.stash[RAISED_KEY] = []
    failed = item.stash.get(FAILED_KEY, None) or []
    item.stash[FAILED_KEY] = []
    ended_by = excinfo.value if excinfo is not None else None
    # a skip raised while handling the failure (``except GradcheckError: pytest.skip(...)``) holds it
    # as its context, yet the test decided to skip: the failure was caught
    ended_chain = [] if isinstance(ended_by, pytest.skip.Exception) else _chain(ended_by)
    for rec, exc in failed:
        # a failure the test caught (pytest.raises(GradcheckError)) or skipped after is the test's
        # business: counted as "caught", not as a failed check, and not a failure in the baseline
        if not any(exc is e for e in ended_chain):
            rec["status"] = "caught"
    if ended_by is not None and isinstance(ended_by, pytest.skip.Exception):
        return records  # a skipped test counts no check that did not finish
    chain = _chain(ended_by)
    records += [rec for rec, exc in raised if any(exc is e for e in chain)]
    started = item.stash.get(STARTED_KEY, None)
    if started is not None and ended_by is not None:
        # interrupted before check_raised could run (e.g. between the checker and its record)
        check_raised(item, ended_by)
        records += [rec for rec, _ in item.stash[RAISED_KEY]]
        item.stash[RAISED_KEY] = []
    if STARTED_KEY in item.stash:
        del item.stash[STARTED_KEY]
    return records


def _one_line(text: str) -> str:
    line = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    return line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 3] + "..."


def _raised_in_plugin(exc: BaseException) -> bool:
    """Whether the innermost frame of ``exc``'s traceback is in this package."""
    import os

    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(here + os.sep)


def classify_error(exc: BaseException) -> tuple[str, BaseException]:
    """(error type, the exception to name) of a check that raised ``exc``; types:

    * ``user_code``: the user's fun/grad/... raised: the checker wraps that, and only that, in a
      GradcheckUserCodeError (which may itself be the cause of another GradcheckInputError);
    * ``input``: the check's arguments are unusable (any other GradcheckInputError, whatever it
      was raised from: a leaf a framework cannot copy out chains the framework's TypeError, yet
      no user code ran; OptionError);
    * ``interrupted``: stopped from outside the check (pytest-timeout's ``Failed``,
      ``pytest.exit``, KeyboardInterrupt: not ``Exception`` subclasses);
    * ``internal``: any other exception raised by the checker itself (a bug of the plugin).
    """
    from .errors import GradcheckError, GradcheckInputError, GradcheckUserCodeError
    from .options import OptionError

    if not isinstance(exc, Exception):
        return "interrupted", exc
    if isinstance(exc, GradcheckInputError):
        # follow the checker's own wrappers (GradcheckErrors raised from GradcheckErrors) to the one
        # that wrapped a crash of the user's code, if any; a framework's error is no such crash
        wrapped, seen = exc, []
        while isinstance(wrapped, GradcheckError) and not any(wrapped is e for e in seen):
            if isinstance(wrapped, GradcheckUserCodeError):
                return "user_code", wrapped.__cause__ if wrapped.__cause__ is not None else wrapped
            seen.append(wrapped)
            wrapped = wrapped.__cause__
        return "input", exc
    if isinstance(exc, OptionError):
        return "input", exc
    return ("internal" if _raised_in_plugin(exc) else "user_code"), exc


def make_error_record(nodeid: str, label: str, kind: str, duration_s: float, exc: BaseException,
                      error_type: str | None = None) -> dict:
    """The record of a check that did not finish: status "error" and the exception.

    ``error`` holds ``type`` (one of :data:`ERROR_TYPES`), ``exception`` (the class
    name of the exception that stopped the check: the user's own for ``user_code``)
    and ``message`` (one line).  ``result`` holds only ``status``, ``passed`` and
    ``kind``: a check that did not finish has no numbers.
    """
    kind_of, named = classify_error(exc)
    message = _one_line(str(exc)) or type(exc).__name__
    return {
        "nodeid": nodeid,
        "label": label,
        "duration_s": float(duration_s),
        "result": {"status": "error", "passed": False, "kind": kind},
        "error": {"type": error_type or kind_of, "exception": type(named).__name__, "message": message},
    }


def mark_expected_failure(records: list, report) -> None:
    """Count the checks of an xfail-marked test as pytest counts the test (``report.wasxfail``).

    The test xfailed (``report.skipped``): its failed and unfinished checks are "xfail" --
    the failure the marker documents.  The test xpassed (``report.passed``): its passed
    checks are "xpass".  Other checks keep their own status (a passing check in a test that
    failed as expected passed).  The check's own verdict stays in ``record["result"]``; the
    record gets ``status`` (what it counts as) and ``xfail_reason``.  A strict xfail that
    passes is a failed test without ``wasxfail``: its checks passed and count as passed.
    """
    if report.skipped:
        expected, turns = "xfail", ("fail", "error")
    elif report.passed:
        expected, turns = "xpass", ("pass",)
    else:
        return
    for rec in records:
        if (rec.get("result") or {}).get("status") in turns:
            rec["status"] = expected
            rec["xfail_reason"] = str(report.wasxfail)


def end_item_attempt(item) -> None:
    """The item's attempt is over (its teardown report is made): a rerun of it starts
    again at label "check", so that its checks replace this attempt's under the same keys,
    and its JUnit properties replace this attempt's (the reports already hold their copies)."""
    item.stash[LABELS_KEY] = set()
    item.user_properties[:] = [p for p in item.user_properties if not _is_gradcheck_property(p)]


def _is_gradcheck_property(prop) -> bool:
    """One of the ``gradcheck[LABEL].*`` JUnit properties the fixtures add."""
    return isinstance(prop, tuple) and len(prop) == 2 and str(prop[0]).startswith("gradcheck[")
