"""Options of the plugin: command line, ini, markers, precedence, usage errors."""

import pytest

from pytest_gradcheck import options as opts

QUAD = """
import numpy as np
def quad(p): return float((p ** 2).sum())
def quad_grad(p): return 2 * p
P = np.array([0.5, -1.0, 2.0])
"""


def test_validate_normalises_and_rejects():
    assert opts.validate("method", " Central4 ") == "central4"
    assert opts.validate("atol", "1e-6") == 1e-6
    assert opts.validate("atol", "none") is None
    assert opts.validate("seed", "7") == 7
    for name, bad in [("method", "centre"), ("mode", "slow"), ("eps", 0), ("eps", -1e-3),
                      ("rtol", -1.0), ("atol", float("nan")), ("seed", -1), ("seed", 1.5),
                      ("seed", True), ("atol", "x")]:
        with pytest.raises(opts.OptionError, match=name):
            opts.validate(name, bad)
    with pytest.raises(opts.OptionError, match="unknown option 'tol'"):
        opts.validate_all({"tol": 1}, "here")


def test_help_shows_the_gradcheck_group(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines([
        "*gradient checks (pytest-gradcheck)*",
        "*--gradcheck-rtol=X*relative tolerance*",
        "*--gradcheck-method=NAME*",
        "*forward|backward|central|central4|complex*",
        "*--gradcheck-summary=WHICH*",
        "*gradcheck_method (string)*",
    ])


def test_marker_is_registered_with_its_signature(pytester):
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines([f"@pytest.mark.gradcheck(atol=None, rtol=None, eps=None, method='central', mode={opts.DEFAULT_MODE!r}, seed=0)*"])
    pytester.makepyfile("import pytest\n@pytest.mark.gradcheck(atol=1e-6)\ndef test_x(): pass\n")
    pytester.runpytest("--strict-markers").assert_outcomes(passed=1)


@pytest.mark.parametrize("args, words", [
    (["--gradcheck-method=centre"], "*--gradcheck-method*'centre' must be one of*"),
    (["--gradcheck-rtol=-1"], "*--gradcheck-rtol*must be >= 0*"),
    (["--gradcheck-eps=0"], "*--gradcheck-eps*must be > 0*"),
    (["--gradcheck-seed=x"], "*--gradcheck-seed*non-negative integer*"),
    (["--gradcheck-summary=some"], "*--gradcheck-summary*must be one of*"),
])
def test_bad_command_line_value_is_a_usage_error(pytester, args, words):
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([words])


@pytest.mark.parametrize("key, value", [("gradcheck_rtol", "abc"), ("gradcheck_mode", "slow"),
                                        ("gradcheck_summary", "most")])
def test_bad_ini_value_is_a_usage_error_naming_the_key(pytester, key, value):
    pytester.makeini(f"[pytest]\n{key} = {value}\n")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*ini option {key}*{value}*"])


def test_report_header_shows_active_defaults(pytester):
    pytester.makeini("[pytest]\ngradcheck_rtol = 1e-4\n")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--gradcheck-method=forward")
    # rtol alone switches to the explicit rule with atol 0 (the header once said "atol=model")
    result.stdout.fnmatch_lines([f"gradcheck: method=forward mode={opts.DEFAULT_MODE} seed=0 eps=auto "
                                 "tolerance=atol 0 + rtol 0.0001*|numeric|"])


def test_report_header_names_the_error_model_when_no_tolerance_is_set(pytester):
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines([f"gradcheck: method=central mode={opts.DEFAULT_MODE} seed=0 eps=auto "
                                 "tolerance=error model (no atol/rtol set)"])


def test_precedence_chain(pytester):
    """default < ini < command line < module < class < function marker < call keywords."""
    pytester.makepyprojecttoml("""
        [tool.pytest.ini_options]
        gradcheck_rtol = "1e-3"
        gradcheck_atol = "1e-7"
        gradcheck_method = "forward"
        gradcheck_mode = "fast"
        gradcheck_seed = "3"
    """)
    pytester.makepyfile(QUAD + """
import pytest
pytestmark = pytest.mark.gradcheck(method="central4", eps=1e-4)

def test_module_level(gradcheck_options):
    assert gradcheck_options == dict(atol=1e-7, rtol=1e-3, eps=1e-4, method="central4", mode="fast", seed=5)

@pytest.mark.gradcheck(mode="full", eps=1e-5)
class TestClass:
    def test_class_level(self, gradcheck_options):
        assert gradcheck_options == dict(atol=1e-7, rtol=1e-3, eps=1e-5, method="central4", mode="full", seed=5)

    @pytest.mark.gradcheck(seed=11, method="central")
    def test_function_level(self, gradcheck_options):
        assert gradcheck_options == dict(atol=1e-7, rtol=1e-3, eps=1e-5, method="central", mode="full", seed=11)

    @pytest.mark.gradcheck(method="central")
    def test_call_keywords_win(self, gradcheck):
        result = gradcheck(quad, P, quad_grad, method="forward", atol=None, rtol=None, eps=None)
        assert result.method == "forward" and result.seed == 5 and result.status == "pass"

def test_defaults_without_anything(gradcheck):
    assert gradcheck.options["method"] == "central4"
""")
    result = pytester.runpytest("--gradcheck-seed=5", "-v")
    result.assert_outcomes(passed=5)


@pytest.mark.parametrize("args, ini, expected", [
    (["--gradcheck-mode=fast"], "", {"mode": "fast"}),
    ([], "gradcheck_eps = 0.01", {"eps": 0.01}),
    (["--gradcheck-eps=0.01"], "", {"eps": 0.01}),
    (["--gradcheck-rtol=0.01"], "", {"rtol": 0.01}),
    (["--gradcheck-atol=0.01"], "", {"atol": 0.01}),
    ([], "gradcheck_seed = 7", {"seed": 7}),
    (["--gradcheck-seed=9"], "gradcheck_seed = 7", {"seed": 9}),
], ids=["cli-mode", "ini-eps", "cli-eps", "cli-rtol", "cli-atol", "ini-seed", "cli-seed-over-ini"])
def test_option_reaches_the_check_and_changes_it(pytester, args, ini, expected):
    """The resolved value reaches the checker: the fixture's result equals a direct call with
    that value and differs from one with the defaults (an option that never arrived could not)."""
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(QUAD + f"""
import pytest
from pytest_gradcheck import check_gradient
EXPECTED = {expected!r}

def seen(r):
    return (r.status, r.mode, r.seed, r.tolerance, r.max_ratio, r.n_evals, r.escape_probability)

def test_value_arrives(gradcheck, gradcheck_options):
    assert {{k: gradcheck_options[k] for k in EXPECTED}} == EXPECTED
    via = gradcheck(quad, P, quad_grad)
    assert seen(via) == seen(check_gradient(quad, P, quad_grad, **EXPECTED))
    assert seen(via) != seen(check_gradient(quad, P, quad_grad))
    assert via.status == "pass"

def test_outcome(gradcheck):
    # 0.1% off: the error model fails it; an explicit 1% tolerance (rtol, or atol at |g| <= 4) passes it
    slightly_off = lambda p: 2.002 * p
    if "rtol" in EXPECTED or "atol" in EXPECTED:
        assert gradcheck(quad, P, slightly_off).status == "pass"
    else:
        with pytest.raises(AssertionError):
            gradcheck(quad, P, slightly_off)
""")
    pytester.runpytest(*args).assert_outcomes(passed=2)


def test_builtin_defaults_and_reset_to_error_model(pytester):
    pytester.makeini("[pytest]\ngradcheck_atol = 1e-6\n")
    pytester.makepyfile("""
from pytest_gradcheck import options
def test_defaults(gradcheck_options):
    assert gradcheck_options == dict(atol=None, rtol=None, eps=None,
        method=options.DEFAULT_METHOD, mode=options.DEFAULT_MODE, seed=0)
""")
    pytester.runpytest("--gradcheck-atol=none").assert_outcomes(passed=1)
    pytester.runpytest().assert_outcomes(failed=1)


@pytest.mark.parametrize("mark, words", [
    ("@pytest.mark.gradcheck(1e-6)", "*@pytest.mark.gradcheck on function 'test_x': takes keyword arguments only*1e-06*"),
    ("@pytest.mark.gradcheck(tol=1e-6)", "*@pytest.mark.gradcheck on function 'test_x': unknown option 'tol'*"),
    ("@pytest.mark.gradcheck(method='sideways')", "*method='sideways' must be one of*"),
    ("@pytest.mark.gradcheck(eps=-1.0)", "*eps=-1.0 must be > 0*"),
])
def test_bad_marker_is_an_error_at_setup(pytester, mark, words):
    pytester.makepyfile(f"""
import pytest
{mark}
def test_x():
    pass
""")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ERROR at setup of test_x*", words])
    result.stdout.no_fnmatch_line("*During handling*")


def test_bad_class_and_module_markers_name_their_level(pytester):
    pytester.makepyfile(test_a="""
import pytest
pytestmark = pytest.mark.gradcheck(methd="central")
def test_x(gradcheck): pass
""", test_b="""
import pytest
@pytest.mark.gradcheck(seed=-2)
class TestK:
    def test_y(self): pass
""")
    result = pytester.runpytest()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines([
        "*on module 'test_a.py': unknown option 'methd'*",
        "*on class 'TestK': seed=-2 must be a non-negative integer*",
    ])


def test_options_hook_adjusts_options(pytester):
    pytester.makeconftest("""
def pytest_gradcheck_options(config, item, options):
    if "float32" in item.name:
        options["rtol"] = 1e-2
""")
    pytester.makepyfile("""
import pytest
@pytest.mark.gradcheck(rtol=1e-9)
def test_float32(gradcheck_options):
    assert gradcheck_options["rtol"] == 1e-2
def test_other(gradcheck_options):
    assert gradcheck_options["rtol"] is None
""")
    pytester.runpytest().assert_outcomes(passed=2)
