"""check_layer and gradcheck.layer: layer objects with forward/backward (issue 22, item 5).

Every layer of tests/numpy_layers.py passes when correct and fails with its
planted bug; the caller's layer (accumulated grads, running statistics, RNG) is
never changed.
"""

import numpy as np
import pytest

from numpy_layers import BatchNorm, Conv2d, Dropout, Embedding, Linear, MaxPool, Param, RNNStep
from pytest_gradcheck import GradcheckInputError, check_layer

_X = np.random.default_rng(1)

LAYERS = {
    "Linear": (lambda bug: Linear(4, 3, np.random.default_rng(0), bug=bug), _X.standard_normal((5, 4))),
    "Conv2d": (lambda bug: Conv2d(2, 3, 3, np.random.default_rng(0), bug=bug), _X.standard_normal((2, 2, 5, 5))),
    "MaxPool": (lambda bug: MaxPool(bug=bug), _X.standard_normal((2, 2, 4, 4))),
    "BatchNorm": (lambda bug: BatchNorm(3, np.random.default_rng(0), bug=bug), _X.standard_normal((6, 3))),
    "RNNStep": (lambda bug: RNNStep(3, 4, np.random.default_rng(0), bug=bug),
                (_X.standard_normal((2, 3)), _X.standard_normal((2, 4)))),
    "Dropout": (lambda bug: Dropout(0.4, bug=bug), _X.standard_normal((4, 5))),
    "Dropout-global-rng": (lambda bug: Dropout(0.4, bug=bug, global_rng=True), _X.standard_normal((4, 5))),
    "Embedding": (lambda bug: Embedding(6, 3, np.random.default_rng(0), bug=bug), np.array([1, 3, 1, 5, 3])),
}

#: the entries each layer's result must cover (input and parameters by their names)
LEAVES = {"Linear": {"x", "W", "b"}, "Conv2d": {"x", "w", "b"}, "MaxPool": {"x"}, "BatchNorm": {"x", "gamma", "beta"},
          "RNNStep": {"x", "Wx", "Wh", "b"}, "Dropout": {"x"}, "Dropout-global-rng": {"x"}, "Embedding": {"W"}}


@pytest.mark.parametrize("name", LAYERS)
def test_correct_layer_passes_and_its_bug_fails(name):
    make, x = LAYERS[name]
    good = check_layer(make(False), x)
    assert good.status == "pass", good
    assert good.n_params == sum(np.size(v) for v in _expected_tree(make(False), x, LEAVES[name]))
    bad = check_layer(make(True), x)
    assert bad.status == "fail", bad


def _expected_tree(layer, x, names):
    """The arrays the check must cover: the float inputs and every named parameter."""
    arrays = [v for v in (x if isinstance(x, tuple) else (x,)) if np.issubdtype(v.dtype, np.floating)]
    for n in names - {"x"}:
        v = getattr(layer, n, None)
        if isinstance(v, Param):
            v = v.data
        if v is None:
            v = layer.params[n]
        arrays.append(v)
    return arrays


def test_entries_are_named_by_input_and_parameter():
    make, x = LAYERS["Linear"]
    text = str(check_layer(make(True), x))
    assert "b[" in text  # the planted bias bug is named by the parameter's name


def test_the_callers_layer_and_input_are_untouched():
    """Accumulated grads, running statistics, the layer's RNG, numpy's global RNG and x stay as they were."""
    lin = Linear(4, 3, np.random.default_rng(0))
    lin.W.grad[:] = 7.0  # stale accumulated gradient from an earlier backward
    x = _X.standard_normal((5, 4))
    x0, W0 = x.copy(), lin.W.data.copy()
    assert check_layer(lin, x).status == "pass"  # the stale 7.0 is reset before each backward
    assert np.all(lin.W.grad == 7.0) and np.array_equal(lin.W.data, W0) and np.array_equal(x, x0)

    bn = BatchNorm(3, np.random.default_rng(0))
    assert check_layer(bn, _X.standard_normal((6, 3))).status == "pass"
    assert np.array_equal(bn.running_mean, np.zeros(3)) and np.array_equal(bn.running_var, np.ones(3))

    drop = Dropout(0.4, global_rng=True)
    own = drop.rng.bit_generator.state
    np.random.seed(123)
    before = np.random.random_sample(3)
    np.random.seed(123)
    assert check_layer(drop, _X.standard_normal((4, 5))).status == "pass"
    assert np.array_equal(np.random.random_sample(3), before)  # the global stream goes on as if unchecked
    assert drop.rng.bit_generator.state == own


def test_stale_accumulated_grads_would_fail_without_the_reset():
    """The measured reason for the reset: a Linear whose grads accumulate across calls is
    wrong the second time its backward runs on the same object."""
    lin = Linear(4, 3, np.random.default_rng(0))
    x = _X.standard_normal((5, 4))
    dout = np.ones((5, 3))
    lin.forward(x)
    lin.backward(dout)
    first = lin.W.grad.copy()
    lin.forward(x)
    lin.backward(dout)
    assert np.allclose(lin.W.grad, 2 * first)  # what a naive adapter reusing the layer would read
    assert check_layer(lin, x).status == "pass"


def test_params_selects_and_wrt_input_false_holds_x():
    make, x = LAYERS["Linear"]
    result = check_layer(make(True), x, params=["W"], wrt_input=False)
    assert result.status == "pass"  # the bias bug is outside what was asked
    assert result.n_params == 12


def test_bad_layers_are_named():
    with pytest.raises(GradcheckInputError, match="backward"):
        check_layer(type("OnlyForward", (), {"forward": lambda self, x: x})(), np.ones(3))
    with pytest.raises(GradcheckInputError, match=r"params \['V'\] are not parameters.*found: W, b"):
        check_layer(Linear(2, 2, np.random.default_rng(0)), np.ones((1, 2)), params=["V"])
    with pytest.raises(GradcheckInputError, match="x must be a numpy array"):
        check_layer(MaxPool(), [[1.0]])

    class TupleBackward(Linear):
        def backward(self, dout):
            return super().backward(dout), None

    with pytest.raises(GradcheckInputError, match="backward returned a tuple"):
        check_layer(TupleBackward(2, 2, np.random.default_rng(0)), np.ones((1, 2)))


def test_fixture_method_records_and_fails(pytester):
    pytester.syspathinsert(str(pytester.path))
    (pytester.path / "numpy_layers.py").write_text(
        (__import__("pathlib").Path(__file__).parent / "numpy_layers.py").read_text())
    pytester.makepyfile(test_l="""
        import numpy as np
        from numpy_layers import BatchNorm

        def test_good(gradcheck):
            r = gradcheck.layer(BatchNorm(3, np.random.default_rng(0)), np.random.default_rng(1).standard_normal((6, 3)))
            assert r.status == "pass"
            assert [x.status for x in gradcheck.results] == ["pass"]

        def test_bad(gradcheck):
            gradcheck.layer(BatchNorm(3, np.random.default_rng(0), bug=True),
                            np.random.default_rng(1).standard_normal((6, 3)))
    """)
    result = pytester.runpytest("-p", "no:randomly", "--gradcheck-json=out.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*gradcheck 'BatchNorm' failed*"])
    import json

    checks = json.loads((pytester.path / "out.json").read_text())["checks"]
    assert sorted((c["label"], c["status"]) for c in checks) == [("BatchNorm", "fail"), ("BatchNorm", "pass")]
