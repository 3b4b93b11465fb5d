"""The JAX custom_vjp functions (skipped when jax is not installed)."""

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402

from tinynet import jax_ops  # noqa: E402


def test_logsumexp_is_stable():
    x = jnp.array([[1000.0, 1000.0], [-1000.0, -1000.0]])
    np.testing.assert_allclose(jax_ops.logsumexp(x), [1000.0 + np.log(2), -1000.0 + np.log(2)])


def test_custom_vjps(gradcheck):
    """grad=None: jax.grad supplies the analytic gradient, through our hand-written VJPs."""
    rng = np.random.default_rng(0)
    logits = jnp.asarray(rng.standard_normal((4, 3)))
    labels = jnp.array([0, 1, 2, 1])
    weights = jnp.array([1.0, -2.0, 0.5, 3.0])  # a cotangent that is not all ones
    gradcheck(jax.jit(lambda z: jax_ops.softmax_cross_entropy(z, labels)), logits, label="cross-entropy")
    gradcheck(jax.jit(lambda z: jnp.sum(weights * jax_ops.logsumexp(z))), logits, label="weighted logsumexp")
    gradcheck(jax.jit(lambda v: jnp.sum(jnp.arange(5.0) * jax_ops.softplus(v))),
              jnp.asarray(rng.standard_normal(5)), label="softplus")
