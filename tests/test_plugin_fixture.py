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
    assert r1.passed and r1.method == "central" and r2.method == "central4"
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
    assert gradcheck(quad, P, quad_grad, vectorized=False).passed

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
    pytester.makepyfile(FUNS + """
import pytest_gradcheck
from pytest_gradcheck import GradcheckResult

def test_vjp(gradcheck, monkeypatch):
    seen = {}
    def fake_check_vjp(fun, params, *, v=None, method="central", seed=0):
        seen.update(v=v, method=method, seed=seed)
        return GradcheckResult(status="pass", kind="vjp", method=method, seed=seed)
    monkeypatch.setattr(pytest_gradcheck, "check_vjp", fake_check_vjp, raising=False)
    # the keywords read from the fake's signature (v) must not stay cached for later tests
    monkeypatch.setattr(pytest_gradcheck.options, "_checker_keywords", None)
    result = gradcheck.vjp(quad, P, v=3, label="v", seed=4)
    assert result.kind == "vjp" and seen == {"v": 3, "method": "central", "seed": 4}
""")
    reprec = pytester.inline_run()
    reprec.assertoutcome(passed=1)
    assert [(r["label"], r["result"]["kind"]) for r in _records(reprec)] == [("v", "vjp")]


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
    """The real checkers (exported from pytest_gradcheck, or taken from the numerics
    while they are not yet) behind gradcheck.vjp/.jvp/.jacobian/.hessian."""
    pytester.makepyfile("""
import numpy as np
import pytest
import pytest_gradcheck
from pytest_gradcheck.numerics import second_order, vector

@pytest.fixture(autouse=True)
def exported(monkeypatch):
    for mod, name in [(vector, "check_vjp"), (vector, "check_jvp"), (vector, "check_jacobian"),
                      (second_order, "check_hessian")]:
        if not hasattr(pytest_gradcheck, name):
            monkeypatch.setattr(pytest_gradcheck, name, getattr(mod, name), raising=False)

X = np.array([0.3, -0.7, 1.1])
f = lambda x: 2 * np.sin(x)

@pytest.mark.gradcheck(seed=2)
def test_vector(gradcheck):
    assert gradcheck.vjp(f, X, lambda x, c: 2 * np.cos(x) * c).kind == "vjp"
    assert gradcheck.jvp(f, X, lambda x, t: 2 * np.cos(x) * t).kind == "jvp"
    assert gradcheck.jacobian(f, X, lambda x: np.diag(2 * np.cos(x))).kind == "jacobian"
    assert gradcheck.hessian(lambda x: float(np.sum(x ** 3)), X, hess=lambda x: np.diag(6 * x)).passed

def test_wrong_vjp_fails(gradcheck):
    gradcheck.vjp(f, X, lambda x, c: 2.2 * np.cos(x) * c, label="bad-vjp")
""")
    reprec = pytester.inline_run()
    reprec.assertoutcome(passed=1, failed=1)
    records = _records(reprec)
    assert [(r["label"], r["result"]["kind"], r["result"]["status"]) for r in records] == [
        ("check", "vjp", "pass"), ("check-2", "jvp", "pass"), ("check-3", "jacobian", "pass"),
        ("check-4", "hessian", "pass"), ("bad-vjp", "vjp", "fail")]
    assert all(r["result"]["seed"] == 2 for r in records[:4])
