"""The first line of a result's text says what happened (numerics/result.py's headline).

A fast-mode check left open by its probes, with no entry inconclusive on its own, printed
"0 of 0 entries could not be judged, the rest agree": a count of nothing and an agreement nobody
measured.  Its headline now gives the check's own cause (causes.py's vocabulary) and what the
entries did; a fast pass says its probes agreed instead of "all 0 entries agree".
"""

from __future__ import annotations

import numpy as np
import pytest

from pytest_gradcheck import check_gradient
from pytest_gradcheck.numerics import causes as cz
from pytest_gradcheck.numerics.result import CHECK_WIDE


def _headline(r):
    return str(r).splitlines()[0]


def _float16_tanh_model():
    """A float16 model whose gradient's rounding allowance, projected on a probe, exceeds a typical
    entry: fast mode cannot see single entries and says so."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(20, 30)).astype(np.float16)

    def fun(w):
        return float((np.tanh(A @ w.astype(np.float16)).astype(np.float32) ** 2).mean())

    def grad(w):
        z = np.tanh(A.astype(np.float32) @ w.astype(np.float32))
        return ((2 * z * (1 - z ** 2) / z.size) @ A.astype(np.float32)).astype(np.float16)

    return fun, rng.normal(size=30).astype(np.float16), grad


def _thin_error(delta):
    """sum(A sin x) with every entry of the gradient off by ``delta``: probes see the sum of the
    errors, each entry on its own is within its tolerance."""
    rng = np.random.default_rng(0)
    A, x = rng.normal(size=3000), rng.normal(size=3000)
    return (lambda x: float(np.sum(np.sin(x) * A))), x, (lambda x: np.cos(x) * A + delta)


def test_a_check_the_probes_left_open_says_why_not_zero_of_zero():
    fun, w, grad = _float16_tanh_model()
    r = check_gradient(fun, w, grad, mode="fast")
    assert r.status == "inconclusive" and r.counts["inconclusive"] == 0 and r.n_checked == 0, str(r)
    head = _headline(r)
    assert "0 of 0" not in head and "the rest agree" not in head, head
    assert cz.CAUSE_WORDS[r.diagnosis["cause"]] in head, head
    assert "no entry was checked on its own" in head
    assert not cz.contradictions("inconclusive", head)


def test_a_thinly_spread_error_says_no_single_entry_could_be_confirmed():
    fun, x, grad = _thin_error(1e-9)
    r = check_gradient(fun, x, grad, mode="fast")
    assert r.status == "inconclusive" and r.diagnosis["cause"] == cz.SPREAD, str(r)
    head = _headline(r)
    assert "no single entry" in head and "probe disagreed" in head and "0 of" not in head, head


def test_a_fast_pass_says_its_probes_agree():
    fun, x, grad = _thin_error(0.0)
    r = check_gradient(fun, x, grad, mode="fast")
    assert r.status == "pass" and r.n_checked == 0, str(r)
    assert "every random-direction probe agrees" in _headline(r)
    assert "all 0 entries" not in _headline(r)


def test_entry_counts_stay_where_entries_were_judged():
    w = np.array([0.3, -1.2, 2.0])
    r = check_gradient(lambda v: float(np.sum(np.sin(v))), w, lambda v: np.cos(v) * [1.0, 1.0, 1.5])
    assert _headline(r).startswith("gradient check FAILED: 1 of 3 entries disagree")
    r = check_gradient(lambda v: float(np.sum(np.maximum(v, 0.0))), np.array([0.0, 1.0, -2.0]),
                       lambda v: (v > 0).astype(float))
    assert _headline(r).startswith("gradient check inconclusive: 1 of 3 entries could not be judged, the rest agree")


@pytest.mark.parametrize("cause", cz.INCONCLUSIVE_CAUSES)
def test_every_check_wide_headline_names_its_cause_in_causes_words(cause):
    assert cz.CAUSE_WORDS[cause] in CHECK_WIDE[cause]
    assert not cz.contradictions("inconclusive", CHECK_WIDE[cause])
