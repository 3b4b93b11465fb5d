"""Verdicts at irregular points (issue 20 A.1, B.4-B.6, C.9): tests/corpus/irregular_kinks.py.

Every case has its exact status in full, fast and auto mode: correct derivatives never fail
(an honest inconclusive names its cause), and beside each a wrong variant (2x-30x at kinks and
ties, a sign flip, half the staircase's slope) that must fail.  The reasons must agree with the
numbers: no kink where the one-sided derivatives agree, an envelope that is what was measured.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from pytest_gradcheck.numerics import causes as cz

sys.path.insert(0, os.path.dirname(__file__))
from corpus.irregular_kinks import IRREGULAR, MODES  # noqa: E402

BY_NAME = {c.name: c for c in IRREGULAR}


def _run(case, mode):
    if case.needs:
        pytest.importorskip(case.needs)
    return case.run(mode)


def _causes(r):
    names = {1: "fail", 2: "inconclusive"}
    ent = r.entries
    return {i: cz.entry_cause(names[int(v)], ent["reasons"].get(i, ""))
            for i, v in enumerate(ent["verdict"]) if int(v) in names}


def test_the_corpus_covers_every_class_with_correct_and_wrong_variants():
    for cls in ("several_kinks", "tie", "staircase", "branch_point", "no_kink"):
        good = [c for c in IRREGULAR if c.cls == cls and c.kind == "correct"]
        bad = [c for c in IRREGULAR if c.cls == cls and c.kind == "bug"]
        assert len(good) >= 2 and len(bad) >= 2, cls


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", IRREGULAR, ids=lambda c: c.name)
def test_exact_status(case, mode):
    r = _run(case, mode)
    assert r.status == case.expected(mode), str(r)
    if r.status == "inconclusive":
        assert r.diagnosis and r.diagnosis["cause"], str(r)


@pytest.mark.parametrize("name", ["double_relu_grad_60", "double_relu_grad_3", "three_units_relu0_10"])
def test_the_envelope_printed_is_the_measured_one(name):
    # A.1: the failure's reason prints the range the nudged points measured (every valid value of
    # df/dp0 of relu(p0+p1) + relu(p0-p1) at 0 lies in [0, 2]; of the three units, [0, 3])
    r = BY_NAME[name].run("full")
    reason = r.worst[0].reason
    assert "derivatives measured lie within" in reason, reason
    low, high = (float(t) for t in reason.split("lie within ")[1].split(";")[0].split(" to "))
    assert low == pytest.approx(0.0, abs=1e-6) and high in (pytest.approx(2.0, abs=1e-6),
                                                                pytest.approx(3.0, abs=1e-6))
    assert "units" not in reason.split("lie within")[1]  # no assumed unit count


def test_equal_one_sided_derivatives_are_no_kink_in_a_smooth_hessian():
    # A.1: the score at a least-squares optimum moves both one-sided derivatives the same way
    # (h^2 f'''); the old asymmetry test called that a kink and "several kinks" hid a factor 2
    for name in ("least_squares_hessian_x1", "least_squares_hessian_x2"):
        for mode in MODES:
            r = BY_NAME[name].run(mode)
            assert "kink" not in str(r).lower(), str(r)
    r = BY_NAME["least_squares_hessian_x2"].run("full")
    assert r.status == "fail" and set(_causes(r).values()) == {cz.BUG}, str(r)


def test_a_tie_cancelled_along_its_own_axis_names_the_tie():
    # B.4: mixed-sign cotangents (the loss sum(maxpool(x) * R), R = +-1): the bins an entry ties in
    # cancel along its axis, the first-maximum routing gives it one bin's cotangent; the nudged ramp
    # (x - s * rank) shows it.  check_vjp's own cotangents no longer cancel exactly (magnitudes in
    # [1, 1.5)), so the cancelling R is written out here.
    from corpus.irregular_kinks import _maxpool, _maxpool_vjp
    from pytest_gradcheck import check_gradient

    R = np.array([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0], [-1.0, 1.0, -1.0]])

    def fun(x):
        return float(np.sum(_maxpool(x) * R))

    r = check_gradient(fun, np.full((4, 4), 0.7), lambda x: _maxpool_vjp(x, R), mode="full")
    assert r.status == "inconclusive" and r.counts["fail"] == 0, str(r)
    assert cz.SEVERAL_KINKS in set(_causes(r).values()), str(r)
    assert any("tied or crossed off this entry's axis" in e.reason for e in r.worst), str(r)
    for factor in (2.0, 30.0):  # a value outside every tie-break's gradient
        bad = check_gradient(fun, np.full((4, 4), 0.7), lambda x, f=factor: _maxpool_vjp(x, R, factor=f), mode="full")
        assert bad.status == "fail", str(bad)


def test_a_staircase_names_both_conventions_and_fails_neither():
    r = BY_NAME["np_round3_ae_zero"].run("full")
    assert r.diagnosis["cause"] == cz.STAIRCASE and "piecewise constant" in r.diagnosis["summary"], str(r)
    assert all(e.reason.startswith("staircase") for e in r.worst if e.verdict != "pass"), str(r)
    r = BY_NAME["np_round3_half_slope"].run("full")
    assert r.status == "fail" and "matches neither 0" in r.worst[0].reason, str(r)


def test_a_float32_function_is_not_read_as_a_designed_staircase():
    # f computing in float32 is flat over float32's rounding (6e-8 relative), far below the 1e-5
    # a designed quantiser needs: an all-zero gradient of it still fails
    X = np.random.default_rng(7).normal(size=(20, 4)).astype(np.float32)

    def fun(w):
        return float(np.sum((X @ w.astype(np.float32)) ** 2))

    from pytest_gradcheck import check_gradient
    w = np.random.default_rng(8).normal(size=4)
    for mode in MODES:
        assert check_gradient(fun, w, lambda w: np.zeros(4), mode=mode).status == "fail"


def test_a_branch_point_within_the_first_steps_is_no_kink():
    # B.6: the steps shrink below the branch point 1e-8 away; the chain from larger steps that
    # straddles it does not overrule them
    pytest.importorskip("scipy")
    for mode in ("full", "auto"):
        r = BY_NAME["lambertw_branch_point_x1"].run(mode)
        assert r.status == "pass" and "kink" not in str(r).lower(), str(r)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", [c for c in IRREGULAR if c.cls == "no_kink"], ids=lambda c: c.name)
def test_no_kink_is_claimed_where_the_one_sided_derivatives_agree(case, mode):
    # C.9: rounding noise in a huge log-likelihood, i1e at 0, a saturated sigmoid: no kink text
    r = _run(case, mode)
    assert "kink" not in str(r).lower(), str(r)


def test_every_reason_agrees_with_its_numbers():
    # a kink claim needs one-sided derivatives that differ; a "pass" entry needs a tolerance below
    # the values compared or an agreeing estimate; every inconclusive or failed entry has a cause
    import re
    for case in IRREGULAR:
        if case.needs:
            try:
                __import__(case.needs)
            except ImportError:
                continue
        r = case.run("full")
        for e in r.worst:
            m = re.match(r"kink: (?:fun is not differentiable.*?; )?the one-sided derivatives are (\S+) and (\S+?)[;, ]",
                         e.reason or "")
            if m:
                lo, hi = float(m.group(1)), float(m.group(2))
                assert lo != hi, (case.name, e.reason)
        assert not cz.contradictions(r.status, r.diagnosis["summary"] if r.diagnosis else ""), case.name
