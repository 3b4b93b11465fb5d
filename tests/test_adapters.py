"""The adapter registry: lazy torch/jax registration, register_adapter, the pluggy entry-point hook."""

import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest

from pytest_gradcheck import GradcheckInputError, check_gradient
from pytest_gradcheck.frameworks import Adapter, adapter_for, hookimpl, register_adapter
from pytest_gradcheck.frameworks import registry


class Boxed:
    """A toy third-party array type: a numpy array in a box."""

    def __init__(self, a):
        self.a = np.asarray(a)


class BoxedAdapter(Adapter):
    name = "boxed"
    aliases_buffer = True

    def owns(self, leaf):
        return isinstance(leaf, Boxed)

    def to_numpy(self, leaf):
        return np.array(leaf.a, copy=True)

    def leaf_from_buffer(self, buffer, like):
        return Boxed(buffer.reshape(like.a.shape))  # np.asarray keeps the view: aliases

    def scalar_output(self, out):
        return float(out.a), float(np.finfo(out.a.dtype).eps)


@pytest.fixture
def clean_registry(monkeypatch):
    monkeypatch.setattr(registry, "_ADAPTERS", list(registry._ADAPTERS))
    monkeypatch.setattr(registry, "PLUGIN_ERRORS", [])
    yield registry


def test_register_adapter_makes_a_new_leaf_type_checkable(clean_registry):
    assert adapter_for(Boxed([1.0])) is None
    register_adapter(BoxedAdapter())
    register_adapter(BoxedAdapter())  # idempotent per type
    assert sum(isinstance(a, BoxedAdapter) for a in registry.adapters()) == 1
    assert adapter_for(Boxed([1.0])).name == "boxed"
    p = {"w": Boxed(np.array([0.3, -1.2, 2.0])), "s": 0.5}
    fun = lambda q: Boxed(np.sum(np.sin(q["w"].a)) * q["s"])  # noqa: E731
    grad = lambda q: {"w": Boxed(np.cos(q["w"].a) * q["s"]), "s": float(np.sum(np.sin(q["w"].a)))}  # noqa: E731
    assert check_gradient(fun, p, grad).status == "pass"
    bad = lambda q: {"w": Boxed(np.cos(q["w"].a)), "s": float(np.sum(np.sin(q["w"].a)))}  # noqa: E731
    res = check_gradient(fun, p, bad)
    assert res.status == "fail" and {e.leaf for e in res.worst if e.verdict == "fail"} == {"w"}


def test_entry_point_plugins_are_loaded_through_pluggy(clean_registry, monkeypatch):
    import pluggy

    plugin = types.ModuleType("fake_gradcheck_plugin")

    @hookimpl
    def pytest_gradcheck_adapters():
        return [BoxedAdapter()]

    plugin.pytest_gradcheck_adapters = pytest_gradcheck_adapters
    groups = []

    def fake_load(self, group, name=None):
        groups.append(group)
        self.register(plugin, name="fake")
        return 1

    monkeypatch.setattr(pluggy.PluginManager, "load_setuptools_entrypoints", fake_load)
    monkeypatch.setattr(registry, "_PLUGINS_DONE", False)
    assert adapter_for(Boxed([2.0])).name == "boxed"
    assert groups == ["pytest_gradcheck.adapters"]
    assert registry.PLUGIN_ERRORS == []
    adapter_for(Boxed([2.0]))
    assert groups == ["pytest_gradcheck.adapters"]  # loaded once


def test_a_broken_plugin_warns_and_does_not_break_checks(clean_registry, monkeypatch):
    import pluggy

    plugin = types.ModuleType("broken_plugin")

    @hookimpl
    def pytest_gradcheck_adapters():
        return ["not an adapter"]

    plugin.pytest_gradcheck_adapters = pytest_gradcheck_adapters
    monkeypatch.setattr(pluggy.PluginManager, "load_setuptools_entrypoints",
                        lambda self, group, name=None: self.register(plugin) and 1)
    monkeypatch.setattr(registry, "_PLUGINS_DONE", False)
    with pytest.warns(RuntimeWarning, match="not an Adapter"):
        a = adapter_for(np.zeros(2))
    assert a.name == "numpy"
    assert registry.PLUGIN_ERRORS and "not an Adapter" in registry.PLUGIN_ERRORS[0]


def test_torch_and_jax_are_never_imported_by_us():
    code = textwrap.dedent("""
        import sys, numpy as np
        import pytest_gradcheck
        from pytest_gradcheck import check_gradient
        from pytest_gradcheck.frameworks import adapters
        r = check_gradient(lambda x: float(np.sum(x**2)), np.arange(3.0), lambda x: 2*x)
        assert r.status == "pass"
        names = [a.name for a in adapters()]
        assert "torch" not in sys.modules and "jax" not in sys.modules, sorted(m for m in sys.modules if m in ("torch", "jax"))
        assert names == ["numpy"], names
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_torch_adapter_registers_once_torch_is_imported(monkeypatch):
    torch = pytest.importorskip("torch")
    a = adapter_for(torch.zeros(1))
    assert a is not None and a.name == "torch"
    assert sum(x.name == "torch" for x in registry.adapters()) == 1
    # a registry restored by some test (torch imported meanwhile) gets the adapter back
    monkeypatch.setattr(registry, "_ADAPTERS", [])
    assert adapter_for(torch.zeros(1)) is a
    assert [x.name for x in registry.adapters()].count("torch") == 1


def test_numpy_session_and_plugin_start_up_never_import_tensorflow(pytester):
    """TF's import costs 5-12 s and ~0.5 GiB: a numpy-only run (the plugin loaded, a check run,
    every adapter looked up) must never pay it."""
    pytester.makepyfile(test_np="""
        import sys, numpy as np
        from pytest_gradcheck import check_gradient
        from pytest_gradcheck.frameworks import adapters

        def test_numpy_only(gradcheck):
            gradcheck(lambda x: float(np.sum(x ** 2)), np.arange(3.0), lambda x: 2 * x)
            assert check_gradient(lambda x: float(np.sum(x ** 3)), np.arange(3.0), lambda x: 3 * x ** 2).status == "pass"
            assert "tensorflow" not in [a.name for a in adapters()]
            assert not {"tensorflow", "keras"} & set(sys.modules), sorted({"tensorflow", "keras"} & set(sys.modules))
    """)
    res = pytester.runpytest_subprocess("-p", "no:randomly", "-q")
    res.assert_outcomes(passed=1)


class _Opaque:
    """A framework object no adapter knows, with the usual .numpy() way out."""

    def numpy(self):
        return np.zeros(2)


def test_unsupported_type_names_the_frameworks_and_the_way_out():
    with pytest.raises(GradcheckInputError) as e:
        check_gradient(lambda p: 0.0, {"w": _Opaque()}, lambda p: p)
    msg = str(e.value)
    assert "params leaf 'w' has unsupported type _Opaque" in msg
    for word in ("numpy", "torch", "jax", "tensorflow", ".numpy()"):
        assert word in msg, (word, msg)
    with pytest.raises(GradcheckInputError, match=r"grad leaf 'w' has unsupported type _Opaque.*\.numpy\(\)"):
        check_gradient(lambda p: float(np.sum(p["w"])), {"w": np.ones(2)}, lambda p: {"w": _Opaque()})


def test_fun_that_ignores_params_is_named_not_blamed_on_the_gradient():
    W = np.random.default_rng(0).normal(size=(3, 4))
    model = {"W": W.copy()}

    def fun(p):  # the slip: reads the model's own W instead of p["W"]
        return float(np.sum(np.tanh(model["W"]) ** 2))

    def fun_right(p):
        return float(np.sum(np.tanh(p["W"]) ** 2))

    def grad(p):
        t = np.tanh(p["W"])
        return {"W": 2 * t * (1 - t ** 2)}

    res = check_gradient(fun, {"W": W.copy()}, grad)
    assert res.status == "fail"
    assert res.diagnosis["summary"].startswith("fun ignores params"), res.diagnosis
    assert "analytic value is wrong" not in str(res)
    assert check_gradient(fun_right, {"W": W.copy()}, grad).status == "pass"
    # a real bug is still blamed on the gradient, not on fun
    wrong = check_gradient(fun_right, {"W": W.copy()}, lambda p: {"W": 1.01 * grad(p)["W"]})
    assert wrong.status == "fail" and "fun ignores params" not in str(wrong)


def test_fun_that_ignores_one_leaf_is_named_with_that_leaf():
    rng = np.random.default_rng(1)
    W, b = rng.normal(size=(3, 2)), rng.normal(size=2)
    model = {"W": W.copy()}

    def fun(p):  # the slip: W from the model, b from p
        return float(np.sum(np.tanh(np.ones(3) @ model["W"] + p["b"]) ** 2))

    def grad(p):
        z = np.tanh(np.ones(3) @ p["W"] + p["b"])
        d = 2 * z * (1 - z ** 2)
        return {"W": np.outer(np.ones(3), d), "b": d}

    res = check_gradient(fun, {"W": W.copy(), "b": b.copy()}, grad)
    assert res.status == "fail"
    assert res.diagnosis["summary"].startswith("fun ignores params leaf 'W'"), res.diagnosis["summary"]
    assert res.diagnosis["ignores_params"] == ["W"]
