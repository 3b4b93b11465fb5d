"""A small numpy layer library in the shape of existing hand-written code (for test_layer_check.py).

Each layer has ``forward`` / ``backward`` and its parameters in one of the three
usual spellings (``Param`` objects with accumulating ``.grad``; ``params`` /
``grads`` dicts; ``W`` with ``dW``).  ``bug=True`` plants one realistic mistake in
the backward of each layer: the check must pass the correct layers and fail
every planted bug.
"""

import numpy as np


class Param:
    """A parameter whose gradient accumulates across backward calls (like torch's)."""

    def __init__(self, data):
        self.data = data
        self.grad = np.zeros_like(data)


class Linear:
    """out = x W + b; Param objects, gradients accumulated with +=."""

    def __init__(self, n_in, n_out, rng, bug=False):
        self.W = Param(rng.standard_normal((n_in, n_out)) / np.sqrt(n_in))
        self.b = Param(rng.standard_normal(n_out) * 0.1)
        self.bug = bug

    def forward(self, x):
        self.x = x
        return x @ self.W.data + self.b.data

    def backward(self, dout):
        self.W.grad += self.x.T @ dout
        # bug: the bias gradient of the first sample only
        self.b.grad += dout[0] if self.bug else dout.sum(axis=0)
        return dout @ self.W.data.T


class Conv2d:
    """Naive convolution, stride 1, zero padding ``pad``; params/grads dicts."""

    def __init__(self, c_in, c_out, k, rng, pad=1, bug=False):
        self.params = {"w": rng.standard_normal((c_out, c_in, k, k)) * 0.3, "b": rng.standard_normal(c_out) * 0.1}
        self.grads = {}
        self.pad, self.bug = pad, bug

    def forward(self, x):
        w, b, p = self.params["w"], self.params["b"], self.pad
        n, _, h, wd = x.shape
        f, _, k, _ = w.shape
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        ho, wo = h + 2 * p - k + 1, wd + 2 * p - k + 1
        out = np.zeros((n, f, ho, wo))
        for i in range(ho):
            for j in range(wo):
                window = xp[:, :, i:i + k, j:j + k]
                out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
        self.cache = (x, xp)
        return out

    def backward(self, dout):
        w, p = self.params["w"], self.pad
        x, xp = self.cache
        k = w.shape[2]
        dxp, dw = np.zeros_like(xp), np.zeros_like(w)
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                window = xp[:, :, i:i + k, j:j + k]
                dw += np.tensordot(dout[:, :, i, j], window, axes=([0], [0]))
                dxp[:, :, i:i + k, j:j + k] += np.tensordot(dout[:, :, i, j], w, axes=([1], [0]))
        self.grads["w"], self.grads["b"] = dw, dout.sum(axis=(0, 2, 3))
        h, wd = x.shape[2:]
        # bug: the padded gradient cropped at the wrong offset
        return dxp[:, :, :h, :wd] if self.bug else dxp[:, :, p:p + h, p:p + wd]


class MaxPool:
    """2x2 max pooling, stride 2 (no parameters)."""

    def __init__(self, bug=False):
        self.bug = bug

    def forward(self, x):
        n, c, h, w = x.shape
        blocks = x.reshape(n, c, h // 2, 2, w // 2, 2)
        out = blocks.max(axis=(3, 5))
        self.cache = (x.shape, blocks, out)
        return out

    def backward(self, dout):
        shape, blocks, out = self.cache
        if self.bug:  # bug: the gradient spread over the window, as average pooling would
            mask = np.full(blocks.shape, 0.25)
        else:
            mask = (blocks == out[:, :, :, None, :, None]).astype(float)
        return (mask * dout[:, :, :, None, :, None]).reshape(shape)


class BatchNorm:
    """Batch normalisation over axis 0 (training mode); gamma/dgamma and beta/dbeta
    attributes; forward updates the running mean and variance."""

    def __init__(self, d, rng, momentum=0.9, eps=1e-5, bug=False):
        self.gamma = 1.0 + 0.1 * rng.standard_normal(d)
        self.beta = 0.1 * rng.standard_normal(d)
        self.running_mean, self.running_var = np.zeros(d), np.ones(d)
        self.momentum, self.eps, self.bug = momentum, eps, bug

    def forward(self, x):
        mu, var = x.mean(axis=0), x.var(axis=0)
        self.running_mean = self.momentum * self.running_mean + (1 - self.momentum) * mu
        self.running_var *= self.momentum  # in place, as much code does
        self.running_var += (1 - self.momentum) * var
        self.xhat = (x - mu) / np.sqrt(var + self.eps)
        self.inv_std = 1.0 / np.sqrt(var + self.eps)
        return self.gamma * self.xhat + self.beta

    def backward(self, dout):
        self.dgamma = (dout * self.xhat).sum(axis=0)
        self.dbeta = dout.sum(axis=0)
        dxhat = dout * self.gamma
        n = dout.shape[0]
        if self.bug:  # bug: the variance's dependence on x left out
            return self.inv_std / n * (n * dxhat - dxhat.sum(axis=0))
        return self.inv_std / n * (n * dxhat - dxhat.sum(axis=0) - self.xhat * (dxhat * self.xhat).sum(axis=0))


class RNNStep:
    """h_next = tanh(x Wx + h Wh + b); forward(x, h) and backward -> (dx, dh); params/grads dicts."""

    def __init__(self, d, hdim, rng, bug=False):
        self.params = {"Wx": rng.standard_normal((d, hdim)) * 0.4, "Wh": rng.standard_normal((hdim, hdim)) * 0.4,
                       "b": rng.standard_normal(hdim) * 0.1}
        self.grads = {}
        self.bug = bug

    def forward(self, x, h):
        p = self.params
        self.cache = (x, h, np.tanh(x @ p["Wx"] + h @ p["Wh"] + p["b"]))
        return self.cache[2]

    def backward(self, dnext):
        x, h, hn = self.cache
        # bug: tanh's derivative taken at the previous hidden state
        da = dnext * (1 - (h if self.bug else hn) ** 2)
        self.grads.update(Wx=x.T @ da, Wh=h.T @ da, b=da.sum(axis=0))
        return da @ self.params["Wx"].T, da @ self.params["Wh"].T


class Dropout:
    """Inverted dropout with the layer's own Generator (a fresh mask every forward)."""

    def __init__(self, p, seed=0, bug=False, global_rng=False):
        self.p, self.bug, self.global_rng = p, bug, global_rng
        self.rng = np.random.default_rng(seed)

    def forward(self, x):
        draw = np.random.random_sample(x.shape) if self.global_rng else self.rng.random(x.shape)
        self.mask = (draw >= self.p) / (1 - self.p)
        return x * self.mask

    def backward(self, dout):
        # bug: the mask without its 1/(1-p) scale
        return dout * (self.mask > 0) if self.bug else dout * self.mask


class Embedding:
    """out = W[idx]; W with dW; integer input."""

    def __init__(self, vocab, d, rng, bug=False):
        self.W = rng.standard_normal((vocab, d))
        self.bug = bug

    def forward(self, idx):
        self.idx = idx
        return self.W[idx]

    def backward(self, dout):
        self.dW = np.zeros_like(self.W)
        if self.bug:  # bug: fancy-index += keeps one of the repeated indices' gradients
            self.dW[self.idx] += dout
        else:
            np.add.at(self.dW, self.idx, dout)
