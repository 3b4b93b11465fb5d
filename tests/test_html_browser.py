"""The HTML report in a real headless chromium (CDP over --remote-debugging-pipe, see browser.py).

One page of 1,000 real check records (the corpus's correct and buggy gradients) is loaded
once per module; each test resets the filters through the page's own controls.
"""

from __future__ import annotations

import json

import pytest

from browser import Chromium, corpus_records, find_chromium
from pytest_gradcheck.reporting import html_report, json_report
from pytest_gradcheck.reporting.baseline import compare, merge_baseline

pytestmark = pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed")

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
    page.click('#status-filter button[data-filter="all"]')
    page.evaluate("(function(){var i=document.getElementById('text-filter'); i.value=''; "
                  "i.dispatchEvent(new Event('input'));})()")
    return page


def _visible_keys(page):
    return page.evaluate(ROW_KEYS)


def test_loads_without_errors_and_shows_every_check(loaded, report, tmp_path_factory):
    page, seconds = loaded
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
    assert cards[:5] == [["all", str(N_CHECKS)], ["fail", str(counts["fail"])],
                         ["inconclusive", str(counts["inconclusive"])], ["pass", str(counts["pass"])],
                         ["regressed", "2"]]
    # default order: regressions first, then failures by decreasing ratio
    assert keys[:2] == sorted(report["regressed"], key=lambda k: -{c["key"]: c["ratio"] for c in report["data"]["checks"]}[k])
    render_ms = page.evaluate("window.gradcheckReport.renderMs")
    print(f"\n1,000 checks: {report['path'].stat().st_size / 1e6:.2f} MB, loaded in {seconds:.2f} s, "
          f"rendered in {render_ms:.0f} ms")
    assert render_ms < 5000
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
    assert page.evaluate(f"document.querySelectorAll('.details').length") == 0
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
    assert page.evaluate("document.querySelectorAll('.details').length") == 0
    assert page.console_errors == []


def test_regression_link_reveals_the_check(page, report):
    page.click('#status-filter button[data-filter="pass"]')
    links = page.evaluate("Array.from(document.querySelectorAll('#table-regressions a')).map(function (a) { return a.textContent; })")
    assert sorted(links) == sorted(report["regressed"])
    page.click("#table-regressions a")
    state = page.evaluate("""(function () {
        var d = document.querySelector('.details'), row = d.previousElementSibling, r = row.getBoundingClientRect();
        return {key: row.getAttribute('data-key'), inView: r.top >= 0 && r.bottom <= window.innerHeight,
                rows: document.querySelectorAll('#rows .row').length,
                reg: (d.querySelector('.regline') || {}).textContent || ''};
    })()""")
    assert state["key"] == links[0] and state["inView"]
    assert state["rows"] == N_CHECKS  # filters were reset to show it
    assert state["reg"].startswith("regression: now fails (pass -> fail)")
    page.click(f'.row[data-key={json.dumps(links[0])}]')
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
