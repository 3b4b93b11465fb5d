"""The plugin inside real test suites (issue 13): it never breaks a session it was not
asked into, reruns what failed, takes every per-test keyword of the checkers, shows the
user's frames, and prints paths a user can use from where they ran pytest."""

import pytest

# An ML test module that never uses gradcheck, with helpers that happen to be named
# like the convention: the gradient is an array (its truth value raises).
UNRELATED = """
import numpy as np

def loss(w):
    return float((w ** 2).sum())

loss_grad = np.array([1.0, 2.0])
loss_params = np.array([0.5, 0.5])

def test_loss_is_positive():
    assert loss(loss_params) > 0
"""

# A module listed in gradcheck_models: good models next to names that half fit the convention.
LISTED = """
import numpy as np

def good(x): return float((x ** 2).sum())
def good_grad(x): return 2 * x
good_params = np.ones(3)

def arr(x): return float(x.sum())
arr_grad = np.array([1.0, 2.0])             # not a function
arr_params = np.ones(2)

def orphan(x): return float(x.sum())
def orphan_grad(x): return np.ones_like(x)  # no orphan_params

def pair(x): return float(x.sum())
def pair_grad(x): return np.ones_like(x)
def pair_params(rng, size): return rng.normal(size=size)   # a factory pytest cannot call

def kw(x): return float(x.sum())
def kw_grad(x): return np.ones_like(x)
def kw_params(*, size): return np.ones(size)

def init(x): return x
def init_params(): return np.ones(2)        # no gradient sibling: a plain helper, no warning
"""


def test_unrelated_test_module_with_convention_like_names_is_left_alone(pytester):
    pytester.makepyfile(test_unrelated=UNRELATED)
    result = pytester.runpytest("-v", "-W", "error")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    result.stdout.no_fnmatch_line("*gradcheck[[]*")
    # the gradcheck_model fixture searches the test's own module too
    pytester.makepyfile(test_fixture=UNRELATED + "\ndef test_models(gradcheck_model):\n    pass\n")
    result = pytester.runpytest("-W", "error")
    result.assert_outcomes(passed=2, skipped=1)


@pytest.fixture
def listed_models(pytester):
    pytester.syspathinsert()
    pytester.makepyfile(models=LISTED, test_a="def test_a():\n    pass\n")
    pytester.makeini("[pytest]\npython_files = test_*.py\ngradcheck_models = models\n")
    return pytester


def test_listed_module_candidates_that_do_not_fit_are_skipped_with_one_warning_each(listed_models):
    result = listed_models.runpytest("-v")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=2, warnings=4)
    result.stdout.fnmatch_lines(["models.py::gradcheck[[]good[]] PASSED*"])
    out = result.stdout.str()
    for name, why in [
        ("arr", "arr_grad is a ndarray of shape (2,), not a function"),
        ("orphan", "orphan_grad is defined but orphan_params is missing"),
        ("pair", "pair_params is a factory with the signature (rng, size)"),
        ("kw", "kw_params is a factory with the signature (*, size)"),
    ]:
        line = f"GradcheckDiscoveryWarning: gradcheck: skipped models.{name}, not a model: {why}"
        assert out.count(line) == 1, (line, out)
    assert "models.init" not in out
    result.stdout.no_fnmatch_line("*discovery.py*")


def test_discovery_warning_as_error_is_a_collection_error_not_an_internal_error(listed_models):
    result = listed_models.runpytest("-W", "error::pytest_gradcheck.discovery.GradcheckDiscoveryWarning")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting*models.py*", "*skipped models.arr, not a model*"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


@pytest.mark.parametrize("args, expected", [
    ((), {"test_a", "gradcheck[good]"}),                     # no arguments: the whole suite
    ((".",), {"test_a", "gradcheck[good]"}),                 # a directory: the whole suite
    (("test_a.py",), {"test_a"}),                            # a file: only what it holds
    (("test_a.py::test_a",), {"test_a"}),                    # a node id: only that
    (("models.py::gradcheck[good]",), {"gradcheck[good]"}),  # a model item's own node id
    (("models.py",), {"gradcheck[good]"}),                   # the listed module as a file
    (("test_a.py", "."), {"test_a", "gradcheck[good]"}),     # a directory among files
])
def test_which_arguments_bring_the_configured_model_items(listed_models, args, expected):
    result = listed_models.runpytest("--collect-only", "-q", *args)
    collected = {line.split("::", 1)[1] for line in result.stdout.lines if "::" in line}
    assert collected == expected


def test_no_arguments_bring_the_model_items_even_when_testpaths_names_files(listed_models):
    listed_models.makeini("[pytest]\ntestpaths = test_a.py\ngradcheck_models = models\n")
    result = listed_models.runpytest("-q", "-W", "ignore::pytest.PytestWarning")
    result.assert_outcomes(passed=2)


LF_MODELS = """
import numpy as np
def good(x): return float((x ** 2).sum())
def good_grad(x): return 2 * x
good_params = np.ones(3)
def bad(x): return float((x ** 3).sum())
def bad_grad(x): return 2 * x
bad_params = np.ones(3)
"""

LF_TESTS = """
import numpy as np
from pytest_gradcheck import model
@model(params=np.ones(2), grad=lambda x: x)
def inmod(x): return float((x ** 2).sum())
def test_ok(): pass
def test_broken(): assert 0
"""


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_last_failed_and_failed_first_rerun_the_failed_model_items(pytester, xdist):
    if xdist:
        pytest.importorskip("xdist")
    else:
        xdist = ["-p", "no:xdist"]
    pytester.mkpydir("mypkg")
    pytester.makepyfile(**{"mypkg/models": LF_MODELS, "tests/test_a": LF_TESTS})
    pytester.makeini("[pytest]\ntestpaths = tests\npythonpath = .\ngradcheck_models = mypkg.models\n")
    failed = {"tests/test_a.py::test_broken", "tests/test_a.py::gradcheck[inmod]", "mypkg/models.py::gradcheck[bad]"}

    def outcomes(*args):
        result = pytester.runpytest("-rA", *xdist, *args)
        lines = [line.split(" ", 1) for line in result.stdout.lines
                 if line.startswith(("PASSED ", "FAILED "))]
        return result, [(status, rest.split(" - ")[0]) for status, rest in lines]

    _, first = outcomes()
    assert {nodeid for status, nodeid in first if status == "FAILED"} == failed
    result, rerun = outcomes("--lf")
    assert {nodeid for _, nodeid in rerun} == failed and all(s == "FAILED" for s, _ in rerun)
    result = pytester.runpytest(*xdist, "--ff", "-v")
    result.assert_outcomes(passed=2, failed=3)
    if "-n" not in xdist:  # under xdist the workers collect: no status line, and their own order
        result.stdout.fnmatch_lines(["run-last-failure: rerun previous 3 failures first*"])
        ran = [line.split(" ")[0] for line in result.stdout.lines if line.endswith("]") and "::" in line]
        assert set(ran[:3]) == failed, ran


SPY = """
import functools
import numpy as np, pytest, pytest_gradcheck

CALLS = []

@pytest.fixture
def spy(monkeypatch):
    # the fixture looks the checkers up at call time: record what each one gets
    for name in ("check_gradient", "check_vjp", "check_hessian"):
        real = getattr(pytest_gradcheck, name)
        @functools.wraps(real)  # keeps the signature the plugin reads
        def wrapper(*args, _real=real, _name=name, **kwargs):
            CALLS.append((_name, kwargs))
            return _real(*args, **kwargs)
        monkeypatch.setattr(pytest_gradcheck, name, wrapper)
    CALLS.clear()
    return CALLS

def quad(p): return float((p ** 2).sum())
def quad_grad(p): return 2 * p
def lin(x): return 2.0 * x
def lin_vjp(x, v): return 2.0 * v
"""


def test_marker_and_model_take_the_keywords_some_checkers_take(pytester):
    pytester.makepyfile(test_k=SPY + """
@pytest.mark.gradcheck(n_probes=3, mode="fast", n_cotangents=4, vectorized=False)
def test_marked(gradcheck, spy):
    assert gradcheck.options["n_probes"] == 3
    gradcheck(quad, np.linspace(-1.0, 1.0, 6), quad_grad)
    gradcheck.vjp(lin, np.ones(3), lin_vjp, mode="full")
    (_, g), (_, v) = spy
    # each checker gets the settings it takes: n_probes is not check_vjp's
    assert (g["n_probes"], g["vectorized"], g["mode"]) == (3, False, "fast")
    assert v["n_cotangents"] == 4 and "n_probes" not in v and "vectorized" not in v

def test_call_keyword_wins(gradcheck, spy):
    gradcheck(quad, np.ones(4), quad_grad, mode="fast", n_probes=5)
    assert spy[0][1]["n_probes"] == 5

def test_call_keyword_the_checker_does_not_take(gradcheck):
    gradcheck.vjp(lin, np.ones(3), lin_vjp, n_probes=2)

@pytest.mark.gradcheck(n_probes=0)
def test_bad_value(gradcheck):
    pass

@pytest.mark.gradcheck(probes=3)
def test_unknown(gradcheck):
    pass

@pytest_gradcheck.model(params=np.ones(3), grad=quad_grad, mode="fast", n_probes=2)
def quad_model(p): return quad(p)
""")
    result = pytester.runpytest("-rA", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1, errors=2)
    out = result.stdout.str()
    assert "test_k.py::gradcheck[quad_model]" in out
    result.stdout.fnmatch_lines_random([
        "*TypeError: gradcheck.vjp() call: unexpected keyword argument(s) n_probes; check_vjp takes: *n_cotangents*",
        "@pytest.mark.gradcheck on function 'test_bad_value': n_probes=0 must be a positive integer",
        "@pytest.mark.gradcheck on function 'test_unknown': unknown option "
        "'probes'; valid options: atol, rtol, eps, method, mode, seed; and for some checkers: *"
        "n_probes (check_gradient, check_hessian)*",
    ])


def test_every_checker_keyword_has_a_validator():
    """The accepted names come from the checkers' signatures; a new one needs a validator."""
    from pytest_gradcheck import options

    keywords = options.checker_keywords()
    assert {"n_probes", "n_cotangents", "n_tangents", "vectorized", "batch_memory"} <= set(keywords)
    assert "hvp" not in keywords and not any(name.startswith("_") for name in keywords)
    for name in keywords:
        assert name in options._VALIDATORS, f"add a validator for the checker keyword {name!r}"
    assert options.validate("n_probes", "4") == 4 and options.validate("vectorized", "false") is False


TRACEBACKS = {
    "helpers": "def boom(p):\n    raise KeyError('missing weight')\n",
    "test_tb": """
import numpy as np
from helpers import boom
from pytest_gradcheck import check_gradient

def quad(p): return float((p ** 2).sum())
def quad_grad(p): return 2 * p
def bad_grad(p): return 3 * p

def test_input_error(gradcheck):
    gradcheck(quad, np.ones(3), lambda p: np.ones(2))

def test_failure(gradcheck):
    gradcheck(quad, np.ones(3), bad_grad)

def test_user_code_raises(gradcheck):
    gradcheck(boom, np.ones(3), quad_grad)

def test_vjp_input_error(gradcheck):
    gradcheck.vjp(lambda x: 2.0 * x, np.ones(3), lambda x, v: np.ones(2))

def test_direct_call():
    check_gradient(quad, np.ones(3), lambda p: np.ones(2))
""",
}


def _sections(lines):
    """test name -> the lines of its failure section."""
    out, name = {}, None
    for line in lines:
        if line.startswith("_") and line.rstrip("_ ").strip("_ "):
            name = line.strip("_ ").split("[")[0].strip()
            out[name] = []
        elif line.startswith("=") and name is not None and "short test summary" in line:
            break
        elif name is not None:
            out[name].append(line)
    return out


@pytest.mark.parametrize("style", ["auto", "short", "long"])
@pytest.mark.parametrize("xdist", [["-p", "no:xdist"], ["-n", "2"]], ids=["serial", "xdist"])
def test_tracebacks_show_the_users_frames_and_message_not_the_plugins(pytester, style, xdist):
    if "-n" in xdist:
        pytest.importorskip("xdist")
    pytester.makepyfile(**TRACEBACKS)
    pytester.syspathinsert()
    result = pytester.runpytest(f"--tb={style}", "--gradcheck-summary=none", "-p", "no:cacheprovider", *xdist)
    result.assert_outcomes(failed=5)
    sections = _sections(result.stdout.lines)
    expected = {
        "test_input_error": ("gradcheck(quad, np.ones(3), lambda p: np.ones(2))",
                             "GradcheckInputError: grad leaf 'params' has shape (2,) but params leaf has shape (3,)"),
        "test_failure": ("gradcheck(quad, np.ones(3), bad_grad)", "GradcheckError: gradcheck 'check' failed"),
        "test_user_code_raises": ("raise KeyError('missing weight')", "fun raised KeyError at params"),
        "test_vjp_input_error": ("gradcheck.vjp(lambda x", "GradcheckInputError:"),
        "test_direct_call": ("check_gradient(quad, np.ones(3), lambda p: np.ones(2))", "GradcheckInputError:"),
    }
    for name, (frame, message) in expected.items():
        text = "\n".join(sections[name])
        assert frame in text and message in text, text
        assert "pytest_gradcheck/" not in text and "pytest_gradcheck\\" not in text, text
        # before the first message line: the test's own lines (and the user's helper), no more
        before = [line for line in sections[name][: next(i for i, line in enumerate(sections[name])
                                                         if line.lstrip().startswith("E "))] if line.strip()]
        limit = 14 if name == "test_user_code_raises" else 6
        assert len(before) <= limit, text


def test_full_trace_still_shows_every_frame(pytester):
    pytester.makepyfile(**TRACEBACKS)
    pytester.syspathinsert()
    result = pytester.runpytest("--full-trace", "-p", "no:xdist", "-k", "test_input_error")
    result.stdout.fnmatch_lines(["*pytest_gradcheck*trees.py*GradcheckInputError*"])


def test_paths_and_rerun_ids_are_relative_to_where_pytest_ran(pytester, monkeypatch, tmp_path_factory):
    from pytest_gradcheck.reporting.html_report import extract_data

    pytester.makeini("[pytest]\n")  # the rootdir: the pytester directory
    pytester.makepyfile(**{"tests/test_m": """
import numpy as np
def test_quad(gradcheck):
    gradcheck(lambda p: float((p ** 2).sum()), np.ones(2), lambda p: 2 * p)
"""})
    elsewhere = tmp_path_factory.mktemp("reports") / "report.html"
    monkeypatch.chdir(pytester.path / "tests")  # the user runs pytest inside tests/
    result = pytester.runpytest("-p", "no:cacheprovider", "test_m.py",
                                f"--gradcheck-html={elsewhere}", "--gradcheck-json=out/r.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines_random([f"gradcheck HTML report: {elsewhere}", "gradcheck JSON report: out/r.json"])
    result.stdout.no_fnmatch_line("*../..*")
    (check,) = extract_data(elsewhere.read_text())["checks"]
    assert check["nodeid"] == "tests/test_m.py::test_quad"  # the key of the check across runs
    assert check["run_id"] == "test_m.py::test_quad"  # what `pytest ...` takes from tests/
    assert check["rerun"] == "pytest test_m.py::test_quad"  # the command the page shows
