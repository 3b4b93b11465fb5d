"""pytest wiring of the JSON/HTML reports and the baseline gate.

Registered by ``pytest_gradcheck.plugin`` (``pytest_plugins``).  Options, all
in the ``gradcheck`` group:

``--gradcheck-json=PATH``, ``--gradcheck-html=PATH``
    write the reports at the end of the run (on the xdist controller).
``--gradcheck-baseline[=PATH]``
    compare this run with a baseline file and fail the run (exit code 1) on
    regressions, even when every test passed.  Without a value: the ini
    ``gradcheck_baseline`` (default ``.gradcheck/baseline.json``, relative to
    the rootdir).  A value on the command line is relative to the current
    directory and must end in ``.json`` (so that ``--gradcheck-baseline
    tests/`` cannot silently swallow a test path).
``--gradcheck-update-baseline``
    write this run's numbers into the baseline (merging: checks that did not
    run keep their entries).  Together with ``--gradcheck-baseline`` the
    update wins: the changes against the old file are shown (as "accepted"),
    the run is not failed for them, and the file is rewritten.
``--gradcheck-regression-factor=X`` / ini ``gradcheck_regression_factor``
    growth of the error/tolerance ratio that counts as a regression (default
    10, must be > 1).

A baseline that cannot be read (missing when comparing, not JSON, wrong
version) is a usage error (exit code 4) raised before any test runs.  A
report that cannot be written is an error line in the summary and exit code 1.

Files are written through symlinks (the link stays, its target changes) and
keep their permission bits.  A report or baseline path that is read-only
(e.g. a 0444 baseline) or not a regular file is refused with a usage error
before any test runs: a read-only file is a request not to rewrite it
(see :mod:`.files`).

With pytest-html installed and ``--html`` given, its table gets a "gradcheck"
column and each test's extras a table of its checks with the diagnosis.

Layer: plugin side, pytest report hooks.  Imports pytest and the other modules of
reporting/; the run's records are handed down by the plugin (:func:`provide_records`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Callable

import pytest

from . import baseline as _baseline
from . import files as _files
from .safe_text import terminal_text, xml_text
from . import json_report as _json_report

_USE_INI = "\0ini"  # const of a bare --gradcheck-baseline
DEFAULT_BASELINE = ".gradcheck/baseline.json"
MAX_INFO_LINES = 20


def _output_path(value: str) -> str:
    if not value or not value.strip():
        raise argparse.ArgumentTypeError("needs a file path")
    if os.path.isdir(value):
        raise argparse.ArgumentTypeError(f"{value!r} is a directory; give a file path")
    return value


def _baseline_path(value: str) -> str:
    if value == _USE_INI:  # argparse also passes a string const through the type
        return value
    value = _output_path(value)
    if not value.lower().endswith(".json"):
        raise argparse.ArgumentTypeError(
            f"{value!r} does not end in .json; write --gradcheck-baseline=PATH.json, or put test paths "
            "before a bare --gradcheck-baseline")
    return value



def pytest_addoption(parser):
    group = parser.getgroup("gradcheck")
    group.addoption("--gradcheck-json", metavar="PATH", type=_output_path, default=None,
                    help="write a JSON report of every gradient check to PATH (default: none).")
    group.addoption("--gradcheck-html", metavar="PATH", type=_output_path, default=None,
                    help="write a self-contained HTML report of every gradient check to PATH (default: none).")
    group.addoption("--gradcheck-baseline", metavar="PATH", nargs="?", const=_USE_INI, type=_baseline_path,
                    default=None,
                    help="compare with a baseline and fail the run on regressions; PATH defaults to the "
                         f"ini gradcheck_baseline ({DEFAULT_BASELINE}, relative to the rootdir).")
    group.addoption("--gradcheck-update-baseline", action="store_true", default=False,
                    help="write this run's checks into the baseline (entries of checks that did not run are "
                         "kept); with --gradcheck-baseline the update wins: changes are shown, not failed.")
    group.addoption("--gradcheck-regression-factor", metavar="X", type=_baseline.regression_factor, default=None,
                    help="error/tolerance growth that counts as a regression (default: ini "
                         "gradcheck_regression_factor, 10).")
    parser.addini("gradcheck_baseline", f"gradcheck baseline file, relative to the rootdir (default {DEFAULT_BASELINE})",
                  default=DEFAULT_BASELINE)
    parser.addini("gradcheck_regression_factor",
                  "error/tolerance growth against the baseline that counts as a regression (default 10)",
                  default="10")


class ReportState:
    """What this run was asked to write and compare, and what happened."""

    def __init__(self, config):
        self.config = config
        opt = config.option
        inv = Path(config.invocation_params.dir)
        self.json_path = str(inv / opt.gradcheck_json) if opt.gradcheck_json else None
        self.html_path = str(inv / opt.gradcheck_html) if opt.gradcheck_html else None
        raw = opt.gradcheck_baseline
        self.compare = raw is not None
        self.update = bool(opt.gradcheck_update_baseline)
        if raw is None or raw == _USE_INI:
            ini = (config.getini("gradcheck_baseline") or "").strip() or DEFAULT_BASELINE
            self.baseline_path = str(Path(config.rootpath) / ini)
        else:
            self.baseline_path = str(inv / raw)
        if opt.gradcheck_regression_factor is not None:
            self.factor = opt.gradcheck_regression_factor
        else:
            try:
                self.factor = _baseline.regression_factor(config.getini("gradcheck_regression_factor"))
            except argparse.ArgumentTypeError as exc:
                raise pytest.UsageError(f"ini gradcheck_regression_factor: {exc}") from None
        self.baseline: dict | None = None
        self.changes: list[dict] = []
        self.context_warnings: list[str] = []
        self.written: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.updated: dict | None = None
        self.baseline_written = False
        self.n_records = 0
        #: keys of checks written into the baseline although they fail (or did not finish)
        self.accepted_failing: list[str] = []

    @property
    def active(self) -> bool:
        return bool(self.json_path or self.html_path or self.compare or self.update)

    def load(self) -> None:
        """Read the baseline when one is needed; a bad file, or a file that will not be written
        (read-only, not a regular file), is a usage error now, not at the end."""
        for path in (self.json_path, self.html_path, self.baseline_path if self.update else None):
            if path:
                try:
                    _files.write_target(path)
                except _files.RefusedTarget as exc:
                    raise pytest.UsageError(f"gradcheck: {exc}") from None
        if not (self.compare or self.update):
            return
        if self.update and not os.path.exists(self.baseline_path):
            return  # created at the end
        try:
            self.baseline = _baseline.load_baseline(self.baseline_path)
        except _baseline.BaselineError as exc:
            raise pytest.UsageError(str(exc)) from None

    @property
    def regressions(self) -> list[dict]:
        return [c for c in self.changes if c.get("kind") == "regression"]


_STATE_KEY = pytest.StashKey[ReportState]()


def _is_controller(config) -> bool:
    return not hasattr(config, "workerinput")


def get_report_state(config) -> ReportState | None:
    """This run's :class:`ReportState` (None in xdist workers)."""
    return config.stash.get(_STATE_KEY, None)


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    if not _is_controller(config):
        return
    state = ReportState(config)
    config.stash[_STATE_KEY] = state
    state.load()
    if state.compare and not state.update:
        config.pluginmanager.register(RegressionGate(state), "gradcheck-regression-gate")
    if config.pluginmanager.hasplugin("html") and getattr(config.option, "htmlpath", None):
        config.pluginmanager.register(PytestHtmlHooks(), "gradcheck-pytest-html")


class PytestHtmlHooks:
    """With pytest-html (``--html``): a "gradcheck" column (worst status and ratio of the test's
    checks) and, in each test's extras, a table of its checks with the diagnosis."""

    @staticmethod
    def _records(report) -> list:
        return list(getattr(report, "gradcheck_records", None) or ())

    def pytest_html_results_table_header(self, cells):
        cells.insert(2, '<th class="sortable" data-column-type="gradcheck">gradcheck</th>')

    def pytest_html_results_table_row(self, report, cells):
        import html

        recs = self._records(report)
        text = ""
        if recs:
            order = {"error": 0, "fail": 0, "inconclusive": 1, "pass": 2}
            worst = min(recs, key=lambda r: (order.get(_json_report.record_status(r), 0),
                                             -(r["result"].get("max_ratio") or 0.0)))
            ratio = worst["result"].get("max_ratio")
            text = (f"{len(recs)} check{'s' if len(recs) != 1 else ''}, worst {_json_report.record_status(worst)} "
                    f"(ratio {'n/a' if ratio is None else f'{ratio:.3g}'})")
        cells.insert(2, f"<td>{html.escape(text)}</td>")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report):
        recs = self._records(report)
        if not recs:
            return
        from pytest_html import extras

        report.extras = list(getattr(report, "extras", None) or []) + [extras.html(_html_checks_table(recs))]


def _html_checks_table(records: list) -> str:
    """A small HTML table of check records (for pytest-html's per-test extras)."""
    import html

    def num(x):
        return "n/a" if x is None else f"{x:.3g}"

    rows = []
    for r in records:
        res = r.get("result") or {}
        diag = (res.get("diagnosis") or {}).get("summary") or ""
        if r.get("error"):
            diag = f"did not finish: {r['error'].get('exception')}: {r['error'].get('message')}"
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
            r.get("label"), _json_report.record_status(r), num(res.get("max_ratio")), num(res.get("max_abs_error")),
            res.get("n_evals"), res.get("method"), diag)) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("check", "status", "error/tolerance", "max abs error", "evals",
                                               "method", "diagnosis"))
    return f'<table class="gradcheck"><tr>{head}</tr>{"".join(rows)}</table>'


#: the prefix of the JUnit XML properties a check adds to its test (see fixtures.py)
_PROPERTY_PREFIX = "gradcheck["


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logreport(report):
    """Before junitxml writes them: the check's properties carry its label in their names, and
    junitxml escapes property values but not names, so a control character in a label made
    the whole XML file ill-formed.  Other plugins' properties are left as they are."""
    props = getattr(report, "user_properties", None)
    if props:
        safe = [_xml_safe_property(p) for p in props]
        if safe != list(props):
            report.user_properties = safe


#: set on a report that :func:`_fail_regressed` turned into a failure
REGRESSED_ATTR = "gradcheck_regressed"


class RegressionGate:
    """With ``--gradcheck-baseline`` (and no update): a passed test report whose checks regressed
    against the baseline becomes a failure with the regression as its message, before junitxml,
    pytest-html, the cache (``--lf``) and the terminal read it, so that every place a team looks
    shows it, not only the exit code.  Registered on the controller only: it alone holds the
    baseline, and under xdist every report passes through it."""

    def __init__(self, state: ReportState):
        self.state = state

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report):
        fail_regressed(report, self.state)


def fail_regressed(report, state: ReportState) -> None:
    """Turn ``report`` into a failure when its checks regressed (see :class:`RegressionGate`)."""
    records = getattr(report, "gradcheck_records", None)
    if not records or not report.passed or hasattr(report, "wasxfail"):
        return
    if not (state.compare and not state.update and state.baseline is not None):
        return
    regressions = [c for c in _baseline.compare(state.baseline, records, factor=state.factor)
                   if c.get("kind") == "regression"]
    if not regressions:
        return
    lines = [f"gradcheck regression against the baseline {_relpath(state.baseline_path, state.config)} "
             f"(factor {state.factor:g}):"]
    lines += [f"  {_change_line(c)}" for c in regressions]
    lines.append("fix it, or accept the new numbers with --gradcheck-update-baseline")
    report.outcome = "failed"
    report.longrepr = RegressionRepr("\n".join(lines))
    setattr(report, REGRESSED_ATTR, [c["key"] for c in regressions])


class _Crash:
    """The reason pytest's short summary (its first line) and JUnit's message attribute read."""

    def __init__(self, message: str):
        self.message = message


class RegressionRepr:
    """A regressed test's failure text.  A plain string as longrepr has no ``reprcrash``, and then
    pytest 8.0 prints "FAILED nodeid" with no reason in its short summary (later versions fall back
    on the text): this carries it as the crash message, for every supported pytest."""

    def __init__(self, text: str):
        self.text = text
        self.reprcrash = _Crash(text)

    def toterminal(self, tw) -> None:
        for line in self.text.splitlines():
            tw.line(line)

    def __str__(self) -> str:
        return self.text


def _xml_safe_property(prop):
    if isinstance(prop, (tuple, list)) and len(prop) == 2 and isinstance(prop[0], str) \
            and prop[0].startswith(_PROPERTY_PREFIX):
        name, value = prop
        return (xml_text(name), xml_text(value) if isinstance(value, str) else value)
    return prop


def pytest_report_header(config):
    state = get_report_state(config)
    if state is None or not (state.compare or state.update):
        return None
    n = len((state.baseline or {}).get("checks") or {})
    what = "compare" if state.compare and not state.update else ("compare and update" if state.compare else "update")
    return (f"gradcheck baseline: {state.baseline_path} ({n} checks; {what}; "
            f"regression factor {state.factor:g})")


#: a function returning the run's check records, handed down by the plugin (which owns the
#: session): this module reads records, it does not reach up into the session
_RECORDS_KEY = pytest.StashKey[Callable[[], list]]()


def provide_records(config, get_records: Callable[[], list]) -> None:
    """Tell the reports where the run's check records are (called by the plugin at configure)."""
    config.stash[_RECORDS_KEY] = get_records


def _records(config) -> list[dict]:
    get_records = config.stash.get(_RECORDS_KEY, None)
    return list(get_records()) if get_records is not None else []


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    """Compare, gate, write (controller only; before the terminal summary is printed)."""
    config = session.config
    state = get_report_state(config)
    if state is None or not state.active:
        return
    try:
        _finish(session, state)
    except KeyboardInterrupt:
        # one line (pytest prints "Exit: ..."), not a traceback; every write is atomic, so no file is half-written
        pytest.exit("gradcheck: interrupted while writing the baseline/reports; each file is either unchanged "
                    "or completely written", returncode=pytest.ExitCode.INTERRUPTED)
    except Exception as exc:  # a report must never turn into INTERNALERROR
        state.errors.append(f"gradcheck reports failed: {type(exc).__name__}: {exc}")
    if state.errors and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _finish(session, state: ReportState) -> None:
    config = session.config
    records = _records(config)
    state.n_records = len(records)
    context = _json_report.make_context(records, extra={"pytest": pytest.__version__})
    if state.baseline is not None:
        state.changes = _baseline.compare(state.baseline, records, factor=state.factor)
        state.context_warnings = _baseline.context_warnings(state.baseline, context)
    elif state.compare and state.update:
        state.changes = _baseline.compare({"checks": {}}, records, factor=state.factor)
    if state.compare and not state.update and state.regressions and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if state.update:
        state.accepted_failing = _baseline.failing_keys(records)
        try:
            state.updated, state.baseline_written = _baseline.update_baseline(state.baseline_path, records, context)
        except (OSError, _baseline.BaselineError) as exc:
            state.errors.append(f"could not write the gradcheck baseline {state.baseline_path}: {exc}")
    if state.json_path or state.html_path:
        base_info = None
        if state.compare or state.update:
            base_info = {"path": _rootdir_relative(state.baseline_path, config), "compared": state.baseline is not None,
                         "updated": state.update, "factor": state.factor,
                         "noise_floor": _baseline.DEFAULT_NOISE_FLOOR,
                         "context_warnings": state.context_warnings}
        report = _json_report.build_report(records, state.changes, context, baseline=base_info,
                                           pytest_counts=_pytest_counts(config))
        if state.json_path:
            try:
                _json_report.write_json(state.json_path, report)
                state.written.append(("JSON", state.json_path))
            except OSError as exc:
                state.errors.append(f"could not write the gradcheck JSON report {state.json_path}: {exc}")
        if state.html_path:
            from . import html_report

            try:
                html_report.write_html(state.html_path, _with_run_ids(report, config))
                state.written.append(("HTML", state.html_path))
            except OSError as exc:
                state.errors.append(f"could not write the gradcheck HTML report {state.html_path}: {exc}")


def _pytest_counts(config) -> dict | None:
    """pytest's count of tests by outcome, as its last line counts them (reports that do not
    count towards it, e.g. a passed setup, are left out); None without the terminal reporter."""
    tr = config.pluginmanager.get_plugin("terminalreporter")
    stats = getattr(tr, "stats", None)
    if not isinstance(stats, dict):
        return None
    return {key: sum(1 for rep in stats.get(key, ()) if getattr(rep, "count_towards_summary", True))
            for key in _json_report.PYTEST_OUTCOMES}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _change_line(c: dict) -> str:
    return terminal_text(f"{c['key']}: {c['reason']}")  # labels, and a baseline file's text, are user text


def _relpath(path: str, config) -> str:
    """``path`` as the user can use it where they ran pytest: relative to that directory
    when inside it, else absolute (a ``../../../..`` climb out of the project helps nobody)."""
    invocation = Path(os.path.abspath(config.invocation_params.dir))
    target = Path(os.path.abspath(path))
    if invocation == target or invocation in target.parents:
        return terminal_text(os.path.relpath(target, invocation))
    return terminal_text(str(target))


def _rootdir_relative(path: str, config) -> str:
    """``path`` relative to the rootdir when inside it (as node ids are): a report read on
    another machine (a CI artifact) names the file as the repository does, not a runner's
    checkout folder; a path outside the rootdir stays absolute."""
    root, target = Path(os.path.abspath(config.rootpath)), Path(os.path.abspath(path))
    if root == target or root in target.parents:
        return target.relative_to(root).as_posix()
    return str(target)


def _with_run_ids(report: dict, config) -> dict:
    """``report`` whose checks also carry ``run_id``: the node id as pytest takes it from
    the directory it was run in (node ids are rootdir-relative), for the rerun command."""
    checks = [dict(c, run_id=_cwd_relative_nodeid(c.get("nodeid", ""), config)) for c in report.get("checks", [])]
    return dict(report, checks=checks)


def _cwd_relative_nodeid(nodeid: str, config) -> str:
    """As pytest's Config.cwd_relative_nodeid (whose argument type changed in pytest 9.2)."""
    path, sep, rest = nodeid.partition("::")
    invocation, root = Path(config.invocation_params.dir), Path(config.rootpath)
    if not path or invocation == root:
        return nodeid
    return Path(os.path.relpath(root / path, invocation)).as_posix() + sep + rest


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    state = get_report_state(config)
    if state is None or not state.active:
        return
    tr = terminalreporter
    regs = state.regressions
    base = _relpath(state.baseline_path, config)
    if regs:
        accepted = state.update
        tr.write_sep("=", "gradcheck regressions" + (" (accepted by --gradcheck-update-baseline)" if accepted else ""),
                     red=not accepted, yellow=accepted, bold=True)
        for c in regs:
            tr.write_line(("ACCEPTED " if accepted else "REGRESSED ") + _change_line(c), red=not accepted,
                          yellow=accepted)
        if not accepted:
            tr.write_line(f"{_plural(len(regs), 'gradient check')} regressed against {base} (factor {state.factor:g}); "
                          "fix them, or accept the new numbers with --gradcheck-update-baseline", red=True)
    info = [c for c in state.changes if c.get("kind") != "regression"]
    lines: list[tuple[str, dict]] = []
    if state.compare or state.update or state.written or state.errors:
        tr.write_sep("-", "gradcheck reports")
    if state.compare or state.update:
        if state.baseline is not None:
            n = {k: sum(1 for c in state.changes if c.get("kind") == k) for k in ("regression", "improvement", "new", "changed")}
            tr.write_line(f"gradcheck baseline {base}: {_plural(state.n_records, 'check')} compared: "
                          f"{_plural(n['regression'], 'regression')}, {_plural(n['improvement'], 'improvement')}, "
                          f"{n['new']} new, {_plural(n['changed'], 'other status change')}")
        for kind, word in (("improvement", "improved"), ("new", "new"), ("changed", "changed")):
            lines += [(word, c) for c in info if c.get("kind") == kind]
        for word, c in lines[:MAX_INFO_LINES]:
            tr.write_line(f"  {word}: {_change_line(c)}")
        if len(lines) > MAX_INFO_LINES:
            tr.write_line(f"  ... and {len(lines) - MAX_INFO_LINES} more (see --gradcheck-json/--gradcheck-html)")
        for w in state.context_warnings:
            tr.write_line(terminal_text(f"  warning: {w}"), yellow=True)
        if state.updated is not None:
            n_all = len(state.updated.get("checks") or {})
            if not state.baseline_written:
                tr.write_line(f"gradcheck baseline unchanged: {base} ({n_all} checks)", green=True)
            else:
                tr.write_line(f"gradcheck baseline updated: {base} ({state.n_records} checks from this run, "
                              f"{n_all} in the file)", green=True)
            for line in _baseline.accepted_failing_lines(state.accepted_failing):
                tr.write_line(terminal_text(line), yellow=True, bold=True)
    for what, path in state.written:
        tr.write_line(f"gradcheck {what} report: {_relpath(path, config)}")
    for err in state.errors:
        tr.write_line(terminal_text(f"ERROR: {err}"), red=True, bold=True)
