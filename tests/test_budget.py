"""A huge full-mode check says what it will cost before it starts (issue 22, item 8).

No wall-clock thresholds: the refusal uses a time_limit below any machine's time, the
warning and progress use thresholds of zero (monkeypatched), so the outcome is the same
on a fast and a loaded machine."""

import warnings

import numpy as np
import pytest

from pytest_gradcheck import GradcheckInputError, check_gradient
from pytest_gradcheck.numerics import budget

X = np.random.default_rng(0).standard_normal(3000)


def _f(x):
    return float(np.sum(np.sin(x)))


def _g(x):
    return np.cos(x)


def test_full_mode_above_the_time_limit_is_refused_with_the_numbers():
    calls = []

    def f(x):
        calls.append(1)
        return _f(x)

    with pytest.raises(GradcheckInputError, match=r"mode='full' on 3,000 parameters needs at least 6,000 "
                                                  r"evaluations of fun, .* ms each \(fastest of 3 timed calls\).*"
                                                  r"over time_limit=1e-09 s. Use mode='fast'"):
        check_gradient(f, X, _g, mode="full", time_limit=1e-9)
    assert len(calls) < 20            # refused before the entries are evaluated
    # raising the limit (or None) runs the same check: right passes, wrong fails
    assert check_gradient(_f, X, _g, mode="full", time_limit=None).status == "pass"
    assert check_gradient(_f, X, lambda x: 1.001 * _g(x), mode="full", time_limit=None).status == "fail"


def test_small_checks_time_nothing(monkeypatch):
    """Below GUARD_MIN_EVALS no call is timed, so a small check's evaluation count is unchanged."""
    monkeypatch.setattr(budget, "WARN_SECONDS", 0.0)
    r = check_gradient(_f, X[:10], _g, mode="full", time_limit=1e-9)
    assert r.status == "pass"


@pytest.mark.parametrize("bad", [0, -1.0, "1h", True])
def test_bad_time_limit_is_named(bad):
    with pytest.raises(GradcheckInputError, match="time_limit must be a positive number"):
        check_gradient(_f, X[:10], _g, time_limit=bad)


def test_long_check_warns_and_reports_progress(monkeypatch):
    monkeypatch.setattr(budget, "WARN_SECONDS", 0.0)
    monkeypatch.setattr(budget, "PROGRESS_AFTER", 0.0)
    monkeypatch.setattr(budget, "PROGRESS_EVERY", 0.0)
    with pytest.warns(budget.SlowCheckWarning, match="6,000 evaluations"):  # the API, outside the plugin
        check_gradient(_f, X, _g, mode="full")
    lines = []
    with budget.progress_sink(lines.append), warnings.catch_warnings():
        warnings.simplefilter("error")  # under the plugin the estimate is a terminal line, never a warning
        r = check_gradient(_f, X, _g, mode="full")
    assert r.status == "pass", r
    assert lines[0].startswith("gradcheck: mode='full' on ") and "6,000 evaluations" in lines[0], lines[:2]
    lines = lines[1:]
    assert lines and all(line.startswith("gradcheck: full check: ") and "of about 6,000 evaluations" in line
                         for line in lines), lines[:3]
    done = [int(line.split(": ")[2].split(" of")[0].replace(",", "")) for line in lines]
    assert done == sorted(done) and done[-1] <= 6000


def test_progress_goes_to_the_terminal_under_pytest_and_keeps_q(pytester):
    pytester.makeconftest("""
        from pytest_gradcheck.numerics import budget
        budget.WARN_SECONDS = 0.0
        budget.PROGRESS_AFTER = 0.0
        budget.PROGRESS_EVERY = 0.0
    """)
    pytester.makepyfile(test_big="""
        import numpy as np
        def test_big(gradcheck):
            x = np.random.default_rng(0).standard_normal(3000)
            gradcheck(lambda x: float(np.sum(np.sin(x))), x, np.cos, mode="full")
    """)
    # the estimate is a terminal line, not a warning: a suite run with filterwarnings = error still passes
    pytester.makeini("[pytest]\nfilterwarnings =\n    error\n")
    result = pytester.runpytest("-q", "-p", "no:randomly")
    result.assert_outcomes(passed=1, warnings=0)
    result.stdout.fnmatch_lines(["gradcheck: mode='full' on 3,000 parameters needs at least 6,000 evaluations*",
                                 "gradcheck: full check: * of about 6,000 evaluations*"])
    result = pytester.runpytest("-q", "-p", "no:randomly", "-n", "2")
    result.assert_outcomes(passed=1, warnings=0)
    result.stdout.no_fnmatch_line("gradcheck: full check: *")  # a worker's progress stays off the terminal


def test_the_marker_sets_time_limit(pytester):
    pytester.makepyfile(test_big="""
        import numpy as np
        import pytest

        X = np.random.default_rng(0).standard_normal(3000)

        @pytest.mark.gradcheck(time_limit=1e-9)
        def test_refused(gradcheck):
            gradcheck(lambda x: float(np.sum(np.sin(x))), X, np.cos, mode="full")

        @pytest.mark.gradcheck(time_limit="inf")
        def test_no_limit(gradcheck):
            assert gradcheck(lambda x: float(np.sum(np.sin(x))), X, np.cos, mode="full").status == "pass"
    """)
    result = pytester.runpytest("-q", "-p", "no:randomly", "-W", "ignore::UserWarning")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*over time_limit=1e-09 s*"])
