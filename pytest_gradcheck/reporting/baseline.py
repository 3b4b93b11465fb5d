"""Gradient-check baselines: save, load, compare.

A baseline is one JSON file, meant to be committed, that remembers for every
check (keyed by ``"nodeid::label"``) its status and its error/tolerance ratio.
A later run is compared with it and *regressions* fail the run even when every
check still passes on its own: a gradient whose error grew by orders of
magnitude is usually a bug that the tolerance happens not to catch yet.

File layout (``BASELINE_VERSION``)::

    {"version": 1, "tool": "pytest-gradcheck", "updated": ISO-8601 UTC,
     "context": {"platform_family", "python", "numpy", "torch", "jax", "dtypes", ...},
     "checks": {"tests/test_m.py::test_grad::check":
                   {"nodeid", "label", "status", "max_ratio", "max_rel_error",
                    "n_evals", "method", "mode", "kind", "dtypes"}, ...}}

A check that did not finish has status "error" and ``"error": {"type",
"exception"}`` (its one-line message is left out: it may hold times and
addresses that differ on every run, and the file should change only when a
check does).

Expected failures
-----------------
A check of an ``xfail``-marked test that pytest counted as xfailed is stored
with status "xfail" (xpassed: "xpass").  An xfail is never a regression,
whatever its ratio: the project documents it as a known failure, and pytest
does not fail the run for it.  Against the baseline it counts as failing:
"pass -> xfail" is a status change (info), "xfail -> pass" (or xpass) an
improvement, "xfail -> fail" (the marker was removed, the bug is still there)
compares like "fail -> fail".

Numbers are stored with 3 significant digits so that reruns on the same
machine leave the file unchanged (and diffs show real changes only).  Keys are
sorted for the same reason.  Updating merges: entries of checks that did not
run this time (``-k``, a single file, a skipped framework) are kept; the file
is re-read and merged under a lock at write time, so two runs updating it at
once (on different test files) both keep their entries.

Noise floor
-----------
``DEFAULT_NOISE_FLOOR = 1e-2``: a ratio is ``|analytic - numeric| /
tolerance`` and the tolerance is a safety multiple of the estimated error of
the finite-difference estimate.  When a ratio is below 1e-2, the measured
disagreement is at least a hundred times smaller than what finite differences
can resolve, so it is itself a sample of roundoff and truncation error (or an
exact 0), not information about the analytic gradient.  Such samples move by
one or more orders of magnitude between numpy/BLAS builds, CPUs, summation
orders and seeds (0 versus 1e-16 is an infinite factor), so comparing them
would raise false regressions.  Measured on the 22 correct float64 models of
the test corpus (tests/corpus), with the inputs perturbed by 1e-12 relative
noise (what a different BLAS or CPU does to roundoff): their largest ratios
lie between 0.005 and 0.09 and move by up to x4 between perturbations; the
42 buggy gradients have ratios of 47 and more.  A growth counts as a regression only when the
current ratio exceeds ``factor`` times ``max(baseline ratio, noise floor)``;
with the defaults, a check must reach ratio 0.1 - still ten times under its
tolerance - before a growth is reported, and a check at ratio 0.2 regresses
when it passes 2.0 (which also fails it).

Layer: plugin side, reports.  Imports json_report and files of reporting/ and
the standard library; never the numerics or pytest.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
from typing import Iterable

from . import files as _files
from .json_report import entries_compared, json_safe, make_context, record_key, record_status

BASELINE_VERSION = 1
DEFAULT_FACTOR = 10.0


def regression_factor(value) -> float:
    """A regression factor from the command line or an ini file: a finite number > 1 (an
    argparse type, shared by the plugin's option and the combine command)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not x > 1 or x == float("inf"):
        raise argparse.ArgumentTypeError(f"{value!r} must be a finite number > 1")
    return x
DEFAULT_NOISE_FLOOR = 1e-2
#: context keys whose difference between baseline and run is worth a warning, with the word a
#: warning uses; the values are those of :func:`comparable_context` (dtypes are compared per
#: check: a partial run sees only some of them)
CONTEXT_KEYS = (("platform_family", "platform"), ("python", "python"),
                ("python_implementation", "python implementation"), ("numpy", "numpy"),
                ("torch", "torch"), ("jax", "jax"))


def comparable_context(context: dict | None) -> dict:
    """What of a run's context can move a ratio, as the baseline keeps and compares it.

    * the platform *family* ``"Linux-x86_64"`` (system and machine), not the full
      ``platform.platform()`` string: that one names the kernel build
      (``Linux-6.18.44-fc-v1045-x86_64-with-glibc2.36``), changes with every kernel
      update and moves no floating-point result;
    * python as major.minor: a patch release changes no arithmetic;
    * the python implementation and the numpy, torch and jax versions, in full: their
      kernels and summation orders are what a ratio near the noise floor samples.

    Reads the context of a run (:func:`.json_report.make_context`) and that of a baseline,
    old files included: one written before this function existed stored the full platform
    string and ``machine``, from which the family is derived here.
    """
    ctx = context or {}
    out = {}
    family = ctx.get("platform_family")
    if not family and ctx.get("platform"):
        system = str(ctx["platform"]).split("-", 1)[0]
        family = f"{system}-{ctx['machine']}" if ctx.get("machine") else str(ctx["platform"])
    if family:
        out["platform_family"] = str(family)
    if ctx.get("python"):
        out["python"] = ".".join(str(ctx["python"]).split(".")[:2])
    for key in ("python_implementation", "numpy", "torch", "jax"):
        if ctx.get(key):
            out[key] = str(ctx[key])
    return out


class BaselineError(Exception):
    """The baseline file cannot be used (unreadable, not JSON, wrong version or layout)."""


def _round(x, digits: int = 3):
    if x is None:
        return None
    x = float(x)
    if not math.isfinite(x):
        return json_safe(x)
    if x == 0:
        return 0.0
    return float(f"{x:.{digits}g}")


def load_baseline(path: str | os.PathLike) -> dict:
    """Read and validate a baseline file; raise :class:`BaselineError` naming the file."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise BaselineError(f"gradcheck baseline {path!r} does not exist "
                            "(create it with --gradcheck-update-baseline)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"gradcheck baseline {path!r} cannot be read: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(f"gradcheck baseline {path!r} is not valid JSON ({exc}); fix it, or delete it and "
                            "recreate it with --gradcheck-update-baseline") from None
    if not isinstance(data, dict):
        raise BaselineError(f"gradcheck baseline {path!r} is not a JSON object")
    version = data.get("version")
    if isinstance(version, str) and version.strip() == str(BASELINE_VERSION):
        # "1" and 1 print alike: say that the type is what differs, and how to fix it
        raise BaselineError(f"gradcheck baseline {path!r} has \"version\": {json.dumps(version)} (a string); "
                            f"the version is the number {BASELINE_VERSION}: write \"version\": {BASELINE_VERSION}")
    if version != BASELINE_VERSION or isinstance(version, bool):
        raise BaselineError(f"gradcheck baseline {path!r} has version {version!r}, this pytest-gradcheck reads "
                            f"version {BASELINE_VERSION}; recreate it with --gradcheck-update-baseline after "
                            "deleting it")
    checks = data.get("checks")
    if not isinstance(checks, dict):
        raise BaselineError(f"gradcheck baseline {path!r} has no 'checks' object")
    for key, entry in checks.items():
        _validate_entry(path, key, entry)
    context = data.get("context")
    if context is None:
        data["context"] = {}
    elif not isinstance(context, dict):
        raise BaselineError(f"gradcheck baseline {path!r}: 'context' is {_kind(context)}, expected an object")
    for field in ("tool", "updated"):
        if field in data and not isinstance(data[field], str):
            raise BaselineError(f"gradcheck baseline {path!r}: {field!r} is {_kind(data[field])}, expected a string")
    return data


#: the fields of a baseline entry that are read, with what each must be; other fields are kept
#: unread (a newer version may add some)
_NUMBER_FIELDS = ("max_ratio", "max_rel_error")   # finite and >= 0, or null
_TEXT_FIELDS = ("nodeid", "label", "method", "mode", "kind")   # string or null


def _validate_entry(path: str, key: str, entry) -> None:
    """Raise :class:`BaselineError` naming the file, the entry and the field that is wrong."""
    where = f"gradcheck baseline {path!r}: entry {key!r}"
    fix = "; fix it, or delete the entry and rerun with --gradcheck-update-baseline"
    if not isinstance(entry, dict) or not isinstance(entry.get("status"), str):
        raise BaselineError(f"{where} is malformed (needs a 'status' string){fix}")
    for field in _NUMBER_FIELDS:
        value = entry.get(field)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BaselineError(f"{where} has a non-numeric {field} ({_kind(value)}); expected a finite "
                                f"number >= 0 or null{fix}")
        if not math.isfinite(value) or value < 0:
            raise BaselineError(f"{where} has {field} = {value!r}; expected a finite number >= 0 or null{fix}")
    n_evals = entry.get("n_evals")
    if n_evals is not None and (isinstance(n_evals, bool) or not isinstance(n_evals, int) or n_evals < 0):
        raise BaselineError(f"{where} has n_evals = {n_evals!r}; expected a whole number >= 0{fix}")
    for field in _TEXT_FIELDS:
        value = entry.get(field)
        if value is not None and not isinstance(value, str):
            raise BaselineError(f"{where} has {field} = {value!r}; expected a string{fix}")
    dtypes = entry.get("dtypes")
    if dtypes is not None and not (isinstance(dtypes, list) and all(isinstance(d, str) for d in dtypes)):
        raise BaselineError(f"{where} has dtypes = {dtypes!r}; expected a list of dtype names{fix}")


def _kind(value) -> str:
    """``value`` as an error message shows it: its JSON type and the value."""
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
             dict: "an object", type(None): "null"}
    return f"{names.get(type(value), type(value).__name__)} {json.dumps(value)[:40]}"


def baseline_entry(record: dict) -> dict:
    """What the baseline remembers of one check record."""
    res = record.get("result") or {}
    dtypes = sorted({leaf.get("dtype") for leaf in res.get("leaves") or [] if leaf.get("dtype")})
    entry = {
        "nodeid": record.get("nodeid", ""),
        "label": record.get("label", "check"),
        "status": record_status(record),
        "max_ratio": _round(res.get("max_ratio")),
        # null, not 0, where no single entry was compared (a fast check that passed)
        "max_rel_error": _round(res.get("max_rel_error")) if entries_compared(res) else None,
        "n_evals": int(res.get("n_evals") or 0),
        "method": res.get("method"),
        "mode": res.get("mode"),
        "kind": res.get("kind", "gradient"),
    }
    if dtypes:
        entry["dtypes"] = dtypes
    error = record.get("error")
    if error:
        entry["error"] = {"type": error.get("type"), "exception": error.get("exception")}
    return entry


def merge_baseline(records: Iterable[dict], context: dict | None = None, existing: dict | None = None) -> dict:
    """The baseline dict after this run: ``existing`` entries updated by ``records``.

    Entries of checks absent from ``records`` are kept unchanged.
    """
    records = list(records)
    checks = dict((existing or {}).get("checks") or {})
    for r in records:
        checks[record_key(r)] = baseline_entry(r)
    # only what is compared (no time, kernel build, python patch level or pytest version):
    # a rerun on an updated machine leaves the file byte for byte
    ctx = comparable_context(context if context is not None else make_context(records))
    dtypes = sorted({d for e in checks.values() for d in e.get("dtypes") or []})
    if dtypes:
        ctx["dtypes"] = dtypes
    return json_safe({
        "version": BASELINE_VERSION,
        "tool": "pytest-gradcheck",
        "context": ctx,
        "checks": {k: checks[k] for k in sorted(checks)},
    })


def update_baseline(path: str | os.PathLike, records: Iterable[dict],
                    context: dict | None = None) -> tuple[dict, bool]:
    """Merge ``records`` into the baseline file at ``path``; return ``(data, written)``.

    The file is re-read, merged and written under a lock (:func:`.files.locked`):
    another run that updated it since this one started keeps its entries.
    The write is atomic (:func:`.files.write_text_atomic`).  The file is
    rewritten only when its checks or context changed, so an unchanged
    baseline keeps its bytes and its ``updated`` stamp (``written`` is then
    False and ``data`` is the file as it is).  Raises :class:`BaselineError`
    when the file on disk cannot be read, :class:`OSError` when it cannot be
    written.
    """
    path = os.fspath(path)
    records = list(records)
    # SIGTERM as Ctrl-C from before the lock is taken to after it is released: neither the lock
    # file nor a temporary file is left behind
    with _files.terminate_as_interrupt(), _files.locked(path):
        current = load_baseline(path) if os.path.exists(path) else None
        data = merge_baseline(records, context, current)
        # compared as comparable contexts: a file written by an older version (full platform
        # string) is not rewritten for its context alone
        if current is not None and current.get("checks") == data["checks"] \
                and _comparable_with_dtypes(current.get("context")) == _comparable_with_dtypes(data["context"]):
            return current, False
        data["updated"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        _files.write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return data, True


def failing_keys(records: Iterable[dict]) -> list[str]:
    """Keys of the checks among ``records`` that fail or did not finish: accepting them into a
    baseline records a broken gradient as the reference, which deserves a warning."""
    return [record_key(r) for r in records if record_status(r) in ("fail", "error")]


def accepted_failing_lines(keys: list[str], limit: int = 10) -> list[str]:
    """The warning for :func:`failing_keys` written into a baseline (empty when there are none)."""
    if not keys:
        return []
    n = len(keys)
    lines = [f"warning: {n} check{'s' if n != 1 else ''} that now FAIL{'S' if n == 1 else ''} "
             f"{'were' if n != 1 else 'was'} accepted into the baseline as failing; a later fix shows as an "
             "improvement, but the baseline no longer guards "
             f"{'them' if n != 1 else 'it'}:"]
    lines += [f"  {k}" for k in keys[:limit]]
    if n > limit:
        lines.append(f"  ... and {n - limit} more")
    return lines


def _comparable_with_dtypes(context: dict | None) -> dict:
    return dict(comparable_context(context), dtypes=(context or {}).get("dtypes"))


def _is_fail(status: str | None) -> bool:
    """Whether a status means the check did not pass (an xfail did not either, as expected)."""
    return status in ("fail", "error", "xfail")


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def compare(baseline: dict, records: Iterable[dict], factor: float = DEFAULT_FACTOR,
            noise_floor: float = DEFAULT_NOISE_FLOOR) -> list[dict]:
    """Changes of this run's ``records`` against ``baseline``.

    Returns a list of dicts, each with ``kind``:

    * ``"regression"`` (fails the run): the check passed (or was
      inconclusive) in the baseline and fails now; or its ratio grew above
      ``factor * max(baseline ratio, noise_floor)``.
    * ``"improvement"`` (info): it failed in the baseline and does not now; or
      its ratio fell below ``max(baseline ratio, ...) / factor`` from above the
      noise floor.
    * ``"new"`` (info): no baseline entry.
    * ``"changed"`` (info): another status change (pass <-> inconclusive).

    Each change has ``key``, ``nodeid``, ``label``, ``baseline_status``,
    ``status``, ``baseline_ratio``, ``ratio``, ``growth`` (ratio / baseline
    ratio, None when undefined) and ``reason`` (one readable line).  Checks in
    the baseline that did not run are not reported (partial runs are normal).
    See the module docstring for why the noise floor exists.
    """
    if factor <= 1:
        raise ValueError(f"regression factor must be > 1, got {factor!r}")
    base = (baseline or {}).get("checks") or {}
    changes: list[dict] = []
    for r in records:
        key = record_key(r)
        cur = baseline_entry(r)
        # compare with the same rounding that was stored
        ratio = cur["max_ratio"]
        change = {
            "key": key, "nodeid": cur["nodeid"], "label": cur["label"],
            "status": cur["status"], "ratio": ratio,
            "baseline_status": None, "baseline_ratio": None, "growth": None,
        }
        old = base.get(key)
        if old is None:
            change.update(kind="new", reason=f"new check: status {cur['status']}, ratio {_fmt(ratio)}")
            changes.append(change)
            continue
        old_ratio = old.get("max_ratio")
        change["baseline_status"] = old.get("status")
        change["baseline_ratio"] = old_ratio
        if ratio is not None and old_ratio is not None and old_ratio > 0:
            change["growth"] = ratio / old_ratio
        same = cur["status"] == old.get("status")
        transition = f"{old.get('status')} -> {cur['status']}"
        if same:
            status_text = "still " + {"pass": "passes", "fail": "fails"}.get(cur["status"], cur["status"])
        else:
            status_text = f"status {transition}"
        numbers = f"ratio {_fmt(old_ratio)} -> {_fmt(ratio)}"
        kind = reason = None
        if cur["status"] == "xfail":  # a documented known failure: information, never a regression
            if not same:
                kind, reason = "changed", f"expected to fail, marked xfail ({transition}), {numbers}"
        elif cur["status"] == "caught":  # the test expects this failure (pytest.raises): never a regression
            if not same:
                kind, reason = "changed", f"failed and caught by its test ({transition}), {numbers}"
        elif _is_fail(cur["status"]) and not _is_fail(old.get("status")):
            kind, reason = "regression", f"now fails ({transition}), {numbers}"
        elif not _is_fail(cur["status"]) and _is_fail(old.get("status")):
            kind, reason = "improvement", f"fixed ({transition}), {numbers}"
        elif ratio is not None and old_ratio is not None:
            ref = max(old_ratio, noise_floor)
            if ratio > factor * ref:
                kind = "regression"
                growth = f" (x{ratio / old_ratio:.3g})" if old_ratio > 0 else ""
                reason = (f"error/tolerance {numbers}{growth}, more than {factor:g}x "
                          f"{'the baseline' if old_ratio >= noise_floor else f'the noise floor {noise_floor:g}'}; "
                          f"{status_text}")
            elif old_ratio > noise_floor and ratio * factor < old_ratio:
                kind = "improvement"
                reason = f"error/tolerance {numbers}, down more than {factor:g}x; {status_text}"
        if kind is None and cur["status"] != old.get("status"):
            kind, reason = "changed", f"status changed ({transition}), {numbers}"
        if kind is not None:
            if old.get("dtypes") and cur.get("dtypes") and old["dtypes"] != cur["dtypes"]:
                reason += f"; dtypes changed ({_show(old['dtypes'])} -> {_show(cur['dtypes'])})"
            change.update(kind=kind, reason=reason)
            changes.append(change)
    return json_safe(changes)


def context_warnings(baseline: dict, context: dict) -> list[str]:
    """Readable lines for differences of the :func:`comparable_context` (platform family,
    python major.minor, numpy, frameworks).

    Ratios near the noise floor depend on these; a difference is worth
    knowing when a comparison reports changes, but is not a failure.
    """
    old = comparable_context((baseline or {}).get("context"))
    new = comparable_context(context)
    lines = []
    for key, word in CONTEXT_KEYS:
        a, b = old.get(key), new.get(key)
        if a is None or b is None or a == b:
            continue
        lines.append(f"baseline recorded with {word} {_show(a)}, this run has {_show(b)}")
    return lines


def _show(v) -> str:
    return ", ".join(map(str, v)) if isinstance(v, list) else str(v)
