"""Adoption in existing repos and CI (issue 22): module markers of listed model modules,
regressions that fail their own test, combining CI shards' reports, accounting of caught checks,
stable order under xdist, rootdir-relative paths."""

import json
import os
import subprocess
import sys

import pytest

pytest_plugins = ["pytester"]

# a gradient 2% off: fails the default rule, passes atol=rtol=0.1
NEAR_MODELS = '''
import numpy as np
import pytest

pytestmark = pytest.mark.gradcheck(atol=0.1, rtol=0.1)

def near(w): return float(np.sum(w ** 2))
def near_grad(w): return 2.0 * w * 1.02
near_params = np.array([0.3, 0.1, -0.7])
'''


def _json(pytester, name="gc.json"):
    return json.loads((pytester.path / name).read_text())


@pytest.mark.parametrize("how", ["plain", "file named", "testpaths"])
def test_module_marker_of_a_listed_models_module_is_honoured_however_pytest_is_invoked(pytester, how):
    pytester.makeini("[pytest]\npythonpath = .\ngradcheck_models = mylib.models\n"
                     + ("testpaths = tests\n" if how == "testpaths" else ""))
    pytester.mkpydir("mylib")
    pytester.path.joinpath("mylib", "models.py").write_text(NEAR_MODELS)
    pytester.mkdir("tests")
    pytester.path.joinpath("tests", "test_x.py").write_text("def test_x(): pass\n")
    args = ["mylib/models.py"] if how == "file named" else []
    result = pytester.runpytest("-p", "no:randomly", "--gradcheck-json=gc.json", *args)
    result.assert_outcomes(passed=1 if how == "file named" else 2)
    (check,) = _json(pytester)["checks"]
    assert check["status"] == "pass"
    assert check["tolerance"]["rule"] == "explicit"


def test_without_the_module_marker_the_same_model_fails(pytester):
    pytester.makeini("[pytest]\npythonpath = .\ngradcheck_models = mylib.models\n")
    pytester.mkpydir("mylib")
    pytester.path.joinpath("mylib", "models.py").write_text(
        NEAR_MODELS.replace("pytestmark = ", "unused = "))
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=1)


# ---------------------------------------------------------------- CI shards: combine

SHARD_TESTS = """
import os
import numpy as np
A = np.array([[2.0, 0.5], [0.5, 1.0]])
X0 = np.array([0.3, -0.7])

def f(x):
    return float(np.sin(x).sum() + 0.5 * x @ A @ x)

def test_quad(gradcheck):
    # explicit tolerance: the correct gradient has ratio ~1e-5; BUMP=5e-7 -> ratio 0.5, still passing
    bump = float(os.environ.get("BUMP", "0"))
    gradcheck(f, X0, lambda x: np.cos(x) + A @ x + np.array([bump, 0.0]), atol=1e-6, rtol=0.0)

def test_cubic(gradcheck):
    gradcheck(lambda x: float((x ** 3).sum()), X0, lambda x: 3 * x ** 2)

def test_sine(gradcheck):
    gradcheck(lambda x: float(np.sin(x).sum()), X0, np.cos)
"""


def _combine(pytester, *args):
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", "pytest_gradcheck", "combine", *args], cwd=pytester.path,
                          env=env, capture_output=True, text=True, timeout=120)


def _shards(pytester, *extra):
    """Two CI shards: test_quad alone, the other two tests in the second."""
    r1 = pytester.runpytest("-p", "no:randomly", "-k", "quad", "--gradcheck-json=s1.json", *extra)
    r2 = pytester.runpytest("-p", "no:randomly", "-k", "not quad", "--gradcheck-json=s2.json", *extra)
    return r1, r2


def test_ci_shards_combine_baseline_and_a_regression_on_one_shard(pytester, monkeypatch):
    pytester.makeini("[pytest]\ngradcheck_baseline = gc/base.json\n")
    pytester.makepyfile(test_m=SHARD_TESTS)
    r1, r2 = _shards(pytester)
    assert r1.ret == 0 and r2.ret == 0
    # merge, and write the baseline (the ini's path) from the merged checks
    res = _combine(pytester, "s1.json", "s2.json", "--json", "all.json", "--html", "all.html", "--update-baseline")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "3 checks from 2 reports (3 pass)" in res.stdout
    merged = _json(pytester, "all.json")
    assert [c["key"] for c in merged["checks"]] == [
        "test_m.py::test_quad::check", "test_m.py::test_cubic::check", "test_m.py::test_sine::check"]
    assert merged["summary"]["pytest"]["passed"] == 3
    assert "gradcheck-data" in (pytester.path / "all.html").read_text()
    base = json.loads((pytester.path / "gc" / "base.json").read_text())
    assert sorted(base["checks"]) == sorted(c["key"] for c in merged["checks"])
    # unchanged code: the gate passes
    _shards(pytester)
    res = _combine(pytester, "s1.json", "s2.json", "--baseline")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 regressions" in res.stdout
    # a regression on shard 1 (the check still passes): that shard's test fails in JUnit, and
    # the combined gate exits 1 naming only that check
    monkeypatch.setenv("BUMP", "5e-7")
    r1, r2 = _shards(pytester, "--gradcheck-baseline", "--junitxml=j.xml")
    r1.assert_outcomes(failed=1)
    import xml.etree.ElementTree as ET

    cases = list(ET.parse(pytester.path / "j.xml").iter("testcase"))  # j.xml of the last shard run: shard 2
    assert len(cases) == 2 and all(c.find("failure") is None for c in cases)
    r1 = pytester.runpytest("-p", "no:randomly", "-k", "quad", "--gradcheck-json=s1.json", "--gradcheck-baseline",
                            "--junitxml=j1.xml")
    (case,) = ET.parse(pytester.path / "j1.xml").iter("testcase")
    assert case.get("name") == "test_quad"
    assert "test_m.py::test_quad::check: error/tolerance ratio" in case.find("failure").get("message")
    res = _combine(pytester, "s1.json", "s2.json", "--baseline", "--json", "all.json")
    assert res.returncode == 1, res.stdout + res.stderr
    regressed = [ln for ln in res.stdout.splitlines() if ln.startswith("REGRESSED")]
    assert len(regressed) == 1 and regressed[0].startswith(
        "REGRESSED test_m.py::test_quad::check: error/tolerance ratio ")
    assert [c["key"] for c in _json(pytester, "all.json")["regressions"]] == ["test_m.py::test_quad::check"]
    # the same text as the plugin's
    plugin_line = next(ln for ln in r1.outlines if ln.startswith("REGRESSED"))
    assert plugin_line == regressed[0]


def test_combine_under_xdist_shards_gives_the_serial_order(pytester):
    pytest.importorskip("xdist")
    pytester.makepyfile(test_m=SHARD_TESTS)
    serial = pytester.runpytest("-p", "no:randomly", "--gradcheck-json=serial.json")
    assert serial.ret == 0
    res = pytester.runpytest_subprocess("-p", "no:randomly", "-n", "2", "--gradcheck-json=par.json")
    assert res.ret == 0
    assert [c["key"] for c in _json(pytester, "par.json")["checks"]] == \
        [c["key"] for c in _json(pytester, "serial.json")["checks"]]
    assert _combine(pytester, "serial.json", "par.json", "--json", "both.json").returncode == 0
    assert len(_json(pytester, "both.json")["checks"]) == 3  # the same checks twice count once


@pytest.mark.parametrize("content, words", [
    ("{not json", "not valid JSON"),
    ('{"version": 1, "checks": []}', "not a pytest-gradcheck report"),
    ('{"tool": "pytest-gradcheck", "version": 2, "checks": []}', "report version 2"),
    ('{"tool": "pytest-gradcheck", "version": 1, "checks": {}}', "'checks' is not a list"),
])
def test_combine_refuses_a_corrupt_or_foreign_report_naming_it(pytester, content, words):
    pytester.makepyfile(test_m=SHARD_TESTS)
    pytester.runpytest("-p", "no:randomly", "--gradcheck-json=good.json")
    (pytester.path / "bad.json").write_text(content)
    res = _combine(pytester, "good.json", "bad.json", "--json", "out.json")
    assert res.returncode == 4
    assert "bad.json" in res.stderr and words in res.stderr
    assert not (pytester.path / "out.json").exists()


def test_combine_refuses_one_check_with_two_different_results(pytester, monkeypatch):
    pytester.makepyfile(test_m=SHARD_TESTS)
    pytester.runpytest("-p", "no:randomly", "-k", "quad", "--gradcheck-json=a.json")
    monkeypatch.setenv("BUMP", "5e-7")
    pytester.runpytest("-p", "no:randomly", "-k", "quad", "--gradcheck-json=b.json")
    res = _combine(pytester, "a.json", "b.json")
    assert res.returncode == 4
    assert "check test_m.py::test_quad::check is in a.json and b.json with different results" in res.stderr


def test_combine_without_a_baseline_file_is_a_usage_error(pytester):
    pytester.makepyfile(test_m=SHARD_TESTS)
    pytester.runpytest("-p", "no:randomly", "--gradcheck-json=a.json")
    res = _combine(pytester, "a.json", "--baseline")
    assert res.returncode == 4 and "does not exist" in res.stderr
    # a bare --baseline before the reports would take the first report as the baseline: said so
    res = _combine(pytester, "--baseline", "a.json", "a.json")
    assert res.returncode == 4 and "--baseline took a.json, which is a report" in res.stderr
    # with --update-baseline it is created, every check new
    res = _combine(pytester, "a.json", "--baseline", "--update-baseline")
    assert res.returncode == 0, res.stdout + res.stderr
    assert len(json.loads((pytester.path / ".gradcheck" / "baseline.json").read_text())["checks"]) == 3
    # a read-only output is refused before any work, naming it
    (pytester.path / "ro.json").write_text("{}")
    (pytester.path / "ro.json").chmod(0o444)
    res = _combine(pytester, "a.json", "--json", "ro.json")  # refused by its mode bits, even for root
    assert res.returncode == 4 and "ro.json" in res.stderr and "read-only" in res.stderr


def test_report_entries_round_trip_through_records(pytester):
    from pytest_gradcheck.reporting import combine, json_report

    pytester.makepyfile(test_m=SHARD_TESTS + '''
import pytest

@pytest.mark.xfail(reason="known")
def test_known_bad(gradcheck):
    gradcheck(lambda x: float((x ** 2).sum()), X0, lambda x: 3 * x)

def test_crash(gradcheck):
    def bad(x):
        raise RuntimeError("boom")
    gradcheck(bad, X0, np.cos)
''')
    pytester.runpytest("-p", "no:randomly", "--gradcheck-json=a.json")
    for entry in _json(pytester, "a.json")["checks"]:
        again = json_report.check_entry(combine.record_of_entry(entry))
        assert again == {k: v for k, v in entry.items() if k != "regressed"}


# ---------------------------------------------------------------- accounting

CAUGHT_TESTS = """
import numpy as np
import pytest
from pytest_gradcheck import GradcheckError

X0 = np.array([0.3, -0.7])

def test_expects_the_bug(gradcheck):
    with pytest.raises(GradcheckError):
        gradcheck(lambda x: float((x ** 2).sum()), X0, lambda x: 3 * x)

def test_skips_after_it(gradcheck):
    try:
        gradcheck(lambda x: float((x ** 2).sum()), X0, lambda x: 3 * x, label="skipped")
    except GradcheckError:
        pytest.skip("known bad on this platform")

def test_really_fails(gradcheck):
    gradcheck(lambda x: float((x ** 2).sum()), X0, lambda x: 3 * x, label="real")
"""


@pytest.mark.parametrize("xdist", [False, True])
def test_a_failed_check_the_test_catches_is_counted_as_caught(pytester, xdist):
    if xdist:
        pytest.importorskip("xdist")
    pytester.makepyfile(test_c=CAUGHT_TESTS)
    args = ["-p", "no:randomly", "--gradcheck-json=gc.json", "--gradcheck-update-baseline"]
    res = (pytester.runpytest_subprocess(*args, "-n", "2") if xdist else pytester.runpytest(*args))
    res.assert_outcomes(passed=1, skipped=1, failed=1)
    by_key = {c["key"]: c for c in _json(pytester)["checks"]}
    assert by_key["test_c.py::test_expects_the_bug::check"]["status"] == "caught"
    assert by_key["test_c.py::test_skips_after_it::skipped"]["status"] == "caught"
    assert by_key["test_c.py::test_really_fails::real"]["status"] == "fail"  # the wrong-value case still fails
    counts = _json(pytester)["summary"]["counts"]
    assert counts["caught"] == 2 and counts["fail"] == 1
    res.stdout.fnmatch_lines(["gradcheck: 3 checks in 3 tests: 0 passed, 1 failed, 0 inconclusive, "
                              "2 caught by their tests"])
    base = json.loads((pytester.path / ".gradcheck" / "baseline.json").read_text())["checks"]
    assert base["test_c.py::test_expects_the_bug::check"]["status"] == "caught"
    assert base["test_c.py::test_really_fails::real"]["status"] == "fail"


ORDER_A = """
import os, time
import numpy as np

def test_first(gradcheck):
    # completes after test_second (another worker) has finished: completion order != serial order
    flag = os.path.join(os.environ["ORDER_DIR"], "second-done")
    deadline = time.monotonic() + 60
    while not os.path.exists(flag):
        assert time.monotonic() < deadline, "test_second never ran on the other worker"
        time.sleep(0.05)
    gradcheck(lambda x: float((x ** 2).sum()), np.array([0.3, -0.7]), lambda x: 2 * x)
"""

ORDER_B = """
import os
import numpy as np

def test_second(gradcheck):
    gradcheck(lambda x: float(np.sin(x).sum()), np.array([0.3, -0.7]), np.cos)
    open(os.path.join(os.environ["ORDER_DIR"], "second-done"), "w").close()
"""


def test_under_xdist_checks_come_in_the_serial_order_not_completion_order(pytester, monkeypatch):
    pytest.importorskip("xdist")
    monkeypatch.setenv("ORDER_DIR", str(pytester.path))
    pytester.makepyfile(test_a=ORDER_A, test_b=ORDER_B)
    # one file per worker (loadfile): test_a's check finishes last
    res = pytester.runpytest_subprocess("-p", "no:randomly", "-n", "2", "--dist", "loadfile",
                                        "--gradcheck-json=gc.json")
    res.assert_outcomes(passed=2)
    assert [c["nodeid"] for c in _json(pytester)["checks"]] == ["test_a.py::test_first", "test_b.py::test_second"]
    rows = [ln for ln in res.outlines if ln.startswith("pass ")]
    assert [r.split()[-2] for r in rows] == ["test_a.py::test_first", "test_b.py::test_second"]


def test_paths_in_the_json_and_html_reports_are_relative_to_the_rootdir(pytester):
    from pytest_gradcheck.reporting import html_report

    pytester.makeini("[pytest]\ngradcheck_baseline = gc/base.json\n")
    pytester.makepyfile(test_m=SHARD_TESTS)
    res = pytester.runpytest("-p", "no:randomly", "--gradcheck-update-baseline", "--gradcheck-baseline",
                             "--gradcheck-json=out/r.json", "--gradcheck-html=out/r.html")
    assert res.ret == 0
    for data in (_json(pytester, "out/r.json"),
                 html_report.extract_data((pytester.path / "out" / "r.html").read_text())):
        assert data["baseline"]["path"] == "gc/base.json"
        assert str(pytester.path) not in json.dumps(data)


# ---------------------------------------------------------------- interrupted baseline writes

SIGNAL_CONFTEST = """
import os, signal

_real_fsync = os.fsync

def _fsync_then_signal(fd):
    # the signal arrives in the middle of the baseline write: after the temporary file is
    # written, before it replaces the baseline (the lock is held)
    if os.environ.get("SEND_SIGNAL"):
        os.kill(os.getpid(), getattr(signal, os.environ["SEND_SIGNAL"]))
    return _real_fsync(fd)

os.fsync = _fsync_then_signal
"""


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_signal_during_the_baseline_write_leaves_no_lock_no_temporary_and_no_traceback(pytester, monkeypatch, sig):
    pytester.makepyfile(test_m=SHARD_TESTS)
    pytester.makeconftest(SIGNAL_CONFTEST)
    assert pytester.runpytest_subprocess("-p", "no:randomly", "--gradcheck-update-baseline").ret == 0
    folder = pytester.path / ".gradcheck"
    before = (folder / "baseline.json").read_text()
    # a new check makes the update write the file
    pytester.makepyfile(test_n="""
import numpy as np
def test_new(gradcheck):
    gradcheck(lambda x: float((x ** 4).sum()), np.array([0.5, 1.5]), lambda x: 4 * x ** 3)
""")
    monkeypatch.setenv("SEND_SIGNAL", sig)
    res = pytester.runpytest_subprocess("-p", "no:randomly", "--gradcheck-update-baseline")
    out = res.stdout.str() + res.stderr.str()
    assert res.ret == pytest.ExitCode.INTERRUPTED, out
    assert "Traceback" not in out
    assert "interrupted while writing the baseline/reports" in out
    assert sorted(p.name for p in folder.iterdir()) == ["baseline.json"]  # no .lock, no .tmp
    assert (folder / "baseline.json").read_text() == before


def test_a_regressed_check_shows_in_last_failed_and_pytest_html(pytester, monkeypatch):
    pytest.importorskip("pytest_html")
    pytester.makepyfile(test_m=SHARD_TESTS)
    assert pytester.runpytest("-p", "no:randomly", "--gradcheck-update-baseline").ret == 0
    monkeypatch.setenv("BUMP", "5e-7")  # test_quad's check still passes, with a 1e4x larger ratio
    res = pytester.runpytest("-p", "no:randomly", "--gradcheck-baseline", "--html=ph.html")
    res.assert_outcomes(passed=2, failed=1)
    import html
    import re

    page = (pytester.path / "ph.html").read_text()
    blob = json.loads(html.unescape(re.search(r'data-jsonblob="([^"]*)"', page).group(1)))
    results = {nodeid: [t["result"] for t in runs] for nodeid, runs in blob["tests"].items()}
    assert results == {"test_m.py::test_quad": ["Failed"], "test_m.py::test_cubic": ["Passed"],
                       "test_m.py::test_sine": ["Passed"]}
    assert "gradcheck regression against the baseline" in html.unescape(page)
    # --lf reruns exactly the regressed test
    res = pytester.runpytest("-p", "no:randomly", "--lf", "--gradcheck-baseline")
    res.assert_outcomes(failed=1)
    res.stdout.fnmatch_lines(["FAILED test_m.py::test_quad - gradcheck regression*"])
    # fixed: it passes again, and so does the run
    monkeypatch.delenv("BUMP")
    assert pytester.runpytest("-p", "no:randomly", "--lf", "--gradcheck-baseline").ret == 0
