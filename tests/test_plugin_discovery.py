"""Model discovery: @model, the naming convention, ini modules, entry points,
conftest files, model items and the gradcheck_model fixture."""

import pytest

PYTEST_9 = int(pytest.__version__.split(".")[0]) >= 9

MODELS = """
import numpy as np
from pytest_gradcheck.discovery import model

@model(params=lambda rng: {"W": rng.normal(size=(2, 3))}, grad=lambda p: {"W": 2 * p["W"]})
def two_layer_net(p):
    return float((p["W"] ** 2).sum())

@model(params=np.array([0.3, -0.2]), grad=lambda x: 3.5 * x ** 2, name="cube_bad")
def cube(x):
    return float((x ** 3).sum())

def softplus(x): return float(np.log1p(np.exp(x)).sum())
def softplus_grad(x): return 1 / (1 + np.exp(-x))
def softplus_params(): return np.linspace(-1, 1, 4)

def sq(x): return float((x ** 2).sum())
def grad_sq(x): return 2 * x
sq_params = np.ones(2)

def _hidden(x): return 0.0
def _hidden_grad(x): return x
_hidden_params = 1.0
def lonely(x): return 0.0          # no _params sibling: not a model
def lonely_grad(x): return x

import pytest
def fx(x): return 0.0               # a fixture named like the params: not a model
def fx_grad(x): return x
@pytest.fixture
def fx_params(): return 1.0
"""


def listed(pytester, *modules):
    """An ini file naming ``modules`` in gradcheck_models (importable from the test directory)."""
    pytester.syspathinsert()
    pytester.makeini("[pytest]\ngradcheck_models =\n" + "".join(f"    {m}\n" for m in modules))


def test_only_decorated_models_of_an_unlisted_test_module_become_items(pytester):
    pytester.makepyfile(test_nets=MODELS + "\ndef test_plain():\n    pass\n")
    result = pytester.runpytest("--collect-only", "-q", "-W", "error::pytest.PytestWarning")
    result.stdout.fnmatch_lines([
        "test_nets.py::test_plain",
        "test_nets.py::gradcheck[[]two_layer_net[]]",
        "test_nets.py::gradcheck[[]cube_bad[]]",
        "3 tests collected*",
    ])
    result.stdout.no_fnmatch_line("*softplus*")  # the naming convention: listed modules only
    result.stdout.no_fnmatch_line("*warning*")


def test_models_in_a_listed_test_module_become_items(pytester):
    pytester.makepyfile(test_nets=MODELS + "\ndef test_plain():\n    pass\n")
    listed(pytester, "test_nets")
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines([
        "test_nets.py::test_plain",
        "test_nets.py::gradcheck[[]two_layer_net[]]",
        "test_nets.py::gradcheck[[]cube_bad[]]",
        "test_nets.py::gradcheck[[]softplus[]]",
        "test_nets.py::gradcheck[[]sq[]]",
        "5 tests collected*",
    ])
    result.stdout.no_fnmatch_line("*hidden*")
    result.stdout.no_fnmatch_line("*::gradcheck[[]lonely*")
    result.stdout.fnmatch_lines(["*GradcheckDiscoveryWarning: gradcheck: skipped test_nets.lonely, not a model: "
                                 "lonely_grad is defined but lonely_params is missing"])
    result.stdout.no_fnmatch_line("*fx*")
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["*test_nets.py::gradcheck[[]cube_bad[]] FAILED*"])


def test_selection_by_keyword_and_node_id(pytester):
    pytester.makepyfile(test_nets=MODELS)
    listed(pytester, "test_nets")
    pytester.runpytest("-k", "softplus or two_layer").assert_outcomes(passed=2)
    pytester.runpytest("test_nets.py::gradcheck[sq]").assert_outcomes(passed=1)
    pytester.runpytest("test_nets.py::gradcheck").assert_outcomes(passed=3, failed=1)
    pytester.runpytest("-k", "not gradcheck").assert_outcomes()


def test_failing_model_item_shows_the_report_not_a_traceback(pytester):
    pytester.makepyfile(test_nets=MODELS)
    result = pytester.runpytest("-k", "cube_bad")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*_ gradcheck[[]cube_bad[]] _*",
        "gradcheck 'cube_bad' failed",
        "gradient check FAILED: * entries disagree*",
        "*params[[]0[]]*",
        # pytest < 9 puts no message after an item whose failure repr is text (ours: the report)
        "FAILED test_nets.py::gradcheck[[]cube_bad[]]" + (" - gradcheck 'cube_bad' failed" if PYTEST_9 else ""),
    ])
    result.stdout.no_fnmatch_line("*discovery.py*")
    result.stdout.no_fnmatch_line("*fixtures.py*")


def test_error_in_the_users_function_points_at_the_user_code(pytester):
    pytester.makepyfile(test_m="""
import numpy as np
from pytest_gradcheck.discovery import model
def helper(x):
    raise KeyError("missing weight")
@model(params=np.ones(2), grad=lambda x: x)
def crashes(x):
    return helper(x)
""")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_m.py*in helper*", "*KeyError*missing weight*"])
    result.stdout.no_fnmatch_line("*discovery.py*")


def test_model_options_and_markers(pytester):
    pytester.makepyfile(test_m="""
import numpy as np, pytest
from pytest_gradcheck.discovery import model
pytestmark = pytest.mark.gradcheck(method="forward", seed=3)
@model(params=np.ones(2), grad=lambda x: 2 * x, method="central4")
def own(x): return float((x ** 2).sum())
@model(params=lambda rng: rng.normal(size=3), grad=lambda x: 2 * x)
def seeded(x): return float((x ** 2).sum())
""")
    reprec = pytester.inline_run()
    reprec.assertoutcome(passed=2)
    results = {c.record["label"]: c.record["result"] for c in reprec.getcalls("pytest_gradcheck_result")}
    assert results["own"]["method"] == "central4"  # the model's own option beats the module marker
    assert results["seeded"]["method"] == "forward" and results["seeded"]["seed"] == 3


def test_bad_model_options_are_a_collection_error(pytester):
    pytester.makepyfile(test_m="""
import numpy as np
from pytest_gradcheck.discovery import model
@model(params=np.ones(2), grad=lambda x: x, methd="forward")
def f(x): return 0.0
""")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting test_m.py*", "*unknown option 'methd'*"])


def test_gradcheck_model_fixture(pytester):
    pytester.makepyfile(test_m=MODELS + """
import pytest
@pytest.mark.gradcheck(seed=5)
def test_each(gradcheck_model):
    assert gradcheck_model.options["seed"] == 5
    if gradcheck_model.name == "two_layer_net":
        expected = np.random.default_rng(5).normal(size=(2, 3))
        np.testing.assert_array_equal(gradcheck_model.params["W"], expected)
    result = gradcheck_model.check(atol=1.0 if gradcheck_model.name == "cube_bad" else None)
    assert result.status == "pass"
""")
    listed(pytester, "test_m")
    result = pytester.runpytest("-v", "-k", "test_each")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines([
        "*test_each[[]two_layer_net[]] PASSED*", "*test_each[[]cube_bad[]] PASSED*",
        "*test_each[[]softplus[]] PASSED*", "*test_each[[]sq[]] PASSED*",
    ])


@pytest.fixture
def mypkg(pytester):
    """A package with models, importable from the test directory."""
    pytester.mkpydir("mypkg")
    pytester.mkpydir("mypkg/models")
    pytester.makepyfile(**{
        "mypkg/models/nets": MODELS.replace('name="cube_bad"', 'name="cube_bad", atol=1.0'),
        "mypkg/models/more": "import numpy as np\ndef tri(x): return float(x.sum())\n"
                             "def tri_grad(x): return np.ones_like(x)\ntri_params = np.ones(3)\n",
        "mypkg/other": "import numpy as np\ndef lin(x): return float(x.sum())\n"
                       "def lin_grad(x): return np.ones_like(x)\nlin_params = np.ones(3)\n",
    })
    pytester.syspathinsert()
    pytester.mkdir("tests")
    pytester.makepyfile(**{"tests/test_a": "def test_a():\n    pass\n"})
    return pytester


def test_ini_listed_modules_with_globs(mypkg):
    mypkg.makeini("[pytest]\ntestpaths = tests\ngradcheck_models =\n    mypkg.models.*\n    mypkg.other\n")
    result = mypkg.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines([
        "tests/test_a.py::test_a",
        "mypkg/models/more.py::gradcheck[[]tri[]]",
        "mypkg/models/nets.py::gradcheck[[]two_layer_net[]]",
        "mypkg/models/nets.py::gradcheck[[]cube_bad[]]",
        "mypkg/models/nets.py::gradcheck[[]softplus[]]",
        "mypkg/models/nets.py::gradcheck[[]sq[]]",
        "mypkg/other.py::gradcheck[[]lin[]]",
        "7 tests collected*",
    ])
    mypkg.runpytest().assert_outcomes(passed=7)
    mypkg.runpytest("-k", "tri or lin").assert_outcomes(passed=2)
    mypkg.runpytest("mypkg/other.py::gradcheck[lin]").assert_outcomes(passed=1)
    mypkg.runpytest("tests/test_a.py").assert_outcomes(passed=1)  # a file: no model modules
    mypkg.runpytest("tests").assert_outcomes(passed=7)  # a directory: model modules join
    # a directory walk that reaches a listed module collects it once
    mypkg.runpytest(".").assert_outcomes(passed=7)


def test_listed_module_that_fails_to_import_is_a_collection_error(mypkg):
    mypkg.makepyfile(**{"mypkg/boom": "raise RuntimeError('boom at import')\n"})
    mypkg.makeini("[pytest]\ntestpaths = tests\ngradcheck_models =\n    mypkg.boom\n    mypkg.nothere\n    mypkg.other\n")
    result = mypkg.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([
        "*ERROR collecting mypkg.boom*",
        "gradcheck: cannot import model module 'mypkg.boom' (ini option gradcheck_models):",
        "*boom.py*line 1*",
        "RuntimeError: boom at import",
        "*ERROR collecting mypkg.nothere*",
        "ModuleNotFoundError: No module named 'mypkg.nothere'",
        "*2 errors*",
    ])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    result.stdout.no_fnmatch_line("*importlib*")


def test_entry_point_modules(mypkg):
    dist = mypkg.mkdir("fakedist-1.0.dist-info")
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakedist\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[pytest_gradcheck.models]\nlinear = mypkg.other\n")
    mypkg.makeini("[pytest]\ntestpaths = tests\n")
    result = mypkg.runpytest("-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["mypkg/other.py::gradcheck[[]lin[]] PASSED*"])


def test_conftest_models_and_gradcheck_model_scope(pytester):
    pytester.makeconftest("""
import numpy as np
from pytest_gradcheck import model
@model(params=np.ones(2), grad=lambda x: 2 * x)
def root(x): return float((x ** 2).sum())
def helper(x): return 0.0      # the naming convention does not apply to conftest files
def helper_grad(x): return x
helper_params = 1.0
""")
    pytester.mkpydir("sub")
    pytester.makepyfile(**{
        "sub/conftest": "import numpy as np\nfrom pytest_gradcheck import model\n"
                        "@model(params=np.ones(2), grad=lambda x: np.ones_like(x))\n"
                        "def deep(x): return float(x.sum())\n",
        "sub/test_s": "def test_models(gradcheck_model):\n    gradcheck_model.check()\n",
        "test_top": "def test_models(gradcheck_model):\n    gradcheck_model.check()\n",
    })
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines_random([
        "conftest.py::gradcheck[[]root[]] PASSED*",
        "sub/conftest.py::gradcheck[[]deep[]] PASSED*",
        "sub/test_s.py::test_models[[]root[]] PASSED*",
        "sub/test_s.py::test_models[[]deep[]] PASSED*",
        "test_top.py::test_models[[]root[]] PASSED*",
    ])
    result.stdout.no_fnmatch_line("*helper*")


def test_no_models_skips_gradcheck_model_tests(pytester):
    pytester.makepyfile("def test_models(gradcheck_model):\n    pass\n")
    pytester.runpytest().assert_outcomes(skipped=1)


def test_decorator_misuse():
    from pytest_gradcheck.discovery import model

    with pytest.raises(TypeError, match="params is required"):
        model(lambda x: x)
    with pytest.raises(TypeError, match="unknown option 'tol'"):
        model(params=1.0, tol=1)
    with pytest.raises(ValueError, match="becomes the test id"):
        model(params=1.0, name="a::b")

    @model(params=1.0, grad=None, name="a")
    @model(params=2.0, grad=None, name="b")
    def f(x):
        return x

    assert [s.name for s in f.__gradcheck_models__] == ["b", "a"]
    with pytest.raises(ValueError, match="already registered"):
        model(params=1.0, name="a")(f)


# -- issue 22, item 6: the shapes discovery used to miss -----------------------------------------------

CALLABLE_MODELS = """
import functools
import numpy as np

def _scaled(x, a):
    return float(a * (x ** 2).sum())

half = functools.partial(_scaled, a=0.5)          # NAME as functools.partial
def half_grad(x): return x
half_params = np.array([0.3, -0.2])

wrong_half = functools.partial(_scaled, a=0.5)
def wrong_half_grad(x): return 1.5 * x              # a real bug: must fail
wrong_half_params = np.array([0.3, -0.2])

class Quadratic:                                    # NAME as a callable object
    def __init__(self, c): self.c = c
    def __call__(self, x): return float(self.c * (x ** 2).sum())

quad = Quadratic(2.0)
def quad_grad(x): return 4.0 * x
quad_params = np.array([0.1, 0.4, -0.3])

lone = functools.partial(_scaled, a=1.0)  # half a model: warned
def lone_grad(x): return 2 * x

oddgrad = Quadratic(1.0)
oddgrad_grad = 3.0                             # not a function: warned
oddgrad_params = np.ones(2)
"""


def test_partial_and_callable_object_models_get_items_and_half_models_warn(pytester):
    pytester.makepyfile(cmods=CALLABLE_MODELS)
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    listed(pytester, "cmods")
    result = pytester.runpytest("-v", "-p", "no:randomly")
    result.stdout.fnmatch_lines_random([
        "*cmods.py::gradcheck[[]half[]] PASSED*",
        "*cmods.py::gradcheck[[]wrong_half[]] FAILED*",
        "*cmods.py::gradcheck[[]quad[]] PASSED*",
        "*GradcheckDiscoveryWarning: gradcheck: skipped cmods.lone, not a model: "
        "lone_grad is defined but lone_params is missing",
        "*GradcheckDiscoveryWarning: gradcheck: skipped cmods.oddgrad, not a model: "
        "oddgrad_grad is a float, not a function*",
    ])
    result.assert_outcomes(passed=3, failed=1, warnings=2)


def test_jax_jit_model_gets_an_item(pytester):
    pytest.importorskip("jax")
    pytester.makepyfile(jmods="""
        import jax
        import jax.numpy as jnp
        import numpy as np
        jax.config.update("jax_enable_x64", True)

        @jax.jit
        def energy(x):
            return jnp.sum(jnp.sin(x) ** 2)
        def energy_grad(x): return np.sin(2 * np.asarray(x))
        energy_params = np.array([0.3, -0.2, 1.1])

        @jax.jit
        def energy_bad(x):
            return jnp.sum(jnp.sin(x) ** 2)
        def energy_bad_grad(x): return np.sin(np.asarray(x))
        energy_bad_params = np.array([0.3, -0.2, 1.1])
    """)
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    listed(pytester, "jmods")
    result = pytester.runpytest("-v", "-p", "no:randomly")
    result.stdout.fnmatch_lines_random(["*jmods.py::gradcheck[[]energy[]] PASSED*",
                                        "*jmods.py::gradcheck[[]energy_bad[]] FAILED*"])
    result.assert_outcomes(passed=2, failed=1)


def test_model_on_a_staticmethod_of_a_test_class_is_collected(pytester):
    pytester.makepyfile(test_cls="""
        import numpy as np
        from pytest_gradcheck import model

        class TestNets:
            @staticmethod
            @model(params=np.array([0.3, -0.2]), grad=lambda x: 2 * x)
            def square(x):
                return float((x ** 2).sum())

            @model(params=np.array([0.3, -0.2]), grad=lambda x: 3 * x, name="square_bad")
            @staticmethod
            def square2(x):
                return float((x ** 2).sum())

            def test_plain(self):
                pass
    """)
    result = pytester.runpytest("-v", "-p", "no:randomly")
    result.stdout.fnmatch_lines_random(["*test_cls.py::gradcheck[[]square[]] PASSED*",
                                        "*test_cls.py::gradcheck[[]square_bad[]] FAILED*",
                                        "*test_cls.py::TestNets::test_plain PASSED*"])
    result.assert_outcomes(passed=2, failed=1)


def test_glob_includes_modules_under_a_namespace_subpackage(pytester):
    pytester.makepyfile(**{
        "mods/__init__": "",
        "mods/top": "import numpy as np\ndef a(x): return float((x**2).sum())\ndef a_grad(x): return 2*x\n"
                    "a_params = np.ones(2)\n",
        "mods/ns/deep": "import numpy as np\ndef b(x): return float((x**3).sum())\ndef b_grad(x): return 3*x**2\n"
                        "b_params = np.ones(2)\n",
        "mods/ns/inner/deeper": "import numpy as np\ndef c(x): return float(x.sum())\n"
                                "def c_grad(x): return np.ones_like(x)\nc_params = np.ones(2)\n",
        "test_x": "def test_x():\n    pass\n",
    })
    listed(pytester, "mods.*")
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines_random(["mods/top.py::gradcheck[[]a[]]", "mods/ns/deep.py::gradcheck[[]b[]]",
                                        "mods/ns/inner/deeper.py::gradcheck[[]c[]]"])
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=4)
