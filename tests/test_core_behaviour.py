"""check_gradient's promised behaviours (issue 2): schemes, steps, scales,
dtypes, kinks, nondeterminism, in-place mutation, bad input, the rule and the
report."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from pytest_gradcheck import GradcheckError, GradcheckInputError, GradcheckResult, check_gradient

METHODS = ["forward", "backward", "central", "central4", "complex"]


def smooth(p):
    x = p["x"]
    return np.sum(np.exp(x) * np.sin(x)) + np.sum(x[:-1] * x[1:])


def smooth_grad(p):
    x = p["x"]
    g = np.exp(x) * (np.sin(x) + np.cos(x))
    g[:-1] += x[1:]
    g[1:] += x[:-1]
    return {"x": g}


def _x(n=6, seed=0):
    return {"x": np.random.default_rng(seed).normal(size=n)}


def _scaled(grad, leaf, index, factor):
    def g(p):
        out = grad(p)
        out = {k: np.array(v, copy=True) for k, v in out.items()}
        out[leaf][index] *= factor
        return out
    return g


# ------------------------------------------------------------------ schemes


@pytest.mark.parametrize("method", METHODS)
def test_every_scheme_passes_smooth_function(method):
    r = check_gradient(smooth, _x(), smooth_grad, method=method)
    assert isinstance(r, GradcheckResult)
    assert r.status == "pass", str(r)
    assert r.method == method
    assert r.n_checked == 6
    assert r.max_rel_error < 1e-4


@pytest.mark.parametrize("method", METHODS)
def test_every_scheme_catches_one_percent(method):
    r = check_gradient(smooth, _x(), _scaled(smooth_grad, "x", 3, 1.01), method=method)
    assert r.status == "fail", str(r)
    assert r.worst[0].leaf == "x" and tuple(r.worst[0].index) == (3,)


def test_complex_step_is_essentially_exact():
    r = check_gradient(smooth, _x(), smooth_grad, method="complex")
    assert r.max_rel_error < 1e-13


# ------------------------------------------------------------------ steps and scales


def _exp_model(x0):
    return (lambda p: np.sum(np.exp(p["x"]) * (1 + p["x"]))), (lambda p: {"x": np.exp(p["x"]) * (2 + p["x"])}), {"x": x0}


@pytest.mark.parametrize("x0", [np.zeros(4), np.full(4, 1e-6) * [1, -2, 3, 0.5], 1e-4 * np.arange(1, 5)],
                         ids=["exactly-0", "1e-6", "1e-4"])
def test_step_for_params_at_or_near_zero(x0):
    f, g, p = _exp_model(x0)
    r = check_gradient(f, p, g)
    assert r.status == "pass", str(r)
    r = check_gradient(f, p, _scaled(g, "x", 1, 1.001))
    assert r.status == "fail", str(r)


def test_step_for_params_measured_in_micro_units():
    # the function varies on the scale of the parameter itself (~1e-6)
    c = np.array([0.5, -1.0, 2.0])

    def f(p):
        return np.sum(np.tanh(p["a"] * 1e6 * c))

    def g(p):
        return {"a": (1 - np.tanh(p["a"] * 1e6 * c) ** 2) * 1e6 * c}

    p = {"a": np.array([1e-6, -2e-6, 0.5e-6])}
    assert check_gradient(f, p, g).status == "pass"
    assert check_gradient(f, p, _scaled(g, "a", 0, 1.01)).status == "fail"


@pytest.mark.parametrize("kind", ["scale-1e4", "offset-1e4"])
def test_step_for_params_around_1e4(kind):
    rng = np.random.default_rng(3)
    if kind == "scale-1e4":
        x0 = 1e4 * (1 + 0.2 * rng.normal(size=4))
        f = lambda p: np.sum(np.sin(p["x"] / 1e4))  # noqa: E731
        g = lambda p: {"x": np.cos(p["x"] / 1e4) / 1e4}  # noqa: E731
    else:
        x0 = 1e4 + rng.normal(size=4)
        f = lambda p: np.sum(np.sin(p["x"] - 1e4))  # noqa: E731
        g = lambda p: {"x": np.cos(p["x"] - 1e4)}  # noqa: E731
    p = {"x": x0}
    assert check_gradient(f, p, g).status == "pass"
    assert check_gradient(f, p, _scaled(g, "x", 2, 1.01)).status == "fail"


@pytest.mark.parametrize("scale", [1e-10, 1e8])
def test_loss_scale(scale):
    f = lambda p: scale * smooth(p)  # noqa: E731
    g = lambda p: {"x": scale * smooth_grad(p)["x"]}  # noqa: E731
    r = check_gradient(f, _x(), g)
    assert r.status == "pass", str(r)
    assert check_gradient(f, _x(), lambda p: {"x": -g(p)["x"]}).status == "fail"
    r = check_gradient(f, _x(), _scaled(g, "x", 0, 1.001))
    assert r.status == "fail", str(r)


def test_exact_zero_gradients():
    def f(p):
        return np.sum(np.sin(p["x"][:3])) + 0.0 * np.sum(p["unused"])

    def g(p):
        out = np.zeros_like(p["x"])
        out[:3] = np.cos(p["x"][:3])
        return {"x": out, "unused": np.zeros(2)}

    p = {"x": np.linspace(-1, 1, 6), "unused": np.array([0.0, 3.0])}
    r = check_gradient(f, p, g)
    assert r.status == "pass", str(r)
    # a small nonzero where the truth is exactly zero is a bug
    def g_bad(q):
        out = g(q)
        out["x"][4] = 1e-3
        return out
    r = check_gradient(f, p, g_bad)
    assert r.status == "fail", str(r)
    assert r.worst[0].where == "x[4]"


def test_mixed_scales_in_one_tree():
    def f(p):
        return (np.sum(np.exp(p["tiny"] * 1e6)) + np.sum(np.log1p((p["huge"] / 1e4) ** 2))
                + np.sum(np.cos(p["zero"] + 0.5)))

    def g(p):
        u = p["huge"] / 1e4
        return {"tiny": 1e6 * np.exp(p["tiny"] * 1e6), "huge": 2 * u / (1 + u**2) / 1e4,
                "zero": -np.sin(p["zero"] + 0.5)}

    p = {"tiny": np.array([1e-6, -3e-6]), "huge": np.array([1e4, 3e4]), "zero": np.zeros(2)}
    assert check_gradient(f, p, g).status == "pass"
    for leaf in p:
        r = check_gradient(f, p, _scaled(g, leaf, 1, 1.01))
        assert r.status == "fail", (leaf, str(r))
        assert r.worst[0].leaf == leaf


# ------------------------------------------------------------------ dtypes


def _seen_dtypes_model(refuse_float64):
    seen = []

    def f(p):
        x = p["x"]
        seen.append(x.dtype)
        if refuse_float64 and x.dtype == np.float64:
            raise TypeError("this model only runs in low precision")
        return np.sum(np.exp(x) * np.sin(x)).astype(x.dtype)

    def g(p):
        x = p["x"]
        return {"x": (np.exp(x) * (np.sin(x) + np.cos(x))).astype(x.dtype)}

    return f, g, seen


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_low_precision_params_numeric_side_in_float64(dtype):
    f, g, seen = _seen_dtypes_model(refuse_float64=False)
    p = {"x": np.random.default_rng(1).normal(size=5).astype(dtype)}
    r = check_gradient(f, p, g)
    assert r.status == "pass", str(r)
    assert np.dtype(np.float64) in seen, "numeric side should be evaluated on upcast inputs"
    # float64 evaluation makes the numeric side far more accurate than the dtype
    x64 = p["x"].astype(np.float64)
    exact = np.exp(x64) * (np.sin(x64) + np.cos(x64))
    numeric = np.asarray(r.entries["numeric"], dtype=float)
    assert np.max(np.abs(numeric - exact) / np.abs(exact)) < 1e-6
    # a bug far bigger than the dtype's precision still fails
    factor = 1.2 if dtype == np.float32 else -1.0
    bad = lambda q: {"x": (g(q)["x"] * np.array([1, 1, factor, 1, 1])).astype(dtype)}  # noqa: E731
    r = check_gradient(f, p, bad)
    assert r.status == "fail", str(r)
    assert r.worst[0].where == "x[2]"


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_low_precision_params_catch_twenty_percent(dtype):
    # the numeric side is float64-accurate, the analytic side is good to ~eps of
    # its dtype (float16: 1e-3): a 20% error on one entry is a bug in either
    f, g, seen = _seen_dtypes_model(refuse_float64=False)
    p = {"x": np.random.default_rng(1).normal(size=5).astype(dtype)}
    bad = lambda q: {"x": (g(q)["x"] * np.array([1, 1, 1.2, 1, 1])).astype(dtype)}  # noqa: E731
    r = check_gradient(f, p, bad)
    assert r.status == "fail", str(r)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_low_precision_fun_refusing_float64_falls_back(dtype):
    f, g, seen = _seen_dtypes_model(refuse_float64=True)
    p = {"x": np.random.default_rng(1).normal(size=5).astype(dtype)}
    r = check_gradient(f, p, g)
    # float16 finite differences resolve entries only to ~1e-2 of f: a small
    # entry may be "inconclusive", never "fail"
    assert r.status == "pass" if dtype == np.float32 else r.passed, str(r)
    assert np.dtype(dtype) in seen
    # numeric side in the params' dtype: float32 still resolves 30%, float16 a sign flip
    factor = 1.3 if dtype == np.float32 else -1.0
    bad = lambda q: {"x": (g(q)["x"] * np.array([1, factor, 1, 1, 1])).astype(dtype)}  # noqa: E731
    r = check_gradient(f, p, bad)
    assert r.status == "fail", str(r)
    assert tuple(r.worst[0].index) == (1,)


# ------------------------------------------------------------------ kinks


def _abs_model(analytic_at_kink, offset=0.0):
    c = np.array([0.3, -0.7])

    def f(p):
        a = p["a"]
        return np.abs(a[0] - offset) + np.sum(np.sin(a[1:] + c))

    def g(p):
        a = p["a"]
        out = np.empty_like(a)
        out[0] = analytic_at_kink
        out[1:] = np.cos(a[1:] + c)
        return {"a": out}

    return f, g, {"a": np.array([offset, 0.2, -0.4])}


@pytest.mark.parametrize("value", [0.0, 1.0, -1.0, 0.5])
def test_kink_analytic_inside_one_sided_derivatives_does_not_fail(value):
    # |x| at x=0: one-sided derivatives -1 and +1; any subgradient in [-1, 1]
    f, g, p = _abs_model(value)
    r = check_gradient(f, p, g)
    # at the kink itself a valid subgradient may be inconclusive to finite differences (never fail)
    assert r.status in ("pass", "inconclusive"), str(r)


@pytest.mark.parametrize("value", [2.0, -1.5, 3.0])
def test_kink_analytic_outside_one_sided_derivatives_fails(value):
    f, g, p = _abs_model(value)
    r = check_gradient(f, p, g)
    assert r.status == "fail", str(r)
    assert r.worst[0].where == "a[0]"


def test_relu_kink_near_but_not_at_zero():
    # pre-activation 1e-9 away from the kink: smaller than any default step
    w = np.array([1.0, 2.0, -1.0])

    def f(p):
        return np.sum(np.maximum(p["z"], 0.0) * w)

    def g(p):
        return {"z": (p["z"] > 0) * w}

    p = {"z": np.array([1e-9, 0.5, -0.3])}
    r = check_gradient(f, p, g)
    assert r.status == "pass", str(r)
    bad = lambda q: {"z": g(q)["z"] * np.array([1.0, 1.0, 1.0]) + np.array([5.0, 0, 0])}  # noqa: E731
    assert check_gradient(f, p, bad).status == "fail"


def test_other_leaf_bug_fails_next_to_a_kink():
    def f(p):
        return np.abs(p["k"][0]) + np.sum(np.exp(p["s"]))

    def g(p):
        return {"k": np.array([0.0]), "s": np.exp(p["s"]) * np.array([1.0, 1.05, 1.0])}

    r = check_gradient(f, {"k": np.array([0.0]), "s": np.array([0.1, 0.2, 0.3])}, g)
    assert r.status == "fail", str(r)
    assert r.worst[0].where == "s[1]"


# ------------------------------------------------------------------ misbehaving functions


def test_nondeterministic_fun_is_not_passed():
    noise = np.random.default_rng(306)  # seeded: the same noise on every run

    def f(p):
        return np.sum(p["x"] ** 2) + 1e-6 * noise.normal()

    def g(p):
        return {"x": 2 * p["x"]}

    p = {"x": np.array([0.5, -1.0, 2.0])}
    try:
        r = check_gradient(f, p, g)
    except GradcheckError as e:
        assert "nondeterministic" in str(e).lower()
    else:
        assert not r.passed, str(r)
        assert "nondeterministic" in str(r).lower()
        json.dumps(r.to_dict())


def test_fun_modifying_its_input_is_an_error():
    def f(p):
        x = p["x"]
        x *= 1.0000001  # in place!
        return np.sum(x**2)

    with pytest.raises(GradcheckError, match=r"(?i)in[- ]place|modif|mutat"):
        check_gradient(f, {"x": np.array([1.0, 2.0])}, lambda p: {"x": 2 * p["x"]})


def test_grad_modifying_its_input_is_an_error():
    def g(p):
        p["x"] += 1.0
        return {"x": 2 * p["x"]}

    params = {"x": np.array([1.0, 2.0])}
    with pytest.raises(GradcheckError, match=r"(?i)in[- ]place|modif|mutat"):
        check_gradient(lambda p: np.sum(p["x"] ** 2), params, g)


# ------------------------------------------------------------------ bad input


def _f2(p):
    return np.sum(p["W"] ** 2) + np.sum(p["b"])


def _g2(p):
    return {"W": 2 * p["W"], "b": np.ones_like(p["b"])}


P2 = {"W": np.arange(6.0).reshape(2, 3) / 7, "b": np.array([0.5, -0.5])}

BAD_INPUTS = {
    "grad-shape": (lambda: (_f2, P2, lambda p: {"W": 2 * p["W"].T, "b": np.ones(2)}), "W"),
    "grad-structure": (lambda: (_f2, P2, lambda p: [2 * p["W"], np.ones(2)]), None),
    "grad-missing-key": (lambda: (_f2, P2, lambda p: {"W": 2 * p["W"]}), "b"),
    "grad-extra-key": (lambda: (_f2, P2, lambda p: {**_g2(p), "c": np.ones(1)}), "c"),
    "non-scalar-output": (lambda: (lambda p: p["W"] ** 2, P2, _g2), None),
    "nan-in-f": (lambda: (lambda p: np.nan * _f2(p), P2, _g2), None),
    "inf-in-f": (lambda: (lambda p: _f2(p) + np.inf, P2, _g2), None),
    "nan-in-grad": (lambda: (_f2, P2, lambda p: {"W": 2 * p["W"], "b": np.array([1.0, np.nan])}), "b"),
    "inf-in-grad": (lambda: (_f2, P2, lambda p: {"W": 2 * p["W"] + np.array([[0, np.inf, 0], [0, 0, 0]]),
                                                 "b": np.ones(2)}), "W"),
    "fun-not-callable": (lambda: (3.0, P2, _g2), None),
    "grad-not-callable": (lambda: (_f2, P2, {"W": 1}), None),
    "empty-params": (lambda: (lambda p: 0.0, {}, lambda p: {}), None),
    "integer-params": (lambda: (lambda p: float(np.sum(p["n"] ** 2)) + np.sum(p["x"]), {"n": np.arange(3), "x": np.ones(2)},
                                lambda p: {"n": 2 * p["n"], "x": np.ones(2)}), "n"),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_raises_naming_the_leaf(name):
    make, leaf = BAD_INPUTS[name]
    fun, params, grad = make()
    with pytest.raises(GradcheckError) as info:
        check_gradient(fun, copy.deepcopy(params), grad)
    # bad input, not a verdict: GradcheckInputError (a ValueError too), never a bare GradcheckError
    assert isinstance(info.value, GradcheckInputError), type(info.value)
    assert isinstance(info.value, ValueError)
    if name in ("nan-in-f", "inf-in-f"):
        assert f"fun returned {name[:3]} at params" in str(info.value), str(info.value)
    if leaf is not None:
        assert leaf in str(info.value), str(info.value)


@pytest.mark.parametrize("code", ["abs", "real", "conj"])
def test_complex_method_on_non_analytic_code(code):
    ops = {"abs": np.abs, "real": np.real, "conj": lambda x: np.conj(x) * x}

    def f(p):
        return np.sum(ops[code](p["x"]) * p["x"])

    def g(p):
        x = p["x"]
        return {"x": {"abs": 2 * np.abs(x), "real": 2 * x, "conj": 3 * x**2}[code]}

    p = {"x": np.array([0.5, -1.5, 2.0])}
    # the real-valued methods agree (the gradient is right for real x) ...
    assert check_gradient(f, p, g).status == "pass"
    # ... the complex step cannot be used on this code: an error naming the leaf,
    # never a silent pass of a wrong numeric side or a bogus "fail" verdict
    with pytest.raises(GradcheckError) as info:
        check_gradient(f, p, g, method="complex")
    assert "x" in str(info.value)


# ------------------------------------------------------------------ rule and report


def test_explicit_atol_rtol_switch_the_rule():
    bad = _scaled(smooth_grad, "x", 2, 1 + 1e-4)
    assert check_gradient(smooth, _x(), bad).status == "fail"        # model rule: a real bug
    r = check_gradient(smooth, _x(), bad, atol=0.0, rtol=1e-3)
    assert r.status == "pass" and r.tolerance["rule"] == "explicit"
    assert r.tolerance["rtol"] == 1e-3 and r.tolerance["atol"] == 0.0
    r = check_gradient(smooth, _x(), bad, atol=0.0, rtol=1e-6)
    assert r.status == "fail"
    r = check_gradient(smooth, _x(), bad, atol=1.0, rtol=0.0)
    assert r.status == "pass"
    assert check_gradient(smooth, _x(), smooth_grad).tolerance["rule"] == "model"


def _failing_result():
    def f(p):
        return np.sum(np.sin(p["W"])) + np.sum(p["b"] ** 2)

    def g(p):
        gw = np.cos(p["W"])
        gw[1, 2] *= 1.5
        return {"W": gw, "b": 2 * p["b"]}

    return check_gradient(f, {"W": np.linspace(-1, 1, 12).reshape(3, 4), "b": np.ones(2)}, g, seed=7)


def test_report_names_leaf_and_index():
    r = _failing_result()
    assert r.status == "fail"
    assert r.worst[0].leaf == "W" and tuple(r.worst[0].index) == (1, 2)
    assert r.counts["fail"] == 1
    text = str(r)
    assert "W[1, 2]" in text
    assert "analytic" in text and "numeric" in text


def test_to_dict_is_json():
    r = _failing_result()
    d = json.loads(json.dumps(r.to_dict()))
    assert d["status"] == "fail" and d["passed"] is False
    assert d["worst"][0]["leaf"] == "W" and d["worst"][0]["index"] == [1, 2]
    assert d["n_params"] == 14 and d["seed"] == 7
    assert sum(d["histogram"]["counts"]) == d["n_checked"]
    json.dumps(check_gradient(smooth, _x(), smooth_grad).to_dict())


def test_raise_for_status():
    r = _failing_result()
    with pytest.raises(GradcheckError) as info:
        r.raise_for_status()
    assert info.value.result is r
    assert "W[1, 2]" in str(info.value)
    ok = check_gradient(smooth, _x(), smooth_grad)
    assert ok.raise_for_status() is ok


@pytest.mark.parametrize("n", [1, 10, 60, 300])
def test_evaluation_budget_central(n):
    r = check_gradient(smooth, _x(n, seed=n), smooth_grad)
    assert r.status == "pass"
    assert r.n_evals <= 2.5 * n + 10, r.n_evals


def _softmax_regression(d, k=10, m=16):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(m, d))
    y = rng.integers(0, k, size=m)

    def f(p):
        Z = X @ p["W"]
        Z = Z - Z.max(axis=1, keepdims=True)
        return np.mean(np.log(np.exp(Z).sum(axis=1)) - Z[np.arange(m), y])

    def g(p):
        Z = X @ p["W"]
        P = np.exp(Z - Z.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
        P[np.arange(m), y] -= 1
        return {"W": X.T @ P / m}

    return f, g, {"W": 0.1 * rng.normal(size=(d, k))}


@pytest.mark.parametrize("d", [1, 10, 30])
def test_evaluation_budget_central_softmax_regression(d):
    # a realistic smooth model: the budget holds here too, not only on toy functions
    f, g, p = _softmax_regression(d)
    r = check_gradient(f, p, g)
    n = r.n_params
    assert r.status == "pass"
    assert r.n_evals <= 2.5 * n + 10, f"{r.n_evals} evaluations for n={n}"


def test_grad_none_uses_no_analytic_side_or_errors_clearly():
    # grad=None: the adapter's autodiff; numpy has none, so a clear error
    with pytest.raises(GradcheckInputError, match="grad is required for plain numpy functions"):
        check_gradient(smooth, _x(), None)


# ------------------------------------------------------------------ more situations met in practice


def test_fun_computing_in_float32_internally():
    # params and result float64, but the model casts to float32 inside: f is
    # noisy at the 1e-7 level; a correct float64 gradient must pass, 1% must fail
    def f(p):
        x = p["x"].astype(np.float32)
        return float(np.sum(np.exp(x) * np.sin(x)))

    def g(p):
        x = p["x"]
        return {"x": np.exp(x) * (np.sin(x) + np.cos(x))}

    p = _x(5, seed=4)
    r = check_gradient(f, p, g)
    assert r.status == "pass", str(r)
    r = check_gradient(f, p, _scaled(g, "x", 1, 1.01))
    assert r.status == "fail", str(r)
    assert r.worst[0].where == "x[1]"


def test_float32_result_that_is_insensitive_to_each_entry_is_measured_at_a_coarser_spacing():
    # a float32 result (quantum ~6e-8 |f|) of a loss whose entries each move it by ~1e-3 |x|: at
    # 64 ulps and at 4 sqrt(eps) of float64 f does not change at all, so its noise only shows at
    # eps^(1/4); without that third spacing the noise read as float64 roundoff, the steps were
    # far too small and every entry gave numeric 0 (a false failure of a correct gradient)
    rng = np.random.default_rng(2)
    X = rng.standard_normal((20, 3000)) / np.sqrt(3000)
    y = (rng.random(20) < 0.5).astype(float)

    def f(w):
        z = X @ w
        return float(np.float32(np.mean(np.logaddexp(0.0, z) - y * z)))

    def g(w):
        z = X @ w
        return X.T @ (1.0 / (1.0 + np.exp(-z)) - y) / 20

    w = rng.standard_normal(3000)
    r = check_gradient(f, w, g)
    assert r.status == "pass", str(r)
    assert any("fun is noisy" in m for m in r.messages)
    r = check_gradient(f, w, lambda v: g(v) * np.where(np.arange(3000) == 9, 1.3, 1.0))
    assert r.status == "fail" and r.worst[0].index == (9,), str(r)


def test_mixed_dtypes_in_one_tree():
    def f(p):
        return float(np.sum(np.sin(p["a"]))) + float(np.sum(p["b"] ** 3))

    def g(p):
        return {"a": np.cos(p["a"]), "b": 3 * p["b"] ** 2}

    p = {"a": np.linspace(-1, 1, 4).astype(np.float32), "b": np.linspace(0.5, 2, 3)}
    assert check_gradient(f, p, g).status == "pass"
    # the float64 leaf keeps float64 resolution next to a float32 leaf
    r = check_gradient(f, p, _scaled(g, "b", 2, 1 + 1e-5))
    assert r.status == "fail" and r.worst[0].leaf == "b", str(r)
    r = check_gradient(f, p, _scaled(g, "a", 0, 1.01))
    assert r.status == "fail" and r.worst[0].leaf == "a", str(r)


def test_float32_gradient_of_float64_params_passes():
    # the analytic side returned in float32: its own rounding (~6e-8) is not a bug
    p = _x(6, seed=5)
    r = check_gradient(smooth, p, lambda q: {"x": smooth_grad(q)["x"].astype(np.float32)})
    assert r.status == "pass", str(r)


@pytest.mark.parametrize("params,fun,grad", [
    (0.7, lambda x: np.sin(x) * x, lambda x: np.cos(x) * x + np.sin(x)),
    (np.float64(0.7), lambda x: np.sin(x) * x, lambda x: np.cos(x) * x + np.sin(x)),
    (np.array(0.7), lambda x: np.sin(x) * x, lambda x: np.cos(x) * x + np.sin(x)),
    ((np.array([0.1, 0.2]), 0.3), lambda t: np.sum(t[0] ** 2) * t[1], lambda t: (2 * t[0] * t[1], np.sum(t[0] ** 2))),
    ([{"w": np.ones(2)}, [np.array(2.0)]], lambda t: np.sum(t[0]["w"]) * t[1][0] ** 2,
     lambda t: [{"w": np.full(2, t[1][0] ** 2)}, [2 * t[1][0] * np.sum(t[0]["w"])]]),
], ids=["python-float", "numpy-scalar", "0-d-array", "tuple", "list-of-dict-and-list"])
def test_scalar_and_container_params(params, fun, grad):
    assert check_gradient(fun, params, grad).status == "pass"


def test_wrong_scalar_param_fails_with_its_path():
    def fun(t):
        return np.sum(t[0] ** 2) * t[1]

    def grad(t):
        return (2 * t[0] * t[1], 1.1 * np.sum(t[0] ** 2))

    r = check_gradient(fun, (np.array([0.1, 0.2]), 0.3), grad)
    assert r.status == "fail"
    assert r.worst[0].leaf == "[1]" and tuple(r.worst[0].index) == ()
    assert "[1]" in str(r)


def test_nondeterministic_grad_is_not_passed():
    rng = np.random.default_rng(610)  # seeded: the same noise on every run

    def g(p):
        return {"x": smooth_grad(p)["x"] * (1 + 1e-3 * rng.normal(size=p["x"].shape))}

    try:
        r = check_gradient(smooth, _x(), g)
    except GradcheckError as e:
        assert "nondetermin" in str(e).lower()
    else:
        assert not r.passed, str(r)


def test_huber_at_its_transition_is_differentiable():
    # huber is C1: at |r| == delta the gradient exists (only f'' jumps), so a
    # correct gradient must not fail; the error of the estimate is O(h) there
    def f(p):
        r = p["r"]
        a = np.abs(r)
        return np.sum(np.where(a <= 1.0, 0.5 * r * r, a - 0.5))

    def g(p):
        return {"r": np.clip(p["r"], -1.0, 1.0)}

    p = {"r": np.array([1.0, -1.0, 0.3, 2.5])}
    r = check_gradient(f, p, g)
    assert r.status == "pass", str(r)
    r = check_gradient(f, p, lambda q: {"r": q["r"]})  # no clipping: wrong at r = 2.5
    assert r.status == "fail" and r.worst[0].where == "r[3]", str(r)


def test_hinge_with_a_margin_at_the_kink():
    # a training point exactly on the margin: the subgradient 0 (or -y x) is valid
    X = np.array([[1.0, 2.0], [0.5, -1.0], [-1.0, 0.3]])
    y = np.array([1.0, -1.0, 1.0])
    w0 = np.array([0.5, 0.25])       # y0 * x0 . w0 = 1: on the margin

    def f(p):
        return np.sum(np.maximum(0.0, 1 - y * (X @ p["w"])))

    def g(p):
        active = (1 - y * (X @ p["w"])) > 0
        return {"w": -(X.T @ (y * active))}

    r = check_gradient(f, {"w": w0}, g)
    # on the margin fun has a kink: a valid subgradient may be inconclusive there (never fail)
    assert r.status in ("pass", "inconclusive"), str(r)
    r = check_gradient(f, {"w": w0}, lambda p: {"w": g(p)["w"] + np.array([0.0, 3.0])})
    assert r.status == "fail", str(r)


# ------------------------------------------------------------------ hard cases found by probing


def test_unresolvable_entry_is_not_reported_as_agreeing():
    # f ~ 1e8: a leaf whose contribution (gradient 5e-13) is far below f's
    # roundoff cannot be verified by finite differences, even in sign: that is
    # "inconclusive", never "pass" -- and never a tolerance of inf.
    def f(p):
        return 1e8 * float(np.sum(np.sin(p["big"]))) + 1e-12 * float(np.sin(p["tiny"][0]))

    def g(p, k=1.0):
        return {"big": 1e8 * np.cos(p["big"]), "tiny": k * 1e-12 * np.cos(p["tiny"])}

    p = {"big": np.array([0.3, 0.5]), "tiny": np.array([1.0])}
    for k in (1.0, -1.0):   # the correct value and a sign flip: neither can be confirmed
        r = check_gradient(f, p, lambda q: g(q, k))
        assert r.status == "inconclusive", str(r)
        bad = [e for e in r.worst if e.verdict == "inconclusive"]
        assert bad and bad[0].leaf == "tiny" and "unresolved" in bad[0].reason
        assert np.isfinite(r.entries["tolerance"]).all()


def test_overflow_sized_gradients_keep_finite_tolerances():
    # exp(709) ~ 8e307: squares overflow; tolerances and ratios must stay finite
    x = np.array([709.0, 700.0, 1.0])
    with np.errstate(over="ignore"):
        r = check_gradient(lambda v: np.sum(np.exp(v)), x, lambda v: np.exp(v))
    assert r.status == "pass", str(r)
    assert np.isfinite(r.entries["tolerance"]).all() and np.isfinite(r.max_ratio)
    with np.errstate(over="ignore"):
        r = check_gradient(lambda v: np.sum(np.exp(v)), x, lambda v: np.exp(v) * np.array([1.05, 1, 1]))
    assert r.status == "fail" and r.worst[0].where == "params[0]", str(r)


def _log_model(split):
    x = np.array([1e-10, 1e-5, 1.0, 3e4])
    if split:
        p = {"a": x[:2].copy(), "b": x[2:].copy()}
        return (lambda q: np.sum(np.log(q["a"])) + np.sum(np.log(q["b"]))), p, \
            (lambda q, k=1.0: {"a": 1 / q["a"], "b": 1 / q["b"] * np.array([1.0, k])})
    return (lambda v: np.sum(np.log(v))), x, (lambda v, k=1.0: 1 / v * np.array([1, 1, 1, k]))


@pytest.mark.parametrize("split", [False, True], ids=["one-leaf", "two-leaves"])
def test_entry_near_a_domain_edge_does_not_hide_a_bug_elsewhere(split):
    # log at 1e-10 next to entries ~1 and 3e4: the step (and the noise probe)
    # for the tiny entry must follow its own magnitude; a 5% error on the
    # well-behaved entry 3e4 must fail and be the worst entry
    f, p, g = _log_model(split)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = check_gradient(f, p, lambda q: g(q, 1.05))
    assert r.status == "fail", str(r)
    assert r.worst[0].where in ("params[3]", "b[1]"), str(r)


@pytest.mark.parametrize("split", [False, True], ids=["one-leaf", "two-leaves"])
def test_log_at_tiny_arguments_passes(split):
    # log is smooth at 1e-10 on the scale of 1e-10; relative steps resolve it
    f, p, g = _log_model(split)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = check_gradient(f, p, g)
    assert r.status == "pass", str(r)


@pytest.mark.parametrize("method", ["central", "forward", "backward", "central4"])
@pytest.mark.parametrize("x0", [0.0, 1e-9], ids=["at-kink", "1e-9-from-kink"])
def test_kink_verdicts_for_every_scheme(method, x0):
    # |x| at (or 1e-9 from) its kink: the one-sided derivatives are -1 and +1
    # at 0 and both +1 at 1e-9; analytic values outside [-1, 1] are bugs for
    # every scheme, the true derivative is never one
    truth = 0.0 if x0 == 0 else 1.0
    f, g, p = _abs_model(truth, offset=0.0)
    p = {"a": np.array([x0, 0.2, -0.4])}
    r = check_gradient(f, p, g, method=method)
    # at the kink itself a one-sided scheme sees only one side: the valid subgradient 0 may be
    # inconclusive there (never fail); 1e-9 away the derivative is 1 and must pass
    assert r.status in (("pass", "inconclusive") if x0 == 0 else ("pass",)), str(r)
    for wrong in (2.0, -2.0, 1.1):
        f, g, _ = _abs_model(wrong)
        r = check_gradient(f, p, g, method=method)
        assert r.status == "fail", f"analytic {wrong}:\n{r}"
        assert r.worst[0].where == "a[0]"


@pytest.mark.parametrize("value", [2.0, -1.5])
def test_kink_failure_keeps_the_ratio_contract(value):
    # schema: max_ratio is the largest |a - n| / tolerance and "the verdict line
    # is ratio 1"; a failing kink entry reported with tolerance inf and ratio 0
    # makes a failed check look perfect in summaries, histograms and baselines
    f, g, p = _abs_model(value)
    r = check_gradient(f, p, g)
    assert r.status == "fail"
    assert r.max_ratio > 1, str(r)
    d = r.to_dict()
    assert d["worst"][0]["verdict"] == "fail" and (d["worst"][0]["ratio"] or 0) > 1, d["worst"][0]
    assert sum(d["histogram"]["counts"][9:]) >= 1   # at least one entry at ratio >= 1


def test_ulp_level_nondeterminism_is_noise_not_a_failure():
    # a parallel reduction sums in a different order from run to run: results
    # differ in the last bits (here ~1e-15 relative).  That is roundoff-sized
    # noise (pytorch#13818 / nondet_tol), not a broken function: a correct
    # gradient must not fail, and a 1% error must still be caught.
    calls = [0]
    w = np.linspace(1.0, 1e3, 50)

    def f(p):
        x = p["x"]
        t = np.exp(x) * np.sin(x) * w
        calls[0] += 1
        order = np.arange(t.size) if calls[0] % 2 else np.arange(t.size)[::-1]
        s = 0.0
        for v in t[order]:
            s += v
        return s

    def g(p):
        x = p["x"]
        return {"x": np.exp(x) * (np.sin(x) + np.cos(x)) * w}

    p = {"x": np.random.default_rng(0).normal(size=50)}
    a, b = f(p), f(p)
    assert a != b and abs(a - b) < 1e-13 * abs(a)   # the premise: ulp-level differences
    r = check_gradient(f, p, g)
    assert r.status == "pass", str(r)
    r = check_gradient(f, p, _scaled(g, "x", 7, 1.01))
    assert r.status == "fail" and r.worst[0].where == "x[7]", str(r)


@pytest.mark.parametrize("x0", [1e-15, 1e-12, 1e-10])
def test_tiny_entry_in_a_unit_scale_leaf_still_catches_one_percent(x0):
    # one parameter happens to be ~0 (a bias after weight decay, an init of 0 plus
    # noise) while f varies on the scale of 1 in it: a step from the entry's own
    # magnitude is all roundoff; a 1% error in its O(1) gradient must still fail
    x = np.array([x0, 1.0, 2.3, -0.7])

    def f(v):
        return np.sum(np.sin(v) + v**2)

    def g(v):
        return np.cos(v) + 2 * v

    assert check_gradient(f, x, g).status == "pass"
    r = check_gradient(f, x, lambda v: g(v) * np.array([1.01, 1, 1, 1]))
    assert r.status == "fail", str(r)
    assert r.worst[0].where == "params[0]"


def _layouts():
    base = np.arange(24.0).reshape(4, 6) / 10
    ro = np.linspace(-1, 1, 6)
    ro.flags.writeable = False
    return {
        "non-contiguous-view": base[::2, ::3],
        "fortran-order": np.asfortranarray(np.random.default_rng(0).normal(size=(3, 4))),
        "read-only": ro,
        "broadcast-0-stride": np.broadcast_to(np.array([0.5]), (3,)),
        "transposed-view": np.random.default_rng(1).normal(size=(3, 5)).T,
        "big-endian": np.linspace(-1, 1, 5).astype(">f8"),
        "longdouble": np.linspace(-1, 1, 3).astype(np.longdouble),
    }


@pytest.mark.parametrize("layout", list(_layouts()))
def test_array_layouts(layout):
    x = _layouts()[layout]
    before = np.array(x, copy=True)

    def f(p):
        w = np.asarray(p["W"])
        return float(np.sum(np.sin(w) * w))

    def g(p):
        w = np.asarray(p["W"])
        return {"W": np.cos(w) * w + np.sin(w)}

    assert check_gradient(f, {"W": x}, g).status == "pass"
    assert check_gradient(f, {"W": x}, lambda p: {"W": g(p)["W"] * 1.05}).status == "fail"
    assert np.array_equal(before, x) and before.dtype == x.dtype


# ------------------------------------------------------------------ the words of a failure


def test_nondeterministic_report_reads_right():
    rng = np.random.default_rng(5)
    r = check_gradient(lambda p: np.sum(p["x"] ** 2) * (1 + 1e-6 * rng.normal()), {"x": np.ones(3)},
                       lambda p: {"x": 2 * p["x"]})
    assert r.status == "fail"
    text = str(r)
    head = text.splitlines()[0]
    # not "FAILED: 0 of 3 entries disagree": the entries were never judged
    assert "0 of 3 entries disagree" not in head, head
    assert "np.float64(" not in text, text   # plain numbers, not reprs


def test_kink_bug_diagnosis_does_not_advise_accepting_it():
    # analytic 2 for |x| at 0 lies outside [-1, 1]: a bug, not a kink artefact
    f, g, p = _abs_model(2.0)
    r = check_gradient(f, p, g)
    assert r.status == "fail"
    summary = (r.diagnosis or {}).get("summary", "")
    assert "accept 'inconclusive'" not in summary, summary


@pytest.mark.parametrize("offset", [1e4, 1e6])
def test_deterministic_fun_at_large_offsets_is_not_called_noisy(offset):
    # f is exact to roundoff; it merely varies on the scale of 1 while the
    # parameters are ~offset.  The noise probe must not mistake the smooth
    # third differences for noise (that inflates every tolerance: a 1e-4
    # error then passes with central4)
    rng = np.random.default_rng(18)
    c, t = rng.normal(size=5), rng.normal(size=5)

    def f(p):
        u = p["p"] - offset
        return np.sum(c * np.cos(u)) + 0.5 * np.sum((u - t) ** 2)

    def g(p):
        u = p["p"] - offset
        return {"p": -c * np.sin(u) + (u - t)}

    p = {"p": offset + rng.normal(size=5)}
    r = check_gradient(f, p, g)
    assert r.status == "pass"
    assert not any("noisy" in m for m in r.messages), r.messages
    for method in ("central", "central4"):
        r = check_gradient(f, p, _scaled(g, "p", 0, 1 + 1e-4), method=method)
        assert r.status == "fail", f"{method}:\n{r}"


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_fun_failing_at_a_perturbed_point_is_reported_as_such(mode):
    calls = []

    def f(x):
        calls.append(1)
        if len(calls) > 3:
            raise KeyError("a cache miss away from params")
        return float(np.sum(x ** 2))

    with pytest.raises(GradcheckInputError, match="fun raised KeyError at a point a finite-difference step away") as info:
        check_gradient(f, np.ones(4), lambda x: 2 * x, mode=mode)
    assert isinstance(info.value.__cause__, KeyError)  # the user's own traceback is kept
