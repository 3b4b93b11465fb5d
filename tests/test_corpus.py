"""check_gradient on a corpus of real models: correct gradients pass, bugs fail.

The corpus (tests/corpus) holds hand-written backprop for ~20 models plus
variants (float32, tiny and huge losses, mixed scales, large offsets, exact
zeros, nested pytrees, a near-kink ReLU) and 40+ realistic bugs.  The corpus
itself is validated against an independent oracle (complex step or a
high-order stencil written here), so a disagreement below is the checker's
fault, not the corpus's.
"""

from __future__ import annotations

import copy
import os
import sys

import numpy as np
import pytest

from pytest_gradcheck import GradcheckError, check_gradient

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from corpus import BUGS, CORRECT, BY_NAME
from corpus.anchors import course_loop, flat_vector, leaves_of, rebuild, scipy_rule, torch_rule
from corpus.models import MODELS

ids = [c.name for c in CORRECT]
bug_ids = [b.name for b in BUGS]


# ---------------------------------------------------------------- the corpus itself


def _oracle(case, h=1e-30):
    """Independent numeric gradient: complex step for analytic float64 models,
    else a 5-point stencil with a step matched to each entry's scale."""
    p = case.params()
    leaves = [np.asarray(x, dtype=np.float64) for x in leaves_of(p)]
    out = []
    for i, leaf in enumerate(leaves):
        g = np.zeros(leaf.size)
        for j in range(leaf.size):
            def f(delta, cplx=False):
                L = [x.astype(complex if cplx else np.float64).copy() for x in leaves]
                L[i].reshape(-1)[j] += delta
                return case.fun(rebuild(p, iter(L)))
            if case.analytic:
                g[j] = np.imag(f(1j * h, cplx=True)) / h
            else:
                s = 1e-3 * max(abs(leaf.reshape(-1)[j]), 1e-3 if "small" not in case.name else 1e-6)
                g[j] = (-f(2 * s) + 8 * f(s) - 8 * f(-s) + f(-2 * s)) / (12 * s)
        out.append(g)
    return np.concatenate(out)


def test_corpus_size():
    base_models = {c.model for c in CORRECT if not c.tags and not c.kink}
    assert len(base_models) >= 18
    assert len(BUGS) >= 32
    assert all(b.model in BY_NAME for b in BUGS)


@pytest.mark.parametrize("case", [c for c in CORRECT if not c.kink], ids=lambda c: c.name)
def test_corpus_gradients_are_correct(case):
    # the code is dtype-generic: float32 models are verified on float64 copies
    p = case.params()
    p64 = rebuild(p, iter([np.asarray(x, dtype=np.float64) for x in leaves_of(p)]))
    a = flat_vector(case.grad(p64))
    n = _oracle(case)
    scale = np.maximum(np.abs(n), 1e-3 * np.max(np.abs(n)))
    assert np.all(np.abs(a - n) <= 1e-7 * scale + 1e-300), case.name


@pytest.mark.parametrize("bug", BUGS, ids=lambda b: b.name)
def test_corpus_bugs_are_bugs(bug):
    p = bug.params()
    good = flat_vector(BY_NAME[bug.model].grad(p))
    bad = flat_vector(bug.grad(p))
    # per entry, relative to the entry (entries near 0 relative to 1e-3 of the largest)
    rel = np.max(np.abs(bad - good) / np.maximum(np.abs(good), 1e-3 * np.max(np.abs(good))))
    assert rel >= (1e-2 if bug.gross else 1e-4) * 0.5


def test_corpus_kinks_are_where_they_should_be():
    m = MODELS["two_layer_relu"]
    assert m.min_preactivation(m.params()) > 1e-3          # smooth case: kinks far away
    k = MODELS["two_layer_relu_near_kink"]
    assert k.min_preactivation(k.params()) < 1e-7          # deliberate near-kink
    assert MODELS["hinge_svm"].min_margin(MODELS["hinge_svm"].params()) > 1e-2
    assert MODELS["huber"].min_kink_distance(MODELS["huber"].params()) > 1e-2


def test_corpus_float32_models_compute_in_float32():
    for name in ("linreg_mse_f32", "softmax_xent_f32", "tanh_mlp_f32", "attention_f32",
                 "linreg_f32_near_optimum", "softmax_f32_trained", "mlp_f32_trained_300"):
        c = BY_NAME[name]
        p = c.params()
        assert np.asarray(c.fun(p)).dtype == np.float32, name
        assert {np.asarray(x).dtype for x in leaves_of(c.grad(p))} == {np.dtype(np.float32)}, name
        p64 = rebuild(p, iter([np.asarray(x, dtype=np.float64) for x in leaves_of(p)]))
        assert np.asarray(c.fun(p64)).dtype == np.float64, name


# ---------------------------------------------------------------- default settings


def _assert_correct_ok(case, r):
    if case.kink or case.inconclusive_ok:
        assert r.status in ("pass", "inconclusive"), f"{case.name}: {r}"
    else:
        assert r.status == "pass", f"{case.name} is a correct gradient:\n{r}"


@pytest.mark.parametrize("case", CORRECT, ids=ids)
def test_correct_gradient_passes(case):
    p = case.params()
    before = copy.deepcopy(p)
    r = check_gradient(case.fun, p, case.grad)
    _assert_correct_ok(case, r)
    for x, y in zip(leaves_of(before), leaves_of(p)):
        assert np.array_equal(x, y) and np.asarray(x).dtype == np.asarray(y).dtype


@pytest.mark.parametrize("bug", BUGS, ids=bug_ids)
def test_bug_fails(bug):
    r = check_gradient(bug.fun, bug.params(), bug.grad)
    assert not r.passed and r.status == "fail", f"{bug.name} missed:\n{r}"
    assert r.worst and r.worst[0].verdict == "fail"
    if bug.bug_leaves:
        assert r.worst[0].leaf in bug.bug_leaves, f"{bug.name}: worst entry at {r.worst[0].where}\n{r}"
    text = str(r)
    assert r.worst[0].leaf in text


# ---------------------------------------------------------------- other schemes


@pytest.mark.parametrize("method", ["central4", "forward"])
@pytest.mark.parametrize("case", CORRECT, ids=ids)
def test_correct_gradient_passes_other_methods(case, method):
    r = check_gradient(case.fun, case.params(), case.grad, method=method)
    _assert_correct_ok(case, r)


@pytest.mark.parametrize("method", ["central4", "forward"])
@pytest.mark.parametrize("bug", BUGS, ids=bug_ids)
def test_bug_fails_other_methods(bug, method):
    if not bug.gross and method == "forward":
        pytest.skip("subtle (1e-3) bugs are only required of central and central4")
    r = check_gradient(bug.fun, bug.params(), bug.grad, method=method)
    assert not r.passed, f"{bug.name} missed with {method}:\n{r}"
    if bug.bug_leaves:
        assert r.worst[0].leaf in bug.bug_leaves


@pytest.mark.parametrize("case", [c for c in CORRECT if c.analytic], ids=lambda c: c.name)
def test_correct_gradient_passes_complex_step(case):
    r = check_gradient(case.fun, case.params(), case.grad, method="complex")
    _assert_correct_ok(case, r)


@pytest.mark.parametrize("bug", [b for b in BUGS if b.analytic], ids=lambda b: b.name)
def test_bug_fails_complex_step(bug):
    r = check_gradient(bug.fun, bug.params(), bug.grad, method="complex")
    assert not r.passed, f"{bug.name} missed with the complex step:\n{r}"
    if bug.bug_leaves:
        assert r.worst[0].leaf in bug.bug_leaves


# ---------------------------------------------------------------- the anchors' failures
#
# (case, anchor, what the anchor wrongly says).  Each row is a documented
# failure of the anchor's rule, reproduced on the corpus; check_gradient must
# get the same case right.

ANCHOR_FAILURES = [
    # float32: roundoff eps32*|f|/h swamps the estimate at h = 1e-6 / 1e-7
    ("linreg_mse_f32", "torch", "fail"),
    ("linreg_mse_f32", "course", "fail"),
    ("softmax_xent_f32", "torch", "fail"),
    ("softmax_xent_f32", "course", "fail"),
    ("tanh_mlp_f32", "torch", "fail"),
    ("tanh_mlp_f32", "course", "fail"),
    ("attention_f32", "torch", "fail"),
    ("attention_f32", "course", "fail"),
    # a leaf of size ~1e-6: a fixed absolute step of 1e-6 / 1e-7 is not small
    ("mixed_scales", "torch", "fail"),
    ("mixed_scales", "course", "fail"),
    # params ~1e4: the step 1e-7 is rounded ((x+h)-x != h), the course loop sees it
    ("large_offsets", "course", "fail"),
    # entries ~1e-10: the absolute tolerance 1e-5 hides a sign flip / a 5% error
    ("bug:logreg_tiny_sign_flip", "torch", "pass"),
    ("bug:tanh_mlp_tiny_one_entry_5pct", "torch", "pass"),
    # an error of exactly rtol on one entry
    ("bug:softmax_huge_one_entry_1e-3", "torch", "pass"),
    # trained float32 models: small gradients, float32 roundoff
    ("mlp_f32_trained_300", "torch", "fail"),
    ("mlp_f32_trained_300", "course", "fail"),
    ("linreg_f32_near_optimum", "course", "fail"),
    # scipy.optimize.check_grad with the usual "< 1e-5": absolute, so it fails
    # large losses and passes tiny ones whatever their sign
    ("softmax_xent_huge", "scipy", "fail"),
    ("bug:logreg_tiny_sign_flip", "scipy", "pass"),
    ("softmax_xent_f32", "scipy", "fail"),
]


@pytest.mark.parametrize("name,anchor,wrong", ANCHOR_FAILURES,
                         ids=[f"{n}-{a}" for n, a, _ in ANCHOR_FAILURES])
def test_anchor_failure_is_beaten(name, anchor, wrong):
    case = BY_NAME[name]
    rule = {"torch": torch_rule, "course": course_loop, "scipy": scipy_rule}[anchor]
    anchor_passed, _ = rule(case.fun, case.grad, case.params())
    assert anchor_passed == (wrong == "pass"), "the anchor's documented failure did not reproduce"
    r = check_gradient(case.fun, case.params(), case.grad)
    if case.kind == "correct":
        assert r.status == "pass", f"{name}:\n{r}"
    else:
        assert r.status == "fail", f"{name}:\n{r}"


def test_anchors_agree_on_plain_float64_cases():
    # sanity of the reimplementations: on ordinary float64 models both anchor
    # rules accept correct gradients and reject gross bugs
    for name in ("linreg_mse", "softmax_xent", "attention", "bug:linreg_missing_factor_2",
                 "bug:attention_missing_sqrt_d"):
        c = BY_NAME[name]
        for rule in (torch_rule, course_loop):
            assert rule(c.fun, c.grad, c.params())[0] == (c.kind == "correct"), (name, rule.__name__)


# ---------------------------------------------------------------- explicit first step
#
# eps is the first step; refinement should still reach a verdict that is right
# (or inconclusive), never a false failure or a pass of a gross bug.

EXPLICIT_EPS = [
    ("mixed_scales", 0.1, "central"),                          # correct: must not fail
    ("large_offsets", 1e-9, "central"),                        # correct
    ("bug:large_offsets_one_entry_sign", 1e-9, "central"),     # sign flip: must fail
    ("bug:large_offsets_one_entry_sign", 1e-9, "forward"),
    ("bug:nested_dec_s_doubled", 0.1, "forward"),              # 2x: must fail
    ("bug:logreg_sign_flip", 0.1, "forward"),
]


@pytest.mark.parametrize("name,eps,method", EXPLICIT_EPS, ids=[f"{n}-{e}-{m}" for n, e, m in EXPLICIT_EPS])
def test_explicit_first_step(name, eps, method):
    case = BY_NAME[name]
    r = check_gradient(case.fun, case.params(), case.grad, eps=eps, method=method)
    if case.kind == "correct":
        assert r.status == "pass", f"{name} with eps={eps}:\n{r}"
    else:
        assert r.status == "fail", f"{name} with eps={eps}:\n{r}"


# ---------------------------------------------------------------- float32 models that refuse float64
#
# Some models only run in float32 (a framework op, a kernel): the numeric side
# must then be computed in float32 too.  Correct gradients must not fail (small
# entries may be inconclusive), bugs must still fail with central differences.


def _float32_only(fun):
    def f(p):
        if any(np.asarray(x).dtype == np.float64 for x in leaves_of(p)):
            raise TypeError("this model runs in float32 only")
        return fun(p)
    return f


@pytest.mark.parametrize("case", [c for c in CORRECT + BUGS if "float32" in c.tags], ids=lambda c: c.name)
def test_float32_only_models(case):
    r = check_gradient(_float32_only(case.fun), case.params(), case.grad)
    assert any("float64" in m for m in r.messages), r.messages
    if case.kind == "correct":
        # float32 finite differences resolve entries only to ~1e-5 of f: a trained model's tiny
        # entries may be inconclusive, but only as unresolved (never a kink, never fail)
        assert r.status in ("pass", "inconclusive"), f"{case.name}:\n{r}"
        if r.status == "inconclusive":
            assert all(e.verdict != "inconclusive" or "unresolved" in e.reason for e in r.worst), str(r)
    else:
        assert r.status == "fail", f"{case.name}:\n{r}"
        if case.bug_leaves:
            assert r.worst[0].leaf in case.bug_leaves


SEED_CASES = ["two_layer_relu_near_kink", "mixed_scales", "large_offsets", "softmax_xent_f32",
              "mlp_f32_trained_300", "bug:logreg_one_entry_1e-3", "bug:softmax_huge_one_entry_1e-3",
              "bug:logreg_tiny_sign_flip", "bug:linreg_f32_one_entry_x1.01"]


@pytest.mark.parametrize("name", SEED_CASES)
def test_verdict_does_not_depend_on_seed(name):
    case = BY_NAME[name]
    statuses = {check_gradient(case.fun, case.params(), case.grad, seed=s).status for s in (0, 1, 7, 12345)}
    assert len(statuses) == 1, statuses


@pytest.mark.parametrize("case", [c for c in CORRECT + BUGS if not c.analytic], ids=lambda c: c.name)
def test_complex_step_on_non_analytic_models_never_misjudges(case):
    # np.maximum on complex values compares real parts first, so piecewise
    # analytic code still works away from its kinks; np.abs does not.  Either a
    # right verdict or an error explaining why the complex step cannot be used.
    try:
        with np.errstate(all="ignore"):
            r = check_gradient(case.fun, case.params(), case.grad, method="complex")
    except GradcheckError as e:
        assert "complex" in str(e)
        return
    if case.kind == "correct":
        assert r.status == "pass", str(r)
    else:
        assert r.status == "fail", str(r)
