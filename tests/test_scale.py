"""Scale (issue 14): what a check keeps in memory, and what its evaluations cost."""

import gc
import os
import sys
import weakref

import pytest

from pytest_gradcheck import check_gradient

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from corpus.scale import heavy_tailed_logreg, tanh_mlp  # noqa: E402

try:
    import torch
except ImportError:  # the numpy measurements below run without it
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="needs torch")


def _alive_counter():
    """fun returning a tensor, recording how many of its earlier outputs are still alive at each call."""
    refs, peak = [], [0]

    def fun(p):
        alive = sum(r() is not None for r in refs)
        peak[0] = max(peak[0], alive)
        out = (torch.sin(p) * p).sum()
        refs.append(weakref.ref(out))
        return out

    return fun, peak


@needs_torch
def test_full_mode_keeps_no_output_of_fun_beyond_its_call():
    # every output held until stage A ended: 2n tensors, each with its autograd graph (n^2 memory)
    fun, peak = _alive_counter()
    x = torch.linspace(-2, 2, 200, dtype=torch.float64).requires_grad_(True)
    gc.disable()  # reference counting alone must free them
    try:
        r = check_gradient(fun, x, None, mode="full", vectorized=False)  # one call per point
    finally:
        gc.enable()
    assert r.status == "pass"
    assert peak[0] <= 2, f"{peak[0]} earlier outputs of fun were alive during a later call"


@needs_torch
def test_numeric_side_runs_without_autograd_graph_for_requires_grad_params():
    grad_on = []

    def fun(p):
        grad_on.append(torch.is_grad_enabled())
        return (torch.sin(p) * p).sum()

    x = torch.linspace(-2, 2, 50, dtype=torch.float64).requires_grad_(True)
    r = check_gradient(fun, x, None, mode="full")
    assert r.status == "pass"
    # autodiff (grad=None) calls fun with the graph: twice at most; the finite differences never
    assert sum(grad_on) <= 2 < r.n_evals <= len(grad_on) - sum(grad_on)


@needs_torch
def test_fun_that_differentiates_inside_itself_still_works():
    # torch.autograd.grad inside fun raises under no_grad: the check falls back to calling it with the graph
    def fun(p):
        inner = (p ** 3).sum()
        (g,) = torch.autograd.grad(inner, p, create_graph=True)
        return (g * g).sum()  # sum (3 p^2)^2 = 9 sum p^4

    def grad(p):
        with torch.no_grad():
            return 36 * p ** 3

    x = torch.linspace(-1, 1, 20, dtype=torch.float64).requires_grad_(True)
    before = x.detach().clone()
    r = check_gradient(fun, x, grad, mode="full")
    assert r.status == "pass"
    wrong = check_gradient(fun, x, lambda p: grad(p) * 1.01, mode="full")
    assert wrong.status == "fail"
    assert torch.equal(x.detach(), before)


@pytest.mark.parametrize("problem", ["logreg", "mlp"])
def test_small_entries_take_one_first_step_not_two(problem):
    # a second first step for every entry whose small |x| lost the first in roundoff: 2.34 n on the
    # MLP; a calibrated guess of which to grow ahead 2.22 n; the grown step first, kept when it agrees, 2.00 n
    fun, grad, p = heavy_tailed_logreg(d=1500, m=40) if problem == "logreg" else tanh_mlp(d_in=20, hidden=40)
    r = check_gradient(fun, p, grad, mode="full")
    assert r.status == "pass"
    assert r.n_evals <= 2.02 * r.n_params + 30, r.n_evals / r.n_params


def test_entries_that_disagree_start_stage_b_from_the_step_they_always_did(monkeypatch):
    # a candidate is evaluated at its grown step first; one that disagrees there must go on to stage B
    # from the old order's step: the small one, grown only where its second difference is lost
    import numpy as np

    from pytest_gradcheck.numerics import entries

    fun, grad, p = tanh_mlp(d_in=20, hidden=40, d_out=5)

    def wrong(q):
        g = grad(q)
        g["W1"] = g["W1"] * 1.001
        return g

    seen, real = [], entries._stage_a

    def old_order_beside(problem, judge, scheme, offs, h, idx, sigma, target):
        got = real(problem, judge, scheme, offs, h, idx, sigma, target)
        taken = entries._steps_taken(problem, offs, h, idx)
        D_old, _, vals, _ = entries._first_step(problem, scheme, offs, h, idx, taken)
        cand, big = entries._grown_steps(problem, scheme, offs, h, idx, sigma, target, taken)
        lost = np.abs(entries._second_difference(offs, vals[:, cand], float(problem.ev.f0))) < 100.0 * sigma
        h_old = h.copy()
        h_old[cand[lost]] = big[lost]
        D_old[cand[lost]] = entries._first_step(problem, scheme, offs, big[lost], idx[cand[lost]])[0]
        R = scheme.weight_norm * sigma / got[2]
        disagree = ~(np.abs(got[1] - problem.analytic[idx]) <= judge.tol_vec(got[1], R, idx))
        seen.append((got[0], got[1], h_old, D_old, disagree, np.isin(np.arange(idx.size), cand), h))
        return got

    monkeypatch.setattr(entries, "_stage_a", old_order_beside)
    r = check_gradient(fun, p, wrong, mode="full")
    assert r.status == "fail"
    (h, D, h_old, D_old, disagree, is_cand, h_small), = seen
    assert np.array_equal(h[disagree], h_old[disagree]) and np.array_equal(D[disagree], D_old[disagree])
    # not vacuous: disagreeing candidates of both kinds (small step kept, grown step kept)
    small_kept = disagree & is_cand & (h == h_small)
    grown_kept = disagree & is_cand & (h != h_small)
    assert small_kept.sum() >= 10 and grown_kept.sum() >= 10, (small_kept.sum(), grown_kept.sum())


def _sum_exp_2x(n):
    import numpy as np

    x = np.linspace(-2, 2, n)
    return (lambda p: float(np.sum(np.exp(2 * p)))), (lambda p: 2 * np.exp(2 * p)), x


def test_the_order_of_a_candidates_two_steps_follows_f():
    # sum(exp(2x)) at n = 1e4: 83% of the entries are candidates (f sums 1e4 terms: its roundoff is
    # large for each entry's share), and for ~80% of those the grown step disagrees (its truncation:
    # exp(2x)'s third derivative is large next to its gradient): the grown step first everywhere costs
    # 3.3 n, the small step first everywhere 2.09 n (the only order before 2026-12-01)
    fun, grad, x = _sum_exp_2x(10_000)
    r = check_gradient(fun, x, grad, mode="full")
    assert r.status == "pass"
    assert r.n_evals <= 2.2 * x.size, r.n_evals / x.size


@pytest.mark.parametrize("problem", ["mlp_bug", "exp"])
def test_stage_a_judges_candidates_alike_in_either_order(problem, monkeypatch):
    # the order of a candidate's two steps changes what it costs, never what stage A decides: the same
    # entries pass there, and the others start stage B from the same step and estimate
    import numpy as np

    from pytest_gradcheck.numerics import entries

    if problem == "exp":
        fun, grad, p = _sum_exp_2x(5000)
    else:
        fun, g0, p = tanh_mlp(d_in=20, hidden=40, d_out=5)

        def grad(q):
            g = g0(q)
            g["W1"] = g["W1"] * 1.001
            return g

    seen, real = {}, entries._stage_a

    def stage_a(problem, judge, scheme, offs, h, idx, sigma, target):
        got = real(problem, judge, scheme, offs, h, idx, sigma, target)
        agree = entries._agrees(problem, judge, scheme, idx, sigma, got[1], got[2])
        seen[order] = (got[0], got[1], agree)
        return got

    monkeypatch.setattr(entries, "_stage_a", stage_a)
    costs = {}
    for order in (True, False):
        monkeypatch.setattr(entries._FirstOrder, "record", lambda self, *a, order=order: setattr(
            self, "grown_first", order))
        monkeypatch.setattr(entries._FirstOrder, "__init__", lambda self, order=order: setattr(
            self, "grown_first", order))
        costs[order] = check_gradient(fun, p, grad, mode="full").n_evals
    (h1, D1, ok1), (h2, D2, ok2) = seen[True], seen[False]
    assert np.array_equal(ok1, ok2)
    assert np.array_equal(h1[~ok1], h2[~ok2]) and np.array_equal(D1[~ok1], D2[~ok2])
    assert costs[True] != costs[False]  # not vacuous: the orders did differ


def test_grown_first_steps_still_catch_an_error_in_a_small_entry():
    import numpy as np

    fun, grad, w = heavy_tailed_logreg(d=1500, m=40)
    j = int(np.argmin(np.abs(w)))  # the smallest weight: its first step is grown
    g0 = grad(w)

    def wrong(v):
        g = grad(v)
        g[j] += 1e-3 * (abs(g0[j]) + np.median(np.abs(g0)))
        return g

    r = check_gradient(fun, w, wrong, mode="full")
    assert r.status == "fail"
    assert [e.index for e in r.worst if e.verdict == "fail"] == [(j,)]


def test_fast_mode_holds_a_few_n_vectors_at_most():
    # it held ~40 at n = 1e6: the K x n float64 sign matrix, K directions built even when nothing
    # batches them, one direction kept per probe, reference cycles holding copies until gc
    import tracemalloc

    import numpy as np

    def fun(p):
        return float(np.sum(np.sin(p) * p))

    def grad(p):
        return np.cos(p) * p + np.sin(p)

    def peak_bytes(n):
        x = np.random.default_rng(0).uniform(-2, 2, size=n)
        tracemalloc.start()
        try:
            r = check_gradient(fun, x, grad, mode="fast")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert r.status == "pass" and r.n_evals <= 30
        return peak

    # the memory per entry: the slope of the peak between two sizes.  A single peak / n also counted
    # what does not grow with n -- the first check in a process imports modules (~2 MB: 14.2
    # "n-vectors" at n = 2e5 when this test ran first, 12.5 after any other check), so it
    # depended on the order the tests ran in.  The slope is 12.53 n-vectors (n = 1e5 .. 4e5),
    # fun's and grad's own temporaries (1 and 2 n-vectors) included; 13.8 when the in-place
    # check of the buffers compared them with equal_nan=True, which copies both arrays
    n1, n2 = 100_000, 200_000
    slope = (peak_bytes(n2) - peak_bytes(n1)) / (8.0 * (n2 - n1))
    assert slope <= 13.0, f"{slope:.2f} n-vectors per entry"


def test_growing_first_steps_ahead_never_costs_more_than_the_old_order():
    # log cosh: the entries whose steps need growing are the flat-slope, high-curvature ones, where a
    # grown step's truncation is largest; a prediction from the leaf's other entries (high slope, flat
    # curvature) grew them all and then had to take the small step too (2.25 n here, 3.7 n at n = 1e4,
    # where the old order took 2.38 n); the grown step kept where it agrees: 2.09 n
    import numpy as np

    rng = np.random.default_rng(0)
    n = 3000
    c, t, w = rng.uniform(0.5, 2.0, n), rng.standard_normal(n), rng.standard_normal(n)

    def fun(v):
        s = np.sum(v)
        return float(np.sum(np.log(np.cosh(c * (v - t)))) + 0.5 * s * s / n)

    def grad(v):
        return c * np.tanh(c * (v - t)) + np.sum(v) / n

    r = check_gradient(fun, w, grad, mode="full")
    assert r.status == "pass"
    assert r.n_evals <= 2.15 * n, r.n_evals / n


def test_batches_stay_cache_sized():
    # a vectorized fun got chunks of up to 256 MiB / 32n rows, each a fresh repeat-expanded copy of x0
    import numpy as np

    from pytest_gradcheck.numerics.entries import BATCH_BLOCK_FLOATS

    n, seen = 3000, []
    x = np.random.default_rng(0).uniform(-2, 2, size=n)

    def fun(p):
        seen.append(p.size)
        return np.sum(np.sin(p) * p, axis=-1)

    r = check_gradient(fun, x, lambda p: np.cos(p) * p + np.sin(p), mode="full", vectorized=True)
    assert r.status == "pass"
    assert len(seen) > 10 and max(seen) <= BATCH_BLOCK_FLOATS


def test_fixed_cost_shortcuts_give_numpys_own_numbers():
    # the noise measurement's signs and median skip numpy's argument handling (~15 us of a small
    # check); a check must stay bit-identical for a seed, so they must be the very same numbers
    import numpy as np

    from pytest_gradcheck.numerics.noise import _median_abs, _random_signs

    for seed in range(20):
        for n in (1, 2, 9, 1000):
            a, b = np.random.default_rng(seed), np.random.default_rng(seed)
            assert np.array_equal(_random_signs(a, n), b.choice([-1.0, 1.0], size=n))
            assert a.random() == b.random()  # the generator moved on alike
    rng = np.random.default_rng(0)
    for size in range(1, 10):
        for scale in (1e-300, 1.0, 1e300):
            d = rng.normal(size=size) * scale
            d[: size // 3] = d[-1]  # repeated values
            assert _median_abs(d) == float(np.median(np.abs(d)))
    assert np.isnan(_median_abs(np.array([1.0, np.nan, 2.0])))
