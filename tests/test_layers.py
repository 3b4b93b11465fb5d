"""The package's layers: imports point one way, down; no import circles; no private names
across modules; no module over MAX_LINES lines.

Reads the source of every module of pytest_gradcheck/ (ast, nothing is imported): every
import statement counts, those inside functions too (a lazy import is still a dependency),
except those under ``if TYPE_CHECKING:`` (annotations only).  A new module must be added to
LAYERS, so that its place in the house is decided, not drifted into.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pytest_gradcheck

PACKAGE = "pytest_gradcheck"
ROOT = Path(pytest_gradcheck.__file__).parent
#: one job per module: past this many lines a module is doing two
MAX_LINES = 700

#: bottom-up; a module may import only modules of strictly lower layers ("" is the package
#: itself, "numerics" its subpackage's __init__)
LAYERS = [
    ("errors", ["errors"]),
    ("pytree: the structure of a tree, no framework", ["pytree"]),
    ("frameworks: the adapter interface", ["frameworks.base", "frameworks.hookspecs"]),
    ("frameworks: which adapter owns a value", ["frameworks.registry"]),
    ("frameworks: outputs read through the adapters", ["frameworks.outputs"]),
    ("frameworks: the adapters", ["frameworks.torch_adapter", "frameworks.jax_adapter", "frameworks.tf_adapter",
                                     "frameworks"]),
    ("numerics: foundations", ["numerics", "numerics.stencils", "numerics.result", "numerics.verdict",
                               "numerics.causes", "numerics.advice",
                               "numerics.steps", "numerics.trees", "numerics.evaluate",
                               "numerics.reach", "numerics.budget"]),
    ("numerics: noise", ["numerics.noise"]),
    ("numerics: the prepared problem", ["numerics.problem"]),
    ("numerics: bug shapes across leaves (read by the diagnosis)", ["numerics.shapes"]),
    ("numerics: refinement, diagnosis", ["numerics.refine", "numerics.diagnose"]),
    ("numerics: several kinks at once (judges refinement's kink failures)", ["numerics.kinks"]),
    ("numerics: entry-wise and directional estimates, result assembly", ["numerics.entries", "numerics.directions",
                                                                         "numerics.assemble"]),
    ("numerics: full and fast mode", ["numerics.full", "numerics.fast"]),
    ("numerics: public checks", ["numerics.check", "numerics.vector"]),
    ("numerics: second order", ["numerics.second_order"]),
    ("public API: the package's lazy names", [""]),
    ("public API: torch, Keras and layer-object helpers (call check_gradient)", ["torch_function", "keras_model",
                                                                                 "layer_check"]),
    ("public API: check_module for either framework's model", ["modules"]),
    ("reporting: safe file writes, safe text", ["reporting.files", "reporting.safe_text"]),
    ("plugin side: options, hook specs, report data", ["options", "hooks", "reporting", "reporting.json_report",
                                                       "reporting.histogram"]),
    ("plugin side: session, reports, which frames are ours", ["session", "reporting.baseline",
                                                              "reporting.html_report", "reporting.terminal",
                                                              "tracebacks"]),
    ("plugin side: one check of an item", ["runner"]),
    ("plugin side: items, fixtures, pytest report hooks", ["discovery", "fixtures", "reporting.pytest_reports"]),
    ("reporting: combining the reports of several runs (CI shards)", ["reporting.combine"]),
    ("plugin, the command line", ["plugin", "__main__"]),
]

#: reporting/ reads JSON-safe dicts (GradcheckResult.to_dict()), never the numerics: its modules
#: import only each other and errors, at the top or inside a function (pytest_reports gets the
#: session's records handed down by the plugin, it does not import the session)
REPORTING_MAY_IMPORT = {"errors"}
REPORTING_EXTRA: dict = {}


#: only these modules import torch or jax at import time (the rest import them lazily, if at all)
FRAMEWORK_IMPORTERS = {"frameworks.torch_adapter", "frameworks.jax_adapter", "frameworks.tf_adapter",
                       "torch_function", "keras_model"}
#: the numerics core, the adapters and the public API know nothing of pytest: every layer below this module's
NO_PYTEST_BELOW = "options"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}
RANK = {m: k for k, (_, mods) in enumerate(LAYERS) for m in mods}
LAYER_NAME = {m: name for name, mods in LAYERS for m in mods}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node, top=True):
    """(node, at module top level) for every node, skipping ``if TYPE_CHECKING:`` bodies."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from _walk_one(other, top)
            continue
        yield from _walk_one(child, top)


def _walk_one(node, top):
    yield node, top
    inner = top and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
    yield from _walk(node, inner)


def _package_of(module: str) -> list[str]:
    """The package a module's relative imports start from, as parts of the dotted name."""
    parts = module.split(".") if module else []
    return parts if MODULES[module].name == "__init__.py" else parts[:-1]


class Import:
    """One imported name: ``target`` the package module it comes from ("" the package), ``name``
    the name taken from it (None: the module itself, bound as ``bound``), ``external`` the
    top-level name of a module outside the package (target and name then unused)."""

    def __init__(self, target, name, line, top, external=None, bound=None):
        self.target, self.name, self.line, self.top, self.external, self.bound = \
            target, name, line, top, external, bound


def _imports(module: str) -> list[Import]:
    """Imports of ``module``: targets inside the package as module names ("" the package),
    others with ``external`` set to their top-level name."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    out = []
    for node, top in _walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == PACKAGE:
                    out.append(Import(".".join(parts[1:]), None, node.lineno, top, bound=alias.asname))
                else:
                    out.append(Import("", None, node.lineno, top, external=parts[0]))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(module)
                base = base[:len(base) - (node.level - 1)]
                parts = base + (node.module.split(".") if node.module else [])
            else:
                parts = (node.module or "").split(".")
                if parts[0] != PACKAGE:
                    out.append(Import("", None, node.lineno, top, external=parts[0]))
                    continue
                parts = parts[1:]
            target = ".".join(parts)
            for alias in node.names:
                sub = ".".join(parts + [alias.name])
                if sub in MODULES:  # from . import check: the submodule itself
                    out.append(Import(sub, None, node.lineno, top, bound=alias.asname or alias.name))
                else:
                    out.append(Import(target, alias.name, node.lineno, top))
    return out


IMPORTS = {m: _imports(m) for m in MODULES}
EDGES = {m: {i.target for i in imps if i.external is None and i.target != m} for m, imps in IMPORTS.items()}


def _where(module: str, imp: Import) -> str:
    return f"{MODULES[module].relative_to(ROOT.parent)}:{imp.line}"


def test_every_module_has_a_layer():
    assert sorted(set(MODULES) - set(RANK)) == [], "new modules: give them a layer in LAYERS"
    assert sorted(set(RANK) - set(MODULES)) == [], "LAYERS names modules that no longer exist"


def test_imports_point_down():
    bad = []
    for m, imps in IMPORTS.items():
        for imp in imps:
            if imp.external is not None or imp.target == m:
                continue
            if imp.target not in RANK or RANK[imp.target] >= RANK[m]:
                bad.append(f"{_where(m, imp)}: {m or PACKAGE} ({LAYER_NAME[m]}) imports "
                           f"{imp.target or PACKAGE} ({LAYER_NAME.get(imp.target, '?')})")
    assert not bad, "\n".join(bad)


def test_reporting_reads_only_reporting_and_errors():
    bad = []
    for m, imps in IMPORTS.items():
        if not (m == "reporting" or m.startswith("reporting.")):
            continue
        allowed = REPORTING_MAY_IMPORT | REPORTING_EXTRA.get(m, set())
        for imp in imps:
            t = imp.target
            if imp.external is None and not (t == "reporting" or t.startswith("reporting.") or t in allowed):
                bad.append(f"{_where(m, imp)}: {m} imports {t or PACKAGE}")
    assert not bad, "\n".join(bad)


def test_no_import_circles():
    """Tarjan's strongly connected components of the import graph: each must be one module."""
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in EDGES[v]:
            if w not in MODULES:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in MODULES:
        if v not in index:
            visit(v)
    assert not circles, "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


def test_no_private_names_across_modules():
    """``from X import _name`` and ``alias._name`` on an imported module of the package."""
    bad = []
    for m in MODULES:
        for imp in IMPORTS[m]:
            if imp.external is None and imp.name and imp.name.startswith("_") and not imp.name.startswith("__"):
                bad.append(f"{_where(m, imp)}: from {imp.target or PACKAGE} import {imp.name}")
        aliases = {i.bound for i in IMPORTS[m] if i.external is None and i.bound}
        for node, _ in _walk(ast.parse(MODULES[m].read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases \
                    and node.attr.startswith("_") and not node.attr.startswith("__"):
                bad.append(f"{MODULES[m].relative_to(ROOT.parent)}:{node.lineno}: {node.value.id}.{node.attr}")
    assert not bad, "\n".join(bad)


def test_no_module_over_max_lines():
    sizes = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in MODULES.items()}
    assert {m: n for m, n in sizes.items() if n > MAX_LINES} == {}


def test_frameworks_imported_lazily_and_core_without_pytest():
    bad = []
    no_pytest = {m for m, r in RANK.items() if r < RANK[NO_PYTEST_BELOW]}
    for m, imps in IMPORTS.items():
        for imp in imps:
            if imp.external in ("torch", "jax", "jaxlib", "tensorflow", "keras") and imp.top and m not in FRAMEWORK_IMPORTERS:
                bad.append(f"{_where(m, imp)}: {m or PACKAGE} imports {imp.external} at import time")
            if imp.external in ("pytest", "_pytest") and m in no_pytest:
                bad.append(f"{_where(m, imp)}: {m or PACKAGE} ({LAYER_NAME[m]}) imports {imp.external}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_docstring_names_its_layer(module):
    source = MODULES[module].read_text(encoding="utf-8")
    if not source.strip():
        return  # an empty package marker (numerics/, reporting/), or pending
    doc = ast.get_docstring(ast.parse(source)) or ""
    assert "Layer:" in doc, f"{MODULES[module]}: say which layer it is and what it may import"


def test_imports_inside_functions_are_counted():
    """A lazy import is still a dependency: plugin.py imports pytest_reports inside pytest_configure,
    and that import must be seen (an upward import hidden in a function must not slip through)."""
    inner = [i for i in IMPORTS["plugin"] if i.target == "reporting.pytest_reports" and not i.top]
    assert inner, "the function-level import in plugin.pytest_configure was not seen"


#: the public API, written out by hand (not read from _PUBLIC): name -> (defining module,
#: kind).  A wrong entry in the package's lazy table (a missing module, the wrong module, a
#: name that module does not define) fails test_every_public_name_resolves_to_its_object.
PUBLIC_API = {
    "check_gradient": ("pytest_gradcheck.numerics.check", "function"),
    "check_vjp": ("pytest_gradcheck.numerics.vector", "function"),
    "check_jvp": ("pytest_gradcheck.numerics.vector", "function"),
    "check_jacobian": ("pytest_gradcheck.numerics.vector", "function"),
    "check_hessian": ("pytest_gradcheck.numerics.second_order", "function"),
    "check_gradgrad": ("pytest_gradcheck.numerics.second_order", "function"),
    "check_layer": ("pytest_gradcheck.layer_check", "function"),
    "GradcheckResult": ("pytest_gradcheck.numerics.result", "class"),
    "GradcheckError": ("pytest_gradcheck.errors", "exception"),
    "GradcheckInputError": ("pytest_gradcheck.errors", "exception"),
    "GradcheckUserCodeError": ("pytest_gradcheck.errors", "exception"),
    "model": ("pytest_gradcheck.discovery", "function"),
    "check_function": ("pytest_gradcheck.torch_function", "function"),
    "check_module": ("pytest_gradcheck.modules", "function"),
    "register_adapter": ("pytest_gradcheck.frameworks.registry", "function"),
    "Adapter": ("pytest_gradcheck.frameworks.base", "class"),
}


#: defining modules that need torch to import; their names are tested where torch is installed
TORCH_ONLY = {"pytest_gradcheck.torch_function"}


def test_all_lists_exactly_the_public_api():
    assert pytest_gradcheck.__all__ == sorted(PUBLIC_API)


@pytest.mark.parametrize("name", sorted(PUBLIC_API))
def test_every_public_name_resolves_to_its_object(name):
    import importlib
    import inspect

    module_name, kind = PUBLIC_API[name]
    if module_name in TORCH_ONLY:  # its module imports torch at the top (check_module does not)
        pytest.importorskip("torch")
    obj = getattr(pytest_gradcheck, name)  # through the package's lazy __getattr__
    # the very object its defining module holds, defined there (not a re-export or a stub)
    assert obj is getattr(importlib.import_module(module_name), name)
    assert obj.__module__ == module_name
    assert obj.__name__ == name
    if kind == "function":
        assert inspect.isfunction(obj)
    elif kind == "exception":
        assert inspect.isclass(obj) and issubclass(obj, AssertionError if name == "GradcheckError"
                                                   else Exception)
    else:
        assert inspect.isclass(obj) and not issubclass(obj, BaseException)
    # `from pytest_gradcheck import name` takes the same path
    namespace = {}
    exec(f"from pytest_gradcheck import {name}", namespace)
    assert namespace[name] is obj


def test_dir_lists_the_public_names_and_the_version():
    listed = dir(pytest_gradcheck)
    assert listed == sorted(listed)
    assert set(PUBLIC_API) <= set(listed)
    assert "__version__" in listed


def test_an_unknown_name_is_an_attribute_error_naming_it():
    with pytest.raises(AttributeError, match="has no attribute 'check_gradients'"):
        pytest_gradcheck.check_gradients
    assert not hasattr(pytest_gradcheck, "_PUBLIC_missing")
    with pytest.raises(ImportError, match="check_gradients"):
        exec("from pytest_gradcheck import check_gradients", {})
