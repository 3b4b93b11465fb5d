"""Integration: the same records, hooks, summary and JUnit properties with
pytest-xdist (``-n 2``) as without it (``-p no:xdist``)."""

import re
import xml.etree.ElementTree as ET

import pytest

SUITE = """
import numpy as np
import pytest
from pytest_gradcheck.discovery import model

def quad(p): return float((p ** 2).sum())
P = np.array([0.5, -1.0, 2.0])

@model(params=lambda rng: rng.normal(size=(2, 2)), grad=lambda w: 2 * w)
def local_model(w): return float((w ** 2).sum())

@pytest.mark.parametrize("k", range(4))
def test_many(gradcheck, k):
    gradcheck(quad, P * (k + 1), lambda p: 2 * p)
    gradcheck(quad, P, lambda p: 2 * p, label="second", method="central4")

def test_bad(gradcheck):
    gradcheck(quad, P, lambda p: np.array([1.0, -2.0, 4.4]))

def test_models(gradcheck_model):
    gradcheck_model.check()
"""

CONFTEST = """
def pytest_gradcheck_result(config, record):
    assert not hasattr(config, "workerinput"), "result hook must run on the controller"
    config._seen = getattr(config, "_seen", []) + [record["nodeid"] + " " + record["label"]]

def pytest_terminal_summary(terminalreporter, config):
    seen = getattr(config, "_seen", [])
    terminalreporter.write_line(f"controller saw {len(seen)} records, {len(set(seen))} distinct")
"""

def _rows(stdout: str) -> list:
    """The gradcheck table rows without the time column (which varies)."""
    section = stdout.split("= gradcheck =")[1].split("short test summary")[0]
    rows = []
    for line in section.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[0] in ("pass", "FAIL", "inconclusive") and parts[3].isdigit():
            rows.append(" ".join(parts[:4] + parts[5:]))
    return sorted(rows)


def test_same_results_with_and_without_xdist(pytester):
    # both runs in one test: split over two tests, the comparison was skipped whenever they
    # landed in different xdist workers (or only one was selected)
    pytester.mkdir("tests")
    pytester.makepyfile(**{"tests/conftest": CONFTEST, "tests/test_suite": SUITE})
    pytester.mkpydir("extra")
    pytester.makepyfile(**{"extra/models": "import numpy as np\ndef lin(x): return float(3 * x.sum())\n"
                                           "def lin_grad(x): return 3 * np.ones_like(x)\nlin_params = np.ones(4)\n"})
    # extra/ lies outside testpaths: its models join through pytest_collection_modifyitems
    pytester.makeini("[pytest]\ntestpaths = tests\ngradcheck_models = extra.models\n")
    tables = {mode[0]: _run_suite(pytester, mode) for mode in (["-n", "2"], ["-p", "no:xdist"])}
    assert tables["-n"] == tables["-p"]


def _run_suite(pytester, mode):
    """The suite in one mode; its gradcheck table's rows (checked here, compared by the caller)."""
    args = (*mode, "--junitxml=junit.xml", "-p", "no:cacheprovider")
    if mode[0] == "-n":  # workers are processes anyway; spare them unrelated plugins' start-up (~2 s each)
        result = pytester.runpytest_subprocess(*args, "-p", "no:hypothesispytest", "-p", "no:benchmark")
    else:
        pytester.syspathinsert()
        result = pytester.runpytest(*args)
    # 4 x test_many, test_bad, 2 x test_models, 2 model items
    result.assert_outcomes(passed=8, failed=1)
    out = result.stdout.str()
    if mode[0] == "-n":
        assert re.search(r"created: 2/2 workers", out)
    rows = _rows(out)
    assert len(rows) == 13  # 8 + 1 + 2 + 2 records
    assert sum(r.startswith("FAIL") for r in rows) == 1
    assert any(r.endswith("extra/models.py::gradcheck[lin]") for r in rows)
    assert any(r.endswith("tests/test_suite.py::test_models[local_model]") for r in rows)
    assert any(r.endswith("tests/test_suite.py::test_many[3] [second]") for r in rows)
    result.stdout.fnmatch_lines([
        "*tolerance (ratio 1)*",
        "gradcheck: 13 checks in 9 tests: 12 passed, 1 failed, 0 inconclusive",
        "controller saw 13 records, 13 distinct",
    ])
    props = [p.get("name") for p in ET.parse(pytester.path / "junit.xml").iter("property")]
    assert props.count("gradcheck[second].status") == 4 and "gradcheck[lin].n_evals" in props
    return rows
