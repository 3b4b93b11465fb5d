"""Property tests: random smooth functions over random pytrees and scales.

Each example builds a loss from primitives (sin, exp, tanh, log1p(x^2), a
cubic, products of leaves) with a hand-derived gradient (chain rule), over a
random small pytree whose leaves have random magnitudes, and with a random
output scale.  Properties:

* a correct gradient passes;
* moving one entry of the gradient by 30x that entry's reported tolerance
  fails, and the worst entry is that one;
* the same inputs and seed give bit-for-bit the same result;
* the caller's params are never modified.
"""

from __future__ import annotations

import copy
import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_gradcheck import check_gradient

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from corpus.anchors import flat_vector, leaves_of, rebuild  # noqa: E402

# name: (f, f')
PRIMS = {
    "sin": (np.sin, np.cos),
    "exp": (lambda u: np.exp(0.5 * u), lambda u: 0.5 * np.exp(0.5 * u)),
    "tanh": (np.tanh, lambda u: 1 - np.tanh(u) ** 2),
    "log1p_sq": (lambda u: np.log1p(u * u), lambda u: 2 * u / (1 + u * u)),
    "cubic": (lambda u: u**3 / 3 - 0.5 * u**2 + u, lambda u: u**2 - u + 1),
    "id": (lambda u: u, lambda u: np.ones_like(u)),
}
NAMES = sorted(PRIMS)

SETTINGS = settings(max_examples=50, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


class Problem:
    """A random smooth loss over a random pytree (everything from one seed)."""

    def __init__(self, seed, in_scale, out_scale, structure, dtype="float64"):
        rng = np.random.default_rng(seed)
        self.dtype = np.dtype(dtype)
        nleaves = int(rng.integers(1, 4))
        shapes = [[(), (3,), (2, 3), (4,)][int(rng.integers(0, 4))] for _ in range(nleaves)]
        leaves = [np.asarray(in_scale * rng.normal(size=s), dtype=self.dtype) for s in shapes]
        if structure == "dict":
            self.template = {f"p{i}": 0 for i in range(nleaves)}
        elif structure == "list":
            self.template = [0] * nleaves
        else:  # nested: dict of lists of dicts and tuples
            self.template = {"a": [{"w": 0}], "b": (0,) * (nleaves - 1)} if nleaves > 1 else {"a": [{"w": 0}]}
        self.params0 = rebuild(self.template, iter(leaves))
        self.s = in_scale
        self.c = out_scale
        self.terms = []
        for i in range(nleaves):
            inner, outer = rng.choice(NAMES, size=2)
            a, b = rng.uniform(0.5, 1.5, size=2) * rng.choice([-1, 1], size=2)
            w = rng.normal(size=shapes[i])
            self.terms.append((i, inner, outer, a, b, w))
        self.cross = (0, nleaves - 1, float(rng.normal())) if nleaves > 1 else None

    def fun(self, params):
        xs = [np.asarray(x) for x in leaves_of(params)]
        total = 0.0
        for i, inner, outer, a, b, w in self.terms:
            u = xs[i] / self.s
            w = w.astype(xs[i].dtype)
            total = total + np.sum(w * PRIMS[outer][0](a * PRIMS[inner][0](b * u)))
        if self.cross:
            i, j, k = self.cross
            total = total + k * np.sum(np.tanh(xs[i] / self.s)) * np.sum(np.sin(xs[j] / self.s))
        return self.c * total

    def grad(self, params):
        xs = [np.asarray(x) for x in leaves_of(params)]
        gs = [np.zeros_like(x) for x in xs]
        for i, inner, outer, a, b, w in self.terms:
            u = xs[i] / self.s
            w = w.astype(xs[i].dtype)
            v = PRIMS[inner][0](b * u)
            gs[i] = gs[i] + w * PRIMS[outer][1](a * v) * a * PRIMS[inner][1](b * u) * b / self.s
        if self.cross:
            i, j, k = self.cross
            ti, sj = np.sum(np.tanh(xs[i] / self.s)), np.sum(np.sin(xs[j] / self.s))
            gs[i] = gs[i] + k * (1 - np.tanh(xs[i] / self.s) ** 2) / self.s * sj
            gs[j] = gs[j] + k * ti * np.cos(xs[j] / self.s) / self.s
        return rebuild(self.template, iter([np.asarray(self.c * g, dtype=g.dtype) for g in gs]))

    def params(self):
        return copy.deepcopy(self.params0)


problems = st.builds(
    Problem,
    seed=st.integers(0, 2**31 - 1),
    in_scale=st.sampled_from([1e-3, 1.0, 1e3]),
    out_scale=st.sampled_from([1e-8, 1.0, 1e6]),
    structure=st.sampled_from(["dict", "list", "nested"]),
    dtype=st.sampled_from(["float64", "float64", "float32"]),
)


@SETTINGS
@given(problems)
def test_smooth_correct_gradients_pass(prob):
    r = check_gradient(prob.fun, prob.params(), prob.grad)
    assert r.status == "pass", str(r)


@settings(SETTINGS, max_examples=80)
@given(problems, st.integers(0, 10**6), st.sampled_from([-1.0, 1.0]),
       st.sampled_from(["central", "central4", "forward"]))
def test_perturbation_beyond_tolerance_fails(prob, pick, sign, method):
    p = prob.params()
    r = check_gradient(prob.fun, p, prob.grad, method=method)
    assert r.status == "pass"
    tol = np.asarray(r.entries["tolerance"], dtype=float)
    k = pick % tol.size
    g0 = prob.grad(prob.params())
    vec = flat_vector(g0)
    vec[k] += sign * 30.0 * tol[k]
    shapes = [np.shape(x) for x in leaves_of(g0)]
    parts, off = [], 0
    for s in shapes:
        size = int(np.prod(s))
        parts.append(vec[off:off + size].reshape(s))
        off += size
    bad = rebuild(g0, iter(parts))
    r2 = check_gradient(prob.fun, p, lambda q: bad, method=method)
    assert r2.status == "fail", f"{method}: entry {k} moved by 30 x tolerance {tol[k]:.3g}:\n{r2}"
    assert r2.counts["fail"] == 1
    i_worst = int(np.argmax(np.where(np.asarray(r2.entries["verdict"]) == 1,
                                     np.asarray(r2.entries["ratio"], dtype=float), -1.0)))
    assert i_worst == k


@SETTINGS
@given(problems, st.integers(0, 2**32 - 1))
def test_results_are_reproducible_bit_for_bit(prob, seed):
    r1 = check_gradient(prob.fun, prob.params(), prob.grad, seed=seed)
    r2 = check_gradient(prob.fun, prob.params(), prob.grad, seed=seed)
    d1, d2 = r1.to_dict(), r2.to_dict()
    d1.pop("duration_s"), d2.pop("duration_s")
    assert d1 == d2
    for key in ("analytic", "numeric", "error_estimate", "tolerance", "verdict"):
        a1, a2 = np.asarray(r1.entries[key]), np.asarray(r2.entries[key])
        assert a1.tobytes() == a2.tobytes(), key


@SETTINGS
@given(problems, st.sampled_from(["central", "forward", "central4"]))
def test_params_never_modified(prob, method):
    p = prob.params()
    before = copy.deepcopy(p)
    ids_before = [id(x) for x in leaves_of(p)]
    check_gradient(prob.fun, p, prob.grad, method=method)
    after = leaves_of(p)
    assert [id(x) for x in after] == ids_before
    for x, y in zip(leaves_of(before), after):
        assert np.asarray(x).dtype == np.asarray(y).dtype
        assert np.asarray(x).tobytes() == np.asarray(y).tobytes()


# Examples found by wider sweeps (60 seeds x 9 scale pairs per scheme, and
# 400 hypothesis examples): the same property, pinned so that it is checked on
# every run.  (problem seed, in_scale, out_scale, entry pick, sign)
PINNED = [(s * 7919 + 3, i, o, s, 1.0 if s % 2 else -1.0)
          for s, i, o in [(1, 1e-3, 1e6), (1, 1e3, 1e6), (2, 1e3, 1.0), (6, 1.0, 1e-8), (8, 1e-3, 1.0),
                          (12, 1e-3, 1.0)]] + [(190, 1.0, 1e-8, 0, -1.0)]


# (190, ...) with central4 once passed: after a stage-A disagreement, the chain from larger steps
# settled on an estimate ~400x less precise than the first one and passed the entry (see
# check._refine: such a pass must now resolve the stage-A disagreement)
@pytest.mark.parametrize("method", ["central", "central4", "forward"])
@pytest.mark.parametrize("seed,in_scale,out_scale,pick,sign", PINNED)
def test_perturbation_beyond_tolerance_fails_pinned(seed, in_scale, out_scale, pick, sign, method):
    prob = Problem(seed, in_scale, out_scale, "dict")
    r = check_gradient(prob.fun, prob.params(), prob.grad, method=method)
    assert r.status == "pass"
    tol = np.asarray(r.entries["tolerance"], dtype=float)
    k = pick % tol.size
    g0 = prob.grad(prob.params())
    vec = flat_vector(g0)
    vec[k] += sign * 30.0 * tol[k]
    parts, off = [], 0
    for x in leaves_of(g0):
        size = int(np.prod(np.shape(x)))
        parts.append(vec[off:off + size].reshape(np.shape(x)))
        off += size
    bad = rebuild(g0, iter(parts))
    r2 = check_gradient(prob.fun, prob.params(), lambda q: bad, method=method)
    assert r2.status == "fail", f"{method}: entry {k} moved by 30 x tolerance {tol[k]:.3g}:\n{r2}"
