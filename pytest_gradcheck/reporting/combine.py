"""``python -m pytest_gradcheck combine``: one gate for a suite split across CI machines.

Each shard of a CI matrix runs ``pytest --gradcheck-json=shard-N.json``; one later job runs::

    python -m pytest_gradcheck combine shard-*.json --json all.json --html all.html --baseline

which merges the shards' checks into one JSON and one HTML report and compares them with the
baseline by the same rules, and prints the same lines, as ``pytest --gradcheck-baseline``
(:func:`.baseline.compare`).  ``--update-baseline`` writes the merged checks into the baseline
instead (merging, atomically and under a lock, as the plugin does).

Exit codes, as pytest's: 0 nothing regressed; 1 a check regressed (or a file could not be
written); 4 a usage error: a report that is not JSON, not a pytest-gradcheck report or of
another version (the message names the file), the same check in two reports with different
results (the message names the check and both files), a missing or unreadable baseline.

A report's ``checks`` are turned back into check records (:func:`record_of_entry`), so that the
merged report is built by :func:`.json_report.build_report` like any other, and
``check_entry(record_of_entry(e))`` gives ``e`` back.

Layer: reporting, above the report writers.  Imports json_report, baseline, html_report, files
and safe_text of reporting/ and the standard library; never pytest or the numerics.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import sys
from pathlib import Path

from . import baseline as _baseline
from . import files as _files
from . import json_report as _json_report
from .safe_text import terminal_text

#: pytest's exit codes that this command uses
OK, REGRESSED, USAGE_ERROR = 0, 1, 4
DEFAULT_BASELINE = ".gradcheck/baseline.json"
_USE_INI = "\0ini"

#: fields of a report entry that belong to the record, not to its ``result``
_RECORD_FIELDS = ("key", "nodeid", "label", "status", "duration_s", "error", "xfail_reason", "regressed",
                  "run_id", "rerun", "ratio")
#: counted statuses that are not the check's own verdict
_COUNTED_ONLY = ("xfail", "xpass", "caught")


class CombineError(Exception):
    """A report or baseline that cannot be combined; the message names the file or the check."""


def record_of_entry(entry: dict) -> dict:
    """The check record a report entry was made from (see the module docstring)."""
    status = entry.get("status") or "error"
    result = {k: v for k, v in entry.items() if k not in _RECORD_FIELDS}
    result["max_ratio"] = entry.get("ratio")
    if status in _COUNTED_ONLY:
        own = "error" if entry.get("error") else ("pass" if entry.get("passed") else "fail")
    else:
        own = status
    result["status"] = own
    hist = entry.get("histogram") or {}
    result["histogram"] = {"log10_edges": hist.get("log10_edges") or [], "counts": hist.get("counts") or []}
    record = {"nodeid": entry.get("nodeid", ""), "label": entry.get("label", "check"),
              "duration_s": entry.get("duration_s"), "result": result}
    if status != own:
        record["status"] = status
    for field in ("error", "xfail_reason"):
        if entry.get(field) is not None:
            record[field] = entry[field]
    return record


def load_report(path: str) -> dict:
    """Read one ``--gradcheck-json`` report; :class:`CombineError` naming the file otherwise."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise CombineError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CombineError(f"{path}: cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise CombineError(f"{path}: not valid JSON ({exc}); is it a --gradcheck-json report?") from None
    if not isinstance(data, dict) or data.get("tool") != "pytest-gradcheck":
        raise CombineError(f"{path}: not a pytest-gradcheck report (no \"tool\": \"pytest-gradcheck\"); "
                           "give the files written by pytest --gradcheck-json")
    version = data.get("version")
    if version != _json_report.REPORT_VERSION or isinstance(version, bool):
        raise CombineError(f"{path}: report version {json.dumps(version)}, this pytest-gradcheck reads version "
                           f"{_json_report.REPORT_VERSION}; write the shards' reports with the same version")
    checks = data.get("checks")
    if not isinstance(checks, list) or not all(isinstance(c, dict) and isinstance(c.get("nodeid"), str)
                                               for c in checks):
        raise CombineError(f"{path}: 'checks' is not a list of check entries")
    return data


def merge_reports(reports: list[tuple[str, dict]]) -> tuple[list[dict], dict, dict | None]:
    """``(records, context, pytest_counts)`` of several reports, in the order given.

    A check (``nodeid::label``) in two reports counts once when both give the same figures
    (what its baseline entry holds: status, ratio, evaluations, method, ...), e.g. a test
    that two shards both ran; with different figures it is a :class:`CombineError`."""
    records, seen = [], {}
    counts: dict | None = {}
    for path, data in reports:
        for entry in data["checks"]:
            record = record_of_entry(entry)
            key = _json_report.record_key(record)
            if key in seen:
                first_path, first = seen[key]
                if _baseline.baseline_entry(first) != _baseline.baseline_entry(record):
                    raise CombineError(f"check {key} is in {first_path} and {path} with different results "
                                       f"({_describe(first)} against {_describe(record)}); combine reports of "
                                       "disjoint shards, or of runs of the same code")
                continue
            seen[key] = (path, record)
            records.append(record)
        shard_counts = (data.get("summary") or {}).get("pytest")
        if counts is not None and isinstance(shard_counts, dict):
            for k in _json_report.PYTEST_OUTCOMES:
                counts[k] = counts.get(k, 0) + int(shard_counts.get(k) or 0)
        else:
            counts = None  # one shard without pytest's count: no total can be claimed
    context = dict(reports[0][1].get("context") or {}) if reports else _json_report.make_context()
    context["combined_from"] = [os.path.basename(p) for p, _ in reports]
    return records, context, counts


def _is_report(path: str) -> bool:
    try:
        load_report(path)
    except CombineError:
        return False
    return True


def _describe(record: dict) -> str:
    entry = _baseline.baseline_entry(record)
    ratio = entry.get("max_ratio")
    return f"status {entry['status']}, ratio {'n/a' if ratio is None else f'{ratio:.3g}'}"


# -- the ini's baseline path (pytest's own files, read as pytest finds them) -------------------

def ini_settings(start: Path) -> tuple[Path, dict]:
    """``(rootdir, ini values)`` from the first pytest configuration file in ``start`` or above
    it, found as pytest finds it (pytest.ini, .pytest.ini, pyproject.toml's
    ``[tool.pytest.ini_options]``, tox.ini's ``[pytest]``, setup.cfg's ``[tool:pytest]``);
    ``(start, {})`` without one."""
    for folder in [start, *start.parents]:
        for name in ("pytest.ini", ".pytest.ini"):
            if (folder / name).is_file():
                return folder, _ini_section(folder / name, "pytest") or {}
        if (folder / "pyproject.toml").is_file():
            import tomllib

            try:
                data = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = {}
            section = ((data.get("tool") or {}).get("pytest") or {}).get("ini_options")
            if isinstance(section, dict):
                return folder, {k: str(v) for k, v in section.items()}
        for name, section in (("tox.ini", "pytest"), ("setup.cfg", "tool:pytest")):
            if (folder / name).is_file():
                values = _ini_section(folder / name, section)
                if values is not None:
                    return folder, values
    return start, {}


def _ini_section(path: Path, section: str) -> dict | None:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (OSError, configparser.Error):
        return None
    return dict(parser[section]) if parser.has_section(section) else None


def default_baseline_path(cwd: Path) -> str:
    """The baseline ``pytest --gradcheck-baseline`` run in ``cwd`` would use."""
    rootdir, ini = ini_settings(cwd)
    return str(rootdir / ((ini.get("gradcheck_baseline") or "").strip() or DEFAULT_BASELINE))


def default_factor(cwd: Path) -> float:
    _, ini = ini_settings(cwd)
    return _baseline.regression_factor(ini.get("gradcheck_regression_factor") or _baseline.DEFAULT_FACTOR)



# -- the command -------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message):  # a usage error exits 4, as pytest's do
        self.print_usage(sys.stderr)
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def make_parser(prog: str = "python -m pytest_gradcheck combine") -> argparse.ArgumentParser:
    p = _Parser(prog=prog, description="Merge the --gradcheck-json reports of several pytest runs (CI shards) into "
                                       "one report, and gate on regressions against the baseline.")
    p.add_argument("reports", nargs="+", metavar="REPORT.json", help="reports written by pytest --gradcheck-json")
    p.add_argument("--json", metavar="OUT", help="write the merged JSON report to OUT")
    p.add_argument("--html", metavar="OUT", help="write the merged HTML report to OUT")
    p.add_argument("--baseline", metavar="PATH", nargs="?", const=_USE_INI, default=None,
                   help="compare with a baseline and exit 1 on a regression; PATH defaults to the ini "
                        f"gradcheck_baseline ({DEFAULT_BASELINE}, relative to the rootdir)")
    p.add_argument("--update-baseline", action="store_true",
                   help="write the merged checks into the baseline (entries of checks not in the reports are kept)")
    p.add_argument("--regression-factor", metavar="X", type=_baseline.regression_factor, default=None,
                   help="error/tolerance growth that counts as a regression (default: ini "
                        "gradcheck_regression_factor, 10)")
    return p


def main(argv: list[str] | None = None, out=None, cwd: str | None = None) -> int:
    """Run the command; returns its exit code (see the module docstring)."""
    out = out if out is not None else sys.stdout
    here = Path(cwd or os.getcwd())
    args = make_parser().parse_args(argv)

    def say(line: str = "") -> None:
        print(terminal_text(line), file=out)

    try:
        reports = [(path, load_report(str(here / path))) for path in args.reports]
        records, context, pytest_counts = merge_reports(reports)
        factor = args.regression_factor if args.regression_factor is not None else default_factor(here)
        baseline_path = None
        if args.baseline is not None or args.update_baseline:
            raw = args.baseline
            baseline_path = default_baseline_path(here) if raw in (None, _USE_INI) else str(here / raw)
            if raw not in (None, _USE_INI) and _is_report(baseline_path):
                # "--baseline a.json b.json": argparse gave the first report to --baseline
                raise CombineError(f"--baseline took {raw}, which is a report: put a bare --baseline after the "
                                   "reports, or write --baseline=PATH")
        # a file that will not be written (read-only, not a regular file) is refused before any work
        for target in (args.json, args.html, baseline_path if args.update_baseline else None):
            if target:
                try:
                    _files.write_target(str(here / target))
                except _files.RefusedTarget as exc:
                    raise CombineError(str(exc)) from None
        baseline = None
        # --update-baseline creates a missing baseline; comparing needs one
        if baseline_path is not None and os.path.exists(baseline_path) or \
                (args.baseline is not None and not args.update_baseline):
            try:
                baseline = _baseline.load_baseline(baseline_path)
            except _baseline.BaselineError as exc:
                raise CombineError(str(exc)) from None
    except (CombineError, argparse.ArgumentTypeError) as exc:
        print(f"gradcheck combine: error: {exc}", file=sys.stderr)
        return USAGE_ERROR

    if baseline is not None:
        changes = _baseline.compare(baseline, records, factor=factor)
    elif args.baseline is not None and args.update_baseline:  # a new baseline: every check is new
        changes = _baseline.compare({"checks": {}}, records, factor=factor)
    else:
        changes = []
    regressions = [c for c in changes if c.get("kind") == "regression"]
    counts = {s: 0 for s in _json_report.STATUSES}
    for r in records:
        counts[_json_report.record_status(r)] = counts.get(_json_report.record_status(r), 0) + 1
    shown = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    say(f"gradcheck combine: {len(records)} checks from {len(reports)} reports ({shown or 'none'})")
    code = OK
    if regressions:
        accepted = args.update_baseline
        for c in regressions:
            say(("ACCEPTED " if accepted else "REGRESSED ") + f"{c['key']}: {c['reason']}")
        if not accepted:
            say(f"{len(regressions)} gradient check{'s' if len(regressions) != 1 else ''} regressed against "
                f"{baseline_path} (factor {factor:g}); fix them, or accept the new numbers with --update-baseline")
            code = REGRESSED
    if baseline is not None:
        n = {k: sum(1 for c in changes if c.get("kind") == k) for k in ("regression", "improvement", "new", "changed")}
        say(f"gradcheck baseline {baseline_path}: {len(records)} checks compared: {n['regression']} regressions, "
            f"{n['improvement']} improvements, {n['new']} new, {n['changed']} other status changes")
        for w in _baseline.context_warnings(baseline, context):
            say(f"  warning: {w}")
    if args.update_baseline:
        try:
            updated, written = _baseline.update_baseline(baseline_path, records, context)
        except (OSError, _baseline.BaselineError) as exc:
            say(f"ERROR: could not write the gradcheck baseline {baseline_path}: {exc}")
            return REGRESSED
        n_all = len(updated.get("checks") or {})
        say(f"gradcheck baseline {'updated' if written else 'unchanged'}: {baseline_path} ({n_all} checks)")
        for line in _baseline.accepted_failing_lines(_baseline.failing_keys(records)):
            say(line)
    if args.json or args.html:
        base_info = None
        if baseline_path is not None:
            base_info = {"path": os.path.relpath(baseline_path, here) if baseline_path.startswith(str(here))
                         else baseline_path,
                         "compared": baseline is not None, "updated": bool(args.update_baseline), "factor": factor,
                         "noise_floor": _baseline.DEFAULT_NOISE_FLOOR,
                         "context_warnings": _baseline.context_warnings(baseline, context) if baseline else []}
        report = _json_report.build_report(records, changes, context, baseline=base_info, pytest_counts=pytest_counts)
        try:
            if args.json:
                _json_report.write_json(str(here / args.json), report)
                say(f"gradcheck JSON report: {args.json}")
            if args.html:
                from . import html_report

                html_report.write_html(str(here / args.html), report)
                say(f"gradcheck HTML report: {args.html}")
        except OSError as exc:
            say(f"ERROR: could not write a report: {exc}")
            return REGRESSED
    return code
