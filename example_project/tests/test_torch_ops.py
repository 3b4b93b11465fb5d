"""The PyTorch custom Functions (skipped when torch is not installed)."""

import pytest

torch = pytest.importorskip("torch")

from pytest_gradcheck.torch_function import check_function  # noqa: E402

from tinynet.torch_ops import ScaledTanh, SoftplusFunction, scaled_tanh, softplus  # noqa: E402


@pytest.mark.parametrize("function", [SoftplusFunction, ScaledTanh], ids=lambda f: f.__name__)
def test_custom_function_backward(function):
    """check_function compares the Function's backward with finite differences."""
    result = check_function(function, *function.sample_inputs())
    result.raise_for_status()
    assert result.n_checked > 0


def test_softplus_matches_torch():
    x = torch.linspace(-30.0, 30.0, 61, dtype=torch.float64)
    assert torch.allclose(softplus(x, 2.0), torch.nn.functional.softplus(x, beta=2.0))


def test_loss_through_custom_functions(gradcheck):
    """grad=None: autograd supplies the analytic gradient, through our hand-written backwards."""
    gen = torch.Generator().manual_seed(0)
    params = {
        "w": torch.randn(4, 3, generator=gen, dtype=torch.float64),
        "a": torch.tensor(1.7, dtype=torch.float64),
        "b": torch.tensor(0.6, dtype=torch.float64),
    }
    x = torch.randn(5, 4, generator=gen, dtype=torch.float64)

    def loss(p):
        return softplus(scaled_tanh(x @ p["w"], p["a"], p["b"]), 1.5).pow(2).mean()

    gradcheck(loss, params)
