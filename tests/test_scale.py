"""Scale (issue 14): what a check keeps in memory, and what its evaluations cost."""

import gc
import weakref

import pytest

from pytest_gradcheck import check_gradient

torch = pytest.importorskip("torch")


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
