"""A two-layer neural network in numpy, written the way the classic courses do it.

Column-major examples (Andrew Ng's convention): ``X`` is ``(d, m)``, one example
per column, labels ``y`` are ``m`` integers in ``[0, k)``.

    z1 = W1 @ X + b1        (h, m)      W1: (h, d)   b1: (h, 1)
    a1 = relu(z1)
    z2 = W2 @ a1 + b2       (k, m)      W2: (k, h)   b2: (k, 1)
    L  = mean_i cross_entropy(softmax(z2[:, i]), y[i]) + reg/2 (|W1|^2 + |W2|^2)

``forward`` returns the loss and a cache, ``backward`` the gradients
``dW1, db1, dW2, db2``.  ``loss(params)``, ``loss_grad(params)`` and
``loss_params()`` follow pytest-gradcheck's naming convention (NAME, NAME_grad,
NAME_params), so listing this module in the ini option ``gradcheck_models``
turns the network into a test item without writing a test.

``EXAMPLE_BUG`` (transpose, sign, relu, scale, missing-reg) injects a bug into
``backward``; see README.md.
"""

from __future__ import annotations

import numpy as np

from . import _bugs

#: shapes of the small fixed instance: d inputs, h hidden units, k classes, m examples.
#: d == h on purpose: a transposed dW1 then has the right shape and only the
#: gradient check can catch it.
D, H, K, M = 5, 5, 3, 8
REG = 0.1


def init_params(d: int = D, h: int = H, k: int = K, seed: int = 0, scale: float = 0.5) -> dict:
    """Random parameters ``{"W1", "b1", "W2", "b2"}`` in float64."""
    rng = np.random.default_rng(seed)
    return {
        "W1": scale * rng.standard_normal((h, d)),
        "b1": 0.1 * rng.standard_normal((h, 1)),
        "W2": scale * rng.standard_normal((k, h)),
        "b2": 0.1 * rng.standard_normal((k, 1)),
    }


def make_data(d: int = D, k: int = K, m: int = M, seed: int = 1):
    """A small classification data set: ``X`` is ``(d, m)``, ``y`` has ``m`` labels."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((d, m))
    y = np.arange(m) % k
    return X, y


def relu(z):
    return np.maximum(z, 0.0)


def softmax(z):
    """Column-wise softmax of ``z`` (classes x examples), shifted for stability."""
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def forward(params: dict, X, y, reg: float = REG):
    """The loss and the cache ``backward`` needs."""
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    m = X.shape[1]
    z1 = W1 @ X + b1
    a1 = relu(z1)
    z2 = W2 @ a1 + b2
    probs = softmax(z2)
    data_loss = -np.log(probs[y, np.arange(m)]).mean()
    reg_loss = 0.5 * reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
    cache = (X, y, z1, a1, probs, W1, W2, reg)
    return data_loss + reg_loss, cache


def backward(cache) -> dict:
    """The gradients ``{"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}`` of the loss."""
    X, y, z1, a1, probs, W1, W2, reg = cache
    m = X.shape[1]
    dz2 = probs.copy()
    dz2[y, np.arange(m)] -= 1.0
    if not _bugs.active("scale"):
        dz2 /= m
    dW2 = dz2 @ a1.T
    db2 = dz2.sum(axis=1, keepdims=True)
    if _bugs.active("sign"):
        db2 = -db2
    da1 = W2.T @ dz2
    if _bugs.active("relu"):
        dz1 = da1  # the ReLU's mask forgotten: derivative 1 everywhere
    else:
        dz1 = da1 * (z1 > 0)
    dW1 = dz1 @ X.T
    db1 = dz1.sum(axis=1, keepdims=True)
    if not _bugs.active("missing-reg"):
        dW1 = dW1 + reg * W1
        dW2 = dW2 + reg * W2
    if _bugs.active("transpose"):
        # the row-major (CS231n) convention W1: (d, h) mixed into column-major code;
        # with d == h the shape is right and only the values are wrong
        dW1 = dW1.T
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


_X, _Y = make_data()


def loss(params: dict) -> float:
    """The network's loss on the fixed small data set (the function to check)."""
    return forward(params, _X, _Y, REG)[0]


def loss_grad(params: dict) -> dict:
    """The hand-written gradient of :func:`loss` (forward, then backward)."""
    _bugs.check_environment()
    return backward(forward(params, _X, _Y, REG)[1])


def loss_params() -> dict:
    """A small fixed-seed instance (5-5-3 network, 48 parameters)."""
    return init_params(seed=0)


def train_step(params: dict, X, y, lr: float = 0.5, reg: float = REG):
    """One step of gradient descent; returns the loss before the step and the new parameters."""
    value, cache = forward(params, X, y, reg)
    grads = backward(cache)
    return value, {name: params[name] - lr * grads[name] for name in params}
