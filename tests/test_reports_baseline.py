"""Baselines: load/save/compare, and the whole life cycle through pytest."""

from __future__ import annotations

import json

import pytest

from pytest_gradcheck.reporting import baseline as bl
from pytest_gradcheck.reporting.json_report import record_key

pytest_plugins = ["pytester"]
RUN = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")


def rec(nodeid, status="pass", ratio=0.02, label="check", dtype="float64", method="central"):
    """A check record with the fields the baseline reads (the rest of to_dict is irrelevant here)."""
    return {"nodeid": nodeid, "label": label, "duration_s": 0.01,
            "result": {"status": status, "passed": status != "fail", "max_ratio": ratio, "max_rel_error": 1e-9,
                       "n_evals": 10, "method": method, "mode": "full", "kind": "gradient",
                       "leaves": [{"path": "x", "dtype": dtype}]}}


CTX = {"platform": "Linux-x86_64", "python": "3.11.7", "numpy": "2.4.6", "time": "2026-01-01T00:00:00+00:00"}


def kinds(changes):
    return {c["key"]: c["kind"] for c in changes}


# ---------------------------------------------------------------- compare

def test_status_regression_and_improvement():
    base = bl.merge_baseline([rec("t::a"), rec("t::b", "fail", 50.0), rec("t::c", "inconclusive", 3.0)], CTX)
    changes = bl.compare(base, [rec("t::a", "fail", 5.0), rec("t::b", "pass", 0.03), rec("t::c", "fail", 4.0)])
    assert kinds(changes) == {"t::a::check": "regression", "t::b::check": "improvement", "t::c::check": "regression"}
    a = changes[0]
    assert (a["baseline_status"], a["status"], a["baseline_ratio"], a["ratio"]) == ("pass", "fail", 0.02, 5.0)
    assert a["growth"] == pytest.approx(250.0)
    assert "now fails (pass -> fail)" in a["reason"] and "0.02 -> 5" in a["reason"]


def test_ratio_growth_uses_factor_and_noise_floor():
    base = bl.merge_baseline([rec("t::x", ratio=0.05), rec("t::tiny", ratio=1e-7), rec("t::y", ratio=0.05)], CTX)
    run = [rec("t::x", ratio=0.6), rec("t::tiny", ratio=0.05), rec("t::y", ratio=0.4)]
    changes = bl.compare(base, run)
    # 0.05 -> 0.6 is x12 (regression, still passing); 1e-7 -> 0.05 is x5e5 but stays under
    # factor x noise floor = 0.1 (roundoff moving about); 0.05 -> 0.4 is x8 < 10
    assert kinds(changes) == {"t::x::check": "regression"}
    assert "still passes" in changes[0]["reason"]
    # above the floor the growth is measured from the floor: 1e-7 -> 0.2 is a regression
    assert kinds(bl.compare(base, [rec("t::tiny", ratio=0.2)])) == {"t::tiny::check": "regression"}
    assert "noise floor" in bl.compare(base, [rec("t::tiny", ratio=0.2)])[0]["reason"]
    # a smaller factor catches the x8
    assert kinds(bl.compare(base, run, factor=5)) == {"t::x::check": "regression", "t::y::check": "regression"}
    with pytest.raises(ValueError, match="factor must be > 1"):
        bl.compare(base, run, factor=1)


def test_new_changed_and_improved_ratio():
    base = bl.merge_baseline([rec("t::a", ratio=0.5), rec("t::b", "inconclusive", 0.3)], CTX)
    changes = bl.compare(base, [rec("t::a", ratio=0.04), rec("t::b", "pass", 0.3), rec("t::n")])
    assert kinds(changes) == {"t::a::check": "improvement", "t::b::check": "changed", "t::n::check": "new"}
    # nothing to say for an unchanged run, and checks that did not run are not reported
    assert bl.compare(base, [rec("t::a", ratio=0.5)]) == []


def test_dtype_change_is_named():
    base = bl.merge_baseline([rec("t::a", ratio=0.01)], CTX)
    changes = bl.compare(base, [rec("t::a", ratio=0.9, dtype="float32")])
    assert "dtypes changed (float64 -> float32)" in changes[0]["reason"]


def test_context_warnings():
    base = bl.merge_baseline([rec("t::a")], CTX)
    assert bl.context_warnings(base, dict(CTX, time="later")) == []
    lines = bl.context_warnings(base, dict(CTX, numpy="1.26.4", platform="Darwin-arm64"))
    assert lines == ["baseline recorded with platform Linux-x86_64, this run has Darwin-arm64",
                     "baseline recorded with numpy 2.4.6, this run has 1.26.4"]


# ---------------------------------------------------------------- save / load

def test_save_merges_and_keeps_absent_entries(tmp_path):
    path = tmp_path / "b" / "baseline.json"
    first, written = bl.update_baseline(path, [rec("t::a", ratio=0.0123456), rec("t::b")], CTX)
    assert written
    loaded = bl.load_baseline(path)
    assert loaded["checks"] == first["checks"]
    assert loaded["checks"]["t::a::check"]["max_ratio"] == 0.0123  # 3 significant digits: stable files
    assert set(loaded["checks"]["t::a::check"]) >= {"status", "max_ratio", "max_rel_error", "n_evals", "method",
                                                    "mode", "nodeid", "label"}
    assert loaded["context"]["numpy"] == "2.4.6" and loaded["context"]["dtypes"] == ["float64"]
    assert "time" not in loaded["context"] and loaded["updated"]
    # a partial run updates its entries and keeps the others
    bl.update_baseline(path, [rec("t::a", "fail", 7.0), rec("t::c", dtype="float32")], CTX)
    again = bl.load_baseline(path)
    assert set(again["checks"]) == {"t::a::check", "t::b::check", "t::c::check"}
    assert again["checks"]["t::a::check"]["status"] == "fail"
    assert again["checks"]["t::b::check"] == loaded["checks"]["t::b::check"]
    assert again["context"]["dtypes"] == ["float32", "float64"]
    # an unchanged run leaves the file byte for byte
    before = path.read_bytes()
    data, written = bl.update_baseline(path, [rec("t::a", "fail", 7.0004)], dict(CTX, time="other"))
    assert path.read_bytes() == before and not written and data == again
    assert list(json.loads(before)["checks"]) == sorted(json.loads(before)["checks"])


@pytest.mark.parametrize("content, words", [
    (None, "does not exist"),
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "is not a JSON object"),
    ('{"version": 99, "checks": {}}', "has version 99"),
    # "1" and 1 look alike in a message: it names the type, not "has version '1', reads version 1"
    ('{"version": "1", "checks": {}}', r'has "version": "1" \(a string\); the version is the number 1'),
    ('{"version": 1}', "has no 'checks' object"),
    ('{"version": 1, "checks": {"t::a::check": {"max_ratio": 1}}}', "malformed"),
    ('{"version": 1, "checks": {"t::a::check": {"status": "pass", "max_ratio": "big"}}}', "non-numeric"),
])
def test_load_errors_name_the_file(tmp_path, content, words):
    path = tmp_path / "baseline.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(bl.BaselineError, match=words) as info:
        bl.load_baseline(path)
    assert str(path) in str(info.value)


def test_load_unreadable(tmp_path):
    path = tmp_path / "baseline.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(bl.BaselineError, match="cannot be read"):
        bl.load_baseline(path)


def test_record_key():
    assert record_key(rec("a.py::t[1]", label="w")) == "a.py::t[1]::w"


# ---------------------------------------------------------------- life cycle through pytest

TEST_FILE = """
import os
import numpy as np
A = np.array([[2.0, 0.5], [0.5, 1.0]])
X0 = np.array([0.3, -0.7])

def f(x):
    return float(np.sin(x).sum() + 0.5 * x @ A @ x)

def test_quad(gradcheck):
    # an explicit tolerance keeps the numbers independent of the error model: the correct
    # gradient has ratio ~1e-5; BUMP shifts one entry, 5e-7 -> ratio 0.5 (passes), 5e-6 fails
    bump = float(os.environ.get("BUMP", "0"))
    gradcheck(f, X0, lambda x: np.cos(x) + A @ x + np.array([bump, 0.0]), atol=1e-6, rtol=0.0)

def test_cubic(gradcheck):
    gradcheck(lambda x: float((x ** 3).sum()), X0, lambda x: 3 * x ** 2, label="cubic")
"""


def _baseline(pytester, name=".gradcheck/baseline.json"):
    return json.loads((pytester.path / name).read_text())


def test_life_cycle(pytester, monkeypatch):
    pytester.makepyfile(test_m=TEST_FILE)
    # 1. create
    res = pytester.runpytest(*RUN, "--gradcheck-update-baseline")
    res.assert_outcomes(passed=2)
    assert res.ret == 0
    res.stdout.fnmatch_lines(["gradcheck baseline updated: .gradcheck*baseline.json (2 checks from this run, 2 in the file)"])
    data = _baseline(pytester)
    assert set(data["checks"]) == {"test_m.py::test_quad::check", "test_m.py::test_cubic::cubic"}
    ratio0 = data["checks"]["test_m.py::test_quad::check"]["max_ratio"]
    assert 0 < ratio0 < 1e-3
    # 2. compare: passes, nothing regressed
    res = pytester.runpytest(*RUN, "--gradcheck-baseline")
    assert res.ret == 0
    res.stdout.fnmatch_lines(["gradcheck baseline .gradcheck*baseline.json: 2 checks compared: 0 regressions, "
                              "0 improvements, 0 new, 0 other status changes"])
    assert "REGRESSED" not in res.stdout.str()
    # 3. a worse gradient that still passes: the check passes, its test fails with the regression
    # (so pytest's summary, JUnit XML, pytest-html and --lf show it) and so does the run
    monkeypatch.setenv("BUMP", "5e-7")
    res = pytester.runpytest(*RUN, "--gradcheck-baseline")
    res.assert_outcomes(passed=1, failed=1)
    assert res.ret == pytest.ExitCode.TESTS_FAILED
    res.stdout.fnmatch_lines(["gradcheck regression against the baseline .gradcheck*baseline.json (factor 10):",
                              "  test_m.py::test_quad::check: error/tolerance ratio * -> 0.5 *; still passes",
                              "FAILED test_m.py::test_quad - gradcheck regression*"])
    res.stdout.fnmatch_lines([
        "*= gradcheck regressions =*",
        f"REGRESSED test_m.py::test_quad::check: error/tolerance ratio {ratio0:.3g} -> 0.5 (x*), "
        "more than 10x the noise floor 0.01; still passes",
        "1 gradient check regressed against .gradcheck*baseline.json (factor 10)*",
    ])
    # a bigger factor tolerates it (0.5 < 100 x noise floor)
    res = pytester.runpytest(*RUN, "--gradcheck-baseline", "--gradcheck-regression-factor=100")
    assert res.ret == 0
    # ... so does the ini key, and the command line overrides the ini key
    ini = pytester.makeini("[pytest]\ngradcheck_regression_factor = 100\n")
    assert pytester.runpytest(*RUN, "--gradcheck-baseline").ret == 0
    res = pytester.runpytest(*RUN, "--gradcheck-baseline", "--gradcheck-regression-factor=10")
    assert res.ret == pytest.ExitCode.TESTS_FAILED
    res.stdout.fnmatch_lines(["1 gradient check regressed against .gradcheck*baseline.json (factor 10)*"])
    ini.unlink()
    # 4. a failing gradient: test failure and a status regression
    monkeypatch.setenv("BUMP", "5e-6")
    res = pytester.runpytest(*RUN, "--gradcheck-baseline")
    res.assert_outcomes(passed=1, failed=1)
    res.stdout.fnmatch_lines(["REGRESSED test_m.py::test_quad::check: now fails (pass -> fail), ratio * -> 5"])
    assert _baseline(pytester) == data  # comparing never writes
    # accepting the failing check into the baseline warns
    res = pytester.runpytest(*RUN, "--gradcheck-update-baseline", "--gradcheck-baseline=other.json")
    res.stdout.fnmatch_lines(["warning: 1 check that now FAILS was accepted into the baseline as failing*",
                              "  test_m.py::test_quad::check"])
    # 5. accept the worse (passing) numbers: update wins over compare, the changes are shown as accepted
    monkeypatch.setenv("BUMP", "5e-7")
    res = pytester.runpytest(*RUN, "--gradcheck-baseline", "--gradcheck-update-baseline")
    assert res.ret == 0
    res.stdout.fnmatch_lines(["*gradcheck regressions (accepted by --gradcheck-update-baseline)*",
                              "ACCEPTED test_m.py::test_quad::check: *"])
    assert _baseline(pytester)["checks"]["test_m.py::test_quad::check"]["max_ratio"] == 0.5
    # 6. passes again against the new baseline
    res = pytester.runpytest(*RUN, "--gradcheck-baseline")
    assert res.ret == 0
    # 7. and the fix shows as an improvement (info, not a failure)
    monkeypatch.delenv("BUMP")
    res = pytester.runpytest(*RUN, "--gradcheck-baseline")
    assert res.ret == 0
    res.stdout.fnmatch_lines(["*1 improvement*", "  improved: test_m.py::test_quad::check: error/tolerance ratio *"])


def test_partial_runs_keep_other_entries(pytester):
    pytester.makepyfile(test_m=TEST_FILE)
    assert pytester.runpytest(*RUN, "--gradcheck-update-baseline").ret == 0
    full = _baseline(pytester)["checks"]
    pytester.makepyfile(test_n="""
def test_new(gradcheck):
    import numpy as np
    gradcheck(lambda x: float((x ** 2).sum()), np.ones(3), lambda x: 2 * x)
""")
    res = pytester.runpytest(*RUN, "-k", "new", "--gradcheck-baseline", "--gradcheck-update-baseline")
    assert res.ret == 0
    res.stdout.fnmatch_lines(["  new: test_n.py::test_new::check: new check: status pass, ratio *"])
    checks = _baseline(pytester)["checks"]
    assert set(checks) == set(full) | {"test_n.py::test_new::check"}
    assert {k: checks[k] for k in full} == full
    # a compare-only partial run does not report the checks it did not run
    res = pytester.runpytest(*RUN, "-k", "cubic", "--gradcheck-baseline")
    assert res.ret == 0
    res.stdout.fnmatch_lines(["*1 check compared: 0 regressions*"])


def test_explicit_path_and_ini(pytester):
    pytester.makepyfile(test_m=TEST_FILE)
    pytester.makeini("[pytest]\ngradcheck_baseline = ci/grads.json\n")
    assert pytester.runpytest(*RUN, "--gradcheck-update-baseline").ret == 0
    assert (pytester.path / "ci" / "grads.json").exists()
    assert pytester.runpytest(*RUN, "--gradcheck-update-baseline", "--gradcheck-baseline=other.json").ret == 0
    assert set(_baseline(pytester, "other.json")["checks"]) == set(_baseline(pytester, "ci/grads.json")["checks"])
    res = pytester.runpytest(*RUN, "--gradcheck-baseline")
    assert res.ret == 0
    res.stdout.fnmatch_lines(["gradcheck baseline: *ci*grads.json (2 checks; compare; regression factor 10)"])


@pytest.mark.parametrize("content, words", [
    ("{oops", "is not valid JSON"),
    ('{"version": 7, "checks": {}}', "has version 7"),
    (None, "does not exist (create it with --gradcheck-update-baseline)"),
])
def test_bad_baseline_is_a_usage_error(pytester, content, words):
    pytester.makepyfile(test_m=TEST_FILE)
    if content is not None:
        (pytester.path / ".gradcheck").mkdir()
        (pytester.path / ".gradcheck" / "baseline.json").write_text(content)
    res = pytester.runpytest(*RUN, "--gradcheck-baseline")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    err = res.stderr.str()
    assert "baseline.json" in err and words in err
    assert "INTERNALERROR" not in err + res.stdout.str()
    assert "passed" not in res.stdout.str() and "test_m.py" not in res.stdout.str()  # no test ran
    if content is not None:  # the update flag does not overwrite a file it cannot read either
        res = pytester.runpytest(*RUN, "--gradcheck-update-baseline")
        assert res.ret == pytest.ExitCode.USAGE_ERROR
        assert (pytester.path / ".gradcheck" / "baseline.json").read_text() == content


def test_regression_gate_under_xdist(pytester, monkeypatch):
    pytest.importorskip("xdist")
    pytester.makepyfile(test_m=TEST_FILE)
    assert pytester.runpytest(*RUN, "--gradcheck-update-baseline").ret == 0
    monkeypatch.setenv("BUMP", "5e-7")
    res = pytester.runpytest_subprocess(*RUN, "-n", "2", "--gradcheck-baseline", "--gradcheck-json=r.json",
                                        "--junitxml=j.xml")
    res.assert_outcomes(passed=1, failed=1)  # the regressed (still passing) check fails its test
    assert res.ret == pytest.ExitCode.TESTS_FAILED
    import xml.etree.ElementTree as ET

    cases = {c.get("name"): c for c in ET.parse(pytester.path / "j.xml").iter("testcase")}
    failure = cases["test_quad"].find("failure")
    assert failure is not None and "test_m.py::test_quad::check: error/tolerance ratio" in failure.get("message")
    assert cases["test_cubic"].find("failure") is None
    res.stdout.fnmatch_lines(["REGRESSED test_m.py::test_quad::check: *"])
    rep = json.loads((pytester.path / "r.json").read_text())
    assert [c["key"] for c in rep["regressions"]] == ["test_m.py::test_quad::check"]
    assert rep["baseline"]["path"].endswith("baseline.json") and rep["baseline"]["compared"] is True


def test_context_mismatch_is_a_warning_not_a_failure(pytester):
    pytester.makepyfile(test_m=TEST_FILE)
    assert pytester.runpytest(*RUN, "--gradcheck-update-baseline").ret == 0
    path = pytester.path / ".gradcheck" / "baseline.json"
    data = json.loads(path.read_text())
    data["context"]["numpy"] = "1.0.0"
    path.write_text(json.dumps(data))
    res = pytester.runpytest(*RUN, "--gradcheck-baseline", "--gradcheck-json=r.json")
    assert res.ret == 0
    res.stdout.fnmatch_lines(["  warning: baseline recorded with numpy 1.0.0, this run has *"])
    rep = json.loads((pytester.path / "r.json").read_text())
    assert rep["baseline"]["context_warnings"] == [l.strip()[len("warning: "):] for l in res.outlines
                                                   if l.strip().startswith("warning: baseline")]


# ---------------------------------------------------------------- context: what matters

#: a context as make_context wrote it on a machine before a kernel update (old baselines hold this too)
OLD_KERNEL = {"platform": "Linux-6.18.44-fc-v782-x86_64-with-glibc2.36", "machine": "x86_64", "python": "3.11.7",
              "python_implementation": "CPython", "numpy": "2.4.6", "torch": "2.13.0+cpu", "pytest": "9.0.3"}


def test_kernel_update_python_patch_and_pytest_version_are_not_warned_about():
    """The platform string names the kernel build: a kernel update (or python 3.11.7 -> 3.11.9,
    or a new pytest) moves no ratio and must not warn on every run."""
    base = {"context": OLD_KERNEL, "checks": {}}  # an old baseline file's context, as it was written
    run = dict(OLD_KERNEL, platform="Linux-6.18.44-fc-v1045-x86_64-with-glibc2.36", platform_family="Linux-x86_64",
               python="3.11.9", pytest="9.2.0")
    assert bl.context_warnings(base, run) == []
    # what matters still warns: platform family, python major.minor, numpy and framework versions
    moved = dict(run, platform_family="Linux-aarch64", python="3.12.1", torch="2.14.0+cpu")
    assert bl.context_warnings(base, moved) == [
        "baseline recorded with platform Linux-x86_64, this run has Linux-aarch64",
        "baseline recorded with python 3.11, this run has 3.12",
        "baseline recorded with torch 2.13.0+cpu, this run has 2.14.0+cpu"]


def test_baseline_stores_only_what_it_compares_and_an_old_file_is_not_rewritten_for_its_context(tmp_path):
    path = tmp_path / "baseline.json"
    run = dict(OLD_KERNEL, platform="Linux-6.18.44-fc-v1045-x86_64-with-glibc2.36", platform_family="Linux-x86_64")
    data, written = bl.update_baseline(path, [rec("t::a")], run)
    assert written and data["context"] == {"platform_family": "Linux-x86_64", "python": "3.11",
                                           "python_implementation": "CPython", "numpy": "2.4.6",
                                           "torch": "2.13.0+cpu", "dtypes": ["float64"]}
    # an old file (full platform string, machine, pytest version) with the same checks stays as it is
    old = dict(json.loads(path.read_text()), context=dict(OLD_KERNEL, dtypes=["float64"]))
    path.write_text(json.dumps(old, indent=2, sort_keys=True) + "\n")
    before = path.read_bytes()
    _, written = bl.update_baseline(path, [rec("t::a")], run)
    assert not written and path.read_bytes() == before
    assert bl.context_warnings(bl.load_baseline(path), run) == []
