"""Hook specifications of pytest-gradcheck (added in ``pytest_addhooks``).

Implement them in a ``conftest.py`` or a plugin, like any pytest hook.

Layer: plugin side.  Imports pluggy only.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("pytest")


@hookspec
def pytest_gradcheck_options(config, item, options):
    """Adjust the options of the checks of one test item, in place.

    Called once per test item that runs a gradient check (a test using the
    ``gradcheck`` or ``gradcheck_model`` fixture, or a discovered model item),
    in the process that runs the item (an xdist worker under ``-n``).

    :param config: the pytest config.
    :param item: the test item.
    :param options: a mutable dict with the keys ``atol, rtol, eps, method,
        mode, seed`` resolved from built-in defaults < ini < command line <
        markers < the model's own options.  Keyword arguments of a call to the
        fixture still win over what the hook sets.  Values set here are
        validated afterwards; an unusable value fails the test.
    """


@hookspec
def pytest_gradcheck_result(config, record):
    """Called once for every counted check, on the controller.

    Called when the test's attempt finishes (``pytest_runtest_logfinish``), in
    the controller process under pytest-xdist; every conftest and plugin
    therefore sees every result of the run.  An attempt that
    pytest-rerunfailures repeats is not reported: the rerun's checks are.

    :param config: the pytest config.
    :param record: a JSON-safe dict ``{"nodeid", "label", "duration_s",
        "result"}`` where ``result`` is ``GradcheckResult.to_dict()``
        (see DESIGN.md, schema version 1); a check that did not finish has
        ``result["status"] == "error"`` and an ``error`` dict; a check of an
        xfail-marked test may have ``status`` "xfail" or "xpass" (see
        ``reporting/json_report.py``).  Do not modify it.
    """


@hookspec
def pytest_gradcheck_summary(config, terminalreporter, records):
    """Add lines to the ``gradcheck`` terminal summary.

    Called at the end of the gradcheck section of ``pytest_terminal_summary``
    (on the controller), also when ``--gradcheck-summary=none`` hides the
    built-in section.  Write with ``terminalreporter.write_line(...)``.

    :param config: the pytest config.
    :param terminalreporter: the terminal reporter plugin.
    :param records: the list of all check records of the run, in the order
        they arrived (read-only).
    """
