"""JSON and HTML reports: the pure functions, and the --gradcheck-json/--gradcheck-html options."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pytest_gradcheck import check_gradient
from pytest_gradcheck.reporting import html_report, json_report
from pytest_gradcheck.reporting.baseline import compare, merge_baseline

pytest_plugins = ["pytester"]
#: inner runs without two unrelated plugins: hypothesis's imports hypothesis (under assertion
#: rewriting, seconds per fresh process) in its terminal summary; pytest-benchmark warns under xdist
RUN = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")

A = np.array([[2.0, 0.5], [0.5, 1.0]])
X0 = np.array([0.3, -0.7])


def _fun(x):
    return float(np.sin(x).sum() + 0.5 * x @ A @ x)


def _grad(x):
    return np.cos(x) + A @ x


def _mlp_params():
    rng = np.random.default_rng(0)
    return {"W": rng.normal(size=(6, 5)), "x": rng.normal(size=5)}


def _mlp(p):
    return float(np.sum(np.tanh(p["W"] @ p["x"]) ** 2))


def _mlp_grad(p, factor=1.0):
    t = np.tanh(p["W"] @ p["x"])
    d = 2 * t * (1 - t ** 2)
    return {"W": np.outer(d, p["x"]) * factor, "x": p["W"].T @ d}


@pytest.fixture(scope="module")
def records():
    good = check_gradient(_fun, X0, _grad).to_dict()
    mlp = check_gradient(_mlp, _mlp_params(), _mlp_grad).to_dict()
    bad = check_gradient(_mlp, _mlp_params(), lambda p: _mlp_grad(p, 1.001)).to_dict()
    return [
        {"nodeid": "tests/test_a.py::test_quad", "label": "check", "duration_s": 0.01, "result": good},
        {"nodeid": "tests/test_a.py::test_mlp", "label": "check", "duration_s": 0.02, "result": mlp},
        {"nodeid": "tests/test_a.py::test_mlp", "label": "check-2", "duration_s": 0.03, "result": bad},
    ]


ENTRY_TYPES = {
    "key": str, "nodeid": str, "label": str, "status": str, "passed": bool, "kind": str,
    "max_abs_error": float, "max_rel_error": float, "ratio": float, "n_evals": int, "n_checked": int,
    "n_params": int, "mode": str, "method": str, "seed": int, "tolerance": dict, "duration_s": float,
    "counts": dict, "histogram": dict, "worst": list, "leaves": list, "messages": list, "regressed": bool,
}


def test_report_schema(records):
    rep = json_report.build_report(records, [], {"platform": "x", "python": "3.11", "numpy": "2.0", "time": "t"})
    assert rep["version"] == json_report.REPORT_VERSION == 1
    assert set(rep) >= {"version", "tool", "generated", "context", "summary", "checks", "regressions",
                        "improvements", "new", "changed", "baseline"}
    assert len(rep["checks"]) == 3
    for entry in rep["checks"]:
        for key, typ in ENTRY_TYPES.items():
            assert isinstance(entry[key], typ), (key, entry[key])
        assert "diagnosis" in entry and "escape_probability" in entry
        assert entry["key"] == f"{entry['nodeid']}::{entry['label']}"
    quad, mlp, bad = rep["checks"]
    assert (quad["status"], mlp["status"], bad["status"]) == ("pass", "pass", "fail")
    assert bad["passed"] is False and quad["passed"] is True
    assert bad["ratio"] == records[2]["result"]["max_ratio"] > 1
    assert bad["worst"][0]["leaf"] == "W" and bad["worst"][0]["verdict"] == "fail"
    # the W leaf is 2-D: its heatmap grid travels with the report
    w_leaf = [leaf for leaf in bad["leaves"] if leaf["path"] == "W"][0]
    assert len(w_leaf["ratio_grid"]) == 6 and len(w_leaf["ratio_grid"][0]) == 5
    s = rep["summary"]
    assert s["total"] == 3 and s["counts"] == {"pass": 2, "fail": 1, "inconclusive": 0, "error": 0, "xfail": 0, "xpass": 0, "caught": 0}
    assert s["n_evals"] == sum(r["result"]["n_evals"] for r in records)
    assert s["n_tests"] == 2
    assert math.isclose(s["duration_s"], 0.06)
    # the summary histogram adds up every entry of every check
    assert sum(s["histogram"]["counts"]) == sum(r["result"]["n_checked"] for r in records)


def _fast_pass_record():
    """A real fast-mode check that passed: its probes agreed, so no single entry was compared."""
    rng = np.random.default_rng(3)
    params = {"W": rng.normal(size=(20, 12)), "x": rng.normal(size=12)}
    res = check_gradient(_mlp, params, _mlp_grad, mode="fast").to_dict()
    assert res["mode"] == "fast" and res["status"] == "pass" and res["n_checked"] == 0
    return {"nodeid": "tests/test_a.py::test_fast", "label": "check", "duration_s": 0.01, "result": res}


def test_what_a_fast_check_did_not_measure_is_null_not_zero():
    """The numerics store 0.0 for the entry errors of a fast check that compared no single entry;
    the reports say "not measured" (null, "-"), and keep the probes' ratio, which was measured."""
    from pytest_gradcheck.reporting import baseline, terminal

    record = _fast_pass_record()
    entry = json_report.build_report([record], [])["checks"][0]
    assert entry["max_abs_error"] is None and entry["max_rel_error"] is None
    assert entry["ratio"] == record["result"]["max_ratio"] > 0
    assert all(leaf["max_ratio"] is None for leaf in entry["leaves"])
    assert baseline.baseline_entry(record)["max_rel_error"] is None
    row = terminal.table_lines([record])[1][0]
    assert row.split()[:3] == ["pass", "-", format(record["result"]["max_ratio"], ".2e")]
    # a check that did not finish has no evaluation count either (not 0)
    error = {"nodeid": "t.py::t", "label": "check", "duration_s": 0.0,
             "result": {"status": "error", "passed": False, "kind": "gradient"},
             "error": {"type": "input", "exception": "GradcheckInputError", "message": "bad shape"}}
    assert json_report.check_entry(error)["n_evals"] is None


def test_summary_reconciles_checks_with_pytests_count_of_tests(records):
    rep = json_report.build_report(records, [], pytest_counts={"passed": 3, "failed": 1, "skipped": 2})
    s = rep["summary"]
    assert s["pytest"] == {"failed": 1, "passed": 3, "skipped": 2, "deselected": 0, "xfailed": 0, "xpassed": 0,
                           "error": 0}
    assert s["n_tests"] == 2 and s["n_tests_stopped"] == 1  # test_mlp's second check failed
    assert json_report.build_report(records, [])["summary"]["pytest"] is None


def test_histogram_edges_from_log10_edges(records):
    h = json_report.histogram_bins(records[2]["result"]["histogram"])
    log10 = records[2]["result"]["histogram"]["log10_edges"]
    assert len(h["edges"]) == len(h["counts"]) + 1
    assert h["edges"][0] == 0.0 and h["edges"][-1] is None
    assert h["edges"][1:-1] == [10.0 ** e for e in log10]
    assert h["counts"] == records[2]["result"]["histogram"]["counts"]
    # every failing entry of the buggy check lies right of the tolerance edge (ratio 1)
    tol_bin = log10.index(0) + 1
    assert sum(h["counts"][tol_bin:]) == records[2]["result"]["counts"]["fail"]
    assert json_report.histogram_bins(None) == {"edges": [], "counts": [], "log10_edges": []}


def test_regressions_land_in_report(records):
    base = merge_baseline(records)
    key = json_report.record_key(records[2])
    base["checks"][key].update(status="pass", max_ratio=0.02)
    del base["checks"][json_report.record_key(records[0])]
    changes = compare(base, records)
    rep = json_report.build_report(records, changes)
    assert [c["key"] for c in rep["regressions"]] == [key]
    assert [c["key"] for c in rep["new"]] == [json_report.record_key(records[0])]
    assert rep["summary"]["n_regressions"] == 1 and rep["summary"]["n_new"] == 1
    assert [e["regressed"] for e in rep["checks"]] == [False, False, True]


def test_context_and_json_safety(tmp_path):
    ctx = json_report.make_context([], extra={"pytest": "9"})
    assert {"platform", "python", "numpy", "time", "pytest"} <= set(ctx)
    assert ctx["numpy"] == np.__version__
    weird = {"a": float("nan"), "b": (1, float("inf")), "c": np.float32(0.5), "d": np.arange(3), 4: -float("inf")}
    safe = json_report.json_safe(weird)
    assert safe == {"a": None, "b": [1, 1e308], "c": 0.5, "d": [0, 1, 2], "4": -1e308}
    path = json_report.write_json(tmp_path / "sub" / "r.json", {"x": float("nan"), "y": [1.5]})
    text = open(path).read()
    assert "NaN" not in text and json.loads(text) == {"x": None, "y": [1.5]}


def test_html_embeds_data_safely(records):
    recs = [dict(r) for r in records]
    recs[0] = dict(recs[0], nodeid="tests/test_a.py::test_x[</script><script>alert(1)</script><!--]")
    rep = json_report.build_report(recs, [])
    page = html_report.render(rep)
    assert page.count("</script>") == 2  # the data block and the code, nothing injected
    data = html_report.extract_data(page)
    assert data["checks"][0]["nodeid"] == recs[0]["nodeid"]
    assert data["summary"] == rep["summary"]
    # rounded for size, but the same numbers to 6 digits (the sides of an entry to 10)
    assert math.isclose(data["checks"][2]["ratio"], rep["checks"][2]["ratio"], rel_tol=1e-5)
    w, w0 = data["checks"][2]["worst"][0], rep["checks"][2]["worst"][0]
    assert math.isclose(w["analytic"], w0["analytic"], rel_tol=1e-9)
    # self-contained: a CSP that forbids network access, no external resources
    assert "default-src 'none'" in page
    for bad in ('src="http', "src='http", 'href="http', "@import", "url(http", "<link rel=\"stylesheet"):
        assert bad not in page


def test_html_holds_one_packed_copy_of_the_data(records):
    recs = [dict(records[i % 3], nodeid=f"tests/test_{i}.py::test_{i}") for i in range(300)]
    rep = json_report.build_report(recs, [])
    page = html_report.render(rep)
    data = html_report.embed_json(html_report.with_rerun_commands(rep))
    shell = len(page) - len(data)
    # one copy of the data (rounded: smaller than the JSON report) plus a fixed shell; rows are made by the script
    assert page.count(data) == 1
    assert shell < 60_000
    assert len(data) < 0.6 * len(json_report.dumps(rep))
    assert html_report.unpack(html_report.pack(rep)) == rep
    assert page.count("<tr") == 0 and page.count('class="row') == 0


# ---------------------------------------------------------------- pytest options

TEST_FILE = """
import numpy as np
A = np.array([[2.0, 0.5], [0.5, 1.0]])
X0 = np.array([0.3, -0.7])

def f(x):
    return float(np.sin(x).sum() + 0.5 * x @ A @ x)

def test_quad(gradcheck):
    gradcheck(f, X0, lambda x: np.cos(x) + A @ x)

def test_two(gradcheck):
    gradcheck(lambda x: float((x ** 3).sum()), X0, lambda x: 3 * x ** 2, label="cubic")
    gradcheck(f, X0, lambda x: np.cos(x) + A @ x + np.array([1e-3, 0.0]), label="buggy")
"""


def test_json_and_html_options(pytester):
    pytester.makepyfile(test_m=TEST_FILE)
    res = pytester.runpytest(*RUN, "--gradcheck-json=out/r.json", "--gradcheck-html=out/r.html")
    res.assert_outcomes(passed=1, failed=1)
    res.stdout.fnmatch_lines(["gradcheck JSON report: out*r.json", "gradcheck HTML report: out*r.html"])
    rep = json.loads((pytester.path / "out" / "r.json").read_text())
    assert rep["version"] == 1
    keys = [c["key"] for c in rep["checks"]]
    assert sorted(keys) == ["test_m.py::test_quad::check", "test_m.py::test_two::buggy", "test_m.py::test_two::cubic"]
    by_key = {c["key"]: c for c in rep["checks"]}
    assert by_key["test_m.py::test_two::buggy"]["status"] == "fail"
    assert rep["summary"]["counts"]["fail"] == 1 and rep["summary"]["total"] == 3
    assert rep["context"]["pytest"] == pytest.__version__
    # pytest's own count of tests travels with the report, to reconcile with its count of checks
    assert rep["summary"]["pytest"] == {"failed": 1, "passed": 1, "skipped": 0, "deselected": 0, "xfailed": 0,
                                        "xpassed": 0, "error": 0}
    assert rep["summary"]["n_tests"] == 2 and rep["summary"]["n_tests_stopped"] == 1
    page = (pytester.path / "out" / "r.html").read_text()
    assert html_report.extract_data(page)["summary"] == rep["summary"]


@pytest.mark.parametrize("args, words", [
    (["--gradcheck-json="], "gradcheck-json"),
    (["--gradcheck-html", "."], "is a directory"),
    (["--gradcheck-baseline=base.txt"], "does not end in .json"),
    (["--gradcheck-baseline", "tests"], "does not end in .json"),
    (["--gradcheck-regression-factor=0.5"], "must be a finite number > 1"),
    (["--gradcheck-regression-factor=abc"], "is not a number"),
])
def test_bad_option_values_are_usage_errors(pytester, args, words):
    pytester.makepyfile(test_m="def test_x():\n    pass\n")
    res = pytester.runpytest(*RUN, *args)
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    assert words in res.stderr.str()


def test_bad_ini_factor_is_usage_error(pytester):
    pytester.makeini("[pytest]\ngradcheck_regression_factor = 1\n")
    pytester.makepyfile(test_m="def test_x():\n    pass\n")
    res = pytester.runpytest(*RUN, "--gradcheck-baseline")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    assert "gradcheck_regression_factor" in res.stderr.str()
    assert "INTERNALERROR" not in res.stdout.str() + res.stderr.str()


def test_unwritable_report_fails_the_run_with_a_message(pytester):
    pytester.makepyfile(test_m=TEST_FILE.replace("np.array([1e-3, 0.0])", "0.0"))
    (pytester.path / "blocker").write_text("a file, not a directory")
    res = pytester.runpytest(*RUN, "--gradcheck-json=blocker/r.json")
    res.assert_outcomes(passed=2)
    assert res.ret == pytest.ExitCode.TESTS_FAILED
    res.stdout.fnmatch_lines(["*ERROR: could not write the gradcheck JSON report*blocker*"])
    assert "INTERNALERROR" not in res.stdout.str()


def test_pytest_html_column_and_extras(pytester):
    """With pytest-html installed (optional): a gradcheck column and a per-test table of checks."""
    pytest.importorskip("pytest_html")
    import html as html_lib
    import re

    pytester.makepyfile(test_m=TEST_FILE)
    res = pytester.runpytest(*RUN, "--html=ph.html", "--self-contained-html")
    res.assert_outcomes(passed=1, failed=1)
    page = (pytester.path / "ph.html").read_text()
    blob = json.loads(html_lib.unescape(re.search(r'data-jsonblob="([^"]*)"', page).group(1)))
    tests = blob["tests"]
    rows = {k: " ".join(v[-1]["resultsTableRow"]) for k, v in tests.items()}
    assert "1 check, worst pass (ratio " in rows["test_m.py::test_quad"]
    assert "2 checks, worst fail (ratio " in rows["test_m.py::test_two"]
    extra = " ".join(e["content"] for v in tests["test_m.py::test_two"] for e in v.get("extras", []))
    assert '<table class="gradcheck">' in extra and "<td>buggy</td><td>fail</td>" in extra
    assert '<th class="sortable" data-column-type="gradcheck">gradcheck</th>' in page
