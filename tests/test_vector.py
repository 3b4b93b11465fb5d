"""check_vjp / check_jvp / check_jacobian on real layers (issue 4).

Each layer has a hand-written forward and backward (the CS231n style
``forward(...) -> out, cache`` / ``backward(dout, cache) -> grads``), a
correct version that must pass and a realistic bug that must fail.
"""

from __future__ import annotations

import numpy as np
import pytest

from pytest_gradcheck import GradcheckInputError
from pytest_gradcheck.numerics.vector import check_jacobian, check_jvp, check_vjp



def _seeded(seed, draw):
    """A params factory drawing from its own generator: the same values whichever tests ran
    before (-k, xdist, pytest-randomly), unlike one generator shared by the module."""
    return lambda: draw(np.random.default_rng(seed))


# ---------------------------------------------------------------- layers
def affine_forward(x, w, b):
    return x @ w + b, (x, w)


def affine_backward(dout, cache, bug=None):
    x, w = cache
    db = dout.mean(0) if bug == "mean_bias" else dout.sum(0)
    return dout @ w.T, x.T @ dout, db


def softmax_forward(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    y = e / e.sum(axis=1, keepdims=True)
    return y, y


def softmax_backward(dy, y, bug=None):
    if bug == "diagonal_only":
        return y * (1 - y) * dy
    return y * (dy - np.sum(dy * y, axis=1, keepdims=True))


def conv_forward(x, k):
    H, W = x.shape
    kh, kw = k.shape
    out = np.zeros((H - kh + 1, W - kw + 1), dtype=np.result_type(x, k))
    for a in range(kh):
        for b in range(kw):
            out += k[a, b] * x[a:a + out.shape[0], b:b + out.shape[1]]
    return out, (x, k)


def conv_backward(dout, cache, bug=None):
    x, k = cache
    kh, kw = k.shape
    dx = np.zeros_like(x, dtype=np.result_type(x, dout))
    dk = np.zeros_like(k, dtype=np.result_type(k, dout))
    for a in range(kh):
        for b in range(kw):
            dx[a:a + dout.shape[0], b:b + dout.shape[1]] += k[a, b] * dout
            dk[a, b] = np.sum(dout * x[a:a + dout.shape[0], b:b + dout.shape[1]])
    if bug == "flipped_kernel":
        dk = dk[::-1, ::-1]
    return dx, dk


def layernorm_forward(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=1, keepdims=True)
    var = x.var(axis=1, keepdims=True)
    std = np.sqrt(var + eps)
    xhat = (x - mu) / std
    return gamma * xhat + beta, (xhat, std, gamma)


def layernorm_backward(dout, cache, bug=None):
    xhat, std, gamma = cache
    D = xhat.shape[1]
    dxhat = dout * gamma
    if bug == "missing_mean_term":
        dx = (dxhat - xhat * np.mean(dxhat * xhat, axis=1, keepdims=True)) / std
    else:
        dx = (dxhat - dxhat.mean(axis=1, keepdims=True)
              - xhat * np.sum(dxhat * xhat, axis=1, keepdims=True) / D) / std
    return dx, np.sum(dout * xhat, axis=0), dout.sum(axis=0)


def batchnorm_forward(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    std = np.sqrt(var + eps)
    xhat = (x - mu) / std
    return gamma * xhat + beta, (xhat, std, gamma)


def batchnorm_backward(dout, cache, bug=None):
    xhat, std, gamma = cache
    N = xhat.shape[0]
    dxhat = dout * gamma
    if bug == "stats_as_constants":
        dx = dxhat / std
    else:
        dx = (N * dxhat - dxhat.sum(axis=0) - xhat * np.sum(dxhat * xhat, axis=0)) / (N * std)
    return dx, np.sum(dout * xhat, axis=0), dout.sum(axis=0)


# pytree wrappers: fun(inputs) and vjp(inputs, cotangent)
LAYERS = {
    "affine": (lambda p: affine_forward(p["x"], p["w"], p["b"])[0],
               lambda p, g, bug=None: dict(zip(("x", "w", "b"),
                                               affine_backward(g, affine_forward(p["x"], p["w"], p["b"])[1], bug))),
               _seeded(1, lambda r: {"x": r.standard_normal((4, 5)), "w": r.standard_normal((5, 3)),
                                     "b": r.standard_normal(3)}),
               "mean_bias", "b"),
    "softmax": (lambda z: softmax_forward(z)[0],
                lambda z, g, bug=None: softmax_backward(g, softmax_forward(z)[1], bug),
                _seeded(2, lambda r: r.standard_normal((3, 6))), "diagonal_only", "params"),
    "conv": (lambda p: conv_forward(p["x"], p["k"])[0],
             lambda p, g, bug=None: dict(zip(("x", "k"), conv_backward(g, conv_forward(p["x"], p["k"])[1], bug))),
             _seeded(3, lambda r: {"x": r.standard_normal((6, 7)), "k": r.standard_normal((3, 2))}),
             "flipped_kernel", "k"),
    "layernorm": (lambda p: layernorm_forward(p["x"], p["g"], p["b"])[0],
                  lambda p, g, bug=None: dict(zip(("x", "g", "b"), layernorm_backward(
                      g, layernorm_forward(p["x"], p["g"], p["b"])[1], bug))),
                  _seeded(4, lambda r: {"x": r.standard_normal((3, 5)) * 2 + 1, "g": r.standard_normal(5),
                                        "b": r.standard_normal(5)}),
                  "missing_mean_term", "x"),
    "batchnorm": (lambda p: batchnorm_forward(p["x"], p["g"], p["b"])[0],
                  lambda p, g, bug=None: dict(zip(("x", "g", "b"), batchnorm_backward(
                      g, batchnorm_forward(p["x"], p["g"], p["b"])[1], bug))),
                  _seeded(5, lambda r: {"x": r.standard_normal((6, 4)) * 3 - 1, "g": r.standard_normal(4),
                                        "b": r.standard_normal(4)}),
                  "stats_as_constants", "x"),
}


def _jacobian_from_vjp(fun, vjp, p):
    """The explicit Jacobian a user would assemble from their backward pass (unit cotangents)."""
    from pytest_gradcheck.numerics.trees import flatten
    y = np.asarray(fun(p))
    rows = []
    for r in range(y.size):
        g = np.zeros(y.size)
        g[r] = 1.0
        rows.append(flatten(vjp(p, g.reshape(y.shape)))[0])
    return np.array(rows)


# ---------------------------------------------------------------- VJP
@pytest.mark.parametrize("name", list(LAYERS))
def test_vjp_of_correct_layer_passes(name):
    fun, vjp, make, _, _ = LAYERS[name]
    r = check_vjp(fun, make(), vjp)
    assert r.status == "pass", str(r)
    assert r.kind == "vjp"


@pytest.mark.parametrize("name", list(LAYERS))
def test_vjp_of_buggy_layer_fails_at_the_right_leaf(name):
    fun, vjp, make, bug, leaf = LAYERS[name]
    r = check_vjp(fun, make(), lambda p, g: vjp(p, g, bug=bug))
    assert r.status == "fail", str(r)
    assert r.worst[0].leaf == leaf
    assert "vector-Jacobian" in r.diagnosis["summary"]


def test_vjp_fast_mode_and_pytree_output():
    rng = np.random.default_rng(1)
    W = rng.standard_normal((30, 3000)) / 50

    def fun(x):
        z = W @ x
        return {"lin": z, "sq": (z ** 2, np.tanh(x[:5]))}

    def vjp(x, c, bug=False):
        z = W @ x
        g = W.T @ (c["lin"] + 2 * z * c["sq"][0])
        g[:5] += (1 - np.tanh(x[:5]) ** 2) * c["sq"][1] * (1.02 if bug else 1.0)
        return g

    x = rng.standard_normal(3000)
    r = check_vjp(fun, x, vjp, mode="auto")
    assert r.mode == "fast" and r.status == "pass", str(r)
    bad = check_vjp(fun, x, lambda x, c: vjp(x, c, bug=True), mode="fast")
    assert bad.status == "fail" and bad.worst[0].index[0] < 5
    assert bad.n_evals < 2 * 3000 / 5


def test_vjp_cotangents_are_seeded_and_complex_step_works():
    fun, vjp, make, bug, _ = LAYERS["softmax"]
    z = make()
    a = check_vjp(fun, z, vjp, seed=3).to_dict()
    b = check_vjp(fun, z, vjp, seed=3).to_dict()
    a.pop("duration_s"), b.pop("duration_s")
    assert a == b
    assert check_vjp(lambda x: np.sin(x) * x, np.linspace(0.1, 1, 7), lambda x, c: c * (np.cos(x) * x + np.sin(x)),
                     method="complex").status == "pass"


# ---------------------------------------------------------------- JVP
def _affine_jvp(p, t, bug=None):
    out = t["x"] @ p["w"] + p["x"] @ t["w"]
    return out if bug else out + t["b"]


def _softmax_jvp(z, t, bug=None):
    y = softmax_forward(z)[0]
    return y * t if bug else y * (t - np.sum(y * t, axis=1, keepdims=True))


def _conv_jvp(p, t, bug=None):
    k = t["k"][::-1, ::-1] if bug else t["k"]
    return conv_forward(t["x"], p["k"])[0] + conv_forward(p["x"], k)[0]


JVPS = {"affine": _affine_jvp, "softmax": _softmax_jvp, "conv": _conv_jvp}


@pytest.mark.parametrize("name", list(JVPS))
def test_jvp_correct_passes_and_bug_fails(name):
    fun, _, make, _, _ = LAYERS[name]
    p = make()
    r = check_jvp(fun, p, JVPS[name])
    assert r.status == "pass" and r.kind == "jvp", str(r)
    bad = check_jvp(fun, p, lambda q, t: JVPS[name](q, t, bug=True))
    assert bad.status == "fail", str(bad)
    assert bad.worst[0].leaf == "out"
    assert bad.n_evals < 60


def test_jvp_of_pytree_output_names_the_output_leaf():
    def fun(x):
        return (np.sin(x), {"e": np.exp(x[:2])})

    def jvp(x, t, bug=False):
        return (np.cos(x) * t, {"e": np.exp(x[:2]) * t[:2] * (1.5 if bug else 1.0)})

    x = np.linspace(-1, 1, 5)
    assert check_jvp(fun, x, jvp).status == "pass"
    r = check_jvp(fun, x, lambda x, t: jvp(x, t, True))
    assert r.status == "fail" and r.worst[0].leaf == "out[1]['e']"


# ---------------------------------------------------------------- explicit Jacobian
@pytest.mark.parametrize("name", list(LAYERS))
def test_jacobian_from_backward_pass(name):
    fun, vjp, make, bug, leaf = LAYERS[name]
    p = make()
    r = check_jacobian(fun, p, lambda q: _jacobian_from_vjp(fun, vjp, q))
    assert r.status == "pass" and r.kind == "jacobian", str(r)
    bad = check_jacobian(fun, p, lambda q: _jacobian_from_vjp(fun, lambda a, g: vjp(a, g, bug=bug), q))
    assert bad.status == "fail", str(bad)
    want = "dout/d" + leaf if leaf != "params" else "dout/dparams"
    assert bad.worst[0].leaf == want


def test_jacobian_layouts_and_shape_errors():
    rng = np.random.default_rng(256)
    A = rng.standard_normal((3, 4))
    x = rng.standard_normal(4)
    fun = lambda v: np.tanh(A @ v)  # noqa: E731
    jac2d = lambda v: (1 - np.tanh(A @ v) ** 2)[:, None] * A  # noqa: E731
    assert check_jacobian(fun, x, jac2d).status == "pass"
    # out_shape + in_shape for one output array and one input array
    X = rng.standard_normal((2, 2))
    r = check_jacobian(lambda M: M @ M, X, _mm_jac)
    assert r.status == "pass", str(r)
    with pytest.raises(GradcheckInputError, match="12"):
        check_jacobian(fun, x, lambda v: np.zeros((4, 3, 2)))


def _mm_jac(M):
    """d(M@M)[i,j]/dM[k,l] = [i==k] M[l,j] + M[i,k] [l==j], as out_shape + in_shape."""
    n = M.shape[0]
    J = np.zeros((n, n, n, n))
    for i in range(n):
        for j in range(n):
            for k in range(n):
                for l in range(n):
                    J[i, j, k, l] = (i == k) * M[l, j] + M[i, k] * (l == j)
    return J


def test_one_wrong_entry_in_a_300x1000_jacobian_vs_torch_fast_rule():
    """torch's fast mode compares v^T J u with u, v ~ U[0,1) normalised and atol*sum(u)*sum(v):
    one wrong entry of a 300x1000 Jacobian mostly escapes.  check_jacobian(mode="fast")
    (VJPs with +-1 cotangents) catches and localises it."""
    rng = np.random.default_rng(0)
    m, n = 300, 1000
    W = rng.standard_normal((m, n)) * 0.05
    x = rng.standard_normal(n)
    fun = lambda v: W @ v  # noqa: E731
    trials, torch_caught = 50, 0
    for t in range(trials):
        r0, c0 = int(rng.integers(m)), int(rng.integers(n))
        Wb = W.copy()
        Wb[r0, c0] += 1.0 * 0.05  # one entry off by the typical entry size
        u = rng.random(n)
        u /= np.linalg.norm(u)
        v = rng.random(m)
        v /= np.linalg.norm(v)
        num = v @ (fun(x + 1e-6 * u) - fun(x - 1e-6 * u)) / 2e-6
        ana = v @ Wb @ u
        torch_caught += abs(ana - num) > 1e-5 * u.sum() * v.sum() + 1e-3 * abs(num)
        if t < 3:
            r = check_jacobian(fun, x, lambda v, Wb=Wb: Wb, mode="fast", seed=t)
            assert r.status == "fail" and r.worst[0].index == (c0,), str(r)
            assert r.n_evals < 2 * n / 2
    assert torch_caught / trials <= 0.2
    full = check_jacobian(fun, x, lambda v: Wb)
    assert full.status == "fail" and full.counts["fail"] == 1
    assert full.worst[0].leaf == "dout/dparams" and full.worst[0].index == (r0, c0)


def test_bad_arguments():
    with pytest.raises(GradcheckInputError, match="callable"):
        check_vjp(np.sin, np.ones(3), None)
    with pytest.raises(GradcheckInputError, match="n_cotangents"):
        check_vjp(np.sin, np.ones(3), lambda x, c: c, n_cotangents=0)
    with pytest.raises(GradcheckInputError, match="complex"):
        check_jvp(np.sin, np.ones(3), lambda x, t: t, method="complex")
    with pytest.raises(GradcheckInputError, match="jvp raised"):
        check_jvp(np.sin, np.ones(3), lambda x, t: 1 / 0)


def test_float32_layers():
    # float32 inputs: fun is evaluated on float64 copies, the analytic side's floor follows float32
    for name, (fun, vjp, make, bug, leaf) in LAYERS.items():
        p = make()
        p32 = {k: np.asarray(v, dtype=np.float32) for k, v in p.items()} if isinstance(p, dict) \
            else p.astype(np.float32)
        assert check_vjp(fun, p32, vjp, n_cotangents=1).status == "pass", name
        assert check_vjp(fun, p32, lambda a, g: vjp(a, g, bug=bug), n_cotangents=1).status == "fail", name
        if name in JVPS:
            assert check_jvp(fun, p32, JVPS[name], n_tangents=1).status == "pass", name
            assert check_jvp(fun, p32, lambda a, t: JVPS[name](a, t, bug=True), n_tangents=1).status == "fail", name


def test_torch_tensors():
    torch = pytest.importorskip("torch")
    x = torch.linspace(-1, 1, 12, dtype=torch.float64).reshape(3, 4)
    fun = lambda v: torch.softmax(v, dim=1)  # noqa: E731

    def vjp(v, c, bug=False):
        y = torch.softmax(v, dim=1)
        return y * c if bug else y * (c - (c * y).sum(1, keepdim=True))

    assert check_vjp(fun, x, vjp).status == "pass"
    assert check_vjp(fun, x, lambda v, c: vjp(v, c, True)).status == "fail"
    assert check_vjp(fun, x.float(), vjp).status == "pass"
    assert check_jacobian(fun, x, lambda v: torch.autograd.functional.jacobian(fun, v)).status == "pass"
    assert check_jvp(fun, x, lambda v, t: vjp(v, t)).status == "pass"  # softmax's Jacobian is symmetric


def test_inputs_of_very_different_size_in_one_leaf_have_no_false_failure():
    # each input was stepped by max(|x|, its leaf's rms): 2e-6 beside 3e3 moved by ~1e-2, where
    # tanh(1e6 x) is flat, and a correct Jacobian failed; steps now follow each entry's own size
    x0 = np.array([2e-6, 1.0, 3e3])
    k = np.array([1e6, 1.0, 1e-3])

    def fun(x):
        return np.tanh(np.asarray(x) * k)

    def jac(x):
        return np.diag(k / np.cosh(np.asarray(x) * k) ** 2)

    assert check_jacobian(fun, x0, jac).status == "pass"
    assert check_jvp(fun, x0, lambda x, t: jac(x) @ np.asarray(t)).status == "pass"


@pytest.mark.parametrize("bug", [0.05, -2.0])
def test_jacobian_of_a_tiny_leaf_beside_unit_ones_is_checked(bug):
    # a bias of ~1e-13 beside unit weights: a step of its own size is lost in roundoff, and a wrong
    # column passed with a tolerance of its whole size; the step now grows while fun stays linear
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4, 3))
    x0 = {"W": rng.standard_normal(3), "b": np.array([1e-13, -2e-13, 0.0, 3e-13])}

    def fun(p):
        return np.tanh(A @ p["W"] + p["b"])

    def jac(p, bug=0.0):
        s = 1 / np.cosh(A @ p["W"] + p["b"]) ** 2
        return {"W": s[:, None] * A, "b": np.diag(s) * (1 + bug)}

    assert check_jacobian(fun, x0, jac).status == "pass"
    res = check_jacobian(fun, x0, lambda p: jac(p, bug))
    assert res.status == "fail" and res.worst[0].leaf == "dout/db", str(res)


def test_float32_jacobian_with_cancellation_has_no_false_failure():
    # 1 - tanh(x)^2 in float32 near saturation loses ~3e-5 relative to cancellation; like a float32
    # gradient, a float32 Jacobian's rounding is measured (ECnoise of jac), not assumed kappa*eps
    x0 = np.linspace(-3, 3, 200).astype(np.float32)

    def fun(x):  # evaluated in float64 on the numeric side: only jac rounds in float32
        return np.tanh(1.3 * np.asarray(x))

    def jac(x, bug=1.0):
        t = np.tanh(np.float32(1.3) * np.asarray(x, dtype=np.float32))
        d = np.float32(1.3) * (np.float32(1) - t * t)
        d[100] *= np.float32(bug)
        return np.diag(d)

    for seed in range(3):
        assert check_jacobian(fun, x0, jac, seed=seed).status == "pass"
    res = check_jacobian(fun, x0, lambda x: jac(x, 1.05))
    assert res.status == "fail" and res.worst[0].index == (100, 100), str(res)


def test_float32_jvp_with_cancellation_has_no_false_failure():
    # like a float32 Jacobian, a float32 JVP's rounding is measured (ECnoise of jvp), not assumed
    x0 = np.linspace(-4, 4, 101).astype(np.float32)

    def fun(x):
        return np.tanh(1.3 * np.asarray(x))

    def jvp(x, t, bug=1.0):
        y = np.tanh(np.float32(1.3) * np.asarray(x, dtype=np.float32))
        out = np.float32(1.3) * (np.float32(1) - y * y) * np.asarray(t, dtype=np.float32)
        out[50] *= np.float32(bug)
        return out

    assert check_jvp(fun, x0, jvp).status == "pass"
    assert check_jvp(fun, x0, lambda x, t: jvp(x, t, 1.05)).status == "fail"


# -- issue 22, item 9: check_jacobian holds non-finite inputs fixed, as check_gradient does -----------

def _masked(x):
    m = np.where(np.isfinite(x), x, 0.0)
    return np.array([np.sum(np.sin(m)), np.sum(m ** 2)])


def _masked_jac(x):
    m = np.where(np.isfinite(x), x, 0.0)
    return np.stack([np.cos(m) * np.isfinite(x), 2 * m])


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_jacobian_holds_non_finite_inputs_fixed(mode):
    x = np.array([0.5, -np.inf, 1.0, 2.0])
    x0 = x.copy()
    r = check_jacobian(_masked, x, _masked_jac, mode=mode)
    assert r.status == "pass", r
    assert np.array_equal(x, x0)
    if mode == "full":
        assert r.n_checked == 6  # 2 outputs x the 3 finite inputs
        assert any("1 non-finite input entry held fixed" in m for m in r.messages), r.messages
    wrong = check_jacobian(_masked, x, lambda x: _masked_jac(x) * np.array([1.0, 1.0, 1.01, 1.0]), mode=mode)
    assert wrong.status == "fail"


def test_jacobian_of_no_finite_input_is_refused():
    with pytest.raises(GradcheckInputError, match="inputs has no finite entry"):
        check_jacobian(_masked, np.array([np.inf, -np.inf]), _masked_jac)
