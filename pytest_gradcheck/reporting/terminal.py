"""The ``gradcheck`` section of the terminal summary.

Reads only check records (``{"nodeid", "label", "duration_s", "result"}``).
Plain ASCII; colour only through the terminal reporter's markup, which is a
no-op on a terminal without colour.

* ``--gradcheck-summary=all`` (default): a table of every check, the aggregate
  histogram of per-entry error/tolerance ratios, details of failing checks
  (own histogram, worst entries, diagnosis), and a count line;
* ``failures``: table rows and details of failing/inconclusive checks only;
* ``none``: nothing (the ``pytest_gradcheck_summary`` hook still runs).

``-q`` keeps only the table rows of failing checks and the count line; ``-v``
adds details of inconclusive checks and more worst entries.

Each failure's worst entries and diagnosis are printed once: a check whose test
failed with its full report in pytest's FAILURES section (``shown_above``) gets
only its headline and histogram here, and a pointer; ``-v`` repeats everything.

Layer: reporting.  Imports histogram, json_report and safe_text; writes through the
terminal reporter it is handed (no pytest import).
"""

from __future__ import annotations

from . import histogram as _histogram
from .json_report import entries_compared, record_key, record_status
from .safe_text import terminal_text

_STATUS_WORD = {"pass": "pass", "fail": "FAIL", "inconclusive": "inconclusive", "error": "ERROR",
                "xfail": "xfail", "xpass": "XPASS", "caught": "caught"}
_MARKUP = {"fail": {"red": True, "bold": True}, "error": {"red": True, "bold": True},
           "inconclusive": {"yellow": True}, "pass": {}, "xfail": {"yellow": True}, "xpass": {"yellow": True},
           "caught": {}}
#: statuses whose checks get a detail paragraph (with -v) and a row with --gradcheck-summary=failures
#: (a caught failure is in no FAILURES section: the gradcheck section explains it)
_NOTABLE = ("fail", "error", "inconclusive", "caught")
#: the rarer outcomes of the count line, shown only when there are some, as pytest does
_RARE_COUNTS = (("error", "error", "errors"), ("xfail", "xfailed", "xfailed"), ("xpass", "xpassed", "xpassed"),
                ("caught", "caught by its test", "caught by their tests"))
#: statuses that fail a test (and colour the count line red)
_FAILING = ("fail", "error")
#: what an error record's ``error.type`` means, for the reader
_ERROR_WHAT = {
    "user_code": "your code raised",
    "input": "unusable input",
    "interrupted": "interrupted",
    "internal": "internal error of pytest-gradcheck (please report it)",
}


def check_name(record: dict) -> str:
    """``nodeid [label]``; a model item's nodeid already ends in its name.  Control characters
    are escaped (:func:`.safe_text.terminal_text`), as everywhere in this section."""
    nodeid, label = record.get("nodeid", "?"), record.get("label", "check")
    if nodeid.endswith(f"[{label}]"):
        return terminal_text(nodeid)
    return terminal_text(f"{nodeid} [{label}]")


def _g(x, fmt: str = ".2e") -> str:
    return "-" if x is None else format(x, fmt)


def _time(x) -> str:
    if x is None:
        return "-"
    return f"{x * 1000:.0f}ms" if x < 1 else f"{x:.2f}s"


def _truncate_left(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    return "..." + text[len(text) - width + 3:]


def count_line(records: list) -> str:
    """``gradcheck: N checks in T tests: P passed, F failed, I inconclusive`` and, as pytest's own
    line does, the rarer outcomes only when there are some (``, E errors, X xfailed, Y xpassed``).

    T is the number of tests that made a check: pytest's line below counts tests, this one
    checks (a test may make several, and a test without a check is in no count here)."""
    counts = {"pass": 0, "fail": 0, "inconclusive": 0}
    for rec in records:
        status = record_status(rec)
        counts[status] = counts.get(status, 0) + 1
    n = len(records)
    t = len({rec.get("nodeid") for rec in records})
    line = (f"gradcheck: {n} check{'s' if n != 1 else ''} in {t} test{'s' if t != 1 else ''}: "
            f"{counts['pass']} passed, {counts['fail']} failed, {counts['inconclusive']} inconclusive")
    for status, one, many in _RARE_COUNTS:
        n = counts.get(status, 0)
        if n:
            line += f", {n} {one if n == 1 else many}"
    return line


def table_lines(records: list) -> list[tuple[str, dict]]:
    """(line, markup) pairs: a header and one row per record.

    The check name is the last column, so that long node ids are never cut.
    """
    cols = ("status", "max rel err", "ratio", "evals", "time")
    widths = (12, 11, 9, 6, 7)
    header = " ".join(f"{c:>{w}}" if i else f"{c:<{w}}" for i, (c, w) in enumerate(zip(cols, widths)))
    out = [(f"{header}  check", {"bold": True})]
    for rec in records:
        res = rec["result"]
        status = record_status(rec)
        cells = (
            f"{_STATUS_WORD.get(status, status):<{widths[0]}}",
            # "-": not measured (no single entry compared, or the check did not finish), not 0
            f"{_g(res.get('max_rel_error') if entries_compared(res) else None):>{widths[1]}}",
            f"{_g(res.get('max_ratio')):>{widths[2]}}",
            f"{res.get('n_evals', '-'):>{widths[3]}}",  # a check that did not finish has no count
            f"{_time(rec.get('duration_s')):>{widths[4]}}",
        )
        out.append((" ".join(cells) + "  " + check_name(rec), _MARKUP.get(status, {})))
    return out


def detail_lines(record: dict, verbosity: int = 0, shown_above: bool = False) -> list[str]:
    """Own histogram, worst entries (leaf paths) and diagnosis of one check; for a check
    that did not finish, what stopped it.  ``shown_above``: its failure report (worst
    entries, notes, diagnosis) is already in FAILURES; at verbosity 0 they are not repeated."""
    res = record["result"]
    error = record.get("error")
    if error:
        what = _ERROR_WHAT.get(error.get("type"), error.get("type"))
        return [f"ERROR {check_name(record)}: the {res.get('kind', 'gradient')} check did not finish: {what}: "
                + terminal_text(f"{error.get('exception')}: {error.get('message')}")]
    lines = []
    n_bad = res.get("counts", {}).get(res.get("status"), 0)
    head = (f"{_STATUS_WORD.get(res.get('status'), res.get('status'))} {check_name(record)}: "
            f"{res.get('kind', 'gradient')} check, method={res.get('method')}, mode={res.get('mode')}, "
            f"seed={res.get('seed')}; {n_bad} of {res.get('n_checked')} entries {res.get('status')}; "
            f"worst ratio {_g(res.get('max_ratio'))}")
    lines.append(head)
    hist = res.get("histogram")
    if hist and sum(hist.get("counts", [])):
        lines.append("  error/tolerance ratio per entry:")
        lines.extend(_histogram.render(hist, width=30, trim=True, indent="    "))
    if shown_above and verbosity <= 0:
        lines.append("  worst entries and diagnosis: in this test's failure above (-v repeats them here)")
        return lines
    worst = [e for e in res.get("worst", []) if e.get("verdict") != "pass"] or res.get("worst", [])
    worst = worst[: (10 if verbosity > 0 else 5)]
    if worst:
        lines.append("  worst entries (analytic = your gradient, numeric = finite differences):")
        lines.append(f"    {'where':<24} {'analytic':>13} {'numeric':>13} {'|a-n|':>9} {'tolerance':>9} {'ratio':>9}  verdict")
        for e in worst:
            index = e.get("index") or []
            where = e.get("leaf", "?") + ("[" + ", ".join(str(i) for i in index) + "]" if index else "")
            lines.append(
                f"    {_truncate_left(where, 24):<24} {_g(e.get('analytic'), '.6e'):>13} {_g(e.get('numeric'), '.6e'):>13} "
                f"{_g(e.get('abs_error'), '.2e'):>9} {_g(e.get('tolerance'), '.2e'):>9} {_g(e.get('ratio'), '.2e'):>9}  "
                f"{e.get('verdict', '?')}" + (f" ({e['reason']})" if e.get("reason") else "")
            )
    if verbosity > 0:
        for leaf in res.get("leaves", []):
            lines.append(f"  leaf {leaf.get('path')}: shape {tuple(leaf.get('shape', []))}, {leaf.get('dtype')}, "
                         f"max ratio {_g(leaf.get('max_ratio'))}, counts {leaf.get('counts')}")
    diagnosis = res.get("diagnosis") or {}
    if diagnosis.get("summary"):
        lines.append(f"  diagnosis: {diagnosis['summary']}")
    for message in res.get("messages", [])[: (None if verbosity > 0 else 3)]:
        lines.append(f"  note: {message}")
    return [terminal_text(line) for line in lines]  # leaf names and messages may hold control characters


def inconclusive_line(record: dict) -> str:
    """One line: why an inconclusive check could not be judged (its worst unjudged entry's
    reason, else the diagnosis's cause), for ``-q`` runs."""
    res = record.get("result") or {}
    why = ""
    for e in res.get("worst") or []:
        if e.get("verdict") == "inconclusive" and e.get("reason"):
            index = e.get("index") or []
            where = e.get("leaf", "?") + ("[" + ", ".join(str(i) for i in index) + "]" if index else "")
            why = f"{where}: {e['reason']}"
            break
    if not why:
        cause = (res.get("diagnosis") or {}).get("cause")
        why = f"{cause}; see -v or --gradcheck-html for the entries" if cause else \
            "some entries could not be judged; see -v or --gradcheck-html"
    return terminal_text(f"inconclusive {check_name(record)}: {why}")


def write_summary(terminalreporter, records: list, *, which: str = "all", verbosity: int = 0,
                  shown_above=frozenset()) -> None:
    """Write the ``gradcheck`` section (nothing when there are no records or which='none').

    ``shown_above``: keys (``nodeid::label``) of checks whose failure report pytest
    printed in FAILURES."""
    if which == "none" or not records:
        return
    tr = terminalreporter
    bad = [r for r in records if record_status(r) in _NOTABLE]
    failing = [r for r in records if record_status(r) in _FAILING]
    tr.write_sep("=", "gradcheck")
    if verbosity < 0:
        for line, markup in table_lines(failing)[1:]:
            tr.write_line(line, **markup)
        for rec in records:  # a learner sees why, not only "1 inconclusive"
            if record_status(rec) == "inconclusive":
                tr.write_line(inconclusive_line(rec), **_MARKUP["inconclusive"])
        tr.write_line(count_line(records), **(_MARKUP["fail"] if failing else {"green": True}))
        return
    shown = records if which == "all" else bad
    if shown:
        for line, markup in table_lines(shown):
            tr.write_line(line, **markup)
    if which == "all":
        total = _histogram.add_histograms(r["result"].get("histogram") for r in records)
        if total and sum(total["counts"]):
            tr.write_line("")
            tr.write_line(f"error/tolerance ratio of all {sum(total['counts'])} checked entries "
                          f"in {len(records)} check{'s' if len(records) != 1 else ''} (an entry fails at ratio >= 1):")
            for line in _histogram.render(total, width=40):
                tr.write_line(line)
    for rec in (bad if verbosity > 0 else [r for r in records if record_status(r) in _FAILING + ("caught",)]):
        tr.write_line("")
        lines = detail_lines(rec, verbosity, shown_above=record_key(rec) in shown_above)
        tr.write_line(lines[0], **_MARKUP.get(record_status(rec), {}))
        for line in lines[1:]:
            tr.write_line(line)
    tr.write_line("")
    tr.write_line(count_line(records), **(_MARKUP["fail"] if failing else {"green": True}))
