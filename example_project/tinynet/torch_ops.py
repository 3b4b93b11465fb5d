"""PyTorch custom autograd Functions with hand-written backward passes.

Importing this module imports torch; ``import tinynet`` does not, so the
package works without torch (``pip install tinynet[torch]`` adds it).

``EXAMPLE_BUG=torch`` injects a bug into ``SoftplusFunction.backward``.
"""

from __future__ import annotations

import torch

from . import _bugs


class SoftplusFunction(torch.autograd.Function):
    """softplus(x) = log(1 + exp(beta x)) / beta, computed stably, with its own backward."""

    @staticmethod
    def forward(ctx, x, beta=1.0):
        bx = beta * x
        out = (torch.clamp(bx, min=0) + torch.log1p(torch.exp(-torch.abs(bx)))) / beta
        ctx.save_for_backward(x)
        ctx.beta = beta
        return out

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        z = -ctx.beta * x if _bugs.active("torch") else ctx.beta * x
        return grad_out * torch.sigmoid(z), None

    @staticmethod
    def sample_inputs():
        """Inputs pytest-gradcheck's torch Function checker can use."""
        return (torch.linspace(-3.0, 3.0, 7, dtype=torch.float64, requires_grad=True), 1.5)


class ScaledTanh(torch.autograd.Function):
    """y = a * tanh(b * x) with learnable a and b (LeCun's 1.7159 tanh(2x/3) by default)."""

    @staticmethod
    def forward(ctx, x, a, b):
        t = torch.tanh(b * x)
        ctx.save_for_backward(x, a, b, t)
        return a * t

    @staticmethod
    def backward(ctx, grad_out):
        x, a, b, t = ctx.saved_tensors
        dt = grad_out * a * (1.0 - t * t)  # d/d(bx)
        dx = dt * b
        da = (grad_out * t).sum().reshape(a.shape)
        db = (dt * x).sum().reshape(b.shape)
        return dx, da, db

    @staticmethod
    def sample_inputs():
        return (
            torch.linspace(-2.0, 2.0, 9, dtype=torch.float64).reshape(3, 3).requires_grad_(),
            torch.tensor(1.7159, dtype=torch.float64, requires_grad=True),
            torch.tensor(2.0 / 3.0, dtype=torch.float64, requires_grad=True),
        )


def softplus(x, beta: float = 1.0):
    return SoftplusFunction.apply(x, beta)


def scaled_tanh(x, a, b):
    return ScaledTanh.apply(x, a, b)
