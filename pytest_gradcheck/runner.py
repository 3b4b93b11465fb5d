"""Run one check for a test item: its resolved options, the call, the record.

The one path every check of the plugin takes, whether it comes from the
``gradcheck`` fixtures (fixtures.py) or from a discovered model's item
(discovery.py); both import this module and neither imports the other.

Layer: plugin side (one check of an item).  Imports options, session and errors
of this package (and the public checkers, lazily, through the package); never
fixtures, discovery, plugin or reporting.
"""

from __future__ import annotations

import inspect
import time

import pytest

from . import options as _options
from .reporting.safe_text import terminal_text
from .session import LABELS_KEY, check_failed, check_raised, finish_check, get_session, make_record, start_check

#: check kind -> name of the function in the ``pytest_gradcheck`` package
CHECK_FUNCTIONS = {**_options.CHECKERS, "function": "check_function", "layer": "check_layer"}

_OPTIONS_KEY = pytest.StashKey[dict]()


def check_function(kind: str):
    """The checker for ``kind`` from the public API (looked up at call time, so that
    monkeypatching ``pytest_gradcheck.check_vjp`` and the like reaches the fixture)."""
    import pytest_gradcheck  # lazy: numpy and the numerics load on first use

    if kind == "function":  # torch's custom autograd.Function checker (imports torch)
        from .torch_function import check_function as checker
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


#: a checker taking ``**kwargs`` -> the kind whose checker gets them (check_function
#: forwards its keywords to check_gradient)
_FORWARDS_TO = {"function": "gradient"}


def _takes(kind: str, func) -> set | None:
    """Keyword names ``func``, the checker of ``kind``, takes (following a ``**kwargs``
    forwarded to another checker); None when it takes any keyword."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return None
    names = {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    if any(p.kind is p.VAR_KEYWORD for p in params):
        target = _FORWARDS_TO.get(kind)
        if target is None:
            return None
        forwarded = _takes(target, check_function(target))
        return None if forwarded is None else names | forwarded
    return names


def _keyword_names(kind: str, func) -> list:
    """What the TypeError for an unknown keyword lists: the keywords the checker takes."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return []
    own = [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
           and not p.name.startswith("_")]
    return own + sorted((_takes(kind, func) or set()) - set(own) - {"fun", "params", "grad"})


def _call_kwargs(takes: set | None, resolved: dict, explicit: dict) -> dict:
    """Resolved options the checker takes (None = its own default is left alone),
    then the call's explicit options."""
    kwargs = {k: v for k, v in resolved.items() if v is not None and (takes is None or k in takes)}
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

    ``kwargs`` are the keywords of the call: options and checker keywords among
    them (validated) override the resolved ones; other keywords go to the checker
    as they are when its signature takes them.  A keyword the checker does not
    take is a TypeError listing those it takes.
    """
    __tracebackhide__ = True
    from .errors import GradcheckError

    where = "gradcheck() call" if kind == "gradient" else f"gradcheck.{kind}() call"
    explicit = {k: v for k, v in kwargs.items() if _options.is_option(k)}
    other = {k: v for k, v in kwargs.items() if k not in explicit}
    func = check_function(kind)
    takes = _takes(kind, func)
    # the options every checker takes, or keywords this one takes (n_probes to check_vjp is a mistake)
    unknown = [] if takes is None else [k for k in kwargs if k not in _options.OPTION_NAMES and k not in takes]
    if unknown:
        raise TypeError(
            f"{where}: unexpected keyword argument(s) {', '.join(sorted(unknown))}; "
            f"{CHECK_FUNCTIONS[kind]} takes: {', '.join(_keyword_names(kind, func))}, and label"
        )
    explicit = _options.validate_all(explicit, where)
    resolved = _options.merge(item_options(item), extra_options)
    label = _take_label(item, label)
    call_kwargs = _call_kwargs(takes, resolved, explicit)
    call_kwargs.update(other)  # keywords of this checker that are no setting (e.g. hvp=)
    start_check(item, label, kind)
    start = time.perf_counter()
    from .numerics.budget import progress_sink  # lazily: numerics load on a check's first use
    try:
        with progress_sink(_progress_writer(item.config)):
            result = func(*args, **call_kwargs)
    except BaseException as exc:  # user code crashed, bad input, pytest-timeout: an "error" record
        check_raised(item, exc)
        raise
    duration = time.perf_counter() - start
    record = make_record(item.nodeid, label, duration, result)
    finish_check(item, record)
    _user_properties(item, label, record["result"])
    if result.status == "fail":
        # labels and leaf names are user text: no escape sequence of theirs reaches the terminal
        error = GradcheckError(terminal_text(f"gradcheck {label!r} failed\n{result}", multiline=True), result=result)
        check_failed(item, record, error)  # a test that catches it turns the record into "caught"
        raise error
    return result


def _progress_writer(config):
    """Where a long check's progress lines go: pytest's terminal, past output capture, on the
    controller; nowhere on an xdist worker (its terminal is not the user's)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or hasattr(config, "workerinput"):
        return lambda text: None
    capman = config.pluginmanager.get_plugin("capturemanager")

    def write(text):
        if capman is None:
            reporter.write_line(text)
            return
        with capman.global_and_fixture_disabled():
            reporter.write_line(text)
    return write


def resolve_params(params, seed: int):
    """Call a parameter factory (with a Generator seeded from ``seed`` when it takes
    an argument); a pytree is returned as it is."""
    if not callable(params):
        return params
    try:
        sig = inspect.signature(params)
        required = [
            p for p in sig.parameters.values()
            if p.default is inspect.Parameter.empty
            and p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        required = []
    if required:
        import numpy as np

        return params(np.random.default_rng(seed))
    return params()
