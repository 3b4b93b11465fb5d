"""Realistic gradient bugs, each a wrong ``grad`` for one of the corpus models.

Most bugs are written inside the model's backward pass (``grad(p, bug=...)``
in models.py), the way they happen in real code; a few are patches on the
correct result (one entry off, rolled entries, sign of a tiny gradient).

``bug_leaves``: leaf paths where the worst reported entry must lie (the
checker's path spelling: top-level dict keys bare, then ``[i]`` and
``['key']``); empty when the bug spreads over several leaves in a way that
does not single one out.
"""

from __future__ import annotations

import numpy as np

from . import Case
from .models import MODELS, _map_leaves


def _bug(model: str, bug: str | None, name: str, leaves=(), gross=True, patch=None, note=""):
    m = MODELS[model]
    if patch is None:
        def grad(p, _g=m.grad, _b=bug):
            return _g(p, bug=_b)
    else:
        def grad(p, _g=m.grad, _patch=patch):
            return _patch(_map_leaves(lambda a: np.array(a, copy=True), _g(p)))
    tags = {"float32"} if (model.endswith("_f32") or "_f32_" in model) else set()
    if model.endswith("_tiny"):
        tags.add("tiny")
    if model.endswith("_huge"):
        tags.add("huge")
    return Case(name=f"bug:{name}", fun=m.fun, grad=grad, make_params=m.params, kind="bug",
                model=model, bug_leaves=tuple(leaves), gross=gross, analytic=m.analytic,
                tags=frozenset(tags), note=note)


def _scale_entry(path, index, factor):
    def patch(g):
        node = g
        for k in path[:-1]:
            node = node[k]
        leaf = node[path[-1]]
        leaf[index] = leaf[index] * factor
        return g
    return patch


def _negate(g):
    return _map_leaves(lambda a: -a, g)


BUGS = [
    _bug("linreg_mse", "missing_factor_2", "linreg_missing_factor_2"),
    _bug("linreg_mse", "missing_1_over_m", "linreg_missing_1_over_m"),
    _bug("linreg_mse", "missing_bias", "linreg_missing_bias_in_backward"),
    _bug("logreg", "sign_flip", "logreg_sign_flip"),
    _bug("logreg", "missing_regularisation", "logreg_missing_l2", leaves=("w",)),
    _bug("logreg", "double_sigmoid_derivative", "logreg_extra_sigmoid_derivative"),
    _bug("logreg", "one_entry_1e-3", "logreg_one_entry_1e-3", leaves=("w",), gross=False),
    _bug("softmax_xent", "missing_minus_one", "softmax_missing_minus_one_at_label"),
    _bug("softmax_xent", "rolled", "softmax_rolled_W", leaves=("W",)),
    _bug("softmax_xent", "one_entry_5pct", "softmax_one_entry_5pct", leaves=("W",)),
    _bug("two_layer_relu", "wrong_axis_bias", "two_layer_wrong_axis_bias", leaves=("b1",)),
    _bug("two_layer_relu", "partial_batch", "two_layer_partial_batch"),
    _bug("two_layer_relu", "missing_relu_mask", "two_layer_missing_relu_mask", leaves=("W1", "b1")),
    _bug("two_layer_relu", "missing_regularisation", "two_layer_missing_l2_W1", leaves=("W1",)),
    _bug("tanh_mlp", "tanh_derivative", "tanh_mlp_wrong_tanh_derivative",
         leaves=("[0]['W']", "[0]['b']")),
    _bug("tanh_mlp", "missing_bias_grad", "tanh_mlp_missing_bias_grad", leaves=("[0]['b']",)),
    _bug("layer_norm", "missing_mean_term", "layer_norm_missing_mean_term", leaves=("x",)),
    _bug("batch_norm", "stats_as_constants", "batch_norm_stats_as_constants", leaves=("x",)),
    _bug("attention", "missing_scale", "attention_missing_sqrt_d", leaves=("Wq", "Wk")),
    _bug("attention", "swapped_q_k", "attention_swapped_Wq_Wk", leaves=("Wq", "Wk")),
    _bug("conv1d", "kernel_flipped", "conv1d_kernel_flipped", leaves=("w",)),
    _bug("conv2d", "kernel_flipped", "conv2d_kernel_flipped", leaves=("K",)),
    _bug("logdet_spd", "missing_transpose", "logdet_missing_transpose", leaves=("A",)),
    _bug("hinge_svm", "missing_mask", "hinge_missing_active_mask"),
    _bug("huber", "no_clip", "huber_no_clip", leaves=("w",)),
    _bug("rnn_3steps", "transposed_W", "rnn_transposed_W", leaves=("W",)),
    _bug("rnn_3steps", "truncated_bptt", "rnn_truncated_bptt", leaves=("W", "U", "b")),
    _bug("gauss_nll", "logvar_missing_half", "gauss_nll_logvar_missing_half", leaves=("logvar",)),
    _bug("gauss_nll", "variance_confused", "gauss_nll_exp_sign", leaves=("mu",)),
    _bug("quadratic_form", "unsymmetrised", "quadratic_unsymmetrised", leaves=("x",)),
    _bug("polyreg", "power_off_by_one", "polyreg_power_off_by_one", leaves=("c",)),
    _bug("mixed_scales", "small_sign_flip", "mixed_scales_small_leaf_sign", leaves=("small",)),
    _bug("large_offsets", "one_entry_sign", "large_offsets_one_entry_sign", leaves=("p",)),
    _bug("large_offsets", None, "large_offsets_one_entry_1e-4", leaves=("p",), gross=False,
         patch=_scale_entry(["p"], 0, 1 + 1e-4),
         note="params ~1e4 varying on the scale of 1: steps of ~1e-4 resolve entries to ~1e-9"),
    _bug("embedding_zeros", "scatter_off_by_one", "embedding_scatter_off_by_one", leaves=("E",)),
    _bug("nested_pytree", "s_doubled", "nested_dec_s_doubled", leaves=("dec[1]['s']",)),
    _bug("nested_pytree", "swapped_layers", "nested_swapped_enc_W",
         leaves=("enc[0]['W']", "enc[1]['W']")),
    # patches on a correct gradient
    _bug("linreg_mse_f32", None, "linreg_f32_one_entry_x1.01", leaves=("w",),
         patch=_scale_entry(["w"], 1, 1.01)),
    _bug("softmax_xent_f32", "sign_flip_b", "softmax_f32_sign_flip_b", leaves=("b",)),
    _bug("logreg_tiny", None, "logreg_tiny_sign_flip", patch=_negate,
         note="loss x 1e-10: entries ~1e-10, invisible to an absolute tolerance"),
    _bug("tanh_mlp_tiny", None, "tanh_mlp_tiny_one_entry_5pct", leaves=("[1]['W']",),
         patch=_scale_entry([1, "W"], (2, 1), 1.05)),
    _bug("softmax_xent_huge", None, "softmax_huge_one_entry_1e-3", leaves=("W",), gross=False,
         patch=_scale_entry(["W"], (0, 1), 1.001)),
    _bug("attention_f32", "missing_scale", "attention_f32_missing_sqrt_d", leaves=("Wq", "Wk")),
    _bug("layer_norm_f32", "missing_mean_term", "layer_norm_f32_missing_mean_term", leaves=("x",)),
    _bug("batch_norm_f32", "stats_as_constants", "batch_norm_f32_stats_as_constants", leaves=("x",)),
    _bug("rnn_3steps_f32", "transposed_W", "rnn_f32_transposed_W", leaves=("W",)),
    _bug("linreg_f32_near_optimum", "sign_flip", "linreg_f32_near_optimum_sign_flip"),
    _bug("softmax_f32_trained", "missing_l2", "softmax_f32_trained_missing_l2", leaves=("W",)),
    _bug("logreg_bias_near_zero", None, "logreg_bias_near_zero_b_2pct", leaves=("b",),
         patch=_scale_entry(["b"], 0, 1.02)),
    _bug("mlp_f32_trained_300", "tanh_derivative", "mlp_f32_trained_wrong_tanh_derivative",
         leaves=("W1", "b1")),
]
