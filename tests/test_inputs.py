"""Inputs real users pass (issue 12, items 4-7): what fun may do to its argument, non-finite
entries, (value, grad) objectives, and clear errors instead of raw ones."""

from __future__ import annotations

import re

import numpy as np
import pytest

from pytest_gradcheck import GradcheckInputError, check_gradient


# -- fun and grad cannot defeat the evaluator; mutation is named --------------------------------


def test_fun_gets_a_fresh_container_on_every_call():
    seen = []
    x = {"w": np.array([0.3, -0.7]), "nested": [np.array(1.5), {"b": np.array([2.0])}]}

    def fun(p):
        seen.append((id(p), id(p["nested"]), id(p["nested"][1])))
        p["w"] = p["w"] * 1.0                    # rebinding: cuts this container off the buffers
        p["nested"][1]["b"] = p["nested"][1]["b"].copy()
        p["nested"].append("junk")               # growing a list the evaluator handed out
        return float(np.sum(np.sin(p["w"])) + p["nested"][0] ** 2 + np.sum(p["nested"][1]["b"] ** 3))

    def grad(p):
        return {"w": np.cos(p["w"]), "nested": [2 * p["nested"][0], {"b": 3 * p["nested"][1]["b"] ** 2}]}

    r = check_gradient(fun, x, grad, mode="full")
    assert r.status == "pass", r
    # a container is never handed out twice while its predecessor is alive
    assert len(set(seen)) > 1
    assert x["nested"] == x["nested"][:2]        # the caller's containers were never handed to fun


def test_fun_mutating_a_captured_array_is_named_not_called_nondeterministic():
    rng = np.random.default_rng(3)
    R = rng.normal(size=5)
    R_before = R.copy()

    def fun(p):
        out = R
        out *= 0.999                             # in place on the test's R: every call sees other data
        return float(p @ out)

    def grad(p):
        return R.copy()

    with pytest.raises(GradcheckInputError, match=r"fun modified an array.*\bR\b") as info:
        check_gradient(fun, rng.normal(size=5), grad, mode="full")
    assert "nondeterministic" not in str(info.value)
    assert not np.array_equal(R, R_before)       # the checker reports; it does not write the caller's R back


def test_bound_method_mutating_self_is_named():
    class Layer:
        def __init__(self):
            self.cache = np.ones(3)

        def loss(self, p):
            self.cache += 1.0                    # accumulates across calls, and the value reads it
            return float(np.sum(p * p) + 1e-3 * self.cache.sum())

        def grad(self, p):
            return 2 * p

    layer = Layer()
    with pytest.raises(GradcheckInputError, match=r"self\.cache"):
        check_gradient(layer.loss, np.array([0.1, 0.2, 0.3]), layer.grad)


class _BufferedLinearLayer:
    """A stateful least-squares layer: forward writes into buffers it owns, backward reads them."""

    def __init__(self, X, y):
        self.X, self.y = X, y
        self.out = np.empty(len(y))
        self.resid = np.empty(len(y))

    def loss(self, w):
        np.dot(self.X, w, out=self.out)
        np.subtract(self.out, self.y, out=self.resid)
        return float(0.5 * self.resid @ self.resid)

    def grad(self, w):
        self.loss(w)
        return self.X.T @ self.resid


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_scratch_buffers_a_function_owns_are_not_mutation(mode):
    # preallocated activations (out=self.out) were "modified an array in place that it does not own"
    rng = np.random.default_rng(6)
    X, y, w = rng.normal(size=(8, 5)), rng.normal(size=8), rng.normal(size=5)
    layer = _BufferedLinearLayer(X, y)
    X0, y0 = X.copy(), y.copy()
    r = check_gradient(layer.loss, w, layer.grad, mode=mode)
    assert r.status == "pass", r
    assert any("scratch buffers" in m and "self.out" in m and "self.resid" in m for m in r.messages), r.messages
    assert np.array_equal(layer.X, X0) and np.array_equal(layer.y, y0)
    wrong = check_gradient(layer.loss, w, lambda v: 1.01 * layer.grad(v), mode=mode)
    assert wrong.status == "fail"


def test_a_scratch_array_closed_over_is_not_mutation_but_corruption_still_is():
    buf = np.empty(4)
    weights = np.array([1.0, -2.0, 0.5, 3.0])

    def fun(p):
        np.multiply(p, p, out=buf)               # overwritten from scratch on every call
        return float(buf @ weights)

    r = check_gradient(fun, np.array([0.3, -0.7, 1.1, 0.2]), lambda p: 2 * p * weights)
    assert r.status == "pass", r

    buf2 = np.zeros(4)

    def fun_acc(p, buf=buf2):
        buf += p                                 # holds the sum of every point seen: not scratch
        return float(p @ weights + 1e-3 * buf.sum())   # ... and the value reads it

    with pytest.raises(GradcheckInputError, match=r"default of buf.*depends on earlier calls"):
        check_gradient(fun_acc, np.array([0.3, -0.7, 1.1, 0.2]), lambda p: weights)


def test_helper_function_closing_over_data_is_watched():
    dout = np.ones(4)
    weights = np.ones(4)

    def backward(p):
        g = dout                                 # cs231n-style: zeroes the upstream gradient
        g[p <= 0] = 0
        return g

    def fun(p):
        return float(np.sum(np.maximum(p, 0) * weights))

    def grad(p):
        return backward(p)

    with pytest.raises(GradcheckInputError, match=r"grad modified an array.*backward -> dout"):
        check_gradient(fun, np.array([0.5, -0.5, 1.0, -2.0]), grad)


def test_read_only_closures_pass_and_params_stay_untouched():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(6, 3))
    w = rng.normal(size=3)
    w0 = w.copy()
    r = check_gradient(lambda p: float(np.sum((X @ p) ** 2)), w, lambda p: 2 * X.T @ (X @ p), mode="full")
    assert r.status == "pass", r
    assert np.array_equal(w, w0)


# -- non-finite entries in params: held fixed, counted, the rest checked -------------------------


def _masked_rows():
    rng = np.random.default_rng(6)
    S = rng.normal(size=(3, 4))
    S[0, 2:] = -np.inf
    S[2, 0] = -np.inf
    T = rng.normal(size=(3, 4))

    def fun(S):
        E = np.exp(S - S.max(axis=1, keepdims=True))
        return float(np.sum(E / E.sum(axis=1, keepdims=True) * T))

    def grad(S):
        E = np.exp(S - S.max(axis=1, keepdims=True))
        A = E / E.sum(axis=1, keepdims=True)
        return A * (T - np.sum(T * A, axis=1, keepdims=True))

    return S, fun, grad


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_non_finite_entries_are_held_fixed(mode):
    S, fun, grad = _masked_rows()
    S0 = S.copy()
    seen = []
    r = check_gradient(lambda p: seen.append(p[0, 2]) or fun(p), S, grad, mode=mode)
    assert r.status == "pass", r
    assert set(seen) == {-np.inf}                 # fun never saw a held entry move
    assert r.n_held == 3 and r.to_dict()["n_held"] == 3
    if mode == "full":
        assert r.n_checked == S.size - 3
    assert "3 non-finite entries of params held fixed and not checked" in str(r)
    assert "params[0, 2] = -inf" in str(r)
    assert np.array_equal(S, S0)


def test_non_finite_entries_do_not_hide_a_bug_and_grad_may_write_anything_there():
    S, fun, grad = _masked_rows()

    def grad_nan_at_mask(p):
        g = grad(p)
        g[~np.isfinite(p)] = np.nan                # not read: those entries are not checked
        return g

    assert check_gradient(fun, S, grad_nan_at_mask).status == "pass"
    r = check_gradient(fun, S, lambda p: 1.5 * grad(p), mode="full")
    assert r.status == "fail"


def test_non_finite_gradient_at_a_finite_entry_is_still_an_error():
    S, fun, grad = _masked_rows()

    def bad(p):
        g = grad(p)
        g[1, 1] = np.nan
        return g

    with pytest.raises(GradcheckInputError, match=r"grad is not finite at params\[1, 1\]"):
        check_gradient(fun, S, bad)


def test_params_with_no_finite_entry_is_refused():
    with pytest.raises(GradcheckInputError, match="no finite entry"):
        check_gradient(lambda p: 0.0, np.full(3, -np.inf), lambda p: np.zeros(3))


def test_torch_mask_by_autograd():
    torch = pytest.importorskip("torch")
    S = torch.randn(4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    S[0, 1:] = -torch.inf
    r = check_gradient(lambda s: (torch.softmax(s, 1) ** 2).sum(), S)
    assert r.status == "pass" and r.n_held == 3, r


# -- fun returning (value, grad): grad=True, the scipy.optimize.minimize(jac=True) convention ------


def _quad(p):
    return float(p @ p + np.sin(p[0])), 2 * p + np.array([np.cos(p[0]), 0.0, 0.0])


def test_value_and_grad_fun_once_per_point_and_vectorized():
    calls = []

    def fun(p):
        calls.append(1)
        return _quad(p)

    r = check_gradient(fun, np.array([0.3, -1.0, 2.0]), True, mode="full")
    assert r.status == "pass", r
    assert len(calls) == r.n_evals + 2          # + the gradient at params, read twice (nondeterminism)

    def batched(p):                             # leading batch axis: values (B,), gradients (B, 3)
        return np.sum(p * p, axis=-1), 2 * p

    r = check_gradient(batched, np.array([0.3, -1.0, 2.0]), True, vectorized=True)
    assert r.status == "pass", r


def test_value_and_grad_bug_fails():
    r = check_gradient(lambda p: (_quad(p)[0], 1.01 * _quad(p)[1]), np.array([0.3, -1.0, 2.0]), True)
    assert r.status == "fail"


@pytest.mark.parametrize("fun, grad, match", [
    (lambda p: float(p @ p), True, r"grad=True means fun returns \(value, gradient\).*returned float"),
    (lambda p: (1.0, 2.0, 3.0), True, r"grad=True.*tuple of length 3"),
    (_quad, lambda p: 2 * p, r"returned a tuple of two.*pass grad=True"),
    (_quad, None, r"grad is required.*or grad=True when fun returns \(value, gradient\)"),
    (_quad, False, r"grad must be callable, None .* or True"),
])
def test_value_and_grad_misuse_is_explained(fun, grad, match):
    with pytest.raises(GradcheckInputError, match=match):
        check_gradient(fun, np.array([0.3, -1.0, 2.0]), grad)


# -- clear errors, never raw ones -----------------------------------------------------------------

X3 = np.array([0.5, 1.0, 2.0])


def _sq(p):
    return float(np.sum(p ** 2))


@pytest.mark.parametrize("fun", [lambda p: np.sum(p) * (1 + 1j), lambda p: complex(np.sum(p))],
                         ids=["numpy", "python"])
def test_complex_value_is_refused(fun):
    with pytest.raises(GradcheckInputError, match="fun returned a complex value"):
        check_gradient(fun, X3, lambda p: np.ones(3))


def test_complex_torch_value_is_refused():
    torch = pytest.importorskip("torch")
    with pytest.raises(GradcheckInputError, match="fun returned a complex value"):
        check_gradient(lambda p: (p * (1 + 1j)).sum(), torch.tensor(X3), lambda p: torch.ones(3))


def test_grad_none_for_a_numpy_leaf_names_the_leaf():
    with pytest.raises(GradcheckInputError, match=r"grad returned None for leaf 'b'"):
        check_gradient(lambda p: _sq(p["a"]) + float(np.sum(p["b"])), {"a": X3, "b": X3.copy()},
                       lambda p: {"a": 2 * p["a"], "b": None})


@pytest.mark.parametrize("make, match", [
    # 2-D COO and CSR are checked on their stored values (tests/test_torch_sparse.py); other layouts are refused
    (lambda torch: {"s": torch.eye(3, dtype=torch.float64).to_sparse_csc()}, r"params leaf 's': a sparse tensor"),
    (lambda torch: torch.ones(3, dtype=torch.float64, device="meta"), r"params leaf 'params': a meta tensor"),
], ids=["sparse", "meta"])
def test_sparse_and_meta_tensors_are_refused_clearly(make, match):
    torch = pytest.importorskip("torch")
    with pytest.raises(GradcheckInputError, match=match):
        check_gradient(lambda p: 0.0, make(torch))


def test_fun_raising_at_a_step_names_the_entry_and_the_step():
    def fun(p):
        if abs(p[1] - 1.0) > 1e-9:   # fine at params and along the noise probe's tiny steps
            raise ValueError("out of domain")
        return _sq(p)

    with pytest.raises(GradcheckInputError, match=r"at params with params\[1\] [+-] [0-9.e-]+ .*out of domain"):
        check_gradient(fun, np.array([0.5, 1.0]), lambda p: 2 * p, mode="full")


def test_cyclic_and_deep_params_are_refused():
    cyclic = {"a": X3}
    cyclic["me"] = cyclic
    with pytest.raises(GradcheckInputError, match=r"contains itself at 'me'"):
        check_gradient(lambda p: 0.0, cyclic, lambda p: p)
    deep = X3
    for _ in range(3000):
        deep = [deep]
    with pytest.raises(GradcheckInputError, match="nests containers more than"):
        check_gradient(lambda p: 0.0, deep, lambda p: p)


def test_ml_dtypes_bfloat16_params_are_supported():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    bf16 = ml_dtypes.bfloat16
    x = np.array([0.5, 1.0, -2.0], dtype=bf16)
    got = []

    def grad(p):
        got.append(p.dtype)
        return (2 * p.astype(np.float32)).astype(bf16)

    r = check_gradient(lambda p: float(np.sum(np.asarray(p, dtype=np.float64) ** 2)), x, grad)
    assert r.status == "pass", r
    assert set(got) == {np.dtype(bf16)}           # grad is called in the params' own dtype
    assert r.leaves[0].dtype == "bfloat16"
    bad = check_gradient(lambda p: float(np.sum(np.asarray(p, dtype=np.float64) ** 2)), x,
                         lambda p: (-2 * p.astype(np.float32)).astype(bf16))
    assert bad.status == "fail"


@pytest.mark.parametrize("bm", ["1MB", None, True, 0, -5, float("nan")])
def test_bad_batch_memory_is_refused(bm):
    with pytest.raises(GradcheckInputError, match="batch_memory must be a positive number of bytes"):
        check_gradient(_sq, X3, lambda p: 2 * p, batch_memory=bm)


# -- issue 22, item 9: the messages real code meets --------------------------------------------------

def test_backwards_own_gradient_dict_gets_the_mapping():
    """grad returning backward's dict (dW1, db1, dZ1) for params W1, b1 names what grad has and the mapping."""
    p = {"W1": np.ones((2, 3)), "b1": np.zeros(2)}
    grads = lambda p: {"dW1": 2 * p["W1"], "db1": 0 * p["b1"], "dZ1": np.ones(4)}
    with pytest.raises(GradcheckInputError, match=re.escape(
            "grad has key(s) ['dW1', 'db1', 'dZ1'], which look like backward's own names for the parameters' "
            "gradients: return {'W1': g['dW1'], 'b1': g['db1']} from grad (its other keys ['dZ1'] are not in params)")):
        check_gradient(lambda p: float(np.sum(p["W1"] ** 2)), p, grads)
    # unrelated keys: what grad has, no invented mapping
    with pytest.raises(GradcheckInputError, match=r"missing key\(s\) \['W1', 'b1'\].*grad has key\(s\) \['A'\]$"):
        check_gradient(lambda p: float(np.sum(p["W1"] ** 2)), p, lambda p: {"A": 1.0})
    # the mapping it suggests is right: the check passes with it, fails with a wrong gradient
    fixed = lambda p: {"W1": grads(p)["dW1"], "b1": grads(p)["db1"]}
    assert check_gradient(lambda p: float(np.sum(p["W1"] ** 2)), p, fixed).status == "pass"
    assert check_gradient(lambda p: float(np.sum(p["W1"] ** 2)), p,
                          lambda p: {**fixed(p), "W1": 3 * p["W1"]}).status == "fail"


def test_cost_and_cache_does_not_suggest_grad_true():
    """(cost, cache) is not (value, gradient): grad=True is suggested only when the second item has params' structure."""
    p = {"W": np.full((2, 3), 0.5), "b": np.zeros(2)}
    cost_cache = lambda p: (float(np.sum(p["W"] ** 2)), {"Z1": np.ones(5), "A1": np.ones(5)})
    with pytest.raises(GradcheckInputError, match=r"tuple of two \(the second a dict without params' structure") as info:
        check_gradient(cost_cache, p, lambda p: {"W": 2 * p["W"], "b": 0 * p["b"]})
    assert "grad=True" not in str(info.value)
    cost_grad = lambda p: (float(np.sum(p["W"] ** 2)), {"W": 2 * p["W"], "b": 0 * p["b"]})
    with pytest.raises(GradcheckInputError, match=r"second item has params' structure.*pass grad=True"):
        check_gradient(cost_grad, p, lambda p: {"W": 2 * p["W"], "b": 0 * p["b"]})


def test_numpy_true_is_grad_true():
    r = check_gradient(_quad, np.array([0.3, -1.0, 2.0]), np.True_)
    assert r.status == "pass", r
    wrong = check_gradient(lambda p: (_quad(p)[0], 1.01 * _quad(p)[1]), np.array([0.3, -1.0, 2.0]), np.True_)
    assert wrong.status == "fail"
    with pytest.raises(GradcheckInputError, match="grad must be callable"):
        check_gradient(_quad, np.array([0.3, -1.0, 2.0]), np.False_)


def test_none_leaves_are_empty_subtrees():
    """None in params is an empty subtree (jax's convention): no entries; grad returns None there."""
    W = np.arange(6.0).reshape(2, 3) / 5
    p = {"W": W, "b": None, "extra": [None, np.ones(2)]}
    f = lambda p: float(np.sum(np.sin(p["W"])) + np.sum(p["extra"][1] ** 2))
    g = lambda p: {"W": np.cos(p["W"]), "b": None, "extra": [None, 2 * p["extra"][1]]}
    r = check_gradient(f, p, g)
    assert r.status == "pass" and r.n_params == 8
    assert check_gradient(f, p, lambda p: {**g(p), "W": 1.1 * np.cos(p["W"])}).status == "fail"
    with pytest.raises(GradcheckInputError, match=r"grad has ndarray at 'b' where params has None"):
        check_gradient(f, p, lambda p: {**g(p), "b": np.zeros(2)})
    with pytest.raises(GradcheckInputError, match="params is empty"):
        check_gradient(lambda p: 0.0, {"a": None}, lambda p: {"a": None})


# -- issue 22, item 7: side effects fun writes and never reads ----------------------------------------

_A = np.array([[1.0, 2.0], [0.5, -1.0]])
_X0 = np.array([0.3, -0.7])


def _side_effect_funs():
    """A numpy call counter, a running mean and a rolling log buffer, each written on every call
    and never read by the value; beside each, the same array read by the value (real data)."""
    calls, running, log = np.zeros(1, dtype=np.int64), np.zeros(2), np.zeros(8)

    def counter(x, read=False):
        calls[0] += 1
        return float(np.sum(np.tanh(_A @ x)) + (1e-3 * calls[0] if read else 0.0))

    def running_mean(x, read=False):
        running[:] = 0.9 * running + 0.1 * x
        return float(np.sum(np.tanh(_A @ x)) + (1e-3 * running.sum() if read else 0.0))

    def log_buffer(x, read=False):
        v = float(np.sum(np.tanh(_A @ x)))
        log[:-1] = log[1:]
        log[-1] = v
        return v + (1e-3 * log[0] if read else 0.0)

    return {"calls": counter, "running": running_mean, "log": log_buffer}


def _tanh_grad(x):
    return _A.T @ (1 - np.tanh(_A @ x) ** 2)


@pytest.mark.parametrize("name", ["calls", "running", "log"])
def test_side_effects_never_read_pass_with_a_note_and_read_ones_fail(name):
    fun = _side_effect_funs()[name]
    r = check_gradient(fun, _X0, _tanh_grad)
    assert r.status == "pass", r
    assert any(m.startswith(f"fun changes arrays it never reads ({name})") for m in r.messages), r.messages
    assert check_gradient(fun, _X0, lambda x: 1.1 * _tanh_grad(x)).status == "fail"
    # the same array, read by the value: data that changes under the check, still refused
    with pytest.raises(GradcheckInputError, match=rf"fun modified an array.*\b{name}\b"):
        check_gradient(lambda x: fun(x, read=True), _X0, _tanh_grad)


def test_grad_with_a_counter_it_never_reads_passes():
    n_grad = np.zeros(1, dtype=np.int64)

    def grad(x):
        n_grad[0] += 1
        return _tanh_grad(x)

    r = check_gradient(lambda x: float(np.sum(np.tanh(_A @ x))), _X0, grad)
    assert r.status == "pass", r
    assert any("grad changes arrays it never reads" in m and "n_grad" in m for m in r.messages), r.messages
    assert n_grad[0] >= 2                        # left as grad's own calls left it, never rolled back
