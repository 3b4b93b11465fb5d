"""The TensorFlow activation and Keras model (skipped when tensorflow is not installed)."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
pytest.importorskip("keras")

from pytest_gradcheck import check_module  # noqa: E402
from pytest_gradcheck.keras_model import model_fun, model_params  # noqa: E402

from tinynet import tf_ops  # noqa: E402


def test_swish_custom_gradient(gradcheck, rng):
    """grad=None: tf.GradientTape supplies the analytic gradient, through the hand-written rule;
    a tf.function fun is traced once per dtype, not once per evaluation."""
    x = tf.Variable(rng.standard_normal(7))
    weights = tf.constant(np.arange(1.0, 8.0))  # a cotangent that is not all ones
    gradcheck(tf.function(lambda p: tf.reduce_sum(weights * tf_ops.swish(p))), x, label="swish")


def test_keras_classifier(gradcheck, rng):
    """A Keras 3 model's loss against its trainable weights (named by variable path): through the
    fixture (so the check is in the report), and check_module, the one-call form."""
    model = tf_ops.classifier()
    x = rng.standard_normal((8, 4))
    loss = tf_ops.cross_entropy(tf.constant(rng.integers(0, 3, size=8)))
    gradcheck(model_fun(model, loss, x), model_params(model), label="keras classifier")
    res = check_module(model, loss, x)
    assert {leaf.path for leaf in res.leaves} >= {"classifier/dense/kernel", "classifier/dense_1/bias"}
    res.raise_for_status()
