"""JAX functions with hand-written VJPs (``jax.custom_vjp``).

Importing this module imports jax (in 64-bit mode, as gradient checks want);
``import tinynet`` does not.  ``EXAMPLE_BUG=jax`` injects a bug into the VJP
of :func:`logsumexp`.
"""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402

from . import _bugs  # noqa: E402


@jax.custom_vjp
def logsumexp(x):
    """log(sum(exp(x))) over the last axis, shifted by the max for stability."""
    m = jax.lax.stop_gradient(jnp.max(x, axis=-1, keepdims=True))
    return jnp.log(jnp.sum(jnp.exp(x - m), axis=-1)) + m[..., 0]


def _logsumexp_fwd(x):
    out = logsumexp(x)
    return out, (x, out)


def _logsumexp_bwd(res, g):
    x, out = res
    softmax = jnp.exp(x - out[..., None])
    if _bugs.active("jax"):
        return (softmax,)  # the cotangent g forgotten
    return (g[..., None] * softmax,)


logsumexp.defvjp(_logsumexp_fwd, _logsumexp_bwd)


@jax.custom_vjp
def softplus(x):
    """log(1 + exp(x)), stable for large |x|."""
    return jnp.logaddexp(0.0, x)


def _softplus_fwd(x):
    return softplus(x), x


def _softplus_bwd(x, g):
    return (g * jax.nn.sigmoid(x),)


softplus.defvjp(_softplus_fwd, _softplus_bwd)


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of ``logits`` (N, C) for integer ``labels``, through :func:`logsumexp`."""
    picked = jnp.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]
    return jnp.mean(logsumexp(logits) - picked)
