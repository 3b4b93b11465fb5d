"""The example project (example_project/, package ``tinynet``) run the way the README says.

Each run is a subprocess from the repository root::

    python -m pytest example_project --gradcheck-html=gradcheck-report.html

(plus ``-p no:cacheprovider`` and report paths in a temporary directory).  The
clean run must pass and write its reports; runs with ``EXAMPLE_BUG`` set must
fail and name the parameter the injected bug breaks.  The three runs start at
once (they are independent) to keep the wall time down; the bug-injection runs
leave out the torch, jax and TensorFlow tests, whose imports dominate their time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "example_project"
TIMEOUT = 300

pytestmark = pytest.mark.skipif(not (EXAMPLE / "pyproject.toml").is_file(), reason="example_project/ not present")

#: the bug-injection runs skip what they do not need: the torch, jax and TensorFlow test modules
#: (their imports take seconds) and hypothesis's pytest plugin
LEAN = ["--ignore-glob=*/test_torch_ops.py", "--ignore-glob=*/test_jax_ops.py", "--ignore-glob=*/test_tf_ops.py",
        "-p", "no:hypothesispytest"]
RUNS = {
    # name: (EXAMPLE_BUG, extra arguments)
    "clean": ("", []),
    "sign": ("sign", LEAN),
    "missing-reg": ("missing-reg", LEAN),
}


def start_runs(out: Path) -> dict:
    """Start every run in RUNS at once; name -> (returncode, stdout+stderr, json report, html path)."""
    procs = {}
    for name, (bug, extra) in RUNS.items():
        env = {k: v for k, v in os.environ.items()  # a clean child: no bug, no options or xdist state of ours
               if k not in ("EXAMPLE_BUG", "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST") and not k.startswith("PYTEST_XDIST")}
        if bug:
            env["EXAMPLE_BUG"] = bug
        html, js = out / f"{name}-gradcheck-report.html", out / f"{name}.json"
        cmd = [sys.executable, "-m", "pytest", "example_project", "-p", "no:cacheprovider",
               f"--gradcheck-html={html}", f"--gradcheck-json={js}", *extra]
        procs[name] = (subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True), html, js)
    results = {}
    for name, (proc, html, js) in procs.items():
        try:
            text, _ = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            text, _ = proc.communicate()
            text = f"TIMED OUT after {TIMEOUT} s\n{text}"
        report = json.loads(js.read_text()) if js.is_file() else None
        results[name] = (proc.returncode, text, report, html)
    return results


def _failing_leaves(report, label):
    """The leaves with failing entries in the check(s) labelled ``label``."""
    checks = [c for c in report["checks"] if c["label"] == label]
    assert checks, f"no check labelled {label!r} in the report"
    return {leaf["path"] for c in checks for leaf in c["leaves"] if leaf["counts"]["fail"]}


def test_example_project(tmp_path):
    """One test, so that under pytest-xdist the three subprocess runs happen once (not once
    per worker holding a test of this module)."""
    runs = start_runs(tmp_path)
    check_clean_run(*runs["clean"])
    check_sign_bug(*runs["sign"])
    check_missing_reg_bug(*runs["missing-reg"])


def check_clean_run(code, text, report, html):
    assert code == 0, f"clean run exited {code}:\n{text[-4000:]}"
    assert "= gradcheck =" in text  # the terminal section
    assert "0 failed" in text
    # every kind of check ran: fixture, marker-configured class, model items, discovery fixture
    nodeids = {c["nodeid"] for c in report["checks"]}
    assert {"tinynet/models.py::gradcheck[mlp]", "tinynet/two_layer.py::gradcheck[loss]",
            "tests/test_models.py::test_gradient_descent_step_lowers_the_loss[batchnorm_net]",
            "tests/test_two_layer.py::TestClassicTolerance::test_gradient"} <= nodeids
    labels = {c["label"] for c in report["checks"]}
    assert {"5-5-3", "wide", "no-reg", "one-example", "softmax_regression", "batchnorm_net",
            "logistic_regression"} <= labels
    assert {c["kind"] for c in report["checks"] if c["nodeid"].startswith("tests/test_layers.py")} == {"gradient", "vjp"}
    assert report["summary"]["counts"]["fail"] == 0
    assert report["summary"]["total"] >= 15
    # the committed baseline knows every check of the run (update it when adding checks:
    # python -m pytest example_project --gradcheck-update-baseline)
    baseline = json.loads((EXAMPLE / ".gradcheck" / "baseline.json").read_text())
    assert {c["key"] for c in report["checks"]} <= set(baseline["checks"])
    page = html.read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html")
    assert "softmax_regression" in page


def check_sign_bug(code, text, report, html):
    assert code == 1, f"EXAMPLE_BUG=sign run exited {code}:\n{text[-4000:]}"
    assert "b2[" in text and "sign flip" in text
    # the discovered model (naming convention in tinynet.two_layer) fails only in b2
    assert _failing_leaves(report, "loss") == {"b2"}
    assert _failing_leaves(report, "5-5-3") == {"b2"}
    # models that do not use two_layer.backward still pass
    passed = {c["label"] for c in report["checks"] if c["status"] == "pass"}
    assert {"softmax_regression", "mlp", "batchnorm_net", "logistic_regression"} <= passed
    assert "FAILED example_project/tinynet/two_layer.py::gradcheck[loss]" in text


def check_missing_reg_bug(code, text, report, html):
    assert code == 1, f"EXAMPLE_BUG=missing-reg run exited {code}:\n{text[-4000:]}"
    assert _failing_leaves(report, "loss") == {"W1", "W2"}
    assert "regularisation" in text
