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
