"""The supported versions, proven: the test suite at the declared floors and at the newest releases.

    nox -s oldest newest        (what .ci/run does)

``oldest`` installs exactly the lower bounds of ``[project] dependencies`` in pyproject.toml
(read from it, so the file and the proof cannot drift apart) on the oldest supported Python;
``newest`` the newest releases of everything.  Both skip the optional frameworks (torch, jax:
their tests skip; .ci/run's main run has them) to stay quick on a 2-core CI machine.
"""

from __future__ import annotations

import re
import tempfile
import tomllib
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = False

ROOT = Path(__file__).parent
OLDEST_PYTHON = "3.11"  # requires-python in pyproject.toml
#: both sessions use the CI machine's two cores
PYTEST_ARGS = ("-q", "-n", "2", "-p", "no:cacheprovider")


#: test tools whose newest releases need a pytest above our floor (pytest-rerunfailures 16.2+ needs
#: pytest >= 8.1): left out of the oldest session, where the tests that use them skip
ABOVE_OUR_FLOORS = {"pytest-rerunfailures"}


def test_tools() -> list[str]:
    """The ``test`` extra's requirements, less ABOVE_OUR_FLOORS."""
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    return [r for r in extra["test"] if re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0] not in ABOVE_OUR_FLOORS]


def declared_floors() -> list[str]:
    """``name==X`` for every ``name>=X`` in ``[project] dependencies``."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    floors = []
    for dep in deps:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([^,;\s]+)\s*", dep)
        if m is None:
            raise ValueError(f"dependency {dep!r} has no plain lower bound 'name>=X' for the oldest session")
        floors.append(f"{m.group(1)}=={m.group(2)}")
    return floors


@nox.session(python=OLDEST_PYTHON)
def oldest(session: nox.Session) -> None:
    """The suite with pytest, numpy and pluggy at their declared floors."""
    # not session.create_tmp(): it points TMPDIR into .nox/ inside this project, and pytester's
    # temporary projects would then find this pyproject.toml above them (a wrong rootdir)
    constraints = Path(tempfile.mkdtemp(prefix="gradcheck-floors-")) / "floors.txt"
    constraints.write_text("\n".join(declared_floors()) + "\n")
    session.install("-c", str(constraints), "-e", ".", *test_tools())
    session.run("python", "-m", "pip", "list", silent=False)
    session.run("python", "-m", "pytest", *PYTEST_ARGS, *session.posargs)


@nox.session(python=OLDEST_PYTHON)
def newest(session: nox.Session) -> None:
    """The suite with the newest release of every dependency."""
    session.install("--upgrade", "--upgrade-strategy", "eager", "-e", ".[test]")
    session.run("python", "-m", "pytest", *PYTEST_ARGS, *session.posargs)
