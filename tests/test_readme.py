"""The README stays true: its quickstart is what CI and the example test run, every
option it names exists, and its first example runs as pasted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def quickstart() -> list[str]:
    block = re.search(r"## Quickstart.*?```bash\n(.*?)```", README, re.S).group(1)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_quickstart_is_exactly_two_commands_that_ci_and_the_example_test_run():
    example, suite = quickstart()
    assert example.startswith("python -m pip install -e . -e ./example_project && ")
    assert example.endswith("python -m pytest example_project --gradcheck-html=gradcheck-report.html")
    # CI runs the README's test command verbatim, as its last line
    ci_lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip()]
    assert ci_lines[-1] == suite
    # the example-project test runs the same pytest invocation
    assert '"pytest", "example_project"' in (ROOT / "tests" / "test_example_project.py").read_text()


def test_every_option_the_readme_names_exists():
    named = set(re.findall(r"--gradcheck-[a-z-]+", README))
    help_text = subprocess.run([sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"],
                               cwd=ROOT, capture_output=True, text=True, timeout=120).stdout
    offered = set(re.findall(r"--gradcheck-[a-z-]+", help_text))
    assert named and named <= offered, named - offered
    # the ini keys: second column of the options table
    ini_named = {m for line in README.splitlines() if line.startswith("|")
                 for m in re.findall(r"^\|[^|]*\| `(gradcheck_[a-z_]+)` \|", line)}
    assert ini_named and all(key in help_text for key in ini_named), [k for k in ini_named if k not in help_text]


def test_the_first_example_runs_as_pasted():
    code = re.search(r"```python\n(import numpy as np\nfrom pytest_gradcheck import check_gradient\n.*?)```",
                     README, re.S).group(1)
    namespace: dict = {}
    exec(compile(code.replace("print(result)", "pass"), "README.md", "exec"), namespace)
    assert namespace["result"].status == "pass"
