"""A crash inside the user's code is a GradcheckUserCodeError; bad input stays a plain GradcheckInputError.

Session records type the first as a ``user_code`` error and the second as ``input``
(session.classify_error); both are GradcheckInputError, so code catching bad input keeps working.
"""

from __future__ import annotations

import numpy as np
import pytest

from pytest_gradcheck import (GradcheckInputError, GradcheckUserCodeError, check_gradient, check_jacobian,
                              check_jvp, check_vjp)
from pytest_gradcheck.session import classify_error

X0 = np.array([0.3, -0.7, 1.1])


def _sq(x):
    return float(np.sum(x ** 2))


def _sq_grad(x):
    return 2 * x


class Boom(RuntimeError):
    pass


def _raises(exc_info, cause_type=Boom):
    err = exc_info.value
    assert isinstance(err, GradcheckUserCodeError) and isinstance(err, GradcheckInputError)
    assert isinstance(err.__cause__, cause_type), err.__cause__
    assert classify_error(err) == ("user_code", err.__cause__)


def test_fun_raising_at_params():
    def fun(x):
        raise Boom("no")
    with pytest.raises(GradcheckInputError) as info:
        check_gradient(fun, X0.copy(), _sq_grad)
    _raises(info)
    assert "fun raised Boom" in str(info.value)


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_fun_raising_at_a_perturbed_point_names_the_entry(mode):
    def fun(x):
        if x[1] != X0[1]:
            raise Boom("moved")
        return _sq(x)
    with pytest.raises(GradcheckInputError) as info:
        check_gradient(fun, X0.copy(), _sq_grad, mode=mode)
    _raises(info)


def test_grad_raising():
    def grad(x):
        raise Boom("grad")
    with pytest.raises(GradcheckInputError) as info:
        check_gradient(_sq, X0.copy(), grad)
    _raises(info)
    assert "grad raised Boom" in str(info.value)


def test_value_and_grad_fun_raising():
    def fun(x):
        raise Boom("both")
    with pytest.raises(GradcheckInputError) as info:
        check_gradient(fun, X0.copy(), True)
    _raises(info)


def test_vector_checks_raising_in_the_users_jac_vjp_jvp():
    def fun(x):
        return np.sin(x)

    def broken(*args):
        raise Boom("vector")
    for check, extra in ((check_jacobian, {}), (check_vjp, {}), (check_jvp, {})):
        with pytest.raises(GradcheckInputError) as info:
            check(fun, X0.copy(), broken, **extra)
        _raises(info)


@pytest.mark.parametrize("framework", ["torch", "jax.numpy"])
def test_autodiff_fun_raising(framework):
    lib = pytest.importorskip(framework)

    def fun(x):
        raise Boom(framework)
    with pytest.raises(GradcheckInputError) as info:
        check_gradient(fun, lib.asarray(X0), None)
    _raises(info)


def test_torch_autodiff_backward_raising():
    torch = pytest.importorskip("torch")

    class Bad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            raise Boom("backward")

    with pytest.raises(GradcheckInputError) as info:
        check_gradient(lambda x: Bad.apply(x).sum(), torch.tensor(X0), None)
    _raises(info)
    assert "backward" in str(info.value)


@pytest.mark.parametrize("grad,match", [
    (lambda x: np.ones(4), "grad"),                      # wrong shape
    (lambda x: {"w": 2 * x}, "grad"),                    # wrong structure
])
def test_bad_input_is_not_user_code(grad, match):
    with pytest.raises(GradcheckInputError, match=match) as info:
        check_gradient(_sq, X0.copy(), grad)
    assert not isinstance(info.value, GradcheckUserCodeError)
    assert classify_error(info.value)[0] == "input"


def test_bad_arguments_are_not_user_code():
    for kw in ({"method": "nope"}, {"eps": -1.0}, {"mode": "quick"}):
        with pytest.raises(GradcheckInputError) as info:
            check_gradient(_sq, X0.copy(), _sq_grad, **kw)
        assert not isinstance(info.value, GradcheckUserCodeError), kw


def test_a_leaf_that_cannot_be_read_is_bad_input_not_user_code():
    # trees._read chains the framework's own error (here torch's RuntimeError for a nested tensor)
    # to "cannot be read as numbers": the input is unusable, no user code ran
    torch = pytest.importorskip("torch")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's nested tensors are a prototype
        nested = torch.nested.nested_tensor([torch.zeros(2), torch.zeros(3)])
    with pytest.raises(GradcheckInputError, match="cannot be read as numbers") as info:
        check_gradient(lambda x: x.sum(), nested, None)
    assert not isinstance(info.value, GradcheckUserCodeError)
    assert info.value.__cause__ is not None  # the framework's error stays visible in the traceback
    assert classify_error(info.value) == ("input", info.value)


def test_only_the_user_code_wrapper_makes_an_error_user_code():
    def raised(exc, cause):
        try:
            raise exc from cause
        except Exception as e:  # noqa: BLE001 - the exception as a check would raise it
            return e
    boom = Boom("in fun")
    crash = raised(GradcheckUserCodeError("fun raised Boom"), boom)
    assert classify_error(crash) == ("user_code", boom)
    # a GradcheckInputError re-raised from the wrapper (vector.py re-words flatten's errors) is the crash
    assert classify_error(raised(GradcheckInputError("output leaf: ..."), crash)) == ("user_code", boom)
    # a GradcheckInputError from anything else is bad input, whatever it was raised from
    for cause in (TypeError("cannot copy out"), GradcheckInputError("params leaf 'w': ..."), None):
        err = raised(GradcheckInputError("params leaf 'w' cannot be read as numbers"), cause)
        assert classify_error(err) == ("input", err)
