"""Models: the ``@model`` decorator, the naming convention, where models come from,
and the test items they become.

A *model* is a scalar function with its hand-written gradient and parameters:

* decorated: ``@pytest_gradcheck.model(params=..., grad=..., name=None, **options)``;
* by convention: a module-level function ``NAME`` with siblings ``NAME_grad``
  (or ``grad_NAME``) and ``NAME_params``, none of them starting with ``_``
  and ``NAME`` not starting with ``test``;
* a ``torch.autograd.Function`` subclass with sample inputs (a
  ``sample_inputs()`` static/class method or a module-level ``<Name>_inputs``),
  in a module that imports torch itself: checked with ``check_function``.

``params`` is a pytree, a zero-argument factory, or a factory taking a
``numpy.random.Generator`` seeded from the ``seed`` option.

Where models come from, and why there: ``@model`` registrations count wherever
they are (test modules, ``conftest.py`` files, any module imported for them),
because the decorator is an explicit request.  The naming conventions
(``NAME``/``NAME_grad``/``NAME_params`` and autograd.Function subclasses with
sample inputs) apply only to the modules a user named as holding models: the
ini option ``gradcheck_models`` and entry points of the group
``pytest_gradcheck.models``.  A test module with a helper ``loss`` next to
``loss_grad`` and ``loss_params`` thus never gets a surprise item (list the
test module in ``gradcheck_models`` to opt it in).  In a listed module a name
that half fits the convention (``NAME_grad`` not a function, ``NAME_params``
missing, a factory pytest cannot call) is skipped with one
:class:`GradcheckDiscoveryWarning` naming the module and the name; discovery
never raises into pytest.

Each model becomes a test item ``gradcheck[NAME]`` under its file, e.g.
``tests/test_nets.py::gradcheck[mlp]``.  Which arguments bring the listed
modules' items into a run: see :func:`wants_external`.

Layer: plugin side (items).  Imports options, runner and tracebacks of this package; never fixtures or plugin.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import os
import pkgutil
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from . import options as _options
from .runner import execute, item_options, resolve_params
from .tracebacks import is_own_file, is_own_or_pytest_frame

#: attribute holding the ModelSpec list on a decorated function
MODEL_ATTR = "__gradcheck_models__"
#: entry point group: each entry point names a module holding models
ENTRY_POINT_GROUP = "pytest_gradcheck.models"
#: prefix of model item names: ``gradcheck[NAME]``
ITEM_PREFIX = "gradcheck"
#: the ``source`` of a GradcheckModelFile made for a conftest.py file
CONFTEST_SOURCE = "conftest.py"

_MISSING = object()


@dataclass
class ModelSpec:
    """One model: what to check and with which options."""

    name: str
    fun: Callable
    grad: Callable | None
    params: Any
    options: dict = field(default_factory=dict)
    #: name of the module the model is defined in
    module: str = ""
    #: "decorator", "convention" or "autograd.Function"
    origin: str = "decorator"

    @property
    def lineno(self) -> int | None:
        code = getattr(self.fun, "__code__", None)
        return code.co_firstlineno if code is not None else None


def model(_fun=None, /, *, params=_MISSING, grad=None, name=None, **options):
    """Register a function as a model whose gradient is checked automatically.

    ``@model(params=..., grad=..., name=None, **options)``: ``params`` is a
    pytree or a factory (no argument, or one ``numpy.random.Generator``);
    ``grad`` the hand-written gradient; ``name`` the item name (default: the
    function's name); ``options`` any of atol, rtol, eps, method, mode, seed.
    The function is returned unchanged.  Stack decorators to register the same
    function several times (with different names).
    """
    if _fun is not None or params is _MISSING:
        raise TypeError("use @pytest_gradcheck.model(params=..., grad=..., name=None, **options); params is required")
    where = "@pytest_gradcheck.model"
    if options:
        try:
            options = _options.validate_all(options, where)
        except _options.OptionError as exc:
            raise TypeError(str(exc)) from None

    if name is not None and (not isinstance(name, str) or not name.strip()
                             or any(bad in name for bad in ("::", "[", "]", "\n", "/"))):
        raise ValueError(f"{where}: name={name!r} must be a non-empty string without '::', '[', ']', '/' "
                         f"or newlines (it becomes the test id gradcheck[NAME])")

    def register(fun):
        if not callable(fun):
            raise TypeError(f"{where} decorates a function, got {fun!r}")
        spec = ModelSpec(
            name=name or fun.__name__, fun=fun, grad=grad, params=params, options=dict(options),
            module=getattr(fun, "__module__", "") or "", origin="decorator",
        )
        specs = fun.__dict__.setdefault(MODEL_ATTR, []) if hasattr(fun, "__dict__") else None
        if specs is None:
            raise TypeError(f"{where} cannot register {fun!r}")
        if any(s.name == spec.name for s in specs):
            raise ValueError(f"{where}: {fun.__name__} is already registered as a model named {spec.name!r}")
        specs.append(spec)
        return fun

    return register


class GradcheckDiscoveryWarning(pytest.PytestWarning):
    """A module-level name looked like a model but does not fit the convention, so it
    was skipped (e.g. ``loss_grad`` is an array, or ``loss_params`` is missing).

    Silence it with ``filterwarnings = ignore::pytest_gradcheck.discovery.GradcheckDiscoveryWarning``.
    """


@dataclass
class SkippedCandidate:
    """A name that looked like a model and was not one: why, and where it is defined."""

    module: str
    name: str
    reason: str
    filename: str | None = None
    lineno: int | None = None

    def message(self) -> str:
        return f"gradcheck: skipped {self.module}.{self.name}, not a model: {self.reason}"


class _NotAModel(Exception):
    """A convention candidate that does not fit (the message says why)."""


def module_models(module, *, conventions: bool, skipped: list | None = None) -> list[ModelSpec]:
    """The models defined in ``module`` (decorated first-come, then by convention),
    in definition order; names made unique with a ``-2``, ``-3`` suffix.

    ``conventions``: whether the naming conventions apply (``NAME`` with ``NAME_grad``
    and ``NAME_params``; torch ``autograd.Function`` subclasses with sample inputs).
    They apply only to the modules a user named as holding models (the ini option
    ``gradcheck_models``, entry points): in a test module or a conftest file only
    ``@model`` registrations become items, so that a helper named ``loss`` next
    to ``loss_grad`` and ``loss_params`` never turns into a surprise test.

    Never raises: a candidate that does not fit is left out and described in
    ``skipped`` (a list of :class:`SkippedCandidate`), if given.
    """
    ns = vars(module)
    modname = getattr(module, "__name__", "") or ""
    found: list[ModelSpec] = []

    def skip(name, reason, obj=None):
        if skipped is not None:
            code = getattr(obj, "__code__", None)
            skipped.append(SkippedCandidate(modname, name, reason, getattr(module, "__file__", None),
                                            code.co_firstlineno if code is not None else None))

    for attr, obj in list(ns.items()):
        try:
            if inspect.isclass(obj):  # @model on a staticmethod of a (test) class defined here
                found.extend(_static_models(obj, modname))
                continue
            found.extend(_candidate(attr, obj, ns, modname, conventions))
        except _NotAModel as exc:
            skip(attr, str(exc), obj)
        except Exception as exc:  # noqa: BLE001 - discovery never raises into pytest
            skip(attr, f"inspecting it raised {type(exc).__name__}: {exc}", obj)
    if conventions:
        try:
            found.extend(_autograd_functions(module))
        except Exception as exc:  # noqa: BLE001 - discovery never raises into pytest
            skip("<autograd.Function subclasses>", f"looking for them raised {type(exc).__name__}: {exc}")
    seen: dict = {}
    unique = []
    for spec in found:
        n = seen.get(spec.name, 0) + 1
        seen[spec.name] = n
        if n > 1:
            spec = ModelSpec(**{**spec.__dict__, "name": f"{spec.name}-{n}"})
        unique.append(spec)
    return unique


def _static_models(cls, modname: str) -> list[ModelSpec]:
    """@model registrations on the staticmethods of ``cls`` (a class defined in ``modname``),
    whichever order ``@staticmethod`` and ``@model`` are stacked in."""
    if getattr(cls, "__module__", None) != modname:
        return []
    found = []
    for value in vars(cls).values():
        if isinstance(value, staticmethod):
            for obj in (value, value.__func__):
                specs = getattr(obj, MODEL_ATTR, None)
                if isinstance(specs, list):
                    found.extend(s for s in specs if isinstance(s, ModelSpec) and s.module == modname)
                    break
    return found


def _is_callable_value(obj) -> bool:
    """A callable that is no function, class or module: functools.partial, a callable object,
    a jax.jit-compiled function.  Such a NAME with NAME_grad beside it is a model too."""
    return (callable(obj) and not inspect.isroutine(obj) and not inspect.isclass(obj)
            and not inspect.ismodule(obj))


def _candidate(attr: str, obj, ns: dict, modname: str, conventions: bool) -> list[ModelSpec]:
    """The models module attribute ``attr`` declares; _NotAModel when it half fits the convention."""
    if inspect.isroutine(obj):
        specs = getattr(obj, MODEL_ATTR, None)
        if isinstance(specs, list):
            return [s for s in specs if isinstance(s, ModelSpec) and s.module == modname]
    elif not (conventions and _is_callable_value(obj)):
        return []
    if not conventions:
        return []
    if attr.startswith(("_", "test")) or attr.endswith(("_grad", "_params")) or attr.startswith("grad_"):
        return []
    if inspect.isroutine(obj) and getattr(obj, "__module__", None) != modname:
        return []  # an imported function (np.sum) is no model of this module; a jax.jit of one defined
        #            here keeps the module of the function it wraps
    # ``is _MISSING`` tests throughout: a sibling may be an array, whose truth value raises
    grad_name = f"{attr}_grad"
    grad = ns.get(grad_name, _MISSING)
    if grad is _MISSING:
        grad_name = f"grad_{attr}"
        grad = ns.get(grad_name, _MISSING)
    params_name = f"{attr}_params"
    params = ns.get(params_name, _MISSING)
    if grad is _MISSING:
        return []  # no gradient: a plain function (a lone NAME_params is e.g. an init helper)
    if _is_fixture(grad) or (params is not _MISSING and _is_fixture(params)):
        return []  # pytest fixtures named like siblings are never a model's parts
    if not callable(grad) and grad is not True:  # True: NAME returns (value, gradient)
        raise _NotAModel(f"{grad_name} is {_kind(grad)}, not a function (or True for a (value, grad) NAME)")
    if params is _MISSING:
        raise _NotAModel(f"{grad_name} is defined but {params_name} is missing")
    if callable(params):
        problem = _factory_problem(params)
        if problem:
            raise _NotAModel(f"{params_name} is a factory {problem}")
    return [ModelSpec(name=attr, fun=obj, grad=grad, params=params, module=modname, origin="convention")]


def _kind(obj) -> str:
    """``a ndarray of shape (3,)``, ``a float``: what a sibling is, for a warning."""
    shape = getattr(obj, "shape", None)
    name = type(obj).__name__
    return f"a {name} of shape {tuple(shape)}" if isinstance(shape, tuple) else f"a {name}"


def _factory_problem(factory) -> str | None:
    """Why ``factory`` cannot be called with nothing or with one Generator (None: it can)."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return None  # builtins and the like: trust them, a wrong call fails the item
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = [p for p in sig.parameters.values() if p.default is inspect.Parameter.empty]
    if any(p.kind is inspect.Parameter.KEYWORD_ONLY for p in required):
        return f"with the signature {sig}: a keyword-only argument without a default cannot be given"
    if sum(p.kind in positional for p in required) > 1:
        return f"with the signature {sig}: it must take no argument or one numpy.random.Generator"
    return None


def discover(config, module, *, conventions: bool) -> list[ModelSpec]:
    """:func:`module_models`, with one :class:`GradcheckDiscoveryWarning` per skipped
    candidate and run (a module is searched again for each test using ``gradcheck_model``)."""
    skipped: list = []
    specs = module_models(module, conventions=conventions, skipped=skipped)
    if skipped:
        warned = config.stash.setdefault(_WARNED_KEY, set())
        for cand in skipped:
            key = (cand.module, cand.name)
            if key in warned:
                continue
            warned.add(key)
            # attributed to the user's file and line, not to this module
            warnings.warn_explicit(GradcheckDiscoveryWarning(cand.message()), GradcheckDiscoveryWarning,
                                   filename=cand.filename or cand.module, lineno=cand.lineno or 1)
    return specs


_WARNED_KEY = pytest.StashKey[set]()


def _autograd_functions(module) -> list[ModelSpec]:
    """torch.autograd.Function subclasses defined in ``module`` that provide sample inputs
    (a ``sample_inputs()`` static/class method or a module-level ``<Name>_inputs``).
    Only when the module itself imported torch: discovery never imports it."""
    import sys

    if "torch" not in sys.modules or not any(getattr(v, "__name__", None) == "torch" for v in vars(module).values()):
        return []
    from .torch_function import find_functions

    modname = getattr(module, "__name__", "")
    return [ModelSpec(name=cls.__name__, fun=cls, grad=None, params=None, module=modname, origin="autograd.Function")
            for cls in find_functions(module)
            if getattr(cls, "__module__", "") == modname and not cls.__name__.startswith("_")]


def _is_fixture(obj) -> bool:
    """A pytest fixture function (never a model's gradient or parameters)."""
    return (hasattr(obj, "_fixture_function_marker") or hasattr(obj, "_pytestfixturefunction")
            or type(obj).__name__ == "FixtureFunctionDefinition")


# -- external model modules ---------------------------------------------------

@dataclass
class ExternalModule:
    """A module named by the ini option or an entry point: imported, or its error."""

    modname: str
    source: str
    module: Any = None
    error: str | None = None

    @property
    def path(self) -> Path | None:
        file = getattr(self.module, "__file__", None)
        return Path(os.path.abspath(file)) if file else None


def _format_import_error(exc: BaseException) -> str:
    """The exception and the frames of the user's code (not importlib's, not ours)."""
    tbe = traceback.TracebackException.from_exception(exc)
    here = os.path.abspath(__file__)
    frames = [f for f in tbe.stack
              if not f.filename.startswith("<frozen") and os.path.abspath(f.filename) != here
              and os.sep + "importlib" + os.sep not in f.filename and os.sep + "pkgutil.py" not in f.filename]
    text = "".join(traceback.StackSummary.from_list(frames).format()) if frames else ""
    return (text + "".join(tbe.format_exception_only())).rstrip()


def _expand_glob(pattern: str) -> list[str]:
    """Importable module names matching ``pattern`` (fnmatch; ``*`` also crosses dots)."""
    parts = pattern.split(".")
    fixed = []
    for part in parts:
        if any(c in part for c in "*?["):
            break
        fixed.append(part)
    base = ".".join(fixed)
    if not base:
        raise ImportError(f"pattern {pattern!r} must start with a package name")
    package = importlib.import_module(base)
    names = [base] if fnmatch.fnmatchcase(base, pattern) else []
    path = getattr(package, "__path__", None)
    if path is not None:
        names += [name for name in _walk_modules(list(path), base) if fnmatch.fnmatchcase(name, pattern)]
    if not names:
        raise ImportError(f"pattern {pattern!r} matches no importable module")
    return sorted(set(names))


def _walk_modules(paths: list, prefix: str, depth: int = 0) -> list[str]:
    """Module names under the package folders ``paths``, namespace subpackages (folders without
    ``__init__.py``, which pkgutil.walk_packages does not enter) included; nothing is imported."""
    names: list[str] = []
    if depth > 32:  # a folder cycle through symlinks
        return names
    seen = set()
    for info in pkgutil.iter_modules(paths):
        seen.add(info.name)
        names.append(f"{prefix}.{info.name}")
        if info.ispkg:
            sub = [os.path.join(p, info.name) for p in paths if os.path.isdir(os.path.join(p, info.name))]
            names += _walk_modules(sub, f"{prefix}.{info.name}", depth + 1)
    for p in paths:  # namespace subpackages: folders of modules without an __init__.py
        try:
            entries = sorted(os.listdir(p))
        except OSError:
            continue
        for entry in entries:
            folder = os.path.join(p, entry)
            if (entry.isidentifier() and entry not in seen and entry != "__pycache__"
                    and os.path.isdir(folder) and not os.path.exists(os.path.join(folder, "__init__.py"))):
                seen.add(entry)
                found = _walk_modules([folder], f"{prefix}.{entry}", depth + 1)
                if found:
                    names.append(f"{prefix}.{entry}")
                    names += found
    return names


def load_external(config) -> list[ExternalModule]:
    """Import the modules of the ini option ``gradcheck_models`` and of the entry
    point group ``pytest_gradcheck.models``; import errors are kept, not raised."""
    wanted: list[tuple[str, str]] = []
    errors: list[ExternalModule] = []
    for line in config.getini("gradcheck_models") or []:
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        source = "ini option gradcheck_models"
        if any(c in pattern for c in "*?["):
            try:
                wanted.extend((name, f"{source}, pattern {pattern!r}") for name in _expand_glob(pattern))
            except Exception as exc:  # noqa: BLE001 - reported as a collection error
                errors.append(ExternalModule(pattern, source, error=_format_import_error(exc)))
        else:
            wanted.append((pattern, source))
    try:
        from importlib.metadata import entry_points

        eps = entry_points(group=ENTRY_POINT_GROUP)
    except Exception:  # noqa: BLE001  # pragma: no cover - broken metadata
        eps = []
    for ep in eps:
        dist = getattr(getattr(ep, "dist", None), "name", None)
        wanted.append((ep.value.split(":")[0].strip(), f"entry point {ep.name!r}" + (f" of {dist}" if dist else "")))
    out: list[ExternalModule] = list(errors)
    seen = set()
    for modname, source in wanted:
        if modname in seen:
            continue
        seen.add(modname)
        try:
            module = importlib.import_module(modname)
        except BaseException as exc:  # noqa: BLE001 - SystemExit in a module is an error too
            if isinstance(exc, KeyboardInterrupt):
                raise
            out.append(ExternalModule(modname, source, error=_format_import_error(exc)))
        else:
            out.append(ExternalModule(modname, source, module=module))
    return out


def conftest_modules_above(config, path: Path) -> list:
    """conftest modules registered with pytest whose directory contains ``path``, outermost first."""
    found = []
    for plugin in config.pluginmanager.get_plugins():
        file = getattr(plugin, "__file__", None)
        if not file or os.path.basename(file) != "conftest.py" or not hasattr(plugin, "__name__"):
            continue
        folder = Path(os.path.abspath(file)).parent
        if path == folder or folder in path.parents:
            found.append((len(folder.parts), str(folder), plugin))
    return [p for _, _, p in sorted(found, key=lambda t: (t[0], t[1]))]


def conftest_module_at(config, path: Path):
    """The registered conftest module loaded from ``path``, or None."""
    for plugin in config.pluginmanager.get_plugins():
        file = getattr(plugin, "__file__", None)
        if file and os.path.basename(file) == "conftest.py" and Path(os.path.abspath(file)) == path:
            return plugin
    return None


def wants_external(config) -> bool:
    """Whether the items of the listed model modules join this run.

    As pytest selects tests: without path arguments (pytest runs ``testpaths`` or
    the current directory: the whole suite) and with a directory argument, they
    join; when only files or node ids are named, only those run (a listed module's
    own file or node id selects its items, through normal collection).
    """
    sources = getattr(pytest.Config, "ArgsSource", None)  # pytest >= 7.2
    if sources is not None and getattr(config, "args_source", sources.ARGS) is not sources.ARGS:
        return True  # no arguments given: the suite pytest runs by default, even if testpaths names files
    base = Path(config.invocation_params.dir)
    for arg in config.args:
        if "::" in str(arg):
            continue
        p = Path(str(arg))
        if not p.is_absolute():
            p = base / p
        if p.is_dir():
            return True
    return False


# -- collection nodes ---------------------------------------------------------

class GradcheckModelItem(pytest.Item):
    """A test item that checks one model's gradient with the resolved options."""

    def __init__(self, *, spec: ModelSpec, **kwargs):
        super().__init__(**kwargs)
        self.spec = spec
        self.extra_keyword_matches.update({ITEM_PREFIX, spec.name})

    def runtest(self) -> None:
        if self.spec.origin == "autograd.Function":
            execute(self, "function", (self.spec.fun,), {}, label=self.spec.name)
            return
        opts = item_options(self)
        params = resolve_params(self.spec.params, opts["seed"])
        execute(self, "gradient", (self.spec.fun, params, self.spec.grad), {}, label=self.spec.name)

    def repr_failure(self, excinfo, style=None):
        from .errors import GradcheckError

        exc = excinfo.value
        if isinstance(exc, (GradcheckError, _options.OptionError)):
            cause = exc.__cause__
            if cause is None:
                return str(exc)
            # the user's function raised inside the check: show where, in the user's code
            frames = [f for f in traceback.extract_tb(cause.__traceback__) if not is_own_file(f.filename)]
            return ("".join(traceback.format_list(frames)) + "".join(traceback.format_exception_only(cause))
                    + "\n" + str(exc))
        return self._repr_failure_py(excinfo, style="short")

    def _traceback_filter(self, excinfo):
        tb = excinfo.traceback
        kept = tb.filter(lambda entry: not is_own_or_pytest_frame(entry))
        return kept or tb[-1:]

    def reportinfo(self):
        lineno = self.spec.lineno
        return self.path, (lineno - 1 if lineno else None), f"{ITEM_PREFIX}[{self.spec.name}]"


def model_items(parent, module, *, conventions: bool) -> list[GradcheckModelItem]:
    """Items for the models of ``module`` under ``parent`` (see :func:`module_models`)."""
    return [
        GradcheckModelItem.from_parent(parent, name=f"{ITEM_PREFIX}[{spec.name}]", spec=spec,
                                       nodeid=_item_id(parent, spec.name))
        for spec in discover(parent.config, module, conventions=conventions)
    ]


def _item_id(parent, model_name: str):
    """The structured id of ``gradcheck[NAME]`` as pytest >= 9.2 builds a parametrized
    function's: name ``gradcheck``, params ``NAME``.  It must equal the id pytest parses
    from the string ``...::gradcheck[NAME]`` (the ``--lf`` cache, ``-k``/node-id
    selection), which the default ``parent.id.child("gradcheck[NAME]")`` does not.
    None on older pytest, whose string node ids need no help."""
    parent_id = getattr(parent, "id", None)
    if parent_id is None or not hasattr(parent_id, "with_params"):
        return None
    return parent_id.child(ITEM_PREFIX).with_params(model_name)


class GradcheckModelFile(pytest.File):
    """The models of a module pytest does not collect as a test module
    (``gradcheck_models`` / entry point modules, ``conftest.py`` files)."""

    def __init__(self, *, module=None, modname: str = "", source: str = "", error: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.module = module
        self.modname = modname or getattr(module, "__name__", "")
        self.source = source
        self.error = error
        # a module's ``pytestmark`` applies to its items however the file was collected: as a test
        # module (named on the command line) pytest adds it, here (plain ``pytest``) this does
        # (pytest reads no pytestmark of a conftest.py: neither does this)
        marks = getattr(module, "pytestmark", None) if module is not None and source != CONFTEST_SOURCE else None
        for mark in marks if isinstance(marks, (list, tuple)) else ([marks] if marks is not None else []):
            mark = getattr(mark, "mark", mark)  # a MarkDecorator holds its Mark
            if isinstance(mark, pytest.Mark):
                self.own_markers.append(mark)

    def collect(self):
        if self.error is not None:
            raise self.CollectError(
                f"gradcheck: cannot import model module {self.modname!r} ({self.source}):\n{self.error}"
            )
        # a conftest file holds fixtures and hooks: only its @model registrations are models
        return model_items(self, self.module, conventions=self.source != CONFTEST_SOURCE)


def external_collector(session, ext: ExternalModule) -> GradcheckModelFile:
    """A collector for an external module, attached to the session."""
    rootpath = session.config.rootpath
    path = ext.path
    if path is not None:
        try:
            nodeid = path.relative_to(rootpath).as_posix()
        except ValueError:
            nodeid = ext.modname
        name = nodeid  # attached to the session: the full relative path reads better than the file name
    else:
        path, nodeid, name = rootpath, ext.modname, ext.modname
    return GradcheckModelFile.from_parent(
        session, path=path, name=name, nodeid=nodeid,
        module=ext.module, modname=ext.modname, source=ext.source, error=ext.error,
    )
