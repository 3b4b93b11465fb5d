"""``check_module``: a model's loss checked with respect to its trainable parameters, for a
torch ``nn.Module`` (:mod:`.torch_function`) or a Keras 3 model (:mod:`.keras_model`).

Imports neither framework itself: the model's type says which helper (and so which
framework import) is needed, and only a framework the user already imported is asked.

Layer: public API, above the torch and Keras helpers.
"""

from __future__ import annotations

import sys
from typing import Callable

from .errors import GradcheckInputError

__all__ = ["check_module"]


def check_module(model, loss: Callable | None = None, *inputs, grad=None, **check_options):
    """check_gradient of ``loss(model(*inputs))`` with respect to the model's trainable parameters
    (torch ``nn.Module``: named by ``named_parameters()``; Keras model: by variable path)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        from .torch_function import check_module as torch_check

        return torch_check(model, loss, *inputs, grad=grad, **check_options)
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(model, keras.layers.Layer):
        from .keras_model import check_module as keras_check

        return keras_check(model, loss, *inputs, grad=grad, **check_options)
    raise GradcheckInputError(
        f"check_module needs a torch nn.Module or a Keras 3 model (keras.Model / keras.layers.Layer); got "
        f"{type(model).__name__}. For any other model use check_gradient(fun, params)")
