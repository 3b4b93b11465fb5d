"""Layer forward/backward pairs, checked as vector-Jacobian products.

Each check wraps a CS231n-style pair in two lines: ``fun(inputs)`` runs the
forward pass, ``vjp(inputs, dout)`` runs forward then backward and returns the
gradients in the structure of ``inputs``.
"""

import numpy as np
import pytest

from tinynet import layers

pytestmark = pytest.mark.gradcheck(seed=3)  # a module marker: the seed of the random cotangents


def test_affine(gradcheck, rng):
    inputs = {"x": rng.standard_normal((4, 2, 3)), "w": rng.standard_normal((6, 5)), "b": rng.standard_normal(5)}
    fun = lambda p: layers.affine_forward(p["x"], p["w"], p["b"])[0]  # noqa: E731
    vjp = lambda p, dout: dict(zip(("x", "w", "b"), layers.affine_backward(dout, layers.affine_forward(p["x"], p["w"], p["b"])[1])))  # noqa: E731,E501
    gradcheck.vjp(fun, inputs, vjp)


def test_relu(gradcheck, rng):
    x = rng.standard_normal((5, 6))
    x[np.abs(x) < 0.05] = 0.5  # keep the inputs away from the kink at 0
    gradcheck.vjp(lambda x: layers.relu_forward(x)[0],
                  x, lambda x, dout: layers.relu_backward(dout, layers.relu_forward(x)[1]))


def test_softmax_loss(gradcheck, rng):
    x, y = rng.standard_normal((7, 4)), rng.integers(0, 4, size=7)
    result = gradcheck(lambda x: layers.softmax_loss(x, y)[0], x, lambda x: layers.softmax_loss(x, y)[1])
    assert result.n_checked == x.size


@pytest.mark.parametrize("stride, pad", [(1, 1), (2, 1)])
def test_conv(gradcheck, rng, stride, pad):
    inputs = {"x": rng.standard_normal((2, 2, 5, 5)), "w": rng.standard_normal((3, 2, 3, 3)),
              "b": rng.standard_normal(3)}
    cp = {"stride": stride, "pad": pad}
    fun = lambda p: layers.conv_forward_naive(p["x"], p["w"], p["b"], cp)[0]  # noqa: E731
    vjp = lambda p, dout: dict(zip(("x", "w", "b"), layers.conv_backward_naive(dout, layers.conv_forward_naive(p["x"], p["w"], p["b"], cp)[1])))  # noqa: E731,E501
    gradcheck.vjp(fun, inputs, vjp)


def test_batchnorm_train(gradcheck, rng):
    inputs = {"x": 3.0 + 2.0 * rng.standard_normal((8, 4)), "gamma": rng.standard_normal(4),
              "beta": rng.standard_normal(4)}
    fun = lambda p: layers.batchnorm_forward(p["x"], p["gamma"], p["beta"], {})[0]  # noqa: E731
    vjp = lambda p, dout: dict(zip(("x", "gamma", "beta"), layers.batchnorm_backward(dout, layers.batchnorm_forward(p["x"], p["gamma"], p["beta"], {})[1])))  # noqa: E731,E501
    gradcheck.vjp(fun, inputs, vjp)


def test_batchnorm_output_is_normalised(rng):
    x = 3.0 + 2.0 * rng.standard_normal((50, 3))
    out, _ = layers.batchnorm_forward(x, np.ones(3), np.zeros(3), {})
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), 1.0, atol=1e-4)
