"""The ``gradcheck_model`` fixture: one test run once per discovered model.

The models of ``tinynet.models`` and ``tinynet.two_layer`` (the ini option
``gradcheck_models``) are also checked on their own as items
``gradcheck[NAME]``; here every model additionally has to make progress under
gradient descent -- an ordinary property test that reuses the discovery.
"""

import numpy as np


def test_gradient_descent_step_lowers_the_loss(gradcheck_model):
    result = gradcheck_model.check()
    assert result.status == "pass"
    params = gradcheck_model.params
    grads = gradcheck_model.grad(params)
    before = gradcheck_model.fun(params)
    stepped = {k: params[k] - 1e-3 * np.asarray(grads[k]) for k in params}
    after = gradcheck_model.fun(stepped)
    # first-order decrease: about lr * |g|^2
    sq = sum(float(np.sum(np.square(g))) for g in grads.values())
    assert before - after > 0.5 * 1e-3 * sq
