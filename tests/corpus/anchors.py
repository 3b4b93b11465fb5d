"""Small numpy reimplementations of the rules other gradient checkers use.

They exist to show, on the corpus, where those rules give the wrong verdict
(tests/test_corpus.py) and to count it (benchmarks/bench_core.py):

* :func:`torch_rule` -- torch.autograd.gradcheck's rule: central differences
  with eps=1e-6 taken in the parameters' own dtype, and every entry must
  satisfy ``|a - n| <= atol + rtol * |n|`` with atol=1e-5, rtol=1e-3.
* :func:`course_loop` -- the classic course loop: central differences with
  eps=1e-7 in the parameters' dtype, fail when
  ``||g - g'|| / (||g|| + ||g'||) > 2e-7``.
* :func:`scipy_rule` -- ``scipy.optimize.check_grad`` (forward differences,
  step sqrt(eps)) on the flattened parameters, with the threshold most
  tutorials use: ``check_grad(...) < 1e-5``.

All return ``(passed, n_evals)``.  They flatten the pytree themselves (they
do not use the package) and never modify the caller's params.
"""

from __future__ import annotations

import copy

import numpy as np


def leaves_of(tree) -> list:
    if isinstance(tree, dict):
        return [x for k in tree for x in leaves_of(tree[k])]
    if isinstance(tree, (list, tuple)):
        return [x for v in tree for x in leaves_of(v)]
    return [tree]


def rebuild(tree, it):
    if isinstance(tree, dict):
        return {k: rebuild(v, it) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(rebuild(v, it) for v in tree)
    return next(it)


def flat_vector(tree) -> np.ndarray:
    parts = [np.asarray(x, dtype=np.float64).ravel() for x in leaves_of(tree)]
    return np.concatenate(parts) if parts else np.zeros(0)


def _working_copy(params):
    """Params as writable arrays in their own dtype (0-d arrays for scalars)."""
    leaves = [np.array(x, copy=True) for x in leaves_of(params)]
    return leaves, (lambda: rebuild(params, iter(leaves)))


def _central_in_dtype(fun, params, eps):
    """Central differences with absolute step ``eps`` applied in the leaf's dtype."""
    leaves, make = _working_copy(params)
    num = []
    n_evals = 0
    for leaf in leaves:
        flat = leaf.reshape(-1)  # view
        for j in range(flat.size):
            orig = flat[j].copy()
            flat[j] = orig + eps
            fp = np.asarray(fun(make()))
            flat[j] = orig - eps
            fm = np.asarray(fun(make()))
            flat[j] = orig
            n_evals += 2
            num.append(float((fp - fm) / (2 * eps)) if fp.dtype.kind == "f" else (float(fp) - float(fm)) / (2 * eps))
    return np.array(num), n_evals


def torch_rule(fun, grad, params, eps=1e-6, atol=1e-5, rtol=1e-3):
    n, evals = _central_in_dtype(fun, params, eps)
    a = flat_vector(grad(copy.deepcopy(params)))
    return bool(np.all(np.abs(a - n) <= atol + rtol * np.abs(n))), evals


def course_loop(fun, grad, params, eps=1e-7, threshold=2e-7):
    n, evals = _central_in_dtype(fun, params, eps)
    a = flat_vector(grad(copy.deepcopy(params)))
    denom = np.linalg.norm(a) + np.linalg.norm(n)
    rel = np.linalg.norm(a - n) / denom if denom > 0 else 0.0
    return bool(rel <= threshold), evals


def scipy_rule(fun, grad, params, threshold=1e-5):
    from scipy.optimize import check_grad

    x0 = flat_vector(params)
    dtypes = [np.asarray(x).dtype for x in leaves_of(params)]
    shapes = [np.shape(x) for x in leaves_of(params)]
    counter = [0]

    def unflat(x):
        out, k = [], 0
        for dt, sh in zip(dtypes, shapes):
            size = int(np.prod(sh))
            out.append(np.asarray(x[k:k + size].reshape(sh), dtype=dt))
            k += size
        return rebuild(params, iter(out))

    def f(x):
        counter[0] += 1
        return float(fun(unflat(x)))

    def g(x):
        return flat_vector(grad(unflat(x)))

    err = check_grad(f, g, x0)
    return bool(err < threshold), counter[0]


ANCHORS = {"torch_rule": torch_rule, "course_loop": course_loop, "scipy_check_grad": scipy_rule}
