"""The gradcheck section of the terminal summary, and the text histograms."""

import pytest

from pytest_gradcheck.reporting import histogram, terminal

SUITE = """
import numpy as np
import pytest

def quad(p): return float((p ** 2).sum())
P = np.array([0.5, -1.0, 2.0])

def test_ok(gradcheck):
    gradcheck(quad, P, lambda p: 2 * p)
    gradcheck(quad, P, lambda p: 2 * p, label="again")

def test_bad(gradcheck):
    gradcheck(quad, P, lambda p: np.array([1.0, -2.0, 4.4]))

def test_kink(gradcheck):
    relu = lambda x: float(np.maximum(x, 0).sum())
    gradcheck(relu, np.array([0.0, 1.0]), lambda x: (x > 0) * 1.0)

def test_plain():
    pass
"""


def test_default_summary(pytester):
    pytester.makepyfile(test_s=SUITE)
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines([
        "*= gradcheck =*",
        "status*max rel err*ratio*evals*time  check",
        "pass *  test_s.py::test_ok [[]check[]]",
        "pass *  test_s.py::test_ok [[]again[]]",
        "FAIL *  test_s.py::test_bad [[]check[]]",
        "inconclusive *  test_s.py::test_kink [[]check[]]",
        "error/tolerance ratio of all 11 checked entries in 4 checks (an entry fails at ratio >= 1):",
        "*< 1e-08 |*",
        "*--- tolerance (ratio 1) ---*",
        "*>= 1e+04 |*",
        "FAIL test_s.py::test_bad [[]check[]]: gradient check, method=central, mode=*, seed=0; 1 of 3 entries fail*",
        "  error/tolerance ratio per entry:",
        # its worst entries and diagnosis are in FAILURES above: not repeated (issue 13.10)
        "  worst entries and diagnosis: in this test's failure above (-v repeats them here)",
        "gradcheck: 4 checks in 3 tests: 2 passed, 1 failed, 1 inconclusive",
    ])
    section = result.stdout.str().split("= gradcheck =")[1]
    assert section.isascii() and "\x1b[" not in section
    assert "test_plain" not in section


def test_quiet_summary_keeps_failing_rows_and_the_count(pytester):
    pytester.makepyfile(test_s=SUITE)
    result = pytester.runpytest("-q")
    result.stdout.fnmatch_lines([
        "*= gradcheck =*",
        "FAIL *  test_s.py::test_bad [[]check[]]",
        # each inconclusive check gets its reason in one line (not only "1 inconclusive")
        "inconclusive test_s.py::test_kink [[]check[]]: params[[]0[]]: kink: fun is not differentiable within *",
        "gradcheck: 4 checks in 3 tests: 2 passed, 1 failed, 1 inconclusive",
    ])
    section = result.stdout.str().split("= gradcheck =")[1]
    for absent in ("test_ok", "tolerance (ratio 1)", "status", "worst entries"):
        assert absent not in section


def test_verbose_summary_details_inconclusive_checks_and_leaves(pytester):
    pytester.makepyfile(test_s=SUITE)
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines([
        "FAIL test_s.py::test_bad [[]check[]]*",
        "  worst entries (analytic = your gradient, numeric = finite differences):",
        "    params[[]2[]] *4.400000e+00 *4.000000e+00*fail*",
        "  leaf params: shape (3,), float64, max ratio *",
        "  diagnosis: *",
        "inconclusive test_s.py::test_kink [[]check[]]: *",
    ])


@pytest.mark.parametrize("how", [["--gradcheck-summary=failures"], ["ini:failures"]])
def test_failures_only(pytester, how):
    pytester.makepyfile(test_s=SUITE)
    if how == ["ini:failures"]:
        pytester.makeini("[pytest]\ngradcheck_summary = failures\n")
        how = []
    result = pytester.runpytest(*how)
    result.stdout.fnmatch_lines([
        "status*check",
        "FAIL *  test_s.py::test_bad [[]check[]]",
        "inconclusive *  test_s.py::test_kink [[]check[]]",
        "FAIL test_s.py::test_bad [[]check[]]: *",
        "gradcheck: 4 checks in 3 tests: 2 passed, 1 failed, 1 inconclusive",
    ])
    section = result.stdout.str().split("= gradcheck =")[1]
    assert "test_ok" not in section and "of all 11 checked entries" not in section


def test_none_hides_the_section_but_the_summary_hook_still_runs(pytester):
    pytester.makeconftest("""
def pytest_gradcheck_summary(config, terminalreporter, records):
    worst = max(r["result"]["max_ratio"] for r in records)
    terminalreporter.write_line(f"my plugin saw {len(records)} checks, worst ratio > 1: {worst > 1}")
""")
    pytester.makepyfile(test_s=SUITE)
    result = pytester.runpytest("--gradcheck-summary=none")
    assert "= gradcheck =" not in result.stdout.str()
    result.stdout.fnmatch_lines(["my plugin saw 4 checks, worst ratio > 1: True"])


def test_no_checks_no_section(pytester):
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest()
    assert "gradcheck:" not in result.stdout.str().split("test session starts")[1].split("\n", 3)[3]
    assert "= gradcheck =" not in result.stdout.str()


def test_colour_only_with_markup(pytester):
    pytester.makepyfile(test_s=SUITE)
    result = pytester.runpytest("--color=yes")
    fail_rows = [line for line in result.stdout.lines if line.endswith("test_s.py::test_bad [check]\x1b[0m")]
    assert fail_rows and all("\x1b[31m" in line or "\x1b[1m" in line for line in fail_rows)


# -- the text pieces -------------------------------------------------------------

EDGES = list(range(-8, 5))


def test_histogram_rows_and_tolerance_line():
    counts = [1, 0, 0, 0, 0, 0, 2, 8, 4, 0, 0, 0, 0, 1]
    lines = histogram.render({"log10_edges": EDGES, "counts": counts}, width=16)
    assert len(lines) == len(counts) + 1
    tol = [i for i, line in enumerate(lines) if "tolerance (ratio 1)" in line]
    assert tol == [9]  # after the 9 bins below ratio 1, before "1e+00 .. 1e+01"
    assert lines[8].strip().startswith("1e-01 .. 1e+00") and lines[10].strip().startswith("1e+00 .. 1e+01")
    assert lines[7].count("#") == 16 and lines[7].endswith(" 8")  # the peak fills the width
    assert lines[0].count("#") == 2 and lines[-1].count("#") == 2  # small counts stay visible
    assert lines[1].count("#") == 0
    assert all(line.isascii() for line in lines)
    assert len({len(line) for line in lines}) == 1  # one width, the tolerance line included


def test_histogram_trim_keeps_the_tolerance_line():
    counts = [0, 0, 0, 3, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    lines = histogram.render({"log10_edges": EDGES, "counts": counts}, trim=True)
    assert lines[0].strip().startswith("1e-06 .. 1e-05")
    assert "tolerance" in lines[-2] and lines[-1].strip().startswith("1e+00 .. 1e+01")


def test_add_histograms():
    a = {"log10_edges": EDGES, "counts": [1] * 14}
    b = {"log10_edges": EDGES, "counts": list(range(14))}
    total = histogram.add_histograms([a, None, b])
    assert total["counts"] == [1 + i for i in range(14)]
    assert histogram.add_histograms([]) is None


def test_table_and_count_line_from_records():
    rec = {"nodeid": "t.py::test_a", "label": "check", "duration_s": 0.002,
           "result": {"status": "fail", "max_rel_error": 0.1, "max_ratio": 1234.0, "n_evals": 24}}
    model_rec = {"nodeid": "m.py::gradcheck[net]", "label": "net", "duration_s": 1.5,
                 "result": {"status": "pass", "max_rel_error": None, "max_ratio": 0.5, "n_evals": 7}}
    lines = [line for line, _ in terminal.table_lines([rec, model_rec])]
    assert lines[1].split() == ["FAIL", "1.00e-01", "1.23e+03", "24", "2ms", "t.py::test_a", "[check]"]
    assert lines[2].split() == ["pass", "-", "5.00e-01", "7", "1.50s", "m.py::gradcheck[net]"]
    assert terminal.count_line([rec, model_rec]) == "gradcheck: 2 checks in 2 tests: 1 passed, 1 failed, 0 inconclusive"
