"""torch sparse tensors as params (issue 20, B.8): checked on their stored values, as
torch.autograd.gradcheck does; entries named by their (row, col) coordinates; the caller's tensor is
never modified; the gradient may come from autograd (grad=None) or a hand-written grad returning a
dense or a sparse tensor."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")

from pytest_gradcheck import GradcheckInputError, check_gradient  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # torch: "sparse CSR support is in beta"

DENSE = [[1.0, 0.0, 2.0], [0.0, 3.0, 0.0], [4.0, 0.0, 0.5]]
STORED = {(0, 0), (0, 2), (1, 1), (2, 0), (2, 2)}
V = [0.3, -1.2, 0.7]


def sparse(layout):
    d = torch.tensor(DENSE, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return d.to_sparse() if layout == "coo" else d.to_sparse_csr()


def fun(A):
    return torch.sum(torch.sin(A.to_dense() @ torch.tensor(V, dtype=torch.float64)))


def dense_grad(A, k=1.0):
    v = torch.tensor(V, dtype=torch.float64)
    return k * torch.outer(torch.cos(A.to_dense() @ v), v)


def sparse_grad(A, k=1.0):
    g = dense_grad(A, k)
    return g.sparse_mask(A) if A.layout == torch.sparse_coo else g.sparse_mask(A.to_sparse()).to_sparse_csr()


LAYOUTS = ["coo", "csr"]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("how", ["autograd", "dense", "sparse"])
def test_a_right_gradient_of_a_sparse_leaf_passes(layout, how):
    A = sparse(layout)
    before = A.to_dense().clone()
    grad = {"autograd": None, "dense": dense_grad, "sparse": sparse_grad}[how]
    r = check_gradient(fun, A, grad)
    assert r.status == "pass", str(r)
    assert r.n_checked == len(STORED)  # the stored values only
    assert {tuple(e.index) for e in r.worst} == STORED
    assert torch.equal(A.to_dense(), before) and A.layout == (torch.sparse_coo if layout == "coo" else torch.sparse_csr)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("how", ["dense", "sparse"])
def test_a_wrong_gradient_of_a_sparse_leaf_fails_at_its_coordinates(layout, how):
    A = sparse(layout)
    grad = {"dense": dense_grad, "sparse": sparse_grad}[how]
    r = check_gradient(fun, A, lambda A: grad(A, 2.0))
    assert r.status == "fail", str(r)
    assert tuple(r.worst[0].index) in STORED
    assert r.diagnosis["kind"] == "bug" and "no diagnosis" not in r.diagnosis["summary"]
    assert f"The worst is {r.worst[0].where}:" in r.diagnosis["summary"], r.diagnosis["summary"]


def test_one_wrong_stored_value_is_named_by_row_and_column():
    A = sparse("coo")

    def grad(A):
        g = dense_grad(A).clone()
        g[2, 0] *= 1.05
        return g

    r = check_gradient(fun, A, grad)
    assert r.status == "fail"
    assert tuple(r.worst[0].index) == (2, 0) and r.worst[0].where == "params[2, 0]", str(r)
    assert r.counts["fail"] == 1


def test_a_sparse_leaf_in_a_tree_beside_a_dense_one():
    A = sparse("csr")
    b = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)

    def f(p):
        return fun(p["A"]) + torch.sum(p["b"] ** 2)

    r = check_gradient(f, {"A": A, "b": b}, None)
    assert r.status == "pass", str(r)
    r = check_gradient(f, {"A": A, "b": b}, lambda p: {"A": dense_grad(p["A"]), "b": 3 * p["b"]})
    assert r.status == "fail" and r.worst[0].leaf == "b"


def test_a_gradient_of_the_wrong_shape_is_refused_naming_the_leaf():
    with pytest.raises(GradcheckInputError, match="sparse tensor of shape"):
        check_gradient(fun, sparse("coo"), lambda A: torch.zeros(2, 2, dtype=torch.float64))


def test_unsupported_sparse_layouts_are_refused_clearly():
    d = torch.tensor(DENSE, dtype=torch.float64)
    with pytest.raises(GradcheckInputError, match="not supported"):
        check_gradient(lambda A: A.to_dense().sum(), d.to_sparse_csc(), None)
