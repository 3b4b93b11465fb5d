"""Options of a check: names, built-in defaults, validation, and the one precedence chain.

Precedence, lowest first::

    built-in default < ini (gradcheck_*) < command line (--gradcheck-*)
      < module marker < class marker < function marker
      < the model's own options (@model(..., atol=...))  < keywords of the call

The numbers ``atol``, ``rtol`` and ``eps`` default to ``None``: the tolerance and
the step then come from the error model of the finite-difference estimate.

Layer: plugin side (options).  Imports nothing of this package at import time; reads
the public checkers' signatures lazily (:func:`checker_keywords`).
"""

from __future__ import annotations

import argparse
import math
import numbers

import pytest

#: finite-difference schemes understood by ``check_gradient``
METHODS = ("forward", "backward", "central", "central4", "complex")
#: check modes: every entry, random probes, or chosen by size
MODES = ("full", "fast", "auto")
#: the one place the built-in defaults live
DEFAULT_METHOD = "central"
DEFAULT_MODE = "auto"
DEFAULT_SEED = 0
#: the options a check takes, in display order
OPTION_NAMES = ("atol", "rtol", "eps", "method", "mode", "seed")
#: what --gradcheck-summary accepts
SUMMARY_CHOICES = ("all", "failures", "none")
DEFAULT_SUMMARY = "all"
#: marker signature, shown by ``pytest --markers``
MARKER_HELP = (
    f"gradcheck(atol=None, rtol=None, eps=None, method={DEFAULT_METHOD!r}, mode={DEFAULT_MODE!r}, "
    f"seed={DEFAULT_SEED}): "
    "options for the gradient checks of this test, class or module (the gradcheck and "
    "gradcheck_model fixtures); keyword arguments only. None means the error-model rule. "
    "Also the settings some checkers take: n_probes, n_cotangents, n_tangents, vectorized, "
    "batch_memory (each check gets those its checker takes)."
)

_RESET_WORDS = ("", "none", "auto", "model")

#: check kind -> name of its checker in the ``pytest_gradcheck`` package (the fixture's
#: methods; "function", torch's autograd.Function checker, forwards to check_vjp's keywords)
CHECKERS = {
    "gradient": "check_gradient",
    "vjp": "check_vjp",
    "jvp": "check_jvp",
    "jacobian": "check_jacobian",
    "hessian": "check_hessian",
    "gradgrad": "check_gradgrad",
}
#: keyword-only parameters of the checkers that are inputs of one call, not settings
_CALL_INPUTS = frozenset({"hvp"})


def builtin_defaults() -> dict:
    """A fresh dict of the built-in defaults."""
    return {
        "atol": None,
        "rtol": None,
        "eps": None,
        "method": DEFAULT_METHOD,
        "mode": DEFAULT_MODE,
        "seed": DEFAULT_SEED,
    }


class OptionError(ValueError):
    """An option has an unknown name or an unusable value."""


def _number(name: str, value, *, strictly_positive: bool):
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in _RESET_WORDS:
            return None
        try:
            x = float(text)
        except ValueError:
            raise OptionError(f"{name}={value!r} is not a number") from None
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        x = float(value)
    else:
        raise OptionError(f"{name}={value!r} must be a number or None")
    if not math.isfinite(x):
        raise OptionError(f"{name}={value!r} must be finite")
    if strictly_positive and x <= 0:
        raise OptionError(f"{name}={value!r} must be > 0")
    if x < 0:
        raise OptionError(f"{name}={value!r} must be >= 0")
    return x


def _choice(name: str, value, choices):
    if isinstance(value, str) and value.strip().lower() in choices:
        return value.strip().lower()
    raise OptionError(f"{name}={value!r} must be one of: {', '.join(choices)}")


def _seed(name: str, value):
    if isinstance(value, bool):
        raise OptionError(f"{name}={value!r} must be a non-negative integer")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise OptionError(f"{name}={value!r} must be a non-negative integer") from None
    if not isinstance(value, numbers.Integral) or int(value) < 0:
        raise OptionError(f"{name}={value!r} must be a non-negative integer")
    return int(value)


def _count(name: str, value):
    """A positive integer (a number of probes, directions, bytes); None keeps the checker's default."""
    if value is None or (isinstance(value, str) and value.strip().lower() in _RESET_WORDS):
        return None
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise OptionError(f"{name}={value!r} must be a positive integer") from None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise OptionError(f"{name}={value!r} must be a positive integer")
    return int(value)


def _seconds(name: str, value):
    """A positive number of seconds, inf for no limit; None keeps the checker's default."""
    if isinstance(value, str) and value.strip().lower() in ("inf", "infinity"):
        return math.inf
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and value == math.inf:
        return math.inf
    return _number(name, value, strictly_positive=True)


def _flag(name: str, value):
    """True, False, or None (the checker decides)."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    if text in _RESET_WORDS:
        return None
    raise OptionError(f"{name}={value!r} must be True, False or None")


_VALIDATORS = {
    "atol": lambda v: _number("atol", v, strictly_positive=False),
    "rtol": lambda v: _number("rtol", v, strictly_positive=False),
    "eps": lambda v: _number("eps", v, strictly_positive=True),
    "method": lambda v: _choice("method", v, METHODS),
    "mode": lambda v: _choice("mode", v, MODES),
    "seed": lambda v: _seed("seed", v),
    # keywords of some checkers only (see checker_keywords); a test that checks the
    # table against the signatures asks for a validator when a checker gains one
    "n_probes": lambda v: _count("n_probes", v),
    "n_cotangents": lambda v: _count("n_cotangents", v),
    "n_tangents": lambda v: _count("n_tangents", v),
    "batch_memory": lambda v: _count("batch_memory", v),
    "vectorized": lambda v: _flag("vectorized", v),
    "time_limit": lambda v: _seconds("time_limit", v),
}

_checker_keywords: dict | None = None


def checker_keywords() -> dict:
    """Settings that only some checkers take, read from their signatures: name -> the
    checkers that take it (e.g. ``n_probes`` -> check_gradient, check_hessian).

    Their keyword-only parameters, less the six options every checker takes, private
    names and the inputs of one call (``hvp``).  A marker, ``@model`` options or the
    ``pytest_gradcheck_options`` hook may set them; each check gets those its checker
    takes.  Imports the checkers (numpy) on first use, never at plugin load.
    """
    global _checker_keywords
    if _checker_keywords is None:
        import inspect

        import pytest_gradcheck

        found: dict = {}
        for checker in CHECKERS.values():
            for p in inspect.signature(getattr(pytest_gradcheck, checker)).parameters.values():
                if (p.kind is p.KEYWORD_ONLY and not p.name.startswith("_")
                        and p.name not in OPTION_NAMES and p.name not in _CALL_INPUTS):
                    found.setdefault(p.name, []).append(checker)
        _checker_keywords = {name: tuple(checkers) for name, checkers in found.items()}
    return dict(_checker_keywords)


def accepted_names() -> str:
    """What the error for an unknown name lists: every option, then each checker keyword
    with the checkers that take it."""
    extra = [f"{name} ({', '.join(checkers)})" for name, checkers in sorted(checker_keywords().items())]
    return ", ".join(OPTION_NAMES) + "; and for some checkers: " + ", ".join(extra)


def is_option(name: str) -> bool:
    """One of the six options or a checker keyword (a setting a test may give)."""
    return name in OPTION_NAMES or name in checker_keywords()


def validate(name: str, value):
    """The normalised value of option ``name``; OptionError when unusable."""
    if not is_option(name):
        raise OptionError(f"unknown option {name!r}; valid options: {accepted_names()}")
    validator = _VALIDATORS.get(name)
    # a checker keyword without a validator yet goes as it is: the checker validates it
    return value if validator is None else validator(value)


def validate_all(mapping: dict, where: str) -> dict:
    """Validate every option of ``mapping``; the message of an error starts with ``where``."""
    out = {}
    for name, value in mapping.items():
        try:
            out[name] = validate(name, value)
        except OptionError as exc:
            raise OptionError(f"{where}: {exc}") from None
    return out


# -- command line and ini ---------------------------------------------------

def _cli_type(name: str):
    def parse(text: str):
        try:
            value = validate(name, text)
        except OptionError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        # None would read as "not given"; a reset to the error-model rule is "none".
        return "none" if value is None else value

    parse.__name__ = name  # argparse names the type in some messages
    return parse


def _summary_type(text: str) -> str:
    if text.strip().lower() in SUMMARY_CHOICES:
        return text.strip().lower()
    raise argparse.ArgumentTypeError(f"{text!r} must be one of: {', '.join(SUMMARY_CHOICES)}")


_HELP = {
    # name: (metavar, what it is, its default when neither ini nor command line set it)
    "atol": ("X", "absolute tolerance of every check", "the error-model rule; 'none' resets"),
    "rtol": ("X", "relative tolerance of every check", "the error-model rule; 'none' resets"),
    "eps": ("H", "finite-difference step", "chosen per entry by the error model; 'none' resets"),
    "method": ("NAME", f"finite-difference scheme, {'|'.join(METHODS)}", DEFAULT_METHOD),
    "mode": ("MODE", f"check mode, {'|'.join(MODES)}", DEFAULT_MODE),
    "seed": ("N", "seed of random probes and of parameter factories", str(DEFAULT_SEED)),
}


def add_options(parser) -> None:
    """Register the ``gradcheck`` option group and the matching ini keys."""
    group = parser.getgroup("gradcheck", "gradient checks (pytest-gradcheck)")
    for name in OPTION_NAMES:
        metavar, what, default = _HELP[name]
        group.addoption(
            f"--gradcheck-{name}", dest=f"gradcheck_{name}", metavar=metavar,
            type=_cli_type(name), default=None,
            help=f"{what} (default: ini gradcheck_{name}, else {default})",
        )
        parser.addini(f"gradcheck_{name}", default="",
                      help=f"{what} (default {default}); --gradcheck-{name} overrides")
    group.addoption(
        "--gradcheck-summary", dest="gradcheck_summary", metavar="WHICH", type=_summary_type,
        default=None,
        help=f"terminal summary of gradient checks, {'|'.join(SUMMARY_CHOICES)} "
             f"(default: ini gradcheck_summary, else {DEFAULT_SUMMARY})",
    )
    parser.addini("gradcheck_summary", default="",
                  help=f"terminal summary, {'|'.join(SUMMARY_CHOICES)} (default {DEFAULT_SUMMARY}); "
                       "--gradcheck-summary overrides")
    parser.addini("gradcheck_models", type="linelist", default=[],
                  help="modules (import paths; fnmatch globs like mypkg.models.* allowed) whose "
                       "models become gradcheck test items")


def resolve_base(config) -> dict:
    """Built-in defaults < ini < command line; a bad ini value is a pytest.UsageError."""
    opts = builtin_defaults()
    for name in OPTION_NAMES:
        raw = config.getini(f"gradcheck_{name}")
        if raw is not None and not (isinstance(raw, str) and raw.strip() == ""):
            try:
                opts[name] = validate(name, raw)
            except OptionError as exc:
                raise pytest.UsageError(f"ini option gradcheck_{name}: {exc}") from None
        cli = config.getoption(f"gradcheck_{name}", None)
        if cli is not None:
            opts[name] = None if cli == "none" else cli
    return opts


def resolve_summary(config) -> str:
    """all | failures | none, from the command line, else the ini, else the default."""
    cli = config.getoption("gradcheck_summary", None)
    if cli:
        return cli
    raw = (config.getini("gradcheck_summary") or "").strip().lower()
    if not raw:
        return DEFAULT_SUMMARY
    if raw not in SUMMARY_CHOICES:
        raise pytest.UsageError(f"ini option gradcheck_summary: {raw!r} must be one of: {', '.join(SUMMARY_CHOICES)}")
    return raw


def _marker_level(node) -> str:
    if isinstance(node, pytest.Module):
        return "module"
    if isinstance(node, pytest.Class):
        return "class"
    if isinstance(node, pytest.Item):
        return "function"
    return type(node).__name__.lower()


def marker_options(item) -> dict:
    """The options of every ``gradcheck`` marker on ``item``, farthest first, closest winning.

    Raises OptionError naming the marker, its level and the bad argument.
    """
    layers = []
    for node, mark in item.iter_markers_with_node("gradcheck"):
        where = f"@pytest.mark.gradcheck on {_marker_level(node)} {node.name!r}"
        if mark.args:
            raise OptionError(
                f"{where}: takes keyword arguments only, got positional argument(s) "
                f"{', '.join(repr(a) for a in mark.args)}; valid options: {accepted_names()}"
            )
        layers.append(validate_all(mark.kwargs, where))
    merged: dict = {}
    for layer in reversed(layers):  # iter_markers_with_node yields the closest first
        merged.update(layer)
    return merged


def merge(*layers: dict) -> dict:
    """Later layers win; each layer is a (partial) dict of validated options."""
    out: dict = {}
    for layer in layers:
        if layer:
            out.update(layer)
    return out


def describe(options: dict) -> str:
    """One line, naming the tolerance rule that is in force:
    ``method=central mode=auto seed=0 eps=auto tolerance=error model`` or, once atol or rtol
    is set (the other is then 0: see verdict.Judge), ``... tolerance=atol 0 + rtol 0.0001*|numeric|``."""
    parts = [f"{name}={options.get(name)}" for name in ("method", "mode", "seed")]
    parts.append(f"eps={'auto' if options.get('eps') is None else options.get('eps')}")
    atol, rtol = options.get("atol"), options.get("rtol")
    if atol is None and rtol is None:
        parts.append("tolerance=error model (no atol/rtol set)")
    else:
        parts.append(f"tolerance=atol {atol or 0} + rtol {rtol or 0}*|numeric|")
    return " ".join(parts)
