"""The fixtures ``gradcheck``, ``gradcheck_options`` and ``gradcheck_model``.

All three resolve options the same way (see :mod:`pytest_gradcheck.options`)
and every completed check becomes one check record on the test item.

Layer: plugin side (items, fixtures).  Imports options and runner of this package;
never discovery or plugin.
"""

from __future__ import annotations

import pytest

from . import options as _options
from .runner import execute, item_options, resolve_params


class GradcheckFixture:
    """What the ``gradcheck`` fixture returns: call it to check a gradient.

    ``gradcheck(fun, params, grad=None, *, label=None, **options)`` runs
    ``pytest_gradcheck.check_gradient`` with the test's resolved options (the
    keywords given here win; other keywords of check_gradient, such as
    ``vectorized``, pass through), records the result, fails the test with the
    readable report when the check fails, and returns the GradcheckResult.
    ``vjp``, ``jvp``, ``jacobian``, ``hessian`` and ``gradgrad`` do the same
    with ``check_vjp``, ``check_jvp``, ``check_jacobian``, ``check_hessian``
    and ``check_gradgrad`` (same options, recording and failing); ``layer`` with
    ``check_layer`` (a layer object's forward/backward).
    """

    def __init__(self, item):
        self._item = item
        self.results: list = []

    @property
    def options(self) -> dict:
        """The resolved options of this test (a copy)."""
        return item_options(self._item)

    def __call__(self, fun, params, grad=None, *, label=None, **options):
        __tracebackhide__ = True
        return self._run("gradient", (fun, params, grad), options, label)

    def vjp(self, *args, label=None, **kwargs):
        """Check a vector-Jacobian product with ``pytest_gradcheck.check_vjp``."""
        __tracebackhide__ = True
        return self._run("vjp", args, kwargs, label)

    def jvp(self, *args, label=None, **kwargs):
        """Check a Jacobian-vector product with ``pytest_gradcheck.check_jvp``."""
        __tracebackhide__ = True
        return self._run("jvp", args, kwargs, label)

    def jacobian(self, *args, label=None, **kwargs):
        """Check a full Jacobian with ``pytest_gradcheck.check_jacobian``."""
        __tracebackhide__ = True
        return self._run("jacobian", args, kwargs, label)

    def hessian(self, *args, label=None, **kwargs):
        """Check a Hessian with ``pytest_gradcheck.check_hessian``."""
        __tracebackhide__ = True
        return self._run("hessian", args, kwargs, label)

    def gradgrad(self, *args, label=None, **kwargs):
        """Check a gradient to second order with ``pytest_gradcheck.check_gradgrad``."""
        __tracebackhide__ = True
        return self._run("gradgrad", args, kwargs, label)

    def function(self, fn_cls, *inputs, label=None, **kwargs):
        """Check a custom ``torch.autograd.Function`` (backward against finite differences of
        forward) with ``pytest_gradcheck.torch_function.check_function``; without
        inputs, the Function's sample inputs are used."""
        __tracebackhide__ = True
        return self._run("function", (fn_cls, *inputs), kwargs, label or getattr(fn_cls, "__name__", None))

    def layer(self, layer, x, *, label=None, **kwargs):
        """Check a layer object's ``backward`` (input and parameter gradients) against
        finite differences of its ``forward`` with ``pytest_gradcheck.check_layer``;
        labelled with the layer's class name unless ``label=`` is given."""
        __tracebackhide__ = True
        return self._run("layer", (layer, x), kwargs, label or type(layer).__name__)

    def _run(self, kind, args, kwargs, label):
        __tracebackhide__ = True
        try:
            result = execute(self._item, kind, args, kwargs, label)
        except Exception as exc:
            failed = getattr(exc, "result", None)
            if failed is not None:
                self.results.append(failed)
            raise
        self.results.append(result)
        return result

    def __repr__(self) -> str:
        return f"<gradcheck fixture of {self._item.nodeid}>"


class ModelHandle:
    """What the ``gradcheck_model`` fixture gives: one discovered model.

    Attributes ``name``, ``fun``, ``grad``, ``params`` (resolved: a factory is
    called, with a ``numpy.random.Generator`` seeded from the ``seed`` option
    when it takes an argument), ``options`` (resolved for this test), and
    ``check(**options)`` which runs the gradient check like the ``gradcheck``
    fixture, labelled with the model's name.
    """

    def __init__(self, spec, fixture: GradcheckFixture):
        self.spec = spec
        self.name = spec.name
        self.fun = spec.fun
        self.grad = spec.grad
        self._fixture = fixture
        self._params = None

    @property
    def options(self) -> dict:
        return self._fixture.options

    @property
    def params(self):
        if self._params is None:
            self._params = resolve_params(self.spec.params, self.options["seed"])
        return self._params

    def check(self, *, label=None, **options):
        """Check the model's gradient; ``options`` override the resolved ones."""
        __tracebackhide__ = True
        if self.spec.origin == "autograd.Function":
            return self._fixture.function(self.fun, label=label or self.name, **options)
        if "seed" in options:
            params = resolve_params(self.spec.params, _options.validate("seed", options["seed"]))
        else:
            params = self.params
        return self._fixture(self.fun, params, self.grad, label=label or self.name, **options)

    def __repr__(self) -> str:
        return f"<gradcheck model {self.name!r} from {self.spec.module}>"


@pytest.fixture
def gradcheck(request) -> GradcheckFixture:
    """Check hand-written gradients against finite differences.

    ``gradcheck(fun, params, grad=None, *, label=None, **options)`` returns the
    GradcheckResult and fails the test with the readable report when the
    check fails.  Options (atol, rtol, eps, method, mode, seed) come from the
    ini file < command line < ``@pytest.mark.gradcheck`` markers < the call's
    keywords.  Several checks per test are fine: each gets a label ("check",
    "check-2", ... unless ``label=`` is given; labels must be unique).  Also
    ``gradcheck.vjp/.jvp/.jacobian/.hessian/.gradgrad(...)``, ``gradcheck.function(MyFunction)``
    (a torch autograd.Function), ``gradcheck.layer(layer, x)`` (forward/backward layer objects) and ``gradcheck.options``.
    """
    return GradcheckFixture(request.node)


@pytest.fixture
def gradcheck_options(request) -> dict:
    """The resolved gradcheck options of this test (a dict: atol, rtol, eps,
    method, mode, seed), as the ``gradcheck`` fixture would use them."""
    return item_options(request.node)


@pytest.fixture
def gradcheck_model(request, gradcheck) -> ModelHandle:
    """One discovered model (the test runs once per model; ids are model names).

    Gives ``.name, .fun, .grad, .params, .options`` and ``.check(**options)``.
    Models come from ``gradcheck_models`` ini modules and ``pytest_gradcheck.models``
    entry points (decorated or by naming convention), and from the ``@model``
    registrations of the conftest files above the test and of the test's own module.
    """
    spec = getattr(request, "param", None)
    if spec is None:  # pragma: no cover - pytest_generate_tests always parametrizes
        pytest.skip("no gradcheck models discovered")
    return ModelHandle(spec, gradcheck)
