"""Versioned JSON report of a run's gradient checks.

Pure functions (no pytest import): they read check records, the JSON-safe
dicts the plugin collects, one per check::

    {"nodeid": str, "label": str, "duration_s": float,
     "result": GradcheckResult.to_dict()}

or, for a check that did not finish (the user's code raised, the input was
unusable, pytest-timeout interrupted it), ``"result": {"status": "error",
"passed": false, "kind"}`` and ``"error": {"type", "exception", "message"}``
(``type``: "user_code" | "input" | "interrupted" | "internal"; ``message``:
one line).  A record of a test marked ``xfail`` that pytest counted as xfailed
(or xpassed) has ``"status": "xfail"`` (or ``"xpass"``) and ``xfail_reason``;
its ``result`` keeps the check's own verdict.

and produce one dict (``REPORT_VERSION``) that :func:`write_json` stores and
:mod:`.html_report` embeds.  Report layout::

    {"version": 1, "tool": "pytest-gradcheck", "generated": ISO-8601 UTC,
     "context": {...},                 # platform, python, numpy, time, ...
     "summary": {"total", "counts": {status: n},  # every status of STATUSES, 0 included
                 "n_evals", "duration_s",
                 "n_tests", "n_tests_stopped", "n_regressions", "n_improvements", "n_new",
                 "pytest": {outcome: n} or null,  # pytest's own count of tests, see below
                 "histogram": {...}},  # all checks' per-entry ratios added up
     "checks": [entry, ...],           # one per record, in record order
     "regressions": [change, ...],     # from baseline.compare, kind "regression"
     "improvements": [...], "new": [...], "changed": [...],
     "baseline": {"path", "context_warnings": [...]} or null}

pytest counts tests, this report counts checks: a test may run several checks
or none.  ``n_tests`` is the number of tests that ran at least one check;
``n_tests_stopped`` those in which a check failed or did not finish (a failing
check fails its test at once: checks after it in the same test did not run and
are in no count); ``pytest`` is pytest's own count of the session's tests by
outcome (:data:`PYTEST_OUTCOMES`, as its last line counts them), or null when
the report was built without it.

Each ``entry`` has ``key`` ("nodeid::label"), ``nodeid``, ``label``,
``status``, ``passed``, ``kind``, ``max_abs_error``, ``max_rel_error``
(null when no single entry was compared, see :func:`entries_compared`),
``ratio`` (largest error/tolerance, the result's ``max_ratio``), ``n_evals``
(null for a check that did not finish),
``n_checked``, ``n_params``, ``mode``, ``method``, ``seed``, ``tolerance``,
``duration_s``, ``counts``, ``histogram`` (``edges``, ``counts``,
``log10_edges``: bin i holds ratios in [edges[i], edges[i+1]); ``edges[0]`` is
0 and ``edges[-1]`` is null, meaning unbounded), ``worst``, ``leaves``,
``diagnosis``, ``messages``, ``escape_probability``, ``error`` (the record's
``error``, or null), ``xfail_reason`` (or null).  ``status`` is one of
:data:`STATUSES`, counted as pytest counts tests: the check's own verdict
("pass", "fail", "inconclusive"), "error" for a check that did not finish,
"xfail" for a failed or unfinished check in a test that xfailed, "xpass" for a
passed check in a test that xpassed, "caught" for a failed check whose error the test caught
(``pytest.raises(GradcheckError)``, or the test skipped after it): the test decided what the
failure means.  ``passed`` is the check's own verdict.

Layer: reporting, report data.  Imports nothing of the package but reporting.files
(no pytest, no numerics): it reads and writes plain dicts.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import sys
from typing import Any, Iterable

REPORT_VERSION = 1
#: "caught": a failed check whose GradcheckError the test caught (``pytest.raises``, or a skip after it)
STATUSES = ("pass", "fail", "inconclusive", "error", "xfail", "xpass", "caught")
#: the outcomes of pytest's last line, in its words; "deselected" and "skipped" tests did not run
PYTEST_OUTCOMES = ("failed", "passed", "skipped", "deselected", "xfailed", "xpassed", "error")


def record_status(record: dict) -> str:
    """The status a record counts as (one of :data:`STATUSES`)."""
    return record.get("status") or (record.get("result") or {}).get("status") or "error"


def record_key(record: dict) -> str:
    """The identity of a check across runs: ``"nodeid::label"``."""
    return f"{record.get('nodeid', '')}::{record.get('label', 'check')}"


def json_safe(obj: Any) -> Any:
    """A copy of ``obj`` that ``json.dumps(allow_nan=False)`` accepts.

    NaN becomes None, infinities +-1e308 (the convention of ``to_dict``),
    tuples become lists, numpy scalars become Python numbers, unknown objects
    their ``str``.
    """
    t = type(obj)
    if t is float:
        if obj - obj == 0.0:  # finite
            return obj
        return None if obj != obj else math.copysign(1e308, obj)
    if obj is None or t is str or t is int or t is bool:
        return obj
    if t is dict:
        return {(k if type(k) is str else str(k)): json_safe(v) for k, v in obj.items()}
    if t is list or t is tuple:
        return [json_safe(v) for v in obj]
    return _json_safe_other(obj)


def _json_safe_other(obj: Any) -> Any:
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return json_safe(float(obj))
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in obj]
    # numpy scalars and arrays without importing numpy
    item = getattr(obj, "item", None)
    if callable(item) and getattr(obj, "ndim", 0) == 0:
        try:
            return json_safe(item())
        except (TypeError, ValueError):
            pass
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return json_safe(tolist())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return str(obj)


def histogram_bins(hist: dict | None) -> dict:
    """``{"edges", "counts", "log10_edges"}`` from a result's ``histogram``.

    The result stores ``log10_edges`` (fixed -8..4) and ``counts`` one longer
    than the edges: counts[0] is ratio < 1e-8 (exact agreement included),
    counts[-1] is ratio >= 1e4.  Here ``edges`` are ratio values with one more
    entry than ``counts``: bin i holds ratios in [edges[i], edges[i+1]); the
    first edge is 0 and the last is None (unbounded).
    """
    hist = hist or {}
    log10_edges = [float(e) for e in hist.get("log10_edges") or []]
    counts = [int(c) for c in hist.get("counts") or []]
    if not log10_edges:
        return {"edges": [], "counts": counts, "log10_edges": []}
    edges: list = [0.0] + [10.0 ** e for e in log10_edges] + [None]
    if len(counts) != len(edges) - 1:  # tolerate a malformed histogram, keep shapes consistent
        counts = (counts + [0] * len(edges))[: len(edges) - 1]
    return {"edges": edges, "counts": counts, "log10_edges": log10_edges}


def _add_histograms(hists: Iterable[dict]) -> dict:
    total: list[int] | None = None
    log10_edges: list = []
    for h in hists:
        if not h.get("counts"):
            continue
        if total is None:
            total = list(h["counts"])
            log10_edges = list(h.get("log10_edges") or [])
        elif len(h["counts"]) == len(total):
            total = [a + b for a, b in zip(total, h["counts"])]
    return histogram_bins({"log10_edges": log10_edges, "counts": total or []})


def entries_compared(result: dict) -> bool:
    """Whether a result compared single entries (analytic against numeric).

    Fast mode compares random directional derivatives first and single entries only
    where a probe disagrees: a fast check that passed compared none, and its
    ``max_abs_error``/``max_rel_error`` (and each leaf's ``max_ratio``) were not
    measured -- the numerics store 0.0 there, which is not a measurement of zero.
    Its ``max_ratio`` is the probes' worst ratio, a measurement.  A result without
    ``n_checked`` (written by hand, or by an older version) is taken at its word."""
    n_checked = result.get("n_checked")
    return n_checked is None or n_checked > 0


def _leaf_entry(leaf: dict) -> dict:
    """A leaf of the result; ``max_ratio`` None when none of its entries was compared."""
    leaf = dict(leaf)
    if not sum((leaf.get("counts") or {}).values()):
        leaf["max_ratio"] = None
    return leaf


def check_entry(record: dict) -> dict:
    """One report entry from one check record (see the module docstring).

    Values a check did not measure are None, never 0: the entry errors of a
    check that compared no single entry (:func:`entries_compared`), every number
    of a check that did not finish."""
    res = record.get("result") or {}
    status = record_status(record)
    compared = entries_compared(res)
    entry = {
        "key": record_key(record),
        "nodeid": record.get("nodeid", ""),
        "label": record.get("label", "check"),
        "status": status,
        "passed": bool(res.get("passed", status != "fail")),
        "kind": res.get("kind", "gradient"),
        "max_abs_error": res.get("max_abs_error") if compared else None,
        "max_rel_error": res.get("max_rel_error") if compared else None,
        "ratio": res.get("max_ratio"),
        "n_evals": int(res["n_evals"]) if res.get("n_evals") is not None else None,
        "n_checked": int(res.get("n_checked") or 0),
        "n_params": int(res.get("n_params") or 0),
        "mode": res.get("mode"),
        "method": res.get("method"),
        "seed": res.get("seed"),
        "tolerance": dict(res.get("tolerance") or {}),
        "duration_s": record.get("duration_s", res.get("duration_s")),
        "counts": dict(res.get("counts") or {}),
        "histogram": histogram_bins(res.get("histogram")),
        "worst": list(res.get("worst") or []),
        "leaves": [_leaf_entry(leaf) for leaf in res.get("leaves") or []],
        "diagnosis": res.get("diagnosis"),
        "messages": list(res.get("messages") or []),
        "escape_probability": res.get("escape_probability"),
        "error": record.get("error"),
        "xfail_reason": record.get("xfail_reason"),
    }
    return entry


def make_context(records: Iterable[dict] = (), extra: dict | None = None) -> dict:
    """Where and when the run happened: platform, python, numpy, time, dtypes.

    ``platform`` is the full ``platform.platform()`` string (it names the kernel
    build: shown, never compared); ``platform_family`` is ``"System-machine"``
    (``"Linux-x86_64"``), what a baseline compares (see
    :func:`.baseline.comparable_context`).  ``dtypes`` lists the leaf dtypes seen in ``records``; framework versions
    are added for frameworks that are already imported (none is imported here).
    """
    try:
        import numpy

        numpy_version = numpy.__version__
    except Exception:  # pragma: no cover - numpy is a dependency
        numpy_version = None
    ctx = {
        "platform": platform.platform(),
        "platform_family": f"{platform.system()}-{platform.machine()}",
        "machine": platform.machine(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "numpy": numpy_version,
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    for mod in ("torch", "jax"):
        m = sys.modules.get(mod)
        if m is not None and getattr(m, "__version__", None):
            ctx[mod] = str(m.__version__)
    dtypes = sorted({leaf.get("dtype") for r in records for leaf in ((r.get("result") or {}).get("leaves") or [])
                     if leaf.get("dtype")})
    if dtypes:
        ctx["dtypes"] = dtypes
    if extra:
        ctx.update(extra)
    return json_safe(ctx)


def build_report(records: Iterable[dict], regressions: Iterable[dict] | None = None,
                 context: dict | None = None, baseline: dict | None = None,
                 pytest_counts: dict | None = None) -> dict:
    """The report dict for ``records``.

    ``regressions`` is the list :func:`pytest_gradcheck.reporting.baseline.compare`
    returns (changes of kind "regression", "improvement", "new", "changed"; a
    plain list of regressions works too: entries without ``kind`` count as
    regressions).  ``baseline`` is optional extra information about the
    baseline used (``path``, ``context_warnings``, ``updated``).  ``pytest_counts``
    is pytest's count of tests by outcome (keys of :data:`PYTEST_OUTCOMES`), for the
    report to reconcile its count of checks with pytest's count of tests.
    """
    records = list(records)
    checks = [check_entry(r) for r in records]
    changes = [dict(c) for c in (regressions or [])]
    by_kind: dict[str, list] = {"regression": [], "improvement": [], "new": [], "changed": []}
    for c in changes:
        by_kind.setdefault(c.get("kind", "regression"), []).append(c)
    regressed = {c.get("key") for c in by_kind["regression"]}
    for e in checks:
        e["regressed"] = e["key"] in regressed
    counts = {s: 0 for s in STATUSES}
    for e in checks:
        counts[e["status"]] = counts.get(e["status"], 0) + 1
    summary = {
        "total": len(checks),
        "counts": counts,
        "n_evals": sum(e["n_evals"] or 0 for e in checks),
        "duration_s": round(sum(float(e["duration_s"] or 0.0) for e in checks), 6),
        "n_tests": len({e["nodeid"] for e in checks}),
        "n_tests_stopped": len({e["nodeid"] for e in checks if e["status"] in ("fail", "error", "xfail")}),
        "pytest": ({k: int(pytest_counts.get(k) or 0) for k in PYTEST_OUTCOMES}
                   if pytest_counts is not None else None),
        "n_regressions": len(by_kind["regression"]),
        "n_improvements": len(by_kind["improvement"]),
        "n_new": len(by_kind["new"]),
        "histogram": _add_histograms(e["histogram"] for e in checks),
    }
    report = {
        "version": REPORT_VERSION,
        "tool": "pytest-gradcheck",
        "generated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "context": dict(context) if context is not None else make_context(records),
        "summary": summary,
        "checks": checks,
        "regressions": by_kind["regression"],
        "improvements": by_kind["improvement"],
        "new": by_kind["new"],
        "changed": by_kind["changed"],
        "baseline": dict(baseline) if baseline else None,
    }
    return json_safe(report)


def dumps(report: dict, indent: int | None = None) -> str:
    """Strict JSON text of ``report`` (no NaN/Infinity tokens).

    Compact by default: with ``indent`` Python's json falls back to its slow
    pure-Python encoder (about 3x slower on a report of 1,000 checks).
    """
    seps = (",", ":") if indent is None else (",", ": ")
    try:  # a report from build_report is already JSON-safe: skip the extra walk
        return json.dumps(report, indent=indent, separators=seps, allow_nan=False)
    except (TypeError, ValueError):
        return json.dumps(json_safe(report), indent=indent, separators=seps, allow_nan=False)


def write_json(path: str | os.PathLike, report: dict) -> str:
    """Write ``report`` to ``path`` (parents created, atomic replace); return the path."""
    from .files import write_text_atomic

    return write_text_atomic(path, dumps(report) + "\n")
