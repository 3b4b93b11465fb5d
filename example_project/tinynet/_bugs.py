"""Bug injection for the tutorial: ``EXAMPLE_BUG=<name>`` turns on a real backprop bug.

The variable is read each time a backward pass runs (not at import), so a test
can set it with ``monkeypatch.setenv``.  Several bugs: ``EXAMPLE_BUG=sign,scale``.
See README.md for what each one teaches.
"""

from __future__ import annotations

import os

#: every bug name, with the code it breaks
BUGS = {
    "transpose": "two_layer.backward: dW1 returned transposed (row-major habit; W1 is square, so the shape fits)",
    "sign": "two_layer.backward: db2 with its sign flipped",
    "relu": "two_layer.backward: ReLU derivative taken as 1 everywhere (mask forgotten)",
    "scale": "two_layer.backward: the 1/m of the mean loss forgotten in dz2",
    "missing-reg": "two_layer.backward: the L2 term reg*W left out of dW1 and dW2",
    "softmax": "layers.softmax_loss: dx = probs, the -1 at the true class forgotten",
    "batchnorm": "layers.batchnorm_backward: mean and variance treated as constants",
    "conv": "layers.conv_backward_naive: dw accumulated from the window at (j, i) instead of (i, j)",
    "torch": "torch_ops.SoftplusFunction.backward: sigmoid(-x) instead of sigmoid(x)",
    "jax": "jax_ops.logsumexp backward: the cotangent g not multiplied in",
    "tf": "tf_ops.swish gradient: the product rule's second term x * s * (1 - s) forgotten",
}


def active(name: str) -> bool:
    """Whether bug ``name`` is switched on by the environment variable EXAMPLE_BUG."""
    if name not in BUGS:  # a typo in the code, not in the environment
        raise KeyError(f"unknown bug {name!r}; known: {', '.join(BUGS)}")
    wanted = os.environ.get("EXAMPLE_BUG", "")
    return name in {w.strip() for w in wanted.split(",")}


def check_environment() -> None:
    """Raise a clear error when EXAMPLE_BUG names a bug that does not exist."""
    wanted = [w.strip() for w in os.environ.get("EXAMPLE_BUG", "").split(",") if w.strip()]
    unknown = [w for w in wanted if w not in BUGS]
    if unknown:
        raise ValueError(f"EXAMPLE_BUG={os.environ['EXAMPLE_BUG']!r}: unknown bug(s) {', '.join(unknown)}; "
                         f"known: {', '.join(BUGS)}")
