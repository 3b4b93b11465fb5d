"""The pages under docs/ stay true: their python examples run, their links lead to
files that exist, and the output they show is the output the code prints today
(the options they name: tests/test_readme.py).

Python blocks in docs/*.md, by their first line:

* ``# tests/test_NAME.py`` (or any ``test_*.py`` path): a test file, run under pytest;
  every test must pass.
* ``# PATH.py`` (another path): a module listed as holding models; it is written to
  that path, listed in ``gradcheck_models``, and its items must pass.
* ``# not run: REASON``: shown, not run.
* anything else: run as a script; a block that imports torch or jax skips when
  that package is not installed.

A block followed by a ``<!-- generated-output ... -->`` comment and a ``text``
block is run in a fresh interpreter and its output compared with that block;
``GRADCHECK_REGEN_DOCS=1`` rewrites the block instead (docs/development.md).
"""

from __future__ import annotations

import contextlib
import difflib
import io
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
#: where the README's absolute links point (pyproject.toml's project URLs use this repository)
REPO_URL = "https://github.com/pytest-gradcheck/pytest-gradcheck"
REGEN = os.environ.get("GRADCHECK_REGEN_DOCS") == "1"

BLOCK = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)
GENERATED = re.compile(r"```python\n(?P<code>.*?)```\n\n<!-- generated-output.*?-->\n```text\n(?P<out>.*?)```\n", re.S)


def python_blocks() -> list:
    """(page name, index on the page, code) of every python block in docs/."""
    found = []
    for page in PAGES:
        blocks = [code for lang, code in BLOCK.findall(page.read_text(encoding="utf-8")) if lang == "python"]
        found += [(page.name, i, code) for i, code in enumerate(blocks)]
    return found


def generated_codes() -> set:
    return {m["code"] for page in PAGES for m in GENERATED.finditer(page.read_text(encoding="utf-8"))}


def file_path(code: str) -> str | None:
    """The path a block names in its first line (``# mypkg/models.py  (comment)``), or None."""
    m = re.match(r"# ([\w./-]+\.py)\b", code)
    return m.group(1) if m else None


def test_the_docs_exist_and_have_python_examples():
    names = {p.name for p in PAGES}
    assert {"index.md", "how-it-works.md", "verdict.md", "fast-mode.md", "api.md", "plugin.md",
            "reports.md", "frameworks.md", "performance.md", "development.md"} <= names
    assert len(python_blocks()) >= 8
    # index.md is the map: it links every other page
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    assert all(f"({name})" in index for name in names - {"index.md"}), names


@pytest.mark.parametrize("page,index,code", python_blocks(), ids=[f"{p}-{i}" for p, i, _ in python_blocks()])
def test_python_block_runs(page, index, code, tmp_path, monkeypatch, request):
    if code in generated_codes():
        pytest.skip("its output is compared by test_generated_output_is_what_the_code_prints")
    if code.startswith("# not run:"):
        pytest.skip(code.splitlines()[0][2:])
    for framework in ("torch", "jax", "tensorflow", "keras"):
        if re.search(rf"^\s*(import|from) {framework}\b", code, re.M):
            pytest.importorskip(framework)
    path = file_path(code)
    if path is None:  # a script
        monkeypatch.chdir(tmp_path)  # whatever it writes lands in a temporary folder
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(code, f"docs/{page} block {index}", "exec"), {"__name__": "__docs__"})
        return
    # pytester only here: it restores sys.modules afterwards, and a torch imported by a
    # script block above must stay imported (torch cannot be imported twice in a process)
    pytester = request.getfixturevalue("pytester")
    target = pytester.path / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(code, encoding="utf-8")
    args = ["-p", "no:cacheprovider", "-p", "no:xdist", "-W", "error::pytest.PytestWarning"]
    if not Path(path).name.startswith("test_"):  # a module of models: list it, import it from the rootdir
        for folder in target.parent.relative_to(pytester.path).parents[:-1]:
            (pytester.path / folder / "__init__.py").touch()
        (target.parent / "__init__.py").touch()
        module = path[:-3].replace("/", ".")
        pytester.makeini(f"[pytest]\ngradcheck_models = {module}\npythonpath = .\n")
    result = pytester.runpytest(*args)
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 1 and not set(outcomes) - {"passed", "warnings"}, result.stdout.str()


def test_generated_output_is_what_the_code_prints():
    """Each generated block is the output of the python block above it, run in a
    fresh interpreter from the repository root with the example project importable."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("EXAMPLE_BUG", "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST") and not k.startswith("PYTEST_XDIST")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "example_project"), str(ROOT), env.get("PYTHONPATH", "")])
    compared = 0
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in list(GENERATED.finditer(text)):
            run = subprocess.run([sys.executable, "-c", m["code"]], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=300)
            assert run.returncode == 0, run.stderr
            compared += 1
            if REGEN:
                text = text.replace(m.group(0), m.group(0).replace(f"```text\n{m['out']}```", f"```text\n{run.stdout}```"))
                continue
            assert same_output(m["out"], run.stdout), (
                f"docs/{page.name}: the generated block differs from what the code prints now; "
                f"rewrite it with GRADCHECK_REGEN_DOCS=1 python -m pytest tests/test_docs.py\n"
                + "".join(difflib.unified_diff(m["out"].splitlines(True), run.stdout.splitlines(True), "docs", "now")))
        if REGEN:
            page.write_text(text, encoding="utf-8")
    assert compared >= 1


NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def same_output(shown: str, printed: str) -> bool:
    """Equal, or equal but for numbers within 5% of each other.

    The report prints three significant digits; the last of them can differ
    where the platform's BLAS rounds a sum in another order (the measured noise
    and the tolerances follow it), while every word and every other number must
    stay as shown.
    """
    if shown == printed:
        return True
    # the report wraps the diagnosis by width: compare its words, not its line breaks
    words_shown, words_printed = NUMBER.sub("#", shown).split(), NUMBER.sub("#", printed).split()
    if words_shown != words_printed:
        return False
    a, b = NUMBER.findall(shown), NUMBER.findall(printed)
    return all(math.isclose(float(x), float(y), rel_tol=0.05) for x, y in zip(a, b))


def test_same_output_tolerates_roundoff_digits_only():
    """The comparison itself: a last digit may move, a word or a count may not."""
    assert same_output("ratio 1.4e+08, tolerance 3.07e-09\n", "ratio 1.4e+08, tolerance 3.08e-09\n")
    assert not same_output("3 of 48 entries disagree\n", "4 of 48 entries disagree\n")
    assert not same_output("pattern 'x-1': a sign flip\n", "pattern 'x2': a factor\n")


def test_the_error_versus_step_table_is_recomputed():
    """how-it-works.md: |analytic - central difference| of f = exp(x) sin(x) at x = 0.7
    for the correct gradient, the gradient times 1.001, and |x - 0.70001| (a kink 1e-5 away)."""
    text = (DOCS / "how-it-works.md").read_text(encoding="utf-8")
    table = re.search(r"```\n h +correct gradient.*?\n(.*?)```", text, re.S).group(1)
    x = 0.7
    fun = lambda t: math.exp(t) * math.sin(t)  # noqa: E731
    grad = math.exp(x) * (math.sin(x) + math.cos(x))
    kink = lambda t: abs(t - 0.70001)  # noqa: E731
    rows = 0
    for line in table.splitlines():
        h_text, correct, scaled, kinked = re.findall(r"\d\.\de[-+]\d\d|1e-\d+", line)
        h = float(h_text)
        central = (fun(x + h) - fun(x - h)) / (2 * h)
        assert correct == f"{abs(grad - central):.1e}", line
        assert scaled == f"{abs(1.001 * grad - central):.1e}", line
        assert kinked == f"{abs(-1.0 - (kink(x + h) - kink(x - h)) / (2 * h)):.1e}", line
        rows += 1
    assert rows == 9


# ------------------------------------------------------------------ links

LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set:
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    return {slug(h) for h in re.findall(r"^#+ (.*)$", text, re.M)}


def repository_links(source: Path) -> list:
    """(target path, anchor) of every link in ``source`` to a file of this repository."""
    found = []
    for target in LINK.findall(source.read_text(encoding="utf-8")):
        for prefix in (f"{REPO_URL}/blob/main/", f"{REPO_URL}/tree/main/"):
            if target.startswith(prefix):
                target = str(ROOT / target[len(prefix):])
                break
        else:
            if re.match(r"[a-z]+:", target):  # another site
                continue
            target = str(source.parent / target) if not target.startswith("#") else str(source) + target
        path, _, anchor = target.partition("#")
        found.append((Path(os.path.normpath(path)), anchor))
    return found


@pytest.mark.parametrize("source", [ROOT / "README.md", *PAGES], ids=lambda p: p.name)
def test_every_link_to_this_repository_leads_to_a_file_that_exists(source):
    links = repository_links(source)
    assert links
    for path, anchor in links:
        assert path.exists(), f"{source.name}: link to {path.relative_to(ROOT)}, which does not exist"
        if anchor and path.suffix == ".md":
            assert anchor in anchors(path), f"{source.name}: no heading #{anchor} in {path.relative_to(ROOT)}"


def test_the_package_names_pages_that_exist():
    """Error messages point to the docs by their path in the project (no repository URL is
    published yet, issue 22.10); those pages must exist."""
    paths = set()
    for module in (ROOT / "pytest_gradcheck").rglob("*.py"):
        text = module.read_text(encoding="utf-8")
        assert REPO_URL not in text, f"{module.name} prints an unconfirmed repository URL"
        paths |= set(re.findall(r"\b(docs/[\w-]+\.md)\b", text))
    assert "docs/verdict.md" in paths
    assert all((ROOT / p).is_file() for p in paths), paths

