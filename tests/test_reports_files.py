"""The report and baseline files: assets shipped as package data, safe writes, validated loads."""

from __future__ import annotations

import pathlib

import pytest

from pytest_gradcheck.reporting import html_report

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
