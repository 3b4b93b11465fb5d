"""Layers as forward/backward pairs, in the style of Stanford's CS231n assignments.

Row-major here (one example per row), as in CS231n: ``x`` is ``(N, D)``.
Each ``*_forward`` returns ``(out, cache)``; each ``*_backward`` takes the
upstream gradient ``dout`` and the cache and returns the gradients of the
inputs, in the order of the forward's arguments.

``EXAMPLE_BUG`` (softmax, batchnorm, conv) injects a bug; see README.md.
"""

from __future__ import annotations

import numpy as np

from . import _bugs


def affine_forward(x, w, b):
    """``out = x.reshape(N, -1) @ w + b``; x ``(N, d1, ..., dk)``, w ``(D, M)``, b ``(M,)``."""
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w, b)


def affine_backward(dout, cache):
    """Gradients ``(dx, dw, db)`` of the affine layer."""
    x, w, b = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def relu_forward(x):
    out = np.maximum(x, 0.0)
    return out, x


def relu_backward(dout, cache):
    x = cache
    return dout * (x > 0)


def softmax_loss(x, y):
    """Mean softmax cross-entropy of the scores ``x`` ``(N, C)`` for labels ``y``;
    returns ``(loss, dx)``."""
    shifted = x - x.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    probs = np.exp(log_probs)
    n = x.shape[0]
    loss = -log_probs[np.arange(n), y].mean()
    dx = probs.copy()
    if not _bugs.active("softmax"):
        dx[np.arange(n), y] -= 1.0
    dx /= n
    return loss, dx


def conv_forward_naive(x, w, b, conv_param):
    """Naive convolution (cross-correlation): x ``(N, C, H, W)``, w ``(F, C, HH, WW)``,
    b ``(F,)``, ``conv_param = {"stride": s, "pad": p}``; out ``(N, F, H', W')``."""
    stride, pad = conv_param["stride"], conv_param["pad"]
    n, c, hgt, wid = x.shape
    f, _, hh, ww = w.shape
    h_out = 1 + (hgt + 2 * pad - hh) // stride
    w_out = 1 + (wid + 2 * pad - ww) // stride
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.empty((n, f, h_out, w_out), dtype=np.result_type(x, w, b))
    for i in range(h_out):
        for j in range(w_out):
            window = xp[:, :, i * stride:i * stride + hh, j * stride:j * stride + ww]
            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout, cache):
    """Gradients ``(dx, dw, db)`` of :func:`conv_forward_naive`."""
    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    _, _, hh, ww = w.shape
    _, _, h_out, w_out = dout.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    db = dout.sum(axis=(0, 2, 3))
    for i in range(h_out):
        for j in range(w_out):
            g = dout[:, :, i, j]  # (N, F)
            wi, wj = (j, i) if _bugs.active("conv") else (i, j)
            window = xp[:, :, wi * stride:wi * stride + hh, wj * stride:wj * stride + ww]
            dw += np.tensordot(g, window, axes=([0], [0]))
            dxp[:, :, i * stride:i * stride + hh, j * stride:j * stride + ww] += np.tensordot(g, w, axes=([1], [0]))
    dx = dxp[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]]
    return dx, dw, db


def batchnorm_forward(x, gamma, beta, bn_param):
    """Batch normalisation in training mode: normalise each column of x ``(N, D)``
    with the batch mean and variance, then scale by gamma and shift by beta."""
    eps = bn_param.get("eps", 1e-5)
    mu = x.mean(axis=0)
    xc = x - mu
    var = (xc * xc).mean(axis=0)
    std = np.sqrt(var + eps)
    xhat = xc / std
    out = gamma * xhat + beta
    return out, (xhat, std, gamma)


def batchnorm_backward(dout, cache):
    """Gradients ``(dx, dgamma, dbeta)`` of :func:`batchnorm_forward` (the compact formula)."""
    xhat, std, gamma = cache
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    if _bugs.active("batchnorm"):
        dx = dxhat / std  # as if the batch mean and variance did not depend on x
    else:
        dx = (n * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0)) / (n * std)
    return dx, dgamma, dbeta
