"""Every check is counted once, as pytest counts tests: reruns (pytest-rerunfailures)
replace the attempt they repeat, checks that never finished (pytest-timeout, a crash in
the user's code) are errors, checks in xfail-marked tests are xfailed / xpassed, and a
failure's diagnosis is printed once."""

import json
import re

import pytest

MODES = [pytest.param("xdist", id="xdist-n2"), pytest.param("no-xdist", id="no-xdist")]


@pytest.fixture(autouse=True)
def _not_on_ci(monkeypatch):
    """On CI (CI or BUILD_NUMBER set) pytest's short summary prints a failure's whole message, so
    a diagnosis appears once more there; these tests count the copies the plugin itself prints."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("BUILD_NUMBER", raising=False)


def run(pytester, mode, *args):
    """Run pytest in ``pytester.path``; under xdist in a subprocess (workers are processes anyway)."""
    common = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")
    if mode == "xdist":
        return pytester.runpytest_subprocess("-n", "2", *common, *args)
    return pytester.runpytest("-p", "no:xdist", *common, *args)


def outcomes(result) -> dict:
    """pytest's outcome line as a dict (assert_outcomes knows no "rerun"); "warnings" left out."""
    return {k: v for k, v in result.parseoutcomes().items() if k not in ("warnings", "warning")}


def count_line(result) -> str:
    lines = [line for line in result.stdout.lines if line.startswith("gradcheck: ") and " checks" in line]
    assert len(lines) == 1, result.stdout.str()
    return lines[0]


def hook_records_conftest() -> str:
    """A conftest that writes every record the result hook sees to hook_records.json."""
    return """
import json

def pytest_gradcheck_result(config, record):
    config._gc_seen = getattr(config, "_gc_seen", []) + [record]

def pytest_unconfigure(config):
    if not hasattr(config, "workerinput"):
        with open(config.rootpath / "hook_records.json", "w") as f:
            json.dump(getattr(config, "_gc_seen", []), f)
"""


# -- #13.5: pytest-rerunfailures -------------------------------------------------------

RERUN_SUITE = """
import pathlib
import numpy as np

def quad(p): return float((p ** 2).sum())
P = np.array([0.5, -1.0, 2.0])
GOOD = lambda p: 2 * p
BAD = lambda p: np.array([1.0, -2.0, 4.4])

def test_ok(gradcheck):
    gradcheck(quad, P, GOOD)

def test_bug(gradcheck):
    gradcheck(quad, P, GOOD)
    gradcheck(quad, P, BAD)

def test_flaky(gradcheck):
    marker = pathlib.Path(__file__).with_name("flaky_attempts.txt")
    attempts = int(marker.read_text()) + 1 if marker.exists() else 1
    marker.write_text(str(attempts))
    gradcheck(quad, P, BAD if attempts == 1 else GOOD)
"""


@pytest.mark.parametrize("mode", MODES)
def test_reruns_replace_the_attempt_they_repeat(pytester, mode):
    pytest.importorskip("pytest_rerunfailures")
    pytester.makepyfile(test_rerun=RERUN_SUITE)
    pytester.makeconftest(hook_records_conftest())
    result = run(pytester, mode, "--reruns", "2", "--gradcheck-json=out.json",
                 "--gradcheck-update-baseline", "--junitxml=junit.xml")
    assert outcomes(result) == {"passed": 2, "failed": 1, "rerun": 3}
    # 4 checks: test_ok, test_bug's two (the default labels "check" and "check-2" in every
    # attempt, no phantom check-3 ... check-6) and test_flaky's last attempt, which passed
    assert count_line(result) == "gradcheck: 4 checks in 3 tests: 3 passed, 1 failed, 0 inconclusive"
    keys = {"test_rerun.py::test_ok::check", "test_rerun.py::test_bug::check",
            "test_rerun.py::test_bug::check-2", "test_rerun.py::test_flaky::check"}
    report = json.loads((pytester.path / "out.json").read_text())
    assert sorted(c["key"] for c in report["checks"]) == sorted(keys)
    assert report["summary"]["counts"]["pass"] == 3 and report["summary"]["counts"]["fail"] == 1
    flaky = next(c for c in report["checks"] if c["nodeid"].endswith("test_flaky"))
    assert flaky["status"] == "pass"  # the last attempt's record won
    baseline = json.loads((pytester.path / ".gradcheck" / "baseline.json").read_text())
    assert set(baseline["checks"]) == keys
    # pytest_gradcheck_result sees each counted check once, not the attempts that were repeated
    seen = json.loads((pytester.path / "hook_records.json").read_text())
    assert sorted(f"{r['nodeid']}::{r['label']}" for r in seen) == sorted(keys)
    # JUnit properties of the final attempt only
    junit = (pytester.path / "junit.xml").read_text()
    assert junit.count('name="gradcheck[check-2].status"') == 1
    assert "check-3" not in junit and "check-3" not in result.stdout.str()


def test_rerun_without_the_plugin_changes_nothing(pytester):
    """Without pytest-rerunfailures every attempt is the only one: same counts as before."""
    pytester.makepyfile(test_rerun=RERUN_SUITE)
    result = run(pytester, "no-xdist", "-p", "no:rerunfailures")
    result.assert_outcomes(passed=1, failed=2)
    assert count_line(result) == "gradcheck: 4 checks in 3 tests: 2 passed, 2 failed, 0 inconclusive"


# -- #13.6: checks that never finished -------------------------------------------------

ERROR_SUITE = """
import time
import numpy as np
import pytest
from pytest_gradcheck import GradcheckInputError

def quad(p): return float((p ** 2).sum())
P = np.array([0.5, -1.0, 2.0])
GOOD = lambda p: 2 * p

def test_ok(gradcheck):
    gradcheck(quad, P, GOOD)

def test_user_crash(gradcheck):
    def model(p):
        return float((p ** 2).sum()) / 0.0 if p[0] > 0 else 1 / 0
    gradcheck(model, P, GOOD)

def test_grad_crash(gradcheck):
    def grad(p):
        raise KeyError("no gradient\\nsecond line of the message")
    gradcheck(quad, P, grad)

def test_bad_input(gradcheck):
    gradcheck(quad, np.array([0.5, np.nan]), GOOD)

@pytest.mark.timeout(0.5, method="signal")
def test_timeout(gradcheck):
    def slow(p):
        time.sleep(0.2)
        return quad(p)
    gradcheck(slow, P, GOOD)

def test_expects_bad_input(gradcheck):
    # the test checks the checker: the exception is caught, so it is not a check of the run
    with pytest.raises(GradcheckInputError):
        gradcheck(quad, np.array([0.5, np.nan]), GOOD)

def test_skips_on_crash(gradcheck):
    try:
        gradcheck(lambda p: 1 / 0, P, GOOD)
    except GradcheckInputError:
        pytest.skip("no such backend here")
"""

MODEL_ERRORS = """
import numpy as np

def broken(w): return float((w ** 2).sum())
def broken_grad(w): return 2 * w
def broken_params(rng): raise RuntimeError("cannot build params")
"""


@pytest.mark.parametrize("mode", MODES)
def test_checks_that_never_finished_are_errors(pytester, mode):
    pytest.importorskip("pytest_timeout")
    from pytest_gradcheck.reporting.html_report import extract_data

    pytester.makepyfile(test_err=ERROR_SUITE, models_err=MODEL_ERRORS)
    pytester.makeini("[pytest]\ngradcheck_models = models_err\n")
    pytester.makeconftest(hook_records_conftest())
    pytester.syspathinsert()
    result = run(pytester, mode, "--gradcheck-json=out.json", "--gradcheck-html=out.html",
                 "--gradcheck-update-baseline")
    assert outcomes(result) == {"passed": 2, "failed": 5, "skipped": 1}
    # test_ok's check and five that never finished (four tests and the model whose params
    # factory raised); the checks caught by the test (pytest.raises, skip) are not counted
    assert count_line(result) == "gradcheck: 6 checks in 6 tests: 1 passed, 0 failed, 0 inconclusive, 5 errors"
    report = json.loads((pytester.path / "out.json").read_text())
    assert report["summary"]["counts"] == {"pass": 1, "fail": 0, "inconclusive": 0, "error": 5,
                                           "xfail": 0, "xpass": 0, "caught": 0}
    errors = {c["nodeid"].split("::")[-1]: c["error"] for c in report["checks"] if c["status"] == "error"}
    assert errors["test_user_crash"]["type"] == "user_code"
    assert errors["test_user_crash"]["exception"] == "ZeroDivisionError"
    assert errors["test_grad_crash"] == {"type": "user_code", "exception": "KeyError",
                                         "message": errors["test_grad_crash"]["message"]}
    assert "no gradient" in errors["test_grad_crash"]["message"]
    assert "\n" not in errors["test_grad_crash"]["message"]  # one line
    assert errors["test_bad_input"]["type"] == "input"
    assert errors["test_timeout"]["type"] == "interrupted"
    assert "Timeout" in errors["test_timeout"]["message"]
    assert errors["gradcheck[broken]"] == {"type": "user_code", "exception": "RuntimeError",
                                           "message": "cannot build params"}
    html = extract_data((pytester.path / "out.html").read_text())
    assert html["summary"]["counts"]["error"] == 5
    assert sum(c["status"] == "error" for c in html["checks"]) == 5
    baseline = json.loads((pytester.path / ".gradcheck" / "baseline.json").read_text())
    statuses = sorted(e["status"] for e in baseline["checks"].values())
    assert statuses == ["error"] * 5 + ["pass"]
    seen = json.loads((pytester.path / "hook_records.json").read_text())
    assert len(seen) == 6
    # the summary says what stopped each check, in one line each (one pattern a call: under
    # xdist the checks come in the order their tests finished)
    for line in ("ERROR *test_err.py::test_user_crash [[]check[]]",
                 "ERROR test_err.py::test_grad_crash [[]check[]]: the gradient check did not finish: "
                 "your code raised: KeyError: *no gradient*",
                 "ERROR test_err.py::test_timeout [[]check[]]: *did not finish: interrupted: Failed: Timeout*"):
        result.stdout.fnmatch_lines([line])


UNREADABLE_SUITE = """
import numpy as np
from pytest_gradcheck.frameworks import Adapter, register_adapter

class Lazy:
    \"\"\"A third-party array type whose values cannot be copied out (a closed remote buffer).\"\"\"

class LazyAdapter(Adapter):
    name = "lazy"
    def owns(self, leaf):
        return isinstance(leaf, Lazy)
    def to_numpy(self, leaf):
        raise TypeError("the buffer is closed")

register_adapter(LazyAdapter())

def test_unreadable_leaf(gradcheck):
    gradcheck(lambda p: float(np.sum(p["w"] ** 2)), {"w": np.ones(2), "z": Lazy()}, lambda p: 2 * p["w"])
"""


def test_a_leaf_that_cannot_be_read_is_an_input_error_not_the_users_code(pytester):
    # trees._read chains the framework's TypeError to "cannot be read as numbers"; no user code ran
    pytester.makepyfile(test_unreadable=UNREADABLE_SUITE)
    result = pytester.runpytest_subprocess("-p", "no:xdist", "-p", "no:cacheprovider", "--gradcheck-json=out.json")
    assert outcomes(result) == {"failed": 1}
    (check,) = json.loads((pytester.path / "out.json").read_text())["checks"]
    assert check["error"]["type"] == "input", check
    assert check["error"]["exception"] == "GradcheckInputError"
    assert "cannot be read as numbers" in check["error"]["message"]
    result.stdout.fnmatch_lines(["ERROR test_unreadable.py::test_unreadable_leaf [[]check[]]: *input*"])


# -- #13.7: xfail ----------------------------------------------------------------------

XFAIL_SUITE = """
import numpy as np
import pytest

def quad(p): return float((p ** 2).sum())
P = np.array([0.5, -1.0, 2.0])
GOOD = lambda p: 2 * p
BAD = lambda p: np.array([1.0, -2.0, 4.4])

def test_ok(gradcheck):
    gradcheck(quad, P, GOOD)

@pytest.mark.xfail(reason="known bug in the backward pass")
def test_known_bug(gradcheck):
    gradcheck(quad, P, GOOD, label="fine")   # passes before the known failure: a plain pass
    gradcheck(quad, P, BAD)

@pytest.mark.xfail(reason="crashes on this input")
def test_known_crash(gradcheck):
    gradcheck(lambda p: 1 / 0, P, GOOD)

@pytest.mark.xfail(reason="was fixed")
def test_fixed(gradcheck):
    gradcheck(quad, P, GOOD)

@pytest.mark.xfail(raises=ZeroDivisionError, reason="only a crash is expected")
def test_unexpected_failure(gradcheck):
    gradcheck(quad, P, BAD)
"""


@pytest.mark.parametrize("mode", MODES)
def test_xfail_checks_count_as_pytest_counts_their_tests(pytester, mode):
    from pytest_gradcheck.reporting.html_report import extract_data

    pytester.makepyfile(test_xf=XFAIL_SUITE)
    result = run(pytester, mode, "--gradcheck-json=out.json", "--gradcheck-html=out.html")
    assert outcomes(result) == {"passed": 1, "failed": 1, "xfailed": 2, "xpassed": 1}
    # pytest's line, check by check: test_known_bug's first check passed before its expected failure
    assert count_line(result) == ("gradcheck: 6 checks in 5 tests: 2 passed, 1 failed, 0 inconclusive, "
                                  "2 xfailed, 1 xpassed")
    report = json.loads((pytester.path / "out.json").read_text())
    assert report["summary"]["counts"] == {"pass": 2, "fail": 1, "inconclusive": 0, "error": 0,
                                           "xfail": 2, "xpass": 1, "caught": 0}
    by_key = {c["key"]: c for c in report["checks"]}
    known = by_key["test_xf.py::test_known_bug::check"]
    assert known["status"] == "xfail" and known["xfail_reason"] == "known bug in the backward pass"
    assert known["passed"] is False  # the check's own verdict is kept
    assert by_key["test_xf.py::test_known_bug::fine"]["status"] == "pass"
    assert by_key["test_xf.py::test_known_crash::check"]["status"] == "xfail"
    assert by_key["test_xf.py::test_known_crash::check"]["error"]["type"] == "user_code"
    assert by_key["test_xf.py::test_fixed::check"]["status"] == "xpass"
    assert by_key["test_xf.py::test_unexpected_failure::check"]["status"] == "fail"
    html = extract_data((pytester.path / "out.html").read_text())
    assert html["summary"]["counts"]["xfail"] == 2 and html["summary"]["counts"]["fail"] == 1
    # the table marks them, the known failures get no red detail paragraph
    # (one pattern a call: under xdist the rows come in the order the tests finished)
    result.stdout.fnmatch_lines(["xfail *test_xf.py::test_known_bug [[]check[]]"])
    result.stdout.fnmatch_lines(["XPASS *test_xf.py::test_fixed [[]check[]]"])
    assert "FAIL test_xf.py::test_known_bug" not in result.stdout.str()


def test_an_xfailed_check_is_not_a_baseline_regression(pytester):
    good = XFAIL_SUITE.replace('@pytest.mark.xfail(reason="known bug in the backward pass")\n', "")
    good = good.replace("gradcheck(quad, P, BAD)\n\n@pytest.mark.xfail(reason=\"crashes",
                        "gradcheck(quad, P, GOOD)\n\n@pytest.mark.xfail(reason=\"crashes")
    pytester.makepyfile(test_xf=good)
    run(pytester, "no-xdist", "--gradcheck-update-baseline")
    baseline = json.loads((pytester.path / ".gradcheck" / "baseline.json").read_text())
    assert baseline["checks"]["test_xf.py::test_known_bug::check"]["status"] == "pass"
    # the bug appears and the project marks it as known: pytest passes, so does the baseline gate
    pytester.makepyfile(test_xf=XFAIL_SUITE.replace("def test_unexpected_failure", "def _unused"))
    result = run(pytester, "no-xdist", "--gradcheck-baseline")
    assert result.ret == 0, result.stdout.str()
    assert "0 regressions" in result.stdout.str()
    # and removing the marker of a still-broken check is no improvement: it fails as before
    pytester.makepyfile(test_xf=XFAIL_SUITE.replace("def test_unexpected_failure", "def _unused"))
    run(pytester, "no-xdist", "--gradcheck-update-baseline")
    baseline = json.loads((pytester.path / ".gradcheck" / "baseline.json").read_text())
    assert baseline["checks"]["test_xf.py::test_known_bug::check"]["status"] == "xfail"
    fixed = XFAIL_SUITE.replace("def test_unexpected_failure", "def _unused").replace(
        "gradcheck(quad, P, BAD)\n\n@pytest.mark.xfail(reason=\"crashes",
        "gradcheck(quad, P, GOOD)\n\n@pytest.mark.xfail(reason=\"crashes")
    pytester.makepyfile(test_xf=fixed)
    result = run(pytester, "no-xdist", "--gradcheck-baseline")
    result.stdout.fnmatch_lines(["*1 improvement*", "*improved: test_xf.py::test_known_bug::check: fixed (xfail -> xpass)*"])


# -- #13.10: each diagnosis once ---------------------------------------------------------

TRANSPOSED = """
import numpy as np
import pytest
from pytest_gradcheck import GradcheckError

W = np.array([[0.3, -1.2, 0.8], [1.1, 0.4, -0.6], [-0.5, 0.9, 1.3]])
def loss(w): return float(np.tanh(W @ w).sum())
def transposed_grad(w): return W @ (1 - np.tanh(W @ w) ** 2)   # the bug: W instead of W.T

@pytest.mark.parametrize("seed", [1, 2, 3])
def test_layer(gradcheck, seed):
    gradcheck(loss, np.random.default_rng(seed).normal(size=3), transposed_grad)

def test_caught(gradcheck):
    # the failure is caught: it is in no FAILURES section, so the gradcheck section explains it
    with pytest.raises(GradcheckError):
        gradcheck(loss, np.array([0.1, 0.2, 0.3]), transposed_grad, label="caught")
"""


@pytest.mark.parametrize("mode", MODES)
def test_each_diagnosis_is_printed_once(pytester, mode):
    pytester.makepyfile(test_t=TRANSPOSED)
    result = run(pytester, mode)
    assert outcomes(result) == {"failed": 3, "passed": 1}
    out = result.stdout.str()
    # one diagnosis per failed check: in FAILURES for the three failed tests, in the
    # gradcheck section for the caught one (which has no failure report)
    assert out.count("diagnosis: Compared") == 4, out
    section = out.split("= gradcheck =")[1]
    assert section.count("diagnosis: Compared") == 1
    assert section.count("worst entries and diagnosis: in this test's failure above") == 3
    # the caught failure counts as caught, not failed (the test expects it)
    assert count_line(result) == ("gradcheck: 4 checks in 4 tests: 0 passed, 3 failed, 0 inconclusive, "
                                  "1 caught by its test")


def test_verbose_and_reports_keep_the_full_detail(pytester):
    pytester.makepyfile(test_t=TRANSPOSED)
    result = run(pytester, "no-xdist", "-v", "--gradcheck-json=out.json")
    section = result.stdout.str().split("= gradcheck =")[1]
    assert section.count("diagnosis: Compared") == 4
    report = json.loads((pytester.path / "out.json").read_text())
    assert all(c["diagnosis"]["summary"].startswith("Compared") for c in report["checks"])
    # without tracebacks (--tb=no) nothing is shown above: the section explains every failure
    result = run(pytester, "no-xdist", "--tb=no")
    assert result.stdout.str().count("diagnosis: Compared") == 4


# -- a real suite: one gradcheck summary whose counts match pytest's ----------------------

REAL_INI = """[pytest]
testpaths = tests
pythonpath = .
gradcheck_models = mylib.models
"""

REAL_MODELS = '''
import numpy as np

def linear(w): return float(np.array([1.0, -2.0, 0.5]) @ w)
def linear_grad(w): return np.array([1.0, -2.0, 0.5])
linear_params = np.array([0.3, 0.1, -0.7])

def softplus(x): return float(np.logaddexp(0.0, x).sum())
def softplus_grad(x): return 1.0 / (1.0 + np.exp(-x))
def softplus_params(rng): return rng.normal(size=4)
'''

REAL_UNRELATED = """
import pytest

def test_parse(): assert int("3") == 3
def test_join(): assert "-".join("ab") == "a-b"
def test_sum(): assert sum(range(4)) == 6

@pytest.mark.skip(reason="needs a GPU")
def test_gpu(): pass
"""

REAL_GRADS = """
import pathlib
import time
import numpy as np
import pytest

W = np.array([[0.3, -1.2, 0.8], [1.1, 0.4, -0.6]])
def layer(w): return float(np.tanh(W @ w).sum())
def layer_grad(w): return W.T @ (1 - np.tanh(W @ w) ** 2)
def layer_grad_off(w): return 1.01 * layer_grad(w)          # a real bug: 1% off
P = np.array([0.2, -0.4, 0.9])

def test_layer(gradcheck):
    gradcheck(layer, P, layer_grad)

@pytest.mark.xfail(reason="issue #12: the scale is off by 1%")
def test_known_bug(gradcheck):
    gradcheck(layer, P, layer_grad_off)

def test_real_bug(gradcheck):
    gradcheck(layer, P, layer_grad_off)

def test_flaky(gradcheck):
    marker = pathlib.Path(__file__).with_name("flaky_attempts.txt")
    attempts = int(marker.read_text()) + 1 if marker.exists() else 1
    marker.write_text(str(attempts))
    gradcheck(layer, P, layer_grad_off if attempts == 1 else layer_grad)

@pytest.mark.timeout(0.5, method="signal")
def test_hangs(gradcheck):
    def slow(w):
        time.sleep(0.2)
        return layer(w)
    gradcheck(slow, P, layer_grad)

def test_discovered(gradcheck_model):
    gradcheck_model.check()
"""


def _gradcheck_counts(line: str) -> dict:
    """``gradcheck: 9 checks in 9 tests: 6 passed, ...`` as {"checks": 9, "passed": 6, ...}."""
    out = {"checks": int(re.match(r"gradcheck: (\d+) checks? in \d+ tests?:", line).group(1))}
    for n, word in re.findall(r"(\d+) (passed|failed|inconclusive|errors?|xfailed|xpassed)", line):
        out["errors" if word.startswith("error") else word] = int(n)
    return out


@pytest.mark.parametrize("mode", MODES)
def test_real_suite_gradcheck_counts_match_pytest(pytester, mode):
    pytest.importorskip("pytest_rerunfailures")
    pytest.importorskip("pytest_timeout")
    pytester.makeini(REAL_INI)
    pytester.mkpydir("mylib")
    pytester.makepyfile(**{"mylib/models": REAL_MODELS})
    pytester.mkdir("tests")
    pytester.makepyfile(**{"tests/test_unrelated": REAL_UNRELATED, "tests/test_grads": REAL_GRADS})
    # flaky gradient failures are rerun; a timed-out test is not (pytest-timeout arms one
    # timer for all attempts of a test, so a rerun would run unbounded)
    result = run(pytester, mode, "--reruns", "1", "--only-rerun", "GradcheckError",
                 "--gradcheck-json=out.json")
    pt = outcomes(result)
    gc = _gradcheck_counts(count_line(result))
    assert pt == {"passed": 9, "failed": 2, "skipped": 1, "xfailed": 1, "rerun": 2}, result.stdout.str()
    n_unrelated_passed = 3  # tests/test_unrelated.py: three tests pass, one is skipped
    # one check per gradcheck test (2 model items, 2 discovered-model tests, 5 others)
    assert gc["checks"] == 9
    assert gc["passed"] + gc.get("xpassed", 0) == pt["passed"] - n_unrelated_passed + pt.get("xpassed", 0)
    assert gc["failed"] + gc.get("errors", 0) == pt["failed"]  # the timeout is the error
    assert gc.get("errors", 0) == 1
    assert gc.get("xfailed", 0) == pt["xfailed"]
    assert gc["inconclusive"] == 0
    report = json.loads((pytester.path / "out.json").read_text())
    counts = report["summary"]["counts"]
    assert (counts["pass"], counts["fail"], counts["error"], counts["xfail"]) == (
        gc["passed"], gc["failed"], gc["errors"], gc["xfailed"])
    assert report["summary"]["total"] == gc["checks"]
