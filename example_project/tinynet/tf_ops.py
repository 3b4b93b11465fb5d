"""TensorFlow: a ``tf.custom_gradient`` activation and a small Keras 3 classifier using it.

Importing this module imports tensorflow and keras; ``import tinynet`` does not.
``EXAMPLE_BUG=tf`` injects a bug into the hand-written gradient of :func:`swish`.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's start-up chatter out of the test log

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from . import _bugs  # noqa: E402


@tf.custom_gradient
def swish(x):
    """x * sigmoid(x), with its derivative written by hand: sigmoid(x) * (1 + x * (1 - sigmoid(x)))."""
    s = tf.sigmoid(x)

    def backward(dy):
        if _bugs.active("tf"):
            return dy * s  # the product rule's second term forgotten
        return dy * s * (1 + x * (1 - s))

    return x * s, backward


def classifier(n_in: int = 4, n_hidden: int = 6, n_out: int = 3, seed: int = 0, dtype: str = "float64"):
    """A Keras 3 MLP (Dense -> swish -> Dense), built, with seeded weights."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((n_in,)), keras.layers.Dense(n_hidden, dtype=dtype),
                              keras.layers.Lambda(swish, dtype=dtype), keras.layers.Dense(n_out, dtype=dtype)],
                             name="classifier")
    return model


def cross_entropy(labels):
    """The mean softmax cross-entropy of a model's logits against integer ``labels``."""
    def loss(logits):
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    return loss
