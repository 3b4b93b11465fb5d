"""The report and baseline files: assets shipped as package data, safe writes, validated loads."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from pytest_gradcheck.reporting import files, html_report

pytest_plugins = ["pytester"]

ROOT = pathlib.Path(__file__).resolve().parents[1]
ASSET_DIR = ROOT / "pytest_gradcheck" / "reporting" / "assets"


# ---------------------------------------------------------------- HTML assets as package data

def test_every_asset_is_read_and_inlined():
    page = html_report.render({"summary": {"total": 0}}, title="t")
    for name in html_report.ASSETS:
        text = html_report.asset(name)
        assert text.strip(), name
    assert html_report.asset("report.css") in page
    assert html_report.asset("report.js") in page
    # every placeholder of the skeleton was filled
    for placeholder in ("__TITLE__", "__CSS__", "__NOSCRIPT__", "__JS__", "__DATA__"):
        assert placeholder in html_report.asset("report.html")
        assert placeholder not in page


def test_unknown_asset_is_named():
    with pytest.raises(ValueError, match="report.svg"):
        html_report.asset("report.svg")


def test_package_data_globs_cover_every_asset_file():
    """A new file in assets/ that the pyproject globs miss would be absent from the wheel."""
    tomllib = pytest.importorskip("tomllib")
    import fnmatch

    conf = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = conf["tool"]["setuptools"]["package-data"]["pytest_gradcheck.reporting"]
    files = sorted(p.name for p in ASSET_DIR.iterdir() if p.is_file())
    assert set(html_report.ASSETS) <= set(files)
    for name in files:
        assert any(fnmatch.fnmatch(f"assets/{name}", g) for g in globs), (name, globs)


# ---------------------------------------------------------------- concurrent baseline updates (#13.12)

RUN = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")

#: a test that checks one gradient, then waits until the other run has checked its own: both runs
#: have read the baseline (at start) before either writes it (at the end), every time
BARRIER_TEST = """
import pathlib, time
import numpy as np

def test_{name}(gradcheck):
    gradcheck(lambda x: float((x ** 2).sum()), np.ones(3), lambda x: 2 * x)
    pathlib.Path("ready-{name}").touch()
    deadline = time.monotonic() + 60
    while not pathlib.Path("ready-{other}").exists():
        assert time.monotonic() < deadline, "the other run never got here"
        time.sleep(0.01)
"""


def _child_env():
    """A clean child: none of this run's options, xdist state or current test; this checkout first."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST") and not k.startswith("PYTEST_XDIST")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def test_two_concurrent_updates_keep_both_runs_entries(tmp_path):
    for name, other in (("a", "b"), ("b", "a")):
        (tmp_path / f"test_{name}.py").write_text(BARRIER_TEST.format(name=name, other=other))
    procs = [subprocess.Popen([sys.executable, "-m", "pytest", f"test_{name}.py", *RUN, "--gradcheck-update-baseline"],
                              cwd=tmp_path, env=_child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
             for name in ("a", "b")]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out
        assert "gradcheck baseline updated" in out, out
    checks = json.loads((tmp_path / ".gradcheck" / "baseline.json").read_text())["checks"]
    assert set(checks) == {"test_a.py::test_a::check", "test_b.py::test_b::check"}
    assert sorted(p.name for p in (tmp_path / ".gradcheck").iterdir()) == ["baseline.json"]  # no lock, no temp


def test_lock_serialises_holders_and_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "b.json"
    for backend in ("flock", "exclusive-create"):
        if backend == "exclusive-create":
            monkeypatch.setattr(files, "fcntl", None)  # the portable fallback (Windows)
        elif files.fcntl is None:
            continue
        with files.locked(target) as lock_path:
            assert os.path.exists(lock_path)
            with pytest.raises(files.LockTimeout, match=re.escape(lock_path)):
                with files.locked(target, timeout=0.1):
                    pass
        assert list(tmp_path.iterdir()) == []
        with files.locked(target):  # free again
            pass


def test_interrupted_write_leaves_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "r.json"
    target.write_text("old\n")

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        files.write_text_atomic(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


QUAD_TEST = """
import numpy as np

def test_quad(gradcheck):
    gradcheck(lambda x: float((x ** 2).sum()), np.ones(3), lambda x: 2 * x)
"""


def test_interrupt_while_updating_the_baseline_prints_one_line(pytester, monkeypatch):
    pytester.makepyfile(test_m=QUAD_TEST)
    assert pytester.runpytest(*RUN, "--gradcheck-update-baseline").ret == 0
    path = pytester.path / ".gradcheck" / "baseline.json"
    data = json.loads(path.read_text())
    data["checks"]["other.py::t::check"] = dict(data["checks"]["test_m.py::test_quad::check"], nodeid="other.py::t")
    data["checks"]["test_m.py::test_quad::check"]["max_ratio"] = 0.5  # so that the next run rewrites the file
    path.write_text(json.dumps(data))
    before = path.read_text()
    real_replace = os.replace

    def ctrl_c_at_the_baseline(src, dst, *args, **kwargs):
        if os.fspath(dst).endswith("baseline.json"):
            raise KeyboardInterrupt
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", ctrl_c_at_the_baseline)
    res = pytester.runpytest(*RUN, "--gradcheck-update-baseline")
    monkeypatch.undo()
    assert res.ret == pytest.ExitCode.INTERRUPTED
    err = res.stderr.str() + res.stdout.str()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    res.stderr.fnmatch_lines(["Exit: gradcheck: interrupted while writing the baseline/reports*"])
    assert path.read_text() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["baseline.json"]


# ---------------------------------------------------------------- symlinks, modes, read-only files (#13.13)

def test_write_through_a_symlink_keeps_the_link_and_the_mode(tmp_path):
    target = tmp_path / "shared" / "report.json"
    target.parent.mkdir()
    target.write_text("old\n")
    target.chmod(0o640)
    link = tmp_path / "out" / "report.json"
    link.parent.mkdir()
    link.symlink_to(target)
    files.write_text_atomic(link, "new\n")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new\n"
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.json"]
    # a dangling link creates its target
    (tmp_path / "out" / "new.json").symlink_to(tmp_path / "shared" / "new.json")
    files.write_text_atomic(tmp_path / "out" / "new.json", "x\n")
    assert (tmp_path / "shared" / "new.json").read_text() == "x\n"
    assert (tmp_path / "out" / "new.json").is_symlink()


def test_read_only_and_special_targets_are_refused(tmp_path):
    ro = tmp_path / "baseline.json"
    ro.write_text("keep\n")
    ro.chmod(0o444)
    link = tmp_path / "link.json"
    link.symlink_to(ro)
    for path in (ro, link):
        with pytest.raises(files.RefusedTarget, match=r"read-only \(mode 444\).*chmod u\+w") as info:
            files.write_text_atomic(path, "new\n")
        assert str(path) in str(info.value)
    assert "a link to" in str(info.value)
    assert ro.read_text() == "keep\n"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(files.RefusedTarget, match="not a regular file"):
        files.write_text_atomic(fifo, "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baseline.json", "fifo", "link.json"]


def test_symlinked_baseline_and_report_are_written_through(pytester):
    pytester.makepyfile(test_m=QUAD_TEST)
    shared = pytester.path / "shared"
    shared.mkdir()
    (pytester.path / ".gradcheck").mkdir()
    (pytester.path / ".gradcheck" / "baseline.json").symlink_to(shared / "baseline.json")
    (pytester.path / "report.html").symlink_to(shared / "report.html")
    res = pytester.runpytest(*RUN, "--gradcheck-update-baseline", "--gradcheck-html=report.html")
    assert res.ret == 0, res.stdout.str()
    assert (pytester.path / ".gradcheck" / "baseline.json").is_symlink()
    assert (pytester.path / "report.html").is_symlink()
    assert "test_m.py::test_quad::check" in json.loads((shared / "baseline.json").read_text())["checks"]
    assert "gradcheck-data" in (shared / "report.html").read_text()


def test_read_only_baseline_is_a_usage_error_before_the_tests(pytester):
    pytester.makepyfile(test_m=QUAD_TEST)
    assert pytester.runpytest(*RUN, "--gradcheck-update-baseline").ret == 0
    path = pytester.path / ".gradcheck" / "baseline.json"
    before = path.read_text()
    path.chmod(0o444)
    res = pytester.runpytest(*RUN, "--gradcheck-update-baseline")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines(["*gradcheck: *baseline.json is read-only (mode 444)*chmod u+w*"])
    assert "passed" not in res.stdout.str()
    assert path.read_text() == before
    assert pytester.runpytest(*RUN, "--gradcheck-baseline").ret == 0  # comparing never writes: allowed


# ---------------------------------------------------------------- baseline content validated at load (#13.14)

def _baseline_text(**entry_fields):
    entry = {"nodeid": "t.py::t", "label": "check", "status": "pass", "max_ratio": 0.02, "max_rel_error": 1e-9,
             "n_evals": 10, "method": "central", "mode": "full", "kind": "gradient", "dtypes": ["float64"]}
    entry.update(entry_fields)
    return json.dumps({"version": 1, "tool": "pytest-gradcheck", "context": {}, "checks": {"t.py::t::check": entry}})


@pytest.mark.parametrize("text, words", [
    (_baseline_text(dtypes=5), "'t.py::t::check' has dtypes = 5; expected a list of dtype names"),
    (_baseline_text(dtypes=["float64", 3]), "has dtypes = ['float64', 3]"),
    (_baseline_text(max_ratio=float("nan")), "'t.py::t::check' has max_ratio = nan; expected a finite number"),
    (_baseline_text(max_rel_error=float("inf")), "has max_rel_error = inf"),
    (_baseline_text().replace("0.02", "1e999"), "has max_ratio = inf"),
    (_baseline_text(max_ratio=-1.0), "has max_ratio = -1.0"),
    (_baseline_text(max_ratio=True), "non-numeric max_ratio (a boolean true)"),
    (_baseline_text(n_evals=2.5), "has n_evals = 2.5; expected a whole number"),
    (_baseline_text(n_evals="10"), "has n_evals = '10'"),
    (_baseline_text(method=["central"]), "has method = ['central']; expected a string"),
    (_baseline_text(status=1), "is malformed (needs a 'status' string)"),
    (_baseline_text().replace('"context": {}', '"context": [1]'), "'context' is a list [1], expected an object"),
    (_baseline_text().replace('"tool": "pytest-gradcheck"', '"tool": 3'), "'tool' is a number 3"),
    (_baseline_text().replace('"version": 1', '"version": true'), "has version True"),
])
def test_bad_baseline_content_names_the_file_and_the_key(tmp_path, text, words):
    from pytest_gradcheck.reporting import baseline as bl

    path = tmp_path / "baseline.json"
    path.write_text(text)
    with pytest.raises(bl.BaselineError) as info:
        bl.load_baseline(path)
    assert str(path) in str(info.value) and words in str(info.value)


def test_valid_baseline_content_loads(tmp_path):
    from pytest_gradcheck.reporting import baseline as bl

    path = tmp_path / "baseline.json"
    path.write_text(_baseline_text(max_ratio=None, max_rel_error=0, method=None, extra_field={"kept": 1}))
    assert bl.load_baseline(path)["checks"]["t.py::t::check"]["extra_field"] == {"kept": 1}


def test_bad_baseline_content_is_a_usage_error_not_a_traceback(pytester):
    pytester.makepyfile(test_m=QUAD_TEST)
    (pytester.path / ".gradcheck").mkdir()
    (pytester.path / ".gradcheck" / "baseline.json").write_text(_baseline_text(dtypes=5))
    for flag in ("--gradcheck-update-baseline", "--gradcheck-baseline"):
        res = pytester.runpytest(*RUN, flag)
        assert res.ret == pytest.ExitCode.USAGE_ERROR
        res.stderr.fnmatch_lines(["*baseline.json*entry 't.py::t::check' has dtypes = 5*"])
        assert "Traceback" not in res.stderr.str() + res.stdout.str()


# ---------------------------------------------------------------- rerun commands are quoted for the shell (#13.15)

#: node ids that would run ``touch PWNED`` if pasted into a shell unquoted or naively quoted
HOSTILE_NODEIDS = [
    "tests/t.py::test_x[x'; touch PWNED; echo ']",
    "tests/t.py::test_x[$(touch PWNED)]",
    "tests/t.py::test_x[`touch PWNED`]",
    'tests/t.py::test_x[a"; touch PWNED; echo "]',
    "tests/t.py::test_x[a\ntouch PWNED]",
    "tests/t.py::test_x[;touch PWNED #]",
    "tests/t.py::test_x[a b\\' \\\\]",
    "-k; touch PWNED",
]


def _run_pasted(command: str, tmp_path) -> list[str]:
    """Run ``command`` in bash as if pasted, with ``pytest`` a stub that prints its arguments;
    return those arguments and check that nothing else ran."""
    stub_dir = tmp_path / "bin"
    stub_dir.mkdir(exist_ok=True)
    stub = stub_dir / "pytest"
    stub.write_text("#!/bin/sh\nprintf '%s\\0' \"$@\"\n")
    stub.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    env = dict(os.environ, PATH=f"{stub_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    out = subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True, timeout=30)
    assert list(work.iterdir()) == [], f"{command!r} created {list(work.iterdir())}"
    assert out.returncode == 0, out.stderr
    return out.stdout.decode().split("\0")[:-1]


def _check_record(nodeid: str) -> dict:
    import numpy as np

    from pytest_gradcheck import check_gradient

    res = check_gradient(lambda x: float((x ** 2).sum()), np.ones(2), lambda x: 2 * x).to_dict()
    return {"nodeid": nodeid, "label": "check", "duration_s": 0.01, "result": json.loads(json.dumps(res))}


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_html_rerun_commands_run_pytest_and_nothing_else(tmp_path):
    from pytest_gradcheck.reporting import json_report

    report = json_report.build_report([_check_record(n) for n in HOSTILE_NODEIDS], [])
    data = html_report.extract_data(html_report.render(report))
    assert [c["nodeid"] for c in data["checks"]] == HOSTILE_NODEIDS
    assert "rerun" not in report["checks"][0]  # the caller's report is not modified
    for check in data["checks"]:
        assert _run_pasted(check["rerun"], tmp_path) == [check["nodeid"]]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_rerun_command_as_the_browser_shows_it(tmp_path):
    """The text a user copies from the page, not only the embedded data."""
    browser_mod = pytest.importorskip("browser")
    if browser_mod.find_chromium() is None:
        pytest.skip("chromium is not installed")
    from pytest_gradcheck.reporting import json_report

    nodeid = HOSTILE_NODEIDS[0]
    path = tmp_path / "report.html"
    html_report.write_html(path, json_report.build_report([_check_record(nodeid)], []))
    with browser_mod.Chromium() as browser:
        page = browser.new_page()
        page.navigate(path.as_uri())
        page.click("#rows .row")
        shown = page.evaluate("Array.from(document.querySelectorAll('.details p')).map(function (p) "
                              "{ return p.textContent; }).filter(function (t) { return t.startsWith('rerun: '); })")
        assert len(shown) == 1
        shown = shown[0][len("rerun: "):]
        assert page.console_errors == []
    assert _run_pasted(shown, tmp_path) == [nodeid]


# ---------------------------------------------------------------- control characters (#13.16)

HOSTILE = "\x1b]0;owned\x07\x1b[2J\r\x08\u202e\x85"
CONTROL_TEST = '''
import numpy as np

LABEL = {label!r}
LEAF = {leaf!r}

def test_controls(gradcheck):
    x = {{LEAF: np.array([0.3, -0.7])}}
    gradcheck(lambda p: float((p[LEAF] ** 2).sum()), x, lambda p: {{LEAF: 2 * p[LEAF]}}, label=LABEL + "ok")
    gradcheck(lambda p: float((p[LEAF] ** 2).sum()), x, lambda p: {{LEAF: 3 * p[LEAF]}}, label=LABEL)
'''


def test_safe_text_escapes():
    from pytest_gradcheck.reporting import safe_text

    assert safe_text.terminal_text("a\x1b[2Jb\nc\td\x7f\u202e") == "a\\x1b[2Jb\\x0ac\\x09d\\x7f\\u202e"
    assert safe_text.terminal_text("a\x1b\nb\r\n", multiline=True) == "a\\x1b\nb\\x0d\n"
    assert safe_text.terminal_text("héllo wörld [1] 'x'") == "héllo wörld [1] 'x'"  # printable text is kept
    assert safe_text.xml_text("a\x00\ud800\ufffe") == "a\\x00\\ud800\\ufffe"
    assert safe_text.rerun_command("tests/t.py::test_x") == "pytest tests/t.py::test_x"


def test_control_characters_never_reach_the_terminal_or_the_junit_xml(pytester):
    import xml.etree.ElementTree as ET

    pytester.makepyfile(test_c=CONTROL_TEST.format(label="lab" + HOSTILE, leaf="w" + HOSTILE))
    (pytester.path / ".gradcheck").mkdir()
    res = pytester.runpytest(*RUN, "-v", "--junitxml=junit.xml", "--gradcheck-update-baseline",
                             "--gradcheck-baseline")
    res.assert_outcomes(failed=1)
    out = res.stdout.str()
    start = out.index("= gradcheck =")
    ours = out[start:out.index("short test summary info", start)]
    assert "labok" not in ours  # the raw label never appears ...
    assert "lab\\x1b]0;owned\\x07\\x1b[2J\\x0d\\x08\\u202e\\x85ok" in ours  # ... only its escaped form
    assert "w\\x1b]0;owned" in ours  # the leaf name in the worst entries, escaped too
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]", ours)
    # nor anywhere else in the run's output: the FAILURES section quotes the failed check too
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]", out)
    tree = ET.parse(pytester.path / "junit.xml")  # ill-formed XML raises here
    names = [p.get("name") for p in tree.iter("property")]
    assert "gradcheck[lab\\x1b]0;owned\\x07\\x1b[2J\\x0d\\x08\\u202e\\x85].status" in names
