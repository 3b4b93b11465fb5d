"""Self-contained HTML report: one file, no network, readable offline.

:func:`render` takes the dict of :func:`.json_report.build_report` and returns
one HTML document.  The report data sits once in
``<script type="application/json" id="gradcheck-data">`` (``</`` escaped as
``<\\/``); a little vanilla JavaScript renders the summary cards, a sentence
that reconciles its count of checks with pytest's count of tests, the sortable
and filterable table of checks, and - lazily, when a row is expanded - the
details of a check: the diagnosis first, then per-entry ratio histogram with
the tolerance line (SVG), heatmaps of 2-D leaves, the error-versus-step plot,
worst entries, regressions.  Failed and unfinished checks open with the page
(the worst ten).  Ratios are grey below 0.5, amber from 0.5, red from 1;
values a check did not measure show as a dash, never 0; every column and field
is explained on hover and in a legend.  A Content-Security-Policy forbids every
network request.

The page itself lives in ``assets/`` beside this module, as files an editor,
linter or browser devtool can work with: ``report.html`` (the skeleton, with
``__TITLE__``, ``__CSS__``, ``__NOSCRIPT__``, ``__JS__`` and ``__DATA__``
placeholders), ``report.css`` and ``report.js``.  They are package data
(``[tool.setuptools.package-data]`` in pyproject.toml), read once with
:mod:`importlib.resources` and inlined, so the report stays one file.  This
module only prepares the data and assembles the page.

Layer: plugin side, reports.  Imports json_report, files and safe_text of
reporting/ and the standard library; never the numerics or pytest.
"""

from __future__ import annotations

import functools
import html
import json
import os
from importlib import resources

from . import files as _files
from .json_report import json_safe
from .safe_text import rerun_command

#: the page's files, package data of ``pytest_gradcheck.reporting``
ASSETS = ("report.html", "report.css", "report.js")


@functools.lru_cache(maxsize=None)
def asset(name: str) -> str:
    """The text of one of :data:`ASSETS` (read once per process)."""
    if name not in ASSETS:
        raise ValueError(f"unknown report asset {name!r}; the assets are {', '.join(ASSETS)}")
    return (resources.files(__package__) / "assets" / name).read_text(encoding="utf-8")

#: significant digits of the numbers embedded in the page (the JSON report keeps full precision);
#: the two sides of an entry keep more, so that nearby values stay distinguishable
DIGITS = 6
SIDE_DIGITS = 10
_SIDE_KEYS = frozenset({"analytic", "numeric"})


def compact(obj, digits: int = DIGITS, packed: bool = False):
    """``json_safe(obj)`` with floats rounded to ``digits`` significant digits (``SIDE_DIGITS``
    for ``analytic``/``numeric``): a smaller page, same structure.  With ``packed``, lists are
    also :func:`pack`-ed in the same pass."""
    fmt_d, fmt_side = f".{digits}g", f".{SIDE_DIGITS}g"

    def walk(o, f):
        t = type(o)
        if t is float:
            return float(format(o, f)) if o - o == 0.0 else json_safe(o)
        if t is dict:
            return {(k if type(k) is str else str(k)): walk(v, fmt_side if k in _SIDE_KEYS else fmt_d)
                    for k, v in o.items()}
        if t is list:
            items = [walk(v, f) for v in o]
            return _pack_list(items) if packed else items
        if o is None or t is str or t is int or t is bool:
            return o
        return walk(json_safe(o), f)

    return walk(json_safe(obj) if type(obj) is not dict else obj, fmt_d)


_COLS, _ROWS = "__cols__", "__rows__"


def pack(obj):
    """Lists of 3 or more dicts with the same keys become ``{"__cols__": keys, "__rows__": [[...]]}``:
    the keys of the checks, worst entries and sweep points are then written once per list, not once
    per item (the page script and :func:`unpack` restore them)."""
    t = type(obj)
    if t is list:
        return _pack_list([pack(v) for v in obj])
    if t is dict:
        return {k: pack(v) for k, v in obj.items()}
    return obj


def _pack_list(items: list):
    if len(items) >= 3 and type(items[0]) is dict:
        keys = list(items[0])
        if all(type(v) is dict and list(v) == keys for v in items[1:]):
            return {_COLS: keys, _ROWS: [[v[k] for k in keys] for v in items]}
    return items


def unpack(obj):
    """The inverse of :func:`pack`."""
    if type(obj) is list:
        return [unpack(v) for v in obj]
    if type(obj) is dict:
        if _COLS in obj and _ROWS in obj and len(obj) == 2:
            keys = obj[_COLS]
            return [{k: unpack(v) for k, v in zip(keys, row)} for row in obj[_ROWS]]
        return {k: unpack(v) for k, v in obj.items()}
    return obj


def embed_json(data: dict) -> str:
    """JSON text safe inside a ``<script>`` element: ``</`` -> ``<\\/``, ``<!--`` escaped.

    The data is :func:`compact` (rounded) and :func:`pack` (columnar lists)."""
    text = json.dumps(compact(data, packed=True), separators=(",", ":"), allow_nan=False)
    return text.replace("</", "<\\/").replace("<!--", "<\\u0021--")


def with_rerun_commands(report: dict) -> dict:
    """``report`` with a ``rerun`` shell command on each check (the node id quoted for the
    shell, so that pasting it runs pytest and nothing else); the caller's dict is not modified."""
    checks = report.get("checks")
    if not checks:
        return report
    return dict(report, checks=[dict(c, rerun=rerun_command(c.get("run_id") or c.get("nodeid", ""))) for c in checks])


def render(report: dict, title: str = "pytest-gradcheck report") -> str:
    """One self-contained HTML document for ``report`` (see the module docstring)."""
    report = with_rerun_commands(report)
    s = report.get("summary") or {}
    c = s.get("counts") or {}
    noscript = (f"{s.get('n_tests', 0)} tests ran {s.get('total', 0)} checks: {c.get('fail', 0)} failed, "
                f"{c.get('error', 0)} errored, "
                + (f"{c['xfail']} xfailed, " if c.get("xfail") else "")
                + (f"{c['xpass']} xpassed, " if c.get("xpass") else "")
                + (f"{c['caught']} caught by their tests, " if c.get("caught") else "")
                + f"{c.get('inconclusive', 0)} inconclusive, {c.get('pass', 0)} passed"
                # a regression needs a baseline: no count without one
                + (f"; {s.get('n_regressions', 0)} regressions." if report.get("baseline") else "."))
    out = asset("report.html")
    # data last: it is the only part that could contain the other placeholders
    for key, value in (("__TITLE__", html.escape(title)), ("__CSS__", asset("report.css")),
                       ("__NOSCRIPT__", html.escape(noscript)), ("__JS__", asset("report.js"))):
        out = out.replace(key, value)
    return out.replace("__DATA__", embed_json(report), 1)


def write_html(path: str | os.PathLike, report: dict, title: str = "pytest-gradcheck report") -> str:
    """Write :func:`render` of ``report`` to ``path`` (parents created, atomic); return the path."""
    return _files.write_text_atomic(path, render(report, title))


def extract_data(html_text: str) -> dict:
    """The report dict embedded in an HTML report (for tests and tools)."""
    start_tag = '<script type="application/json" id="gradcheck-data">'
    i = html_text.index(start_tag) + len(start_tag)
    j = html_text.index("</script>", i)
    return unpack(json.loads(html_text[i:j]))
