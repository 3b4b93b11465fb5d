"""Models whose gradients pytest-gradcheck checks without a test being written.

``pyproject.toml`` lists this module (and :mod:`tinynet.two_layer`) in the ini
option ``gradcheck_models``; every model here becomes a test item
``tinynet/models.py::gradcheck[NAME]``.  Two ways to declare one:

* the decorator ``@pytest_gradcheck.model(params=..., grad=..., **options)``;
* the naming convention: a function ``NAME(params)`` with siblings
  ``NAME_grad(params)`` and ``NAME_params`` (a pytree or a factory).
"""

from __future__ import annotations

import numpy as np

try:
    from pytest_gradcheck import model
except ImportError:  # older pytest-gradcheck: the decorator lives in the discovery module
    from pytest_gradcheck.discovery import model

from . import layers

# A small fixed data set shared by the models: 12 examples, 6 features, 3 classes.
_rng = np.random.default_rng(42)
X = _rng.standard_normal((12, 6))
Y = np.arange(12) % 3
del _rng


def _softmax_params():
    rng = np.random.default_rng(0)
    return {"W": 0.3 * rng.standard_normal((6, 3)), "b": np.zeros(3)}


def softmax_regression_grad(params):
    scores, cache = layers.affine_forward(X, params["W"], params["b"])
    _, dscores = layers.softmax_loss(scores, Y)
    _, dW, db = layers.affine_backward(dscores, cache)
    return {"W": dW + 1e-2 * params["W"], "b": db}


@model(params=_softmax_params, grad=softmax_regression_grad, method="central4")
def softmax_regression(params):
    """Multinomial logistic regression with a little L2 on W; checked with the 5-point stencil."""
    scores, _ = layers.affine_forward(X, params["W"], params["b"])
    return layers.softmax_loss(scores, Y)[0] + 0.5e-2 * np.sum(params["W"] ** 2)


def _mlp_params(rng):
    """A factory taking a Generator: pytest-gradcheck seeds it from the ``seed`` option."""
    return {
        "W1": rng.standard_normal((6, 16)) / np.sqrt(6), "b1": 0.1 * rng.standard_normal(16),
        "W2": rng.standard_normal((16, 3)) / 4.0, "b2": np.zeros(3),
    }


def _mlp_forward(params):
    h, c1 = layers.affine_forward(X, params["W1"], params["b1"])
    a, c2 = layers.relu_forward(h)
    scores, c3 = layers.affine_forward(a, params["W2"], params["b2"])
    value, dscores = layers.softmax_loss(scores, Y)
    return value, (dscores, c1, c2, c3)


def mlp_grad(params):
    _, (dscores, c1, c2, c3) = _mlp_forward(params)
    da, dW2, db2 = layers.affine_backward(dscores, c3)
    dh = layers.relu_backward(da, c2)
    _, dW1, db1 = layers.affine_backward(dh, c1)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


@model(params=_mlp_params, grad=mlp_grad, mode="fast")
def mlp(params):
    """affine - relu - affine - softmax, 163 parameters, checked with random probes."""
    return _mlp_forward(params)[0]


def _bn_params():
    rng = np.random.default_rng(3)
    return {"W": rng.standard_normal((6, 4)) / 2.0, "gamma": 1.0 + 0.1 * rng.standard_normal(4),
            "beta": 0.1 * rng.standard_normal(4), "V": rng.standard_normal((4, 3)) / 2.0}


def _bn_forward(params):
    h, c1 = layers.affine_forward(X, params["W"], np.zeros(4))
    n, c2 = layers.batchnorm_forward(h, params["gamma"], params["beta"], {"eps": 1e-5})
    scores, c3 = layers.affine_forward(n, params["V"], np.zeros(3))
    value, dscores = layers.softmax_loss(scores, Y)
    return value, (dscores, c1, c2, c3)


def batchnorm_net_grad(params):
    _, (dscores, c1, c2, c3) = _bn_forward(params)
    dn, dV, _ = layers.affine_backward(dscores, c3)
    dh, dgamma, dbeta = layers.batchnorm_backward(dn, c2)
    _, dW, _ = layers.affine_backward(dh, c1)
    return {"W": dW, "gamma": dgamma, "beta": dbeta, "V": dV}


@model(params=_bn_params, grad=batchnorm_net_grad)
def batchnorm_net(params):
    """affine - batchnorm - affine - softmax."""
    return _bn_forward(params)[0]


# -- found by the naming convention: NAME, NAME_grad, NAME_params -------------------

_yb = (np.arange(12) % 2).astype(float)


def logistic_regression(params):
    """Binary logistic regression (mean log-loss) on the first two classes' labels."""
    z = X @ params["w"] + params["c"]
    return np.mean(np.logaddexp(0.0, z) - _yb * z)


def logistic_regression_grad(params):
    z = X @ params["w"] + params["c"]
    r = (1.0 / (1.0 + np.exp(-z)) - _yb) / z.shape[0]
    return {"w": X.T @ r, "c": np.sum(r)}


logistic_regression_params = {"w": np.linspace(-0.5, 0.5, 6), "c": np.float64(0.1)}
