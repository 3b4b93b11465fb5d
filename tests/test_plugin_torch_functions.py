"""torch autograd.Function subclasses with sample inputs become model items, and
``gradcheck.function`` checks one inside a test (both recorded like any check)."""

import pytest

pytest.importorskip("torch")

FUNCS = '''
import torch

class Cube(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * FACTOR * x ** 2

    @staticmethod
    def sample_inputs():
        return (torch.linspace(-1.0, 1.0, 5, dtype=torch.float64).requires_grad_(),)


class NoInputs(torch.autograd.Function):   # no sample inputs: not a model
    @staticmethod
    def forward(ctx, x):
        return x

    @staticmethod
    def backward(ctx, g):
        return g
'''


@pytest.mark.parametrize("factor, outcome", [(3, "passed"), (2, "failed")])
def test_functions_with_sample_inputs_become_items(pytester, factor, outcome):
    pytester.makepyfile(test_ops=f"FACTOR = {factor}\n" + FUNCS)
    # a convention, like NAME/NAME_grad/NAME_params: it applies to the modules listed as holding models
    pytester.syspathinsert()
    pytester.makeini("[pytest]\ngradcheck_models = test_ops\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["test_ops.py::gradcheck[[]Cube[]]"])
    assert "NoInputs" not in result.stdout.str()
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
    result.assert_outcomes(**{outcome: 1})
    if outcome == "failed":
        result.stdout.fnmatch_lines(["*gradcheck 'Cube' failed*", "*vjp check FAILED*"])


def test_fixture_function_method(pytester):
    pytester.makepyfile(test_fixture="FACTOR = 3\n" + FUNCS.replace("class Cube", "class _Cube") + '''

def test_cube(gradcheck):
    result = gradcheck.function(_Cube)
    assert result.status == "pass" and result.kind == "vjp"
''')
    pytester.runpytest("-p", "no:cacheprovider", "-p", "no:hypothesispytest").assert_outcomes(passed=1)
