"""The README stays true: its quickstart is what CI and the example test run, every
option it and docs/ name exists, its first example and its test file run as pasted,
its discovery example works under the import rule it states, it links by relative links to
files that exist (no repository URL that nobody confirmed), its install section does not
promise a package index that has nothing published, and it stays short."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
#: the README and the docs pages: where options and ini keys are named
TEXTS = [README] + [page.read_text(encoding="utf-8") for page in sorted((ROOT / "docs").glob("*.md"))]
#: the task-first README of issue 15: everything else lives in docs/
MAX_README_LINES = 250


def quickstart() -> list[str]:
    block = re.search(r"## Quickstart.*?```bash\n(.*?)```", README, re.S).group(1)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def block_starting(lang: str, first_line: str) -> str:
    """The README's ``lang`` block whose code starts with ``first_line``."""
    return re.search(rf"```{lang}\n({re.escape(first_line)}.*?)```", README, re.S).group(1)


def help_text() -> str:
    return subprocess.run([sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120).stdout


def test_quickstart_is_exactly_two_commands_that_ci_and_the_example_test_run():
    example, suite = quickstart()
    assert example.startswith("python -m pip install -e . -e ./example_project && ")
    assert example.endswith("python -m pytest example_project --gradcheck-html=gradcheck-report.html")
    # CI runs the README's test command verbatim, as its last line
    ci_lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip()]
    assert ci_lines[-1] == suite
    # the example-project test runs the same pytest invocation
    assert '"pytest", "example_project"' in (ROOT / "tests" / "test_example_project.py").read_text()


def test_the_readme_is_task_first_and_short():
    lines = README.splitlines()
    assert len(lines) <= MAX_README_LINES, len(lines)
    headings = [line for line in lines if line.startswith("## ")]
    order = ["## Install", "## A first check", "## Let the plugin find your models",
             "## Reports and CI gating", "## Quickstart", "## Documentation"]
    positions = [next((i for i, h in enumerate(headings) if h.startswith(o)), None) for o in order]
    assert None not in positions and positions == sorted(positions), headings
    # install into your own project: in a venv, from a clone, a path or a VCS URL, with the extras;
    # nothing is published, so the index line is only what it will be, never a command to run
    assert "python3 -m venv .venv && . .venv/bin/activate" in README
    assert "externally-managed-environment" in README
    install = block_starting("bash", "python3 -m venv .venv && . .venv/bin/activate\n")
    assert "pip install ../pytest-gradcheck" in install and "[torch]" in install and "[jax]" in install
    assert "git+" in install
    assert not re.search(r"^pip install pytest-gradcheck\b", install, re.M)
    assert "is not published on a package index yet" in README
    assert "Once it is published, `pip install pytest-gradcheck` will replace the clone." in README


def test_every_option_the_readme_and_the_docs_name_exists():
    named = set()
    for text in TEXTS:
        named |= set(re.findall(r"--gradcheck-[a-z-]+", text))
    help_ = help_text()
    offered = set(re.findall(r"--gradcheck-[a-z-]+", help_))
    assert named and named <= offered, named - offered
    # the ini keys: the options table's second column (docs/plugin.md) lists exactly the
    # plugin's, and every key an ini block of the README or the docs sets is one of them
    ini_offered = set(re.findall(r"^  (gradcheck_[a-z_]+) \(", help_, re.M))
    rows = [re.split(r"(?<!\\)\|", line) for text in TEXTS for line in text.splitlines() if line.startswith("| ")]
    table = {m for cells in rows if len(cells) > 2 for m in re.findall(r"^`(gradcheck_[a-z_]+)`$", cells[2].strip())}
    assert ini_offered and table == ini_offered, (table, ini_offered)
    in_blocks = {m for text in TEXTS for m in re.findall(r"^(gradcheck_[a-z_]+) =", text, re.M)}
    assert in_blocks and in_blocks <= ini_offered, in_blocks - ini_offered


def test_the_first_example_runs_as_pasted():
    code = block_starting("python", "import numpy as np\nfrom pytest_gradcheck import check_gradient\n")
    namespace: dict = {}
    exec(compile(code.replace("print(result)", "pass"), "README.md", "exec"), namespace)
    assert namespace["result"].status == "pass"


def test_the_first_test_file_passes_as_pasted(pytester):
    code = block_starting("python", "# tests/test_softplus.py\n")
    pytester.makepyfile(test_softplus=code)
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:xdist")
    result.assert_outcomes(passed=len(re.findall(r"^def test_", code, re.M)))
    result.stdout.fnmatch_lines(["gradcheck: 2 checks in 2 tests: 2 passed, 0 failed, 0 inconclusive"])


def clean_env() -> dict:
    """The caller's environment, minus what would leak this session into a child pytest."""
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST") and not k.startswith("PYTEST_XDIST")}


def test_the_discovery_example_works_under_the_import_rule_the_readme_states(tmp_path):
    """The README's pyproject block and mypkg/models.py: ``pytest`` (the script) fails with
    "No module named 'mypkg'" where ``python -m pytest`` works, and ``pythonpath`` mends it."""
    script = Path(sys.executable).with_name("pytest")
    if not script.is_file():
        pytest.skip("no pytest script next to this interpreter")
    toml = block_starting("toml", "[tool.pytest.ini_options]\n")
    assert 'gradcheck_models = ["mypkg.models"]' in toml
    (tmp_path / "pyproject.toml").write_text(toml, encoding="utf-8")
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "mypkg" / "models.py").write_text(block_starting("python", "# mypkg/models.py\n"), encoding="utf-8")

    def run(*cmd):
        return subprocess.run([*cmd, "-p", "no:cacheprovider", "-p", "no:xdist"], cwd=tmp_path, env=clean_env(),
                              capture_output=True, text=True, timeout=120)

    plain = run(str(script))
    assert plain.returncode != 0 and "No module named 'mypkg'" in plain.stdout, plain.stdout
    as_module = run(sys.executable, "-m", "pytest")
    assert as_module.returncode == 0 and "gradcheck: 1 check in 1 test: 1 passed" in as_module.stdout, as_module.stdout
    (tmp_path / "pyproject.toml").write_text(toml + 'pythonpath = ["."]\n', encoding="utf-8")
    mended = run(str(script))
    assert mended.returncode == 0 and "gradcheck: 1 check in 1 test: 1 passed" in mended.stdout, mended.stdout


def test_the_readme_links_by_relative_links_to_files_that_exist():
    """No repository URL is confirmed (nothing is published): the README links to this
    repository's files relatively, and each target exists."""
    targets = re.findall(r"\]\(([^)\s]+)\)", README)
    assert targets
    absolute = [t for t in targets if re.match(r"[a-z]+://", t)]
    assert not absolute, absolute
    missing = [t for t in targets if not (ROOT / t.split("#")[0]).exists()]
    assert not missing, missing
    assert "github.com" not in README
