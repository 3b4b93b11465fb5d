"""pytest hooks of pytest-gradcheck (entry point ``pytest11: gradcheck``).

Only hooks live here; the work is done in options.py (options and their
precedence), runner.py (running and recording one check of an item),
fixtures.py (the fixtures), discovery.py (models and their items), session.py (the run's state in
``config.stash``) and reporting/ (summary).  ``-p no:gradcheck`` disables all
of it.

Layer: plugin, the top: may import every module of the package; none imports it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from . import discovery as _discovery
from . import options as _options
from . import tracebacks as _tracebacks
from .fixtures import gradcheck, gradcheck_model, gradcheck_options  # noqa: F401 - fixtures of the plugin
from .runner import item_options
from .session import LABELS_KEY, end_item_attempt, get_session, make_error_record, take_pending

if importlib.util.find_spec("pytest_gradcheck.reporting.pytest_reports") is not None:
    pytest_plugins = ["pytest_gradcheck.reporting.pytest_reports"]

_FIXTURES = ("gradcheck", "gradcheck_options", "gradcheck_model")
#: per item: its markers were rejected in setup (a model item's check then errs as "input")
_BAD_MARKERS_KEY = pytest.StashKey[bool]()


def pytest_addhooks(pluginmanager):
    from . import hooks

    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser):
    _options.add_options(parser)


def pytest_configure(config):
    config.addinivalue_line("markers", _options.MARKER_HELP)
    session = get_session(config)
    session.base_options  # noqa: B018 - a bad ini value is a usage error now, not later
    session.summary  # noqa: B018
    if not session.is_worker:
        config.pluginmanager.register(GradcheckController(config), "gradcheck-controller")
        from .reporting import pytest_reports

        pytest_reports.provide_records(config, lambda: session.records)


def pytest_report_header(config):
    return f"gradcheck: {_options.describe(get_session(config).base_options)}"


# -- collection ------------------------------------------------------------------

def _python_collects(file_path: Path, parent) -> bool:
    """Whether pytest's python plugin collects this file as a test module."""
    if parent.session.isinitpath(file_path):
        return True
    return any(file_path.match(p) for p in parent.config.getini("python_files"))


def _external(config) -> list:
    session = get_session(config)
    if session.external is None:
        session.external = _discovery.load_external(config)
    return session.external


def pytest_collect_file(file_path, parent):
    if file_path.suffix != ".py" or _python_collects(file_path, parent):
        return None
    config = parent.config
    for ext in _external(config):
        if ext.path == file_path:
            return _discovery.GradcheckModelFile.from_parent(
                parent, path=file_path, module=ext.module, modname=ext.modname, source=ext.source,
            )
    if file_path.name == "conftest.py":
        module = _discovery.conftest_module_at(config, file_path)
        if module is not None and _discovery.module_models(module, conventions=False):
            return _discovery.GradcheckModelFile.from_parent(
                parent, path=file_path, module=module, source=_discovery.CONFTEST_SOURCE,
            )
    return None


def _listed(config, path) -> bool:
    """Whether the file at ``path`` is a module named in ``gradcheck_models`` or an entry point
    (the naming conventions apply there; elsewhere only ``@model`` registrations)."""
    return any(ext.path == path for ext in _external(config))


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    report = yield
    if isinstance(collector, _discovery.GradcheckModelFile):
        # marked when collected, not when made: pytest makes the collectors of a whole
        # directory to find one file argument in it, and collects only the matching ones
        get_session(collector.config).collected_model_paths.add(collector.path)
    if (isinstance(collector, pytest.Module) and type(collector).__name__ != "DoctestModule"
            and report.passed):
        config = collector.config
        get_session(config).collected_model_paths.add(collector.path)
        try:
            items = _discovery.model_items(collector, collector.obj, conventions=_listed(config, collector.path))
        except Exception:  # noqa: BLE001 - e.g. a discovery warning turned into an error by -W error
            report.outcome = "failed"
            report.longrepr = collector.repr_failure(pytest.ExceptionInfo.from_current())
            report.result = []
        else:
            report.result.extend(items)
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    """Add the models of external modules no collected directory contained."""
    if not _discovery.wants_external(config):
        return
    state = get_session(config)
    for ext in _external(config):
        if ext.path is not None and ext.path in state.collected_model_paths:
            continue
        if ext.path is not None:
            state.collected_model_paths.add(ext.path)
        items.extend(session.genitems(_discovery.external_collector(session, ext)))


def pytest_generate_tests(metafunc):
    if "gradcheck_model" not in metafunc.fixturenames:
        return
    config = metafunc.config
    # (module, whether the naming conventions apply there): see discovery.module_models
    modules = [(ext.module, True) for ext in _external(config) if ext.module is not None]
    modules += [(conftest, False) for conftest in
                _discovery.conftest_modules_above(config, Path(str(metafunc.definition.path)).parent)]
    if metafunc.module is not None:
        modules.append((metafunc.module, _listed(config, Path(str(metafunc.definition.path)))))
    specs, seen = [], set()
    for module, conventions in modules:
        for spec in _discovery.discover(config, module, conventions=conventions):
            # one file imported under two names (a listed test module) gives its models once
            code = getattr(spec.fun, "__code__", None)
            key = (code.co_filename, code.co_firstlineno, spec.name) if code else (id(spec.fun), spec.name)
            if key not in seen:
                seen.add(key)
                specs.append(spec)
    metafunc.parametrize("gradcheck_model", specs, ids=[s.name for s in specs], indirect=True)


def pytest_itemcollected(item):
    """A failure inside a check shows the user's frames and the message, not the checker's."""
    if not isinstance(item, _discovery.GradcheckModelItem):  # model items filter their own
        _tracebacks.hide_own_frames(item)


# -- running -----------------------------------------------------------------------

def pytest_runtest_setup(item):
    """Reject bad markers (positional or unknown arguments, bad values) before the test runs."""
    uses = isinstance(item, _discovery.GradcheckModelItem) or any(
        name in getattr(item, "fixturenames", ()) for name in _FIXTURES
    )
    if uses or item.get_closest_marker("gradcheck") is not None:
        try:
            item_options(item)
            problem = None
        except _options.OptionError as exc:
            problem = str(exc)
        if problem is not None:  # raised outside the except block: no chained traceback
            item.stash[_BAD_MARKERS_KEY] = True
            pytest.fail(problem, pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    records = take_pending(item, call.excinfo)
    missing = _unfinished_model_check(item, call, records)
    if missing is not None:
        records.append(missing)
    for rec in records:
        if rec.get("error"):  # completed checks added theirs when they finished
            prop = (f"gradcheck[{rec['label']}].status", "error")
            item.user_properties.append(prop)
            report.user_properties.append(prop)
    if records:
        # JSON-safe: pytest-xdist serialises extra report attributes to the controller.
        report.gradcheck_records = records
    if call.when == "teardown":
        end_item_attempt(item)
    return report


def _unfinished_model_check(item, call, records):
    """The error record of a model item whose one check never started: its setup failed
    (rejected markers) or its parameter factory raised.  A model item is one check, so pytest's
    error or failure of it is one gradcheck error too.  None otherwise."""
    if not isinstance(item, _discovery.GradcheckModelItem) or call.when not in ("setup", "call"):
        return None
    if call.excinfo is None or isinstance(call.excinfo.value, pytest.skip.Exception) or records:
        return None
    spec = item.spec
    if spec.name in item.stash.get(LABELS_KEY, ()):  # its check ran (and was recorded)
        return None
    kind = "function" if spec.origin == "autograd.Function" else "gradient"
    return make_error_record(item.nodeid, spec.name, kind, call.duration, call.excinfo.value,
                             error_type="input" if item.stash.get(_BAD_MARKERS_KEY, False) else None)


class GradcheckController:
    """Hooks that run only on the controller (or in a run without xdist)."""

    def __init__(self, config):
        self.config = config
        self.session = get_session(config)

    # Records count per attempt of a test (see session.py): pytest-rerunfailures
    # repeats logstart ... logfinish for every attempt and marks repeated ones "rerun".
    def pytest_runtest_logstart(self, nodeid, location):
        self.session.begin_attempt(nodeid)

    @pytest.hookimpl(tryfirst=True)  # before junitxml reads the report's properties
    def pytest_runtest_logreport(self, report):
        self.session.add_report_records(report)

    def pytest_runtest_logfinish(self, nodeid, location):
        self.session.end_attempt(nodeid)

    # the serial order of the tests, for records that arrive in completion order under xdist
    def pytest_collection_finish(self, session):
        self.session.set_test_order(item.nodeid for item in session.items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids):
        self.session.set_test_order(ids)

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, session, exitstatus):
        # before every reporter (the JSON/HTML/baseline writer is tryfirst) reads the records
        self.session.finish_attempts()
        self.session.sort_records()
        return (yield)

    def pytest_terminal_summary(self, terminalreporter):
        from .reporting import terminal

        records = self.session.records
        terminal.write_summary(
            terminalreporter, records, which=self.session.summary,
            verbosity=self.config.getoption("verbose"),  # Config.get_verbosity() is pytest 8+
            shown_above=self.session.shown_in_failures,
        )
        self.config.hook.pytest_gradcheck_summary(
            config=self.config, terminalreporter=terminalreporter, records=records,
        )
