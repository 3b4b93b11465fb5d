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


EXTREME = '''
import numpy as np
import pytest

def quiet(f):  # the user's own overflow is theirs: silenced here, so only the checker could warn
    def g(p):
        with np.errstate(all="ignore"):
            return f(p)
    return g

CASES = {
    "exp_near_1e308": (lambda p: float(np.exp(p).sum()), [708.0, 700.0], np.exp),
    "step_past_float_range": (lambda p: float(np.exp(p).sum()), [709.7, 0.0], np.exp),
    "inf_at_a_step": (lambda p: float(np.sum(1 / p)), [1e-300, 1.0], lambda p: -1 / p ** 2),
    "nan_at_a_step": (lambda p: float(np.sum(np.sqrt(p))), [1e-300, 1.0], lambda p: 0.5 / np.sqrt(p)),
    "huge_params": (lambda p: float(np.sum(p ** 2)), [1e300, -1e300], lambda p: 2 * p),
    "subnormal_params": (lambda p: float(np.sum(p ** 2)), [1e-300, 5e-324], lambda p: 2 * p),
    "mask_beside_exp_700": (lambda p: float(np.sum(np.exp(p[np.isfinite(p)]))), [-np.inf, 700.0],
                            lambda p: np.where(np.isfinite(p), np.exp(p), 0.0)),
}

KWS = {"default": {}, "central4": {"method": "central4"}, "eps": {"eps": 1e-3}, "atol": {"atol": 1e-3, "rtol": 1e-3}}
# the exact status per case, for (kw, mode) in the order default/central4/eps/atol x full/fast: two
# letters each, the correct gradient's then that of the wrong one -2*grad (P pass, F fail,
# I inconclusive, E a GradcheckInputError naming the problem).  Correct gradients never fail
# (issue 24.1: sqrt at [1e-300, 1] with atol/rtol, sum(p**2) at [1e-300, 5e-324] with eps=1e-3 did);
# wrong ones never pass except under the user's own atol=1e-3 on a gradient of 1e-300.
EXPECTED = {
    # fast mode's probe norms no longer overflow near 1e308 (C.12): the wrong twin fails there too
    "exp_near_1e308": "PF IF PF IF PF PF PF IF",
    "huge_params": "EE EE EE EE EE EE EE EE",
    "inf_at_a_step": "EE EE EE EE EE EE EE EE",
    "mask_beside_exp_700": "PF PF PF PF PF PF PF PF",
    "nan_at_a_step": "II II II II II II IF IF",
    "step_past_float_range": "IE IE IE IE IE IE IE IE",
    "subnormal_params": "II II II II II II PP PP",
}

def status_of(f, x, g, mode, kw):
    from pytest_gradcheck import check_gradient, GradcheckInputError
    try:
        r = check_gradient(quiet(f), np.array(x), quiet(g), mode=mode, **kw)
    except GradcheckInputError:
        return "E"
    return {"pass": "P", "fail": "F", "inconclusive": "I"}[r.status]

@pytest.mark.parametrize("mode", ["full", "fast"])
@pytest.mark.parametrize("kw", list(KWS))
@pytest.mark.parametrize("name", sorted(CASES))
def test_extreme(name, mode, kw):
    f, x, g = CASES[name]
    want = EXPECTED[name].split()[2 * list(KWS).index(kw) + ["full", "fast"].index(mode)]
    got = status_of(f, x, g, mode, KWS[kw]) + status_of(f, x, lambda p: -2 * g(p), mode, KWS[kw])
    assert got == want

def test_users_own_warning_still_raises():
    from pytest_gradcheck import check_gradient, GradcheckInputError
    with pytest.raises(GradcheckInputError, match="RuntimeWarning.*overflow"):
        check_gradient(lambda p: float(np.exp(p * 1000.0).sum()), np.array([1.0]), lambda p: p)
'''


def test_checker_numerics_emit_no_warnings_under_filterwarnings_error(pytester):
    """Issue 13.3: under `filterwarnings = error` the checker's own arithmetic at extreme
    magnitudes and steps raised numpy RuntimeWarnings as raw tracebacks."""
    pytester.makeini("[pytest]\nfilterwarnings =\n    error\n")
    pytester.makepyfile(test_extreme=EXTREME)
    result = pytester.runpytest("-p", "no:cacheprovider", "-q")
    result.stdout.no_fnmatch_line("*RuntimeWarning: overflow*")
    result.assert_outcomes(passed=57)
