"""Corpus of issue 20's report-consistency items (C.11, C.12): points where the report's words used to
contradict its own numbers, each with a correct and a wrong gradient.

* values near 1e300 (a loss scaled by 1e300; log(p) at p ~ 1e-300): the diagnosis's fits overflowed
  and the report said "(no diagnosis: ValueError: cannot convert float NaN to integer)";
* a loss with an epsilon guard, log(p + 1e-10), checked against the gradient of log(p): a uniform
  relative discrepancy of 1e-10/p, once named "pattern 'x1': a constant factor";
* two wrong leaves: "Next:" named only one of them;
* a bias just before a normalisation (its gradient is 0 exactly): "Try ... float64" on float64.

Plain lists of corpus.Case (MESSAGES_CORRECT, MESSAGES_BUGS), picked up by
tests/test_diagnosis_consistency.py's discovery; tests/test_messages.py asserts their reports.
"""

from __future__ import annotations

import numpy as np

from . import Case


def _params_1e300():
    return np.random.default_rng(2001).normal(size=5)


def _tiny_p():
    return np.random.default_rng(2002).uniform(1.0, 3.0, size=4) * 1e-300


def _guard_params():
    rng = np.random.default_rng(2003)
    return {"conv_w": rng.uniform(0.003, 0.006, size=(3, 4)), "b": rng.normal(size=2)}


def _guarded_loss(p):
    return float(-np.sum(np.log(p["conv_w"] + 1e-10)) + np.sum(p["b"] ** 2))


def _log_loss(p):
    return float(-np.sum(np.log(p["conv_w"])) + np.sum(p["b"] ** 2))


def _log_grad(k=1.0):
    return lambda p: {"conv_w": -k / p["conv_w"], "b": 2 * p["b"]}


def _two_leaves_params():
    rng = np.random.default_rng(2004)
    return {"a": rng.normal(size=4), "b": rng.normal(size=3) + 2.0}


def _two_leaves_loss(p):
    return float(np.sum(np.sin(p["a"])) + np.sum(p["b"] ** 3))


_X = np.random.default_rng(2005).normal(size=(6, 3))
_WEIGHTS = np.arange(1.0, 4.0)


def _norm_params():
    rng = np.random.default_rng(2006)
    return {"W": rng.normal(size=(3, 3)), "b": rng.normal(size=3)}


def _norm_loss(p):
    h = _X @ p["W"] + p["b"]
    h = (h - h.mean(0)) / h.std(0)
    return float(np.sum(np.tanh(h) * _WEIGHTS))


def _norm_grad(scale_w=1.0):
    def grad(p):
        h0 = _X @ p["W"] + p["b"]
        sd = h0.std(0)
        h = (h0 - h0.mean(0)) / sd
        dh = (1 - np.tanh(h) ** 2) * _WEIGHTS
        dh0 = (dh - dh.mean(0) - h * (dh * h).mean(0)) / sd
        return {"W": scale_w * (_X.T @ dh0), "b": dh0.sum(0)}
    return grad


MESSAGES_CORRECT = [
    Case("msg:scaled_1e300_sum_sq", lambda p: float(1e300 * np.sum(p ** 2)), lambda p: 2e300 * p, _params_1e300),
    Case("msg:log_at_1e-300", lambda p: float(np.sum(np.log(p))), lambda p: 1.0 / p, _tiny_p),
    Case("msg:log_loss", _log_loss, _log_grad(), _guard_params),
    Case("msg:two_leaves", _two_leaves_loss, lambda p: {"a": np.cos(p["a"]), "b": 3 * p["b"] ** 2},
         _two_leaves_params),
    # the bias's gradient is 0 exactly (the normalisation removes any shift): inconclusive or pass
    Case("msg:bias_before_normalisation", _norm_loss, _norm_grad(), _norm_params, inconclusive_ok=True),
]

MESSAGES_BUGS = [
    Case("bug:msg:scaled_1e300_sum_sq_x3", lambda p: float(1e300 * np.sum(p ** 2)), lambda p: 3e300 * p,
         _params_1e300, kind="bug", model="msg:scaled_1e300_sum_sq", bug_leaves=("params",)),
    Case("bug:msg:log_at_1e-300_x2", lambda p: float(np.sum(np.log(p))), lambda p: 2.0 / p, _tiny_p,
         kind="bug", model="msg:log_at_1e-300", bug_leaves=("params",)),
    # a term in fun that grad ignores: 1e-10/p relative (1.7e-8 to 3.3e-8), not a constant factor
    Case("bug:msg:log_epsilon_guard", _guarded_loss, _log_grad(), _guard_params, kind="bug", model="msg:log_loss",
         bug_leaves=("conv_w",), gross=False),
    Case("bug:msg:log_loss_x1.01", _log_loss, _log_grad(1.01), _guard_params, kind="bug", model="msg:log_loss",
         bug_leaves=("conv_w",)),
    Case("bug:msg:two_leaves_wrong", _two_leaves_loss,
         lambda p: {"a": np.cos(p["a"]) + np.array([0.0, 0.0, 0.1, 0.0]), "b": 4.5 * p["b"] ** 2},
         _two_leaves_params, kind="bug", model="msg:two_leaves", bug_leaves=("a", "b")),
    Case("bug:msg:normalised_W_x2", _norm_loss, _norm_grad(2.0), _norm_params, kind="bug",
         model="msg:bias_before_normalisation", bug_leaves=("W",)),
]
