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

Models are found in test modules (collected next to their tests), in
``conftest.py`` files, in the modules listed in the ini option
``gradcheck_models`` and in the modules named by entry points of the group
``pytest_gradcheck.models``.  Each model becomes a test item named
``gradcheck[NAME]`` under its file, e.g. ``tests/test_nets.py::gradcheck[mlp]``.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import os
import pkgutil
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from . import options as _options

#: attribute holding the ModelSpec list on a decorated function
MODEL_ATTR = "__gradcheck_models__"
#: entry point group: each entry point names a module holding models
ENTRY_POINT_GROUP = "pytest_gradcheck.models"
#: prefix of model item names: ``gradcheck[NAME]``
ITEM_PREFIX = "gradcheck"

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


def module_models(module) -> list[ModelSpec]:
    """The models defined in ``module`` (decorated first-come, then by convention),
    in definition order; names made unique with a ``-2``, ``-3`` suffix."""
    ns = vars(module)
    modname = getattr(module, "__name__", "")
    found: list[ModelSpec] = []
    for attr, obj in list(ns.items()):
        if not inspect.isroutine(obj):
            continue
        specs = getattr(obj, MODEL_ATTR, None)
        if isinstance(specs, list):
            found.extend(s for s in specs if isinstance(s, ModelSpec) and s.module == modname)
            continue
        if attr.startswith(("_", "test")) or attr.endswith(("_grad", "_params")) or attr.startswith("grad_"):
            continue
        if not inspect.isfunction(obj) or obj.__module__ != modname:
            continue
        grad = ns.get(f"{attr}_grad") or ns.get(f"grad_{attr}")
        params = ns.get(f"{attr}_params", _MISSING)
        if (callable(grad) or grad is True) and params is not _MISSING and not _is_fixture(grad) and not _is_fixture(params):
            found.append(ModelSpec(name=attr, fun=obj, grad=grad, params=params, module=modname, origin="convention"))
    found.extend(_autograd_functions(module))
    seen: dict = {}
    unique = []
    for spec in found:
        n = seen.get(spec.name, 0) + 1
        seen[spec.name] = n
        if n > 1:
            spec = ModelSpec(**{**spec.__dict__, "name": f"{spec.name}-{n}"})
        unique.append(spec)
    return unique


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
        for info in pkgutil.walk_packages(path, prefix=base + ".", onerror=lambda name: None):
            if fnmatch.fnmatchcase(info.name, pattern):
                names.append(info.name)
    if not names:
        raise ImportError(f"pattern {pattern!r} matches no importable module")
    return sorted(set(names))


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
    """External models join the run when a directory is collected (a bare ``pytest``,
    ``pytest tests/``), not when only files or node ids were asked for."""
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

def _is_plugin_file(filename) -> bool:
    """A file of this package (the checker's frames are noise in a user's traceback)."""
    here = Path(os.path.abspath(__file__)).parent
    return here in Path(os.path.abspath(str(filename))).parents


def _is_plugin_frame(entry) -> bool:
    """A frame of this package, of pytest or of pluggy: not the user's code."""
    import _pytest
    import pluggy

    path = Path(os.path.abspath(str(entry.path)))
    for package in (_pytest, pluggy):
        if Path(os.path.abspath(package.__file__)).parent in path.parents:
            return True
    return _is_plugin_file(path)


class GradcheckModelItem(pytest.Item):
    """A test item that checks one model's gradient with the resolved options."""

    def __init__(self, *, spec: ModelSpec, **kwargs):
        super().__init__(**kwargs)
        self.spec = spec
        self.extra_keyword_matches.update({ITEM_PREFIX, spec.name})

    def runtest(self) -> None:
        from .fixtures import execute, item_options

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
            frames = [f for f in traceback.extract_tb(cause.__traceback__) if not _is_plugin_file(f.filename)]
            return ("".join(traceback.format_list(frames)) + "".join(traceback.format_exception_only(cause))
                    + "\n" + str(exc))
        return self._repr_failure_py(excinfo, style="short")

    def _traceback_filter(self, excinfo):
        tb = excinfo.traceback
        kept = tb.filter(lambda entry: not _is_plugin_frame(entry))
        return kept or tb[-1:]

    def reportinfo(self):
        lineno = self.spec.lineno
        return self.path, (lineno - 1 if lineno else None), f"{ITEM_PREFIX}[{self.spec.name}]"


def model_items(parent, module) -> list[GradcheckModelItem]:
    """Items for the models of ``module`` under ``parent``."""
    return [
        GradcheckModelItem.from_parent(parent, name=f"{ITEM_PREFIX}[{spec.name}]", spec=spec)
        for spec in module_models(module)
    ]


class GradcheckModelFile(pytest.File):
    """The models of a module pytest does not collect as a test module
    (``gradcheck_models`` / entry point modules, ``conftest.py`` files)."""

    def __init__(self, *, module=None, modname: str = "", source: str = "", error: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.module = module
        self.modname = modname or getattr(module, "__name__", "")
        self.source = source
        self.error = error

    def collect(self):
        if self.error is not None:
            raise self.CollectError(
                f"gradcheck: cannot import model module {self.modname!r} ({self.source}):\n{self.error}"
            )
        return model_items(self, self.module)


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
