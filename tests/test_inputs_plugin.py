"""The plugin side of issue 12's inputs and issue 13.3: (value, grad) objectives through the
fixture, @model and the naming convention; the checker's own numerics under `filterwarnings = error`."""

VALUE_AND_GRAD = """
import numpy as np

def rosen(x):  # scipy.optimize.minimize(jac=True) convention
    v = float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))
    g = np.zeros_like(x)
    g[:-1] = -400.0 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    g[1:] += 200.0 * (x[1:] - x[:-1] ** 2)
    return v, g

def rosen_bad(x):
    v, g = rosen(x)
    return v, 1.1 * g
"""


def test_value_and_grad_through_the_fixture_and_model(pytester):
    pytester.makepyfile(vgobj=VALUE_AND_GRAD + """
rosen_params = np.array([-1.2, 1.0, 0.7])
rosen_grad = True                      # the naming convention: fun returns (value, grad)
""")
    pytester.makeini("[pytest]\ngradcheck_models = vgobj\n")
    pytester.makepyfile(test_vg="""
import numpy as np
from pytest_gradcheck import model
from vgobj import rosen, rosen_bad

@model(params=np.array([0.5, -0.3, 1.1]), grad=True, name="rosen_model")
def rosen_again(x):
    return rosen(x)

def test_fixture(gradcheck):
    gradcheck(rosen, np.array([-1.2, 1.0, 0.7]), True)

def test_fixture_keyword_and_bug(gradcheck):
    gradcheck(rosen_bad, np.array([-1.2, 1.0, 0.7]), grad=True)
""")
    pytester.syspathinsert()
    result = pytester.runpytest("-v", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines([
        "*test_fixture PASSED*",
        "*test_fixture_keyword_and_bug FAILED*",
        "*gradcheck[[]rosen_model[]] PASSED*",
        "*gradcheck[[]rosen[]] PASSED*",
    ])
    result.assert_outcomes(passed=3, failed=1)
