"""The gradcheck fixture: results, labels, failures, records, JUnit properties."""

import xml.etree.ElementTree as ET

import pytest

FUNS = """
import numpy as np
import pytest
def quad(p): return float((p ** 2).sum())
def quad_grad(p): return 2 * p
def bad_grad(p): return 2.1 * p
P = np.array([0.5, -1.0, 2.0])
"""


def _records(reprec):
    return [call.record for call in reprec.getcalls("pytest_gradcheck_result")]


def test_passing_checks_return_results_and_get_default_labels(pytester):
    pytester.makepyfile(FUNS + """
def test_two_checks(gradcheck):
    r1 = gradcheck(quad, P, quad_grad)
    r2 = gradcheck(quad, P, quad_grad, method="central4")
    r3 = gradcheck(lambda p: quad(p["w"]), {"w": P}, lambda p: {"w": 2 * p["w"]}, label="tree")
    assert r1.status == "pass" and r1.method == "central" and r2.method == "central4"
    assert gradcheck.results == [r1, r2, r3]
""")
    reprec = pytester.inline_run()
    reprec.assertoutcome(passed=1)
    records = _records(reprec)
    assert [r["label"] for r in records] == ["check", "check-2", "tree"]
    assert all(r["nodeid"] == "test_passing_checks_return_results_and_get_default_labels.py::test_two_checks"
               for r in records)
    rec = records[1]
    assert set(rec) == {"nodeid", "label", "duration_s", "result"}
    assert rec["result"]["status"] == "pass" and rec["result"]["method"] == "central4"
    assert rec["result"]["n_evals"] > 0 and rec["duration_s"] >= 0


def test_failing_check_fails_with_the_readable_report(pytester):
    pytester.makepyfile(FUNS + """
def test_bad(gradcheck):
    gradcheck(quad, P, quad_grad, label="fine")
    gradcheck(quad, P, bad_grad, label="broken")
    raise RuntimeError("not reached")
""")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        ">       gradcheck(quad, P, bad_grad, label=\"broken\")",
        "E       pytest_gradcheck.errors.GradcheckError: gradcheck 'broken' failed",
        "E       gradient check FAILED: * entries disagree*",
        "E  *analytic = your gradient, numeric = finite differences*",
    ])
    result.stdout.no_fnmatch_line("*fixtures.py*")  # __tracebackhide__: no plugin frames
    result.stdout.no_fnmatch_line("*not reached*")


def test_failed_check_is_recorded_before_failing(pytester):
    pytester.makepyfile(FUNS + """
def test_bad(gradcheck):
    gradcheck(quad, P, bad_grad)
""")
    reprec = pytester.inline_run()
    reprec.assertoutcome(failed=1)
    (rec,) = _records(reprec)
    assert rec["result"]["status"] == "fail" and rec["result"]["max_ratio"] > 1
    assert rec["result"]["worst"][0]["leaf"] == "params"


def test_labels_must_be_unique_and_unknown_keywords_are_rejected(pytester):
    pytester.makepyfile(FUNS + """
def test_duplicate(gradcheck):
    gradcheck(quad, P, quad_grad, label="a")
    gradcheck(quad, P, quad_grad, label="a")

def test_default_label_skips_taken_ones(gradcheck):
    gradcheck(quad, P, quad_grad, label="check-2")
    gradcheck(quad, P, quad_grad)
    gradcheck(quad, P, quad_grad)
    assert sorted(gradcheck.results[i].status for i in range(3)) == ["pass"] * 3

def test_unknown_keyword(gradcheck):
    gradcheck(quad, P, quad_grad, tolerance=1e-3)

def test_checker_keyword_passes_through(gradcheck):
    assert gradcheck(quad, P, quad_grad, vectorized=False).status == "pass"

def test_bad_keyword_value(gradcheck):
    gradcheck(quad, P, quad_grad, method="sideways")
""")
    reprec = pytester.inline_run()
    reprec.assertoutcome(passed=2, failed=3)
    texts = {rep.nodeid.split("::")[1]: str(rep.longrepr) for rep in reprec.getreports("pytest_runtest_logreport")
             if rep.failed}
    assert "gradcheck label 'a' is already used" in texts["test_duplicate"]
    assert "unexpected keyword argument(s) tolerance; check_gradient takes: fun, params, grad, method" \
        in texts["test_unknown_keyword"]
    assert "method='sideways' must be one of" in texts["test_bad_keyword_value"]
    labels = [r["label"] for r in _records(reprec) if r["nodeid"].endswith("taken_ones")]
    assert labels == ["check-2", "check", "check-3"]


def test_marker_without_fixture_is_fine_and_options_fixture(pytester):
    pytester.makepyfile(FUNS + """
@pytest.mark.gradcheck(atol=1e-3, method="forward")
def test_marked_only():
    assert True

@pytest.mark.gradcheck(atol=1e-3, method="forward")
def test_options(gradcheck_options, gradcheck):
    assert gradcheck_options["atol"] == 1e-3 and gradcheck.options == gradcheck_options
    assert gradcheck(quad, P, quad_grad).method == "forward"
""")
    pytester.runpytest().assert_outcomes(passed=2)


def test_other_check_kinds_go_to_the_public_functions(pytester):
    """gradcheck.vjp reaches the real pytest_gradcheck.check_vjp with the checker's own
    keywords (n_cotangents), the seed, and the marker's options."""
    pytester.makepyfile(FUNS + """
import numpy as np
import pytest_gradcheck

X = np.array([0.3, -0.7, 1.1])
f = lambda x: np.sin(x) * x
f_vjp = lambda x, c: (np.cos(x) * x + np.sin(x)) * c

@pytest.mark.gradcheck(method="forward")
def test_vjp(gradcheck):
    one = gradcheck.vjp(f, X, f_vjp, n_cotangents=1, label="v1", seed=4)
    three = gradcheck.vjp(f, X, f_vjp, n_cotangents=3, label="v3", seed=4)
    direct = pytest_gradcheck.check_vjp(f, X, f_vjp, n_cotangents=3, seed=4, method="forward")
    assert (one.kind, one.status, one.seed, one.method) == ("vjp", "pass", 4, "forward")
    assert three.n_evals > one.n_evals  # n_cotangents reached the checker
    assert (three.status, three.n_evals, three.max_ratio) == (direct.status, direct.n_evals, direct.max_ratio)

def test_wrong_vjp(gradcheck):
    gradcheck.vjp(f, X, lambda x, c: 1.1 * f_vjp(x, c), label="bad", n_cotangents=2)
""")
    reprec = pytester.inline_run()
    reprec.assertoutcome(passed=1, failed=1)
    assert [(r["label"], r["result"]["kind"], r["result"]["status"]) for r in _records(reprec)] == [
        ("v1", "vjp", "pass"), ("v3", "vjp", "pass"), ("bad", "vjp", "fail")]


def test_input_errors_propagate_without_a_record(pytester):
    pytester.makepyfile(FUNS + """
from pytest_gradcheck import GradcheckInputError
def test_shape_mismatch(gradcheck):
    with pytest.raises(GradcheckInputError):
        gradcheck(quad, P, lambda p: p[:2])
""")
    reprec = pytester.inline_run()
    reprec.assertoutcome(passed=1)
    assert _records(reprec) == []


def test_junit_xml_gets_small_user_properties(pytester):
    pytester.makepyfile(FUNS + """
def test_one(gradcheck):
    gradcheck(quad, P, quad_grad, label="q")
""")
    pytester.runpytest("--junitxml=out.xml").assert_outcomes(passed=1)
    props = {p.get("name"): p.get("value") for p in ET.parse(pytester.path / "out.xml").iter("property")}
    assert props["gradcheck[q].status"] == "pass"
    assert float(props["gradcheck[q].max_ratio"]) < 1
    assert int(props["gradcheck[q].n_evals"]) > 0


def test_plugin_can_be_disabled(pytester):
    pytester.makepyfile("""
import pytest
@pytest.mark.gradcheck(atol=1e-3)
def test_marked(request):
    assert request.config.pluginmanager.get_plugin("gradcheck") is None
    assert request.config.pluginmanager.get_plugin("gradcheck-controller") is None
""")
    result = pytester.runpytest("-p", "no:gradcheck", "--gradcheck-summary=all")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # the plugin's options are gone too
    result = pytester.runpytest("-p", "no:gradcheck")
    result.assert_outcomes(passed=1)  # the marker is just an unknown marker
    result.stdout.no_fnmatch_line("gradcheck:*")
    result.stdout.no_fnmatch_line("*= gradcheck =*")


def test_records_are_plain_json():
    import json
    import math

    import numpy as np

    from pytest_gradcheck import check_gradient
    from pytest_gradcheck.session import json_safe, make_record

    messy = {"a": np.float32(1.5), "b": (1, np.int64(2)), "c": math.nan, "d": np.array([1.0, 2.0]),
             "e": {"x": np.bool_(True)}, "f": -math.inf}
    assert json_safe(messy) == {"a": 1.5, "b": [1, 2], "c": None, "d": [1.0, 2.0], "e": {"x": True}, "f": -1e308}
    result = check_gradient(lambda p: float((p ** 2).sum()), np.ones((2, 3)), lambda p: 2.5 * p)
    record = make_record("t.py::test_x", "check", 0.25, result)
    assert json.loads(json.dumps(record, allow_nan=False)) == record
    assert record["result"]["status"] == "fail" and record["result"]["leaves"][0]["shape"] == [2, 3]


def test_vector_and_second_order_checks_through_the_fixture(pytester):
    """The real checkers behind gradcheck.vjp/.jvp/.jacobian/.hessian/.gradgrad, each with a
    wrong value that must fail."""
    pytester.makepyfile("""
import numpy as np
import pytest

X = np.array([0.3, -0.7, 1.1])
f = lambda x: 2 * np.sin(x)
cube = lambda x: float(np.sum(x ** 3))

@pytest.mark.gradcheck(seed=2)
def test_vector(gradcheck):
    assert gradcheck.vjp(f, X, lambda x, c: 2 * np.cos(x) * c).kind == "vjp"
    assert gradcheck.jvp(f, X, lambda x, t: 2 * np.cos(x) * t).kind == "jvp"
    assert gradcheck.jacobian(f, X, lambda x: np.diag(2 * np.cos(x))).kind == "jacobian"
    assert gradcheck.hessian(cube, X, hess=lambda x: np.diag(6 * x)).kind == "hessian"
    assert gradcheck.gradgrad(cube, X, lambda x: 3 * x ** 2, hvp=lambda x, v: 6 * x * v).kind == "gradgrad"

def test_wrong_vjp_fails(gradcheck):
    gradcheck.vjp(f, X, lambda x, c: 2.2 * np.cos(x) * c, label="bad-vjp")

def test_wrong_hvp_fails_gradgrad(gradcheck):
    gradcheck.gradgrad(cube, X, lambda x: 3 * x ** 2, hvp=lambda x, v: 6.6 * x * v, label="bad-hvp")
""")
    reprec = pytester.inline_run()
    reprec.assertoutcome(passed=1, failed=2)
    records = _records(reprec)
    assert [(r["label"], r["result"]["kind"], r["result"]["status"]) for r in records] == [
        ("check", "vjp", "pass"), ("check-2", "jvp", "pass"), ("check-3", "jacobian", "pass"),
        ("check-4", "hessian", "pass"), ("check-5", "gradgrad", "pass"), ("bad-vjp", "vjp", "fail"),
        ("bad-hvp", "gradgrad", "fail")]
    assert all(r["result"]["seed"] == 2 for r in records[:5])
