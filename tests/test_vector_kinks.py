"""check_jvp and check_jacobian at kinks (issue 12.2's class on the vector path, directions.py).

A ReLU layer with a zero bias and an all-zero input row puts every unit of that row exactly at its
kink.  Along a tangent (or one input entry) the central difference there is the mean of the two
one-sided derivatives, constant as the step shrinks: without a kink test it is a confirmed plateau
and a correct JVP "fails" at a ratio of ~1e14.  With it, a value between the one-sided derivatives,
or within what they give at points nudged off the inputs (two layers: one move crosses several
kinks), is inconclusive naming the kink; so is a framework's convention where the kinks switch
together (few inputs drive many units); a wrong factor off the kink set, and a value beyond what
even K_MAX kinks switched together could give, still fail.
"""

from __future__ import annotations

import numpy as np
import pytest

from pytest_gradcheck.numerics import causes as cz
from pytest_gradcheck import check_gradient, check_vjp
from pytest_gradcheck.numerics.vector import check_jacobian, check_jvp

W = np.random.default_rng(8).normal(size=(3, 4))
W1 = np.random.default_rng(3).normal(size=(3, 16))
W2 = np.random.default_rng(4).normal(size=(16, 2))


def _inputs():
    """Row 0 all zeros (every pre-activation of it exactly 0), row 1 off the kinks."""
    x = np.zeros((2, 3))
    x[1] = [0.5, -1.0, 0.7]
    return x


def _layer(at_zero=0.0, factor=1.0):
    """relu(x @ W), its JVP and its Jacobian (2, 4, 2, 3) with relu'(0) = ``at_zero``, times ``factor``."""
    def fun(x):
        return np.maximum(x @ W, 0.0)

    def slope(x):
        z = x @ W
        return factor * ((z > 0) + at_zero * (z == 0))

    def jvp(x, t):
        return (t @ W) * slope(x)

    def jac(x):
        J = np.zeros((2, 4, 2, 3))
        s = slope(x)
        for r in range(2):
            J[r, :, r, :] = (W * s[r]).T
        return J

    return fun, jvp, jac


def _mlp(at_zero=0.0):
    """relu(x @ W1) @ W2: each output sums 16 units, so one move of a zero row crosses 16 kinks."""
    def fun(x):
        return np.maximum(x @ W1, 0.0) @ W2

    def slope(x):
        z = x @ W1
        return (z > 0) + at_zero * (z == 0)

    def jvp(x, t):
        return ((t @ W1) * slope(x)) @ W2

    def jac(x):
        J = np.zeros((2, 2, 2, 3))
        s = slope(x)
        for r in range(2):
            J[r, :, r, :] = ((W1 * s[r]) @ W2).T
        return J

    return fun, jvp, jac


def _causes(r):
    """{flat entry: cause} of the entries that did not pass, read from their reasons."""
    ent = r.entries
    names = {1: "fail", 2: "inconclusive"}
    return {i: cz.entry_cause(names[int(v)], ent["reasons"].get(i, ""))
            for i, v in enumerate(ent["verdict"]) if int(v) in names}


def _rows(r, shape):
    """The output rows (first index) of the entries that did not pass."""
    return {np.unravel_index(i, shape)[0] for i in _causes(r)}


@pytest.mark.parametrize("at_zero", [0.0, 1.0])
def test_correct_jvp_and_jacobian_of_a_relu_layer_at_its_kinks_are_inconclusive_naming_the_kink(at_zero):
    # relu'(0) = 0 (every framework) and = 1: both are one-sided derivatives along any direction
    fun, jvp, jac = _layer(at_zero)
    x = _inputs()
    for r, shape in ((check_jvp(fun, x, jvp), (2, 4)), (check_jacobian(fun, x, jac), (2, 4, 2, 3))):
        assert r.status == "inconclusive", str(r)
        causes = _causes(r)
        assert causes and set(causes.values()) == {cz.KINK}, str(r)
        assert _rows(r, shape) == {0}  # only the zero row sits at the kinks
        assert r.diagnosis["cause"] == cz.KINK and "kink" in r.diagnosis["summary"]


def test_a_wrong_factor_still_fails_off_the_kink_set():
    fun, jvp, jac = _layer(factor=2.0)
    x = _inputs()
    for r, shape in ((check_jvp(fun, x, jvp), (2, 4)), (check_jacobian(fun, x, jac), (2, 4, 2, 3))):
        assert r.status == "fail", str(r)
        failed = {i for i, c in _causes(r).items() if c == cz.BUG}
        assert failed and {np.unravel_index(i, shape)[0] for i in failed} == {1}, str(r)


def test_a_wrong_value_at_a_single_kink_fails_as_a_bug_at_the_kink():
    # relu'(0) = 3: outside both one-sided derivatives (0 and the unit's slope) of a single kink
    fun, jvp, jac = _layer(at_zero=3.0)
    x = _inputs()
    for r in (check_jvp(fun, x, jvp), check_jacobian(fun, x, jac)):
        assert r.status == "fail", str(r)
        assert r.diagnosis["cause"] == cz.BUG_AT_KINK
        # a nudged point's one-sided difference that happens to straddle its kink (a secant) reads
        # as a second kink: such an entry is only inconclusive, never passed
        assert set(_causes(r).values()) <= {cz.BUG_AT_KINK, cz.SEVERAL_KINKS}, str(r)
        assert "no other kink" in r.worst[0].reason


def _vjp(at_zero=0.0):
    """The VJP of _mlp's function, written as a framework's backward pass computes it."""
    def vjp(x, c):
        z = x @ W1
        return ((c @ W2.T) * ((z > 0) + at_zero * (z == 0))) @ W1.T

    return vjp


def test_several_kinks_crossed_by_one_move_are_inconclusive_not_failed():
    # two layers: the framework's relu'(0) = 0 value lies outside the one-sided derivatives along the
    # tangent (each sums 16 units switched on one side), yet within what nudged points allow
    fun, jvp, jac = _mlp()
    x = _inputs()
    r = check_jvp(fun, x, jvp)
    assert r.status == "inconclusive", str(r)
    assert cz.SEVERAL_KINKS in set(_causes(r).values()), str(r)
    r = check_jacobian(fun, x, jac)
    assert r.status == "inconclusive", str(r)
    assert _rows(r, (2, 2, 2, 3)) == {0}


@pytest.mark.parametrize("at_zero", [0.0, 1.0])
def test_a_frameworks_convention_at_kinks_switched_together_is_not_called_a_bug(at_zero):
    # check_vjp said FAILED here ("no limit of gradients nearby: a bug at the kink") for the VJP torch
    # computes: 3 inputs drive the 16 units of the zero row, so a nudge's signs on those 3 entries
    # switch them in at most 8 patterns, none with every unit off, and the spread of what nearby
    # points give (the bound for units switching independently) missed relu'(0) = 0 by 2x
    fun, _, _ = _mlp()
    x = _inputs()
    r = check_vjp(fun, x, _vjp(at_zero))
    assert r.status == "inconclusive" and r.counts["fail"] == 0, str(r)
    # the scalar loss of the same layer, as check_gradient sees it
    c = np.array([0.3, -1.1])
    r = check_gradient(lambda x: float(np.sum(fun(x) @ c)), x, lambda x: _vjp(at_zero)(x, np.tile(c, (2, 1))))
    assert r.status == "inconclusive" and r.counts["fail"] == 0, str(r)


def test_the_rule_at_kinks_switched_together():
    # the derivatives check_vjp saw at its 8 nudged points (two sides each) for the first cotangent:
    # 6 distinct values, two of them twice; the spread bound (units switching independently) gives
    # 2.68 to 7.86, which the framework's 0 lies outside
    from pytest_gradcheck.numerics.kinks import FAIL, INCONCLUSIVE, K_MAX, several_kinks_rule

    lo, hi, allow = 4.967767, 5.573756, 2.04e-05
    points = [4.844896, 4.987441, 4.987441, 4.991586, 5.549937, 5.554082, 5.554082, 5.696627]
    near = np.repeat(points, 2)
    verdict, why = several_kinks_rule(0.0, lo, hi, near, allow, 8, "one move of this entry")
    assert verdict == INCONCLUSIVE and "switched together" in why
    mid, seen = 0.5 * (lo + hi), max(points) - 0.5 * (lo + hi)
    verdict, why = several_kinks_rule(mid + 1.01 * K_MAX * seen, lo, hi, near, allow, 8, "one move")
    assert verdict == FAIL and "bug at the kink" in why
    # the same values, all distinct: the spread bound, and 0 fails
    near = np.repeat(np.array(points) + np.arange(8) * 1e-3, 2)
    verdict, why = several_kinks_rule(0.0, lo, hi, near, allow, 8, "one move of this entry")
    assert verdict == FAIL and "switched together" not in why


def test_a_value_outside_everything_nearby_points_give_still_fails():
    # relu'(0) = 100: beyond what even K_MAX = 64 units switched together could give, none changing
    # the derivative by more than the largest change seen.  (relu'(0) = 8 is inconclusive: with 16
    # units switched together by 3 inputs it is within that count; no finite difference of f can
    # tell it from a convention of a network computing the same f)
    x = _inputs()
    fun, jvp, jac = _mlp(at_zero=8.0)
    for r in (check_jvp(fun, x, jvp), check_jacobian(fun, x, jac), check_vjp(fun, x, _vjp(8.0))):
        assert r.status == "inconclusive" and r.counts["fail"] == 0, str(r)
    fun, jvp, jac = _mlp(at_zero=100.0)
    for r in (check_jvp(fun, x, jvp), check_jacobian(fun, x, jac), check_vjp(fun, x, _vjp(100.0))):
        assert r.status == "fail", str(r)
        assert cz.BUG_AT_KINK in set(_causes(r).values()), str(r)
        assert r.diagnosis["cause"] == cz.BUG_AT_KINK


def test_a_zero_border_through_a_convolution_and_relu():
    # an image with a zero border through a 3-tap convolution (zero bias) and ReLU: the border
    # outputs sit at their kinks; the correct Jacobian is not failed, a doubled one is
    k = np.array([0.7, -1.2, 0.4])
    x = np.zeros(10)
    x[3:7] = [0.9, -0.4, 1.3, 0.6]

    def fun(x):
        return np.maximum(np.convolve(x, k, mode="valid"), 0.0)

    def jac(x, factor=1.0):
        z = np.convolve(x, k, mode="valid")
        J = np.zeros((z.size, x.size))
        for r in range(z.size):
            J[r, r:r + 3] = k[::-1] * (z[r] > 0) * factor
        return J

    r = check_jacobian(fun, x, jac)
    assert r.status == "inconclusive" and r.counts["fail"] == 0, str(r)
    assert set(_causes(r).values()) <= {cz.KINK, cz.SEVERAL_KINKS}
    assert check_jacobian(fun, x, lambda x: jac(x, 2.0)).status == "fail"


def test_no_kink_is_reported_for_a_smooth_function():
    # the kink test must not fire on a smooth output: one-sided differences converge symmetrically
    A = np.random.default_rng(5).normal(size=(4, 3))

    def fun(x):
        return np.tanh(A @ x) + 0.1 * (A @ x) ** 2

    def jvp(x, t):
        z = A @ x
        return (1 - np.tanh(z) ** 2 + 0.2 * z) * (A @ t)

    x = np.array([0.3, -0.8, 1.1])
    r = check_jvp(fun, x, jvp, n_tangents=4)
    assert r.status == "pass", str(r)
    r = check_jvp(fun, x, lambda x, t: 1.01 * jvp(x, t))
    assert r.status == "fail" and set(_causes(r).values()) == {cz.BUG}, str(r)
