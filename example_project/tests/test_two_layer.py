"""Tests of the two-layer network: ordinary tests plus gradient checks.

Shows the ``gradcheck`` fixture (several labelled checks in one test) and the
``@pytest.mark.gradcheck`` marker setting options for a whole class.
"""

import numpy as np
import pytest

from tinynet import two_layer


def make_problem(d, h, k, m, reg, seed):
    """loss(params) and its gradient for a network and data set of the given sizes."""
    params = two_layer.init_params(d, h, k, seed=seed)
    X, y = two_layer.make_data(d, k, m, seed=seed + 1)

    def loss(p):
        return two_layer.forward(p, X, y, reg)[0]

    def grad(p):
        return two_layer.backward(two_layer.forward(p, X, y, reg)[1])

    return loss, grad, params


def test_shapes_and_loss_at_init():
    params = two_layer.loss_params()
    grads = two_layer.loss_grad(params)
    assert {k: g.shape for k, g in grads.items()} == {k: p.shape for k, p in params.items()}
    # with small weights the loss is near log(k), plus the L2 term
    assert abs(two_layer.loss(params) - np.log(two_layer.K)) < 1.0


def test_training_reduces_the_loss():
    params = two_layer.init_params(seed=0)
    X, y = two_layer.make_data(m=30, seed=5)
    first, params = two_layer.train_step(params, X, y)
    for _ in range(50):
        last, params = two_layer.train_step(params, X, y)
    assert last < 0.7 * first


def test_loss_gradient(gradcheck):
    """The fixture: one test, several labelled checks (each one is a line in the reports)."""
    gradcheck(two_layer.loss, two_layer.loss_params(), two_layer.loss_grad, label="5-5-3")
    for label, sizes in {"wide": (4, 12, 3, 10, 0.1, 1), "no-reg": (5, 6, 4, 9, 0.0, 2),
                         "one-example": (3, 4, 2, 1, 0.5, 3)}.items():
        loss, grad, params = make_problem(*sizes)
        result = gradcheck(loss, params, grad, label=label)
        assert result.status == "pass"
        assert result.n_checked == sum(p.size for p in params.values())


@pytest.mark.gradcheck(rtol=1e-6, atol=1e-9)
class TestClassicTolerance:
    """A class marker sets options for every check in the class: here the classic
    explicit rule |analytic - numeric| <= atol + rtol*|numeric| instead of the error model."""

    def test_options_come_from_the_marker(self, gradcheck_options):
        assert gradcheck_options["rtol"] == 1e-6 and gradcheck_options["atol"] == 1e-9

    def test_gradient(self, gradcheck):
        loss, grad, params = make_problem(6, 5, 4, 12, 0.05, seed=7)
        result = gradcheck(loss, params, grad)
        assert result.to_dict()["tolerance"]["rule"] == "explicit"

    @pytest.mark.gradcheck(method="central4")
    def test_function_marker_adds_to_the_class_marker(self, gradcheck):
        loss, grad, params = make_problem(4, 3, 3, 6, 0.1, seed=11)
        result = gradcheck(loss, params, grad)
        assert result.to_dict()["method"] == "central4"
        assert result.to_dict()["tolerance"]["rtol"] == 1e-6
