"""The HTML report in a real headless chromium (CDP over --remote-debugging-pipe, see browser.py).

One page of 1,000 real check records (the corpus's correct and buggy gradients) is loaded
once per module; each test resets the filters through the page's own controls.
"""

from __future__ import annotations

import json
import os

import pytest

from browser import Chromium, corpus_records, find_chromium
from pytest_gradcheck.reporting import html_report, json_report
from pytest_gradcheck.reporting.baseline import compare, merge_baseline

# skipped without a browser on a developer's machine; in CI (env CI set, as .ci/run does) a
# missing browser is an error (Chromium() raises "chromium not found"), never a silent skip
pytestmark = pytest.mark.skipif(find_chromium() is None and not os.environ.get("CI"),
                                reason="chromium is not installed")
pytest_plugins = ["pytester"]

N_CHECKS = 1000

ROW_KEYS = "Array.from(document.querySelectorAll('#rows .row')).map(function (r) { return r.getAttribute('data-key'); })"


@pytest.fixture(scope="module")
def browser():
    with Chromium() as b:
        yield b


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    records = corpus_records(N_CHECKS)
    base = merge_baseline(records)
    regressed = [r for r in records if r["result"]["status"] == "fail"][:2]
    for r in regressed:  # pretend these passed when the baseline was written
        base["checks"][json_report.record_key(r)].update(status="pass", max_ratio=0.02)
    rep = json_report.build_report(records, compare(base, records),
                                   baseline={"path": ".gradcheck/baseline.json", "context_warnings": []})
    path = tmp_path_factory.mktemp("html") / "report.html"
    html_report.write_html(path, rep)
    data = html_report.extract_data(path.read_text())
    return {"path": path, "report": rep, "data": data, "regressed": [json_report.record_key(r) for r in regressed]}


@pytest.fixture(scope="module")
def loaded(browser, report):
    page = browser.new_page(width=1280, height=900)
    seconds = page.navigate(report["path"].as_uri())
    return page, seconds


@pytest.fixture
def page(loaded):
    page, _ = loaded
    # in front: a test that opened a page of its own earlier left this one in the background,
    # where animation frames (which click() waits for) never come (order-dependent timeouts)
    page.send("Page.bringToFront")
    page.click('#status-filter button[data-filter="all"]')
    page.evaluate("(function(){var i=document.getElementById('text-filter'); i.value=''; "
                  "i.dispatchEvent(new Event('input'));})()")
    return page


def _visible_keys(page):
    return page.evaluate(ROW_KEYS)


def test_loads_without_errors_and_shows_every_check(browser, report, tmp_path_factory):
    # a page of its own: the module's shared page keeps the sort order other tests chose, and the
    # default order is checked here (under pytest-randomly those tests ran first)
    page = browser.new_page(width=1280, height=900)
    seconds = page.navigate(report["path"].as_uri())
    assert page.evaluate("document.body.getAttribute('data-rendered')") == "1"
    assert page.console_errors == []
    assert page.requests == [report["path"].as_uri()]  # nothing but the file itself
    keys = _visible_keys(page)
    assert len(keys) == N_CHECKS and len(set(keys)) == N_CHECKS
    assert set(keys) == {c["key"] for c in report["data"]["checks"]}
    assert page.evaluate("document.getElementById('shown').textContent") == f"showing {N_CHECKS} of {N_CHECKS} checks"
    counts = report["report"]["summary"]["counts"]
    cards = page.evaluate("Array.from(document.querySelectorAll('#cards .card')).map(function (c) {"
                          " return [c.getAttribute('data-filter'), c.querySelector('.n').textContent]; })")
    assert cards[:6] == [["all", str(N_CHECKS)], ["fail", str(counts["fail"])], ["error", str(counts["error"])],
                         ["inconclusive", str(counts["inconclusive"])], ["pass", str(counts["pass"])],
                         ["regressed", "2"]]
    # default order: regressions first, then failures by decreasing ratio
    assert keys[:2] == sorted(report["regressed"], key=lambda k: -{c["key"]: c["ratio"] for c in report["data"]["checks"]}[k])
    render_ms = page.evaluate("window.gradcheckReport.renderMs")
    print(f"\n1,000 checks: {report['path'].stat().st_size / 1e6:.2f} MB, loaded in {seconds:.2f} s, "
          f"rendered in {render_ms:.0f} ms")
    assert render_ms > 0  # the page measured its own rendering (a time, reported, never a threshold)
    shot = page.screenshot(str(tmp_path_factory.mktemp("shots") / "report.png"))
    with open(shot, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def _expected_order(checks, key, descending):
    """The page's order for a numeric column: stable, missing values last in both directions."""
    sign = -1 if descending else 1
    have = sorted((i for i, c in enumerate(checks) if c[key] is not None), key=lambda i: (sign * checks[i][key], i))
    return [checks[i]["key"] for i in have] + [c["key"] for c in checks if c[key] is None]


def test_sorting_by_clicking_headers(page, report):
    checks = report["data"]["checks"]
    page.click('#head-row [data-key="ratio"]')  # numbers: largest first
    keys = _visible_keys(page)
    ratios = {c["key"]: c["ratio"] for c in checks}
    assert keys == _expected_order(checks, "ratio", descending=True)
    assert ratios[keys[0]] == max(r for r in ratios.values() if r is not None)
    assert page.evaluate("document.querySelector('#head-row [data-key=\"ratio\"]').getAttribute('aria-sort')") == "descending"
    page.click('#head-row [data-key="ratio"]')  # again: smallest first
    keys = _visible_keys(page)
    assert keys == _expected_order(checks, "ratio", descending=False)
    assert page.evaluate("document.querySelector('#head-row [data-key=\"ratio\"]').getAttribute('aria-sort')") == "ascending"
    page.click('#head-row [data-key="nodeid"]')  # text: a-z, stable
    keys = _visible_keys(page)
    by_node = sorted(range(len(checks)), key=lambda i: (checks[i]["nodeid"], i))
    assert keys == [checks[i]["key"] for i in by_node]
    page.click('#head-row [data-key="n_evals"]')
    keys = _visible_keys(page)
    evals = [{c["key"]: c["n_evals"] for c in checks}[k] for k in keys]
    assert evals == sorted(evals, reverse=True)
    assert page.console_errors == []


def test_filtering_by_status_and_text(page, report):
    checks = report["data"]["checks"]
    for status in ("fail", "pass", "inconclusive"):
        page.click(f'#status-filter button[data-filter="{status}"]')
        keys = _visible_keys(page)
        assert sorted(keys) == sorted(c["key"] for c in checks if c["status"] == status)
        assert set(page.evaluate("Array.from(document.querySelectorAll('#rows .row')).map(function (r) {"
                                 " return r.getAttribute('data-status'); })")) <= {status}
    page.click('#status-filter button[data-filter="regressed"]')
    assert sorted(_visible_keys(page)) == sorted(report["regressed"])
    # text: typed into the box, several words must all match
    page.click('#status-filter button[data-filter="all"]')
    page.type_text("#text-filter", "test_models_3.py:: logreg")
    expected = [c["key"] for c in checks if "test_models_3.py::" in c["nodeid"] and "logreg" in c["nodeid"]]
    assert expected and sorted(_visible_keys(page)) == sorted(expected)
    assert page.evaluate("document.getElementById('shown').textContent") == f"showing {len(expected)} of {N_CHECKS} checks"
    # text and status together, then a text nothing matches
    page.click('#status-filter button[data-filter="fail"]')
    both = [c["key"] for c in checks if c["key"] in expected and c["status"] == "fail"]
    assert sorted(_visible_keys(page)) == sorted(both)
    page.type_text("#text-filter", " no-such-check")
    assert _visible_keys(page) == []
    assert page.evaluate("getComputedStyle(document.getElementById('empty')).display") != "none"
    assert page.console_errors == []


def test_row_expands_into_details(page, report, tmp_path_factory):
    checks = report["data"]["checks"]
    c = next(c for c in checks if c["status"] == "fail" and c["key"] not in report["regressed"]
             and any(leaf.get("ratio_grid") for leaf in c["leaves"])
             and any(e.get("sweep") for e in (c["diagnosis"] or {}).get("entries", [])))
    page.type_text("#text-filter", c["nodeid"])
    sel = f'.row[data-key={json.dumps(c["key"])}]'
    if page.evaluate(f"document.querySelector({json.dumps(sel)}).classList.contains('open')"):
        page.click(sel)  # opened with the page (a failure): close it first
    assert page.evaluate(f"document.querySelector({json.dumps(sel)}).nextElementSibling === null || "
                         f"!document.querySelector({json.dumps(sel)}).nextElementSibling.classList.contains('details')")
    page.click(sel)
    info = page.evaluate(f"""(function () {{
        var row = document.querySelector({json.dumps(sel)}), d = row.nextElementSibling;
        return {{
          isDetails: d.classList.contains('details'),
          bars: Array.from(d.querySelectorAll('svg.histogram rect[data-count]')).map(function (r) {{ return Number(r.getAttribute('data-count')); }}),
          tolLine: d.querySelectorAll('svg.histogram line.tol').length,
          heatCells: Array.from(d.querySelectorAll('svg.heatmap')).map(function (s) {{ return s.querySelectorAll('rect').length; }}),
          series: d.querySelectorAll('svg.sweep-plot path.series').length,
          tolCurves: d.querySelectorAll('svg.sweep-plot path.tol-curve').length,
          worstRows: d.querySelectorAll('table.worst tbody tr').length,
          diagnosis: (d.querySelector('.diag') || {{}}).textContent || '',
          text: d.textContent
        }};
    }})()""")
    assert info["isDetails"]
    assert info["bars"] == c["histogram"]["counts"]
    assert info["tolLine"] == 1
    grids = [leaf["ratio_grid"] for leaf in c["leaves"] if leaf.get("ratio_grid")]
    assert info["heatCells"] == [len(g) * len(g[0]) for g in grids]
    swept = [e for e in c["diagnosis"]["entries"] if e.get("sweep")]
    assert info["series"] == len(swept) and info["tolCurves"] == len(swept)
    assert info["worstRows"] == len(c["worst"])
    assert info["diagnosis"].startswith("diagnosis: ") and c["diagnosis"]["summary"][:60] in info["diagnosis"]
    assert c["worst"][0]["leaf"] in info["text"]
    page.evaluate(f"document.querySelector({json.dumps(sel)}).nextElementSibling.scrollIntoView()")
    page.evaluate("window.scrollBy(0, -40)")
    page.screenshot(str(tmp_path_factory.mktemp("shots") / "details.png"))
    page.click(sel)  # collapses again
    assert not page.evaluate(f"document.querySelector({json.dumps(sel)}).classList.contains('open')")
    assert page.evaluate(f"Array.from(document.querySelectorAll('.details')).every(function (d) {{"
                         f" return d.getAttribute('data-i') !== document.querySelector({json.dumps(sel)}).getAttribute('data-i'); }})")
    assert page.console_errors == []


def test_regression_link_reveals_the_check(page, report):
    page.click('#status-filter button[data-filter="pass"]')
    links = page.evaluate("Array.from(document.querySelectorAll('#table-regressions a')).map(function (a) { return a.textContent; })")
    assert sorted(links) == sorted(report["regressed"])
    page.click("#table-regressions a")
    sel = f'.row[data-key={json.dumps(links[0])}]'
    state = page.evaluate(f"""(function () {{
        var row = document.querySelector({json.dumps(sel)}), d = row.nextElementSibling, r = row.getBoundingClientRect();
        return {{open: row.classList.contains('open') && d.classList.contains('details'),
                inView: r.top >= 0 && r.bottom <= window.innerHeight,
                rows: document.querySelectorAll('#rows .row').length,
                reg: (d.querySelector('.regline') || {{}}).textContent || ''}};
    }})()""")
    assert state["open"] and state["inView"]
    assert state["rows"] == N_CHECKS  # filters were reset to show it
    assert state["reg"].startswith("regression: now fails (pass -> fail)")
    assert page.console_errors == []


def test_empty_report(browser, tmp_path):
    path = tmp_path / "empty.html"
    html_report.write_html(path, json_report.build_report([], []))
    page = browser.new_page()
    page.navigate(path.as_uri())
    assert page.evaluate(ROW_KEYS) == []
    assert page.evaluate("getComputedStyle(document.getElementById('empty')).display") != "none"
    assert page.evaluate("document.querySelector('#cards .card .n').textContent") == "0"
    assert page.console_errors == []


# ---------------------------------------------------------------- the report speaks first

def _state_of_open_rows(page):
    return page.evaluate("""(function () {
        return Array.from(document.querySelectorAll('#rows .row')).map(function (r) {
          var d = r.nextElementSibling, open = r.classList.contains('open');
          var first = open ? d.querySelector('.diagnosis, .regline') : null, plot = open ? d.querySelector('svg') : null;
          return {key: r.getAttribute('data-key'), status: r.getAttribute('data-status'), open: open,
                  details: !!d && d.classList.contains('details'),
                  firstText: first ? first.textContent : null,
                  diagnosisBeforePlots: !plot || (!!first && !!(first.compareDocumentPosition(plot) & Node.DOCUMENT_POSITION_FOLLOWING))};
        });
    })()""")


def test_failures_open_at_start_with_the_diagnosis_before_the_plots(browser, report):
    page = browser.new_page(width=1280, height=900)
    page.navigate(report["path"].as_uri())
    rows = _state_of_open_rows(page)
    failing = [r for r in rows if r["status"] in ("fail", "error")]
    n_open = page.evaluate("window.gradcheckReport.openAtStart")
    assert len(failing) > n_open  # the 1,000-check page has more failures than open with it
    # the worst failures in the table's order open with the page, and nothing else
    assert [r["key"] for r in rows if r["open"]] == [r["key"] for r in failing[:n_open]]
    assert all(r["details"] for r in rows if r["open"])
    checks = {c["key"]: c for c in report["data"]["checks"]}
    for r in rows:
        if r["open"]:
            assert r["diagnosisBeforePlots"], r["key"]
            assert r["firstText"].startswith("diagnosis: " + checks[r["key"]]["diagnosis"]["summary"][:40])
    assert page.evaluate("document.getElementById('opened').textContent").startswith(
        f"The {n_open} worst of {len(failing)} failed or unfinished checks are open below")
    assert page.console_errors == []


def _small_report_records():
    """Real check records: passes at two ratios, a real bug, a real fast-mode pass, an unfinished check."""
    from corpus import BUGS, CORRECT

    from pytest_gradcheck import check_gradient

    good = next(c for c in CORRECT if not c.kink)
    bug = next(b for b in BUGS if b.gross)
    passed = check_gradient(good.fun, good.params(), good.grad).to_dict()
    low, near = json.loads(json.dumps(passed)), json.loads(json.dumps(passed))
    low["max_ratio"], near["max_ratio"] = 0.2, 0.7  # a comfortable pass and one within 2x of the tolerance
    failed = check_gradient(bug.fun, bug.params(), bug.grad).to_dict()
    fast = check_gradient(good.fun, good.params(), good.grad, mode="fast").to_dict()
    assert fast["n_checked"] == 0 and fast["max_abs_error"] == 0.0  # what the numerics store: not a measurement
    error = {"status": "error", "passed": False, "kind": "gradient"}
    long_label = "batchnorm_net, train mode, running statistics frozen, float64"
    recs = [("tests/test_a.py::test_low", "check", low), ("tests/test_a.py::test_near", long_label, near),
            ("tests/test_a.py::test_bug", "check", failed), ("tests/test_b.py::test_fast", "fast", fast),
            ("tests/test_b.py::test_fast", "crash", error)]
    out = [{"nodeid": n, "label": lab, "duration_s": 0.01, "result": res} for n, lab, res in recs]
    out[-1]["error"] = {"type": "user_code", "exception": "ValueError", "message": "boom"}
    return out, long_label


def test_colours_dashes_full_labels_and_totals(browser, tmp_path):
    records, long_label = _small_report_records()
    counts = {"passed": 3, "failed": 3, "skipped": 1}
    path = tmp_path / "small.html"
    html_report.write_html(path, json_report.build_report(records, [], pytest_counts=counts))  # no baseline
    page = browser.new_page(width=1280, height=900)
    page.navigate(path.as_uri())
    cells = page.evaluate("""(function () {
        var out = {};
        document.querySelectorAll('#rows .row').forEach(function (r) {
          var c = r.children, label = c[2];
          out[r.getAttribute('data-key')] = {
            bar: c[3].querySelector('.bar i') ? getComputedStyle(c[3].querySelector('.bar i')).backgroundColor : null,
            ratio: c[3].firstChild.textContent, abs: c[4].textContent, rel: c[5].textContent, evals: c[6].textContent,
            absTitle: c[4].getAttribute('title') || '', evalsTitle: c[6].getAttribute('title') || '',
            label: label.textContent, labelTitle: label.getAttribute('title'),
            labelCut: label.scrollWidth > label.clientWidth || getComputedStyle(label).textOverflow === 'ellipsis'};
        });
        return out;
    })()""")
    grey, amber, red = "rgb(140, 149, 159)", "rgb(212, 167, 44)", "rgb(207, 34, 46)"
    assert cells["tests/test_a.py::test_low::check"]["bar"] == grey   # passing, far from the tolerance: no warning
    near = cells[f"tests/test_a.py::test_near::{long_label}"]
    assert near["bar"] == amber                                        # within a factor 2 of failing
    assert cells["tests/test_a.py::test_bug::check"]["bar"] == red
    # the full label, wrapped, never cut
    assert near["label"] == near["labelTitle"] == long_label and not near["labelCut"]
    # fast mode measured its probes' ratio, not the entry errors: a dash that says why, not 0
    fast = cells["tests/test_b.py::test_fast::fast"]
    assert fast["ratio"] not in ("\u2013", "0") and (fast["abs"], fast["rel"]) == ("\u2013", "\u2013")
    assert fast["absTitle"].startswith("not measured: fast mode compared no single entry")
    crash = cells["tests/test_b.py::test_fast::crash"]
    assert crash["evals"] == crash["abs"] == "\u2013" and crash["evalsTitle"] == "not measured: the check did not finish"
    # no baseline compared: no regressions card, no regressed filter
    assert page.evaluate("document.querySelectorAll('[data-filter=\"regressed\"]').length") == 0
    assert "regression" not in page.evaluate("document.getElementById('cards').textContent")
    # checks and tests reconciled in one sentence
    tally = page.evaluate("document.getElementById('tally').textContent")
    assert tally.startswith("pytest counts tests, this report counts checks: 4 tests ran 5 checks (1 failed, "
                            "1 errored (did not finish), 3 passed).")
    assert "pytest's count of the same session: 3 failed, 3 passed; not run: 1 skipped." in tally
    assert "The other 2 tests that ran made no gradient check" in tally
    assert "2 tests stopped at a failing or unfinished check" in tally
    # every column, card and field explained: a tooltip on each, and the legend names every column
    heads = page.evaluate("Array.from(document.querySelectorAll('#head-row > div')).map(function (h) {"
                          " return [h.textContent, h.getAttribute('title') || '']; })")
    assert all(len(tip) > 20 for _, tip in heads)
    legend = page.evaluate("Array.from(document.querySelectorAll('#legend-list dt')).map(function (d) { return d.textContent; })")
    assert {h.rstrip("\u25b2\u25bc") for h, _ in heads} <= set(legend)
    assert page.evaluate("Array.from(document.querySelectorAll('#cards .card')).every(function (c) { return !!c.title; })")
    # the failure is open: its likely cause in words (not a bare "kind bug"), every field of its details explained
    bug = page.evaluate("""(function () {
        var d = document.querySelector('.row[data-key="tests/test_a.py::test_bug::check"]').nextElementSibling;
        return {cause: (d.querySelector('.cause') || {}).textContent || '',
                untitled: Array.from(d.querySelectorAll('.field, th')).filter(function (f) { return !f.title; }).length};
    })()""")
    assert bug["cause"].startswith("likely cause: bug \u2014 your gradient code is wrong") and bug["untitled"] == 0
    assert page.console_errors == []
    page.screenshot(str(tmp_path / "small.png"))


TEST_FILE = """
import numpy as np
import pytest

def f(x):
    return float((x ** 3).sum())

def test_plain():
    assert True

def test_plain_fails():
    assert False

def test_two_checks_the_first_fails(gradcheck):
    gradcheck(f, np.array([0.3, -0.7]), lambda x: 3 * x ** 2 + 1e-2, label="first")
    gradcheck(f, np.array([0.3, -0.7]), lambda x: 3 * x ** 2, label="never runs")

def test_good(gradcheck):
    gradcheck(f, np.array([0.3, -0.7]), lambda x: 3 * x ** 2)

@pytest.mark.skip(reason="not today")
def test_skipped(gradcheck):
    gradcheck(f, np.array([0.3]), lambda x: 3 * x ** 2)

@pytest.mark.xfail(reason="known bug")
def test_known_bug(gradcheck):
    gradcheck(f, np.array([0.3]), lambda x: 2 * x ** 2)
"""


def test_a_real_runs_report_reconciles_with_pytests_line(browser, pytester):
    """pytest says 2 failed, 2 passed, 1 skipped, 1 xfailed; the report names the same and its own checks."""
    pytester.makepyfile(test_m=TEST_FILE)
    res = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "--gradcheck-html=r.html")
    res.assert_outcomes(passed=2, failed=2, skipped=1, xfailed=1)
    page = browser.new_page(width=1280, height=900)
    page.navigate((pytester.path / "r.html").as_uri())
    tally = page.evaluate("document.getElementById('tally').textContent")
    assert tally.startswith("pytest counts tests, this report counts checks: 3 tests ran 3 checks "
                            "(1 failed, 1 xfailed, 1 passed).")
    assert "pytest's count of the same session: 2 failed, 1 xfailed, 2 passed; not run: 1 skipped." in tally
    assert "The other 2 tests that ran made no gradient check" in tally  # test_plain, test_plain_fails
    assert "2 tests stopped at a failing or unfinished check" in tally
    assert page.evaluate("document.querySelectorAll('[data-filter=\"regressed\"]').length") == 0
    assert page.console_errors == []
