"""The fixtures ``gradcheck``, ``gradcheck_options`` and ``gradcheck_model``.

All three resolve options the same way (see :mod:`pytest_gradcheck.options`)
and every completed check becomes one check record on the test item.
"""

from __future__ import annotations

import inspect
import time

import pytest

from . import options as _options
from .session import LABELS_KEY, check_raised, finish_check, get_session, make_record, start_check

#: check kind -> name of the function in the ``pytest_gradcheck`` package
CHECK_FUNCTIONS = {
    "gradient": "check_gradient",
    "vjp": "check_vjp",
    "jvp": "check_jvp",
    "jacobian": "check_jacobian",
    "hessian": "check_hessian",
    "gradgrad": "check_gradgrad",
    "function": "check_function",
}

_OPTIONS_KEY = pytest.StashKey[dict]()


def check_function(kind: str):
    """The checker for ``kind`` from the public API (looked up at call time, so that
    monkeypatching ``pytest_gradcheck.check_vjp`` and the like reaches the fixture)."""
    import pytest_gradcheck  # lazy: numpy and the numerics load on first use

    if kind == "function":  # torch's custom autograd.Function checker (imports torch)
        from .frameworks.torch_function import check_function as checker
        return checker
    return getattr(pytest_gradcheck, CHECK_FUNCTIONS[kind])


def _model_spec_of(item):
    """The ModelSpec an item checks (a model item, or a test using gradcheck_model)."""
    spec = getattr(item, "spec", None)
    if spec is not None:
        return spec
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        return callspec.params.get("gradcheck_model")
    return None


def item_options(item) -> dict:
    """The resolved options of ``item`` (cached): built-in < ini < command line <
    markers < the model's own options, then ``pytest_gradcheck_options``.

    Raises :class:`~pytest_gradcheck.options.OptionError` for bad markers or bad
    values set by the hook.
    """
    cached = item.stash.get(_OPTIONS_KEY, None)
    if cached is not None:
        return dict(cached)
    config = item.config
    spec = _model_spec_of(item)
    opts = _options.merge(
        get_session(config).base_options,
        _options.marker_options(item),
        getattr(spec, "options", None),
    )
    config.hook.pytest_gradcheck_options(config=config, item=item, options=opts)
    opts = _options.validate_all(opts, "options set by pytest_gradcheck_options")
    item.stash[_OPTIONS_KEY] = opts
    return dict(opts)


def _take_label(item, label) -> str:
    used = item.stash.setdefault(LABELS_KEY, set())
    if label is None:
        label, n = "check", 1
        while label in used:
            n += 1
            label = f"check-{n}"
    else:
        if not isinstance(label, str) or not label:
            raise TypeError(f"gradcheck label must be a non-empty string, got {label!r}")
        if label in used:
            raise ValueError(
                f"gradcheck label {label!r} is already used in {item.nodeid}; "
                f"give each check of a test its own label="
            )
    used.add(label)
    return label


def _keyword_names(func) -> list:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return []
    return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _unaccepted(func, kwargs: dict) -> list:
    """Keywords ``func`` does not take (none when it takes ``**kwargs``)."""
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return []
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return []
    return [k for k in kwargs if k not in params]


def _call_kwargs(func, resolved: dict, explicit: dict) -> dict:
    """Resolved options the checker accepts (None = its own default is left alone),
    then the call's explicit options."""
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins
        params = {}
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in resolved.items() if v is not None and (var_kw or k in params)}
    kwargs.update(explicit)
    return kwargs


def _user_properties(item, label: str, result: dict) -> None:
    """A few small scalars for JUnit XML (which stringifies every property)."""
    ratio = result.get("max_ratio")
    item.user_properties.append((f"gradcheck[{label}].status", result.get("status")))
    item.user_properties.append((f"gradcheck[{label}].max_ratio", "" if ratio is None else f"{ratio:.3g}"))
    item.user_properties.append((f"gradcheck[{label}].n_evals", int(result.get("n_evals") or 0)))


def execute(item, kind: str, args: tuple, kwargs: dict, label=None, *, extra_options=None):
    """Run one check for ``item``, record it, and fail the test when it failed.

    ``kwargs`` are the keywords of the call: option names among them override
    the resolved options (validated); other keywords go to the checker as they
    are (e.g. ``vectorized=True``) when its signature takes them, else TypeError.
    """
    __tracebackhide__ = True
    from .errors import GradcheckError

    where = "gradcheck() call" if kind == "gradient" else f"gradcheck.{kind}() call"
    explicit = {k: v for k, v in kwargs.items() if k in _options.OPTION_NAMES}
    other = {k: v for k, v in kwargs.items() if k not in _options.OPTION_NAMES}
    func = check_function(kind)
    unknown = _unaccepted(func, other)
    if unknown:
        raise TypeError(
            f"{where}: unexpected keyword argument(s) {', '.join(sorted(unknown))}; "
            f"{CHECK_FUNCTIONS[kind]} takes: {', '.join(_keyword_names(func))}, and label"
        )
    explicit = _options.validate_all(explicit, where)
    resolved = _options.merge(item_options(item), extra_options)
    label = _take_label(item, label)
    call_kwargs = _call_kwargs(func, resolved, explicit)
    call_kwargs.update(other)
    start_check(item, label, kind)
    start = time.perf_counter()
    try:
        result = func(*args, **call_kwargs)
    except BaseException as exc:  # user code crashed, bad input, pytest-timeout: an "error" record
        check_raised(item, exc)
        raise
    duration = time.perf_counter() - start
    record = make_record(item.nodeid, label, duration, result)
    finish_check(item, record)
    _user_properties(item, label, record["result"])
    if result.status == "fail":
        raise GradcheckError(f"gradcheck {label!r} failed\n{result}", result=result)
    return result


class GradcheckFixture:
    """What the ``gradcheck`` fixture returns: call it to check a gradient.

    ``gradcheck(fun, params, grad=None, *, label=None, **options)`` runs
    ``pytest_gradcheck.check_gradient`` with the test's resolved options (the
    keywords given here win; other keywords of check_gradient, such as
    ``vectorized``, pass through), records the result, fails the test with the
    readable report when the check fails, and returns the GradcheckResult.
    ``vjp``, ``jvp``, ``jacobian``, ``hessian`` and ``gradgrad`` do the same
    with ``check_vjp``, ``check_jvp``, ``check_jacobian``, ``check_hessian``
    and ``check_gradgrad`` (same options, recording and failing).
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
        forward) with ``pytest_gradcheck.frameworks.torch_function.check_function``; without
        inputs, the Function's sample inputs are used."""
        __tracebackhide__ = True
        return self._run("function", (fn_cls, *inputs), kwargs, label or getattr(fn_cls, "__name__", None))

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
            from .discovery import resolve_params

            self._params = resolve_params(self.spec.params, self.options["seed"])
        return self._params

    def check(self, *, label=None, **options):
        """Check the model's gradient; ``options`` override the resolved ones."""
        __tracebackhide__ = True
        from .discovery import resolve_params

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
    (a torch autograd.Function) and ``gradcheck.options``.
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
    Models come from ``gradcheck_models`` ini modules, ``pytest_gradcheck.models``
    entry points, conftest files above the test, and the test's own module.
    """
    spec = getattr(request, "param", None)
    if spec is None:  # pragma: no cover - pytest_generate_tests always parametrizes
        pytest.skip("no gradcheck models discovered")
    return ModelHandle(spec, gradcheck)
