"""The package as installed and read: pyproject's dependencies and licence, the Makefile's pinned torch, a
README that starts short."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_packaging_keeps_a_users_torch_and_says_its_licence():
    """pyproject allows a range of torch (installing genmodels never swaps a user's build), the Makefile
    still installs the pinned CPU wheel first, and the licence pyproject names is in the repository."""

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch_req = next(d for d in project["dependencies"] if d.startswith("torch"))
    assert "==" not in torch_req and ">=" in torch_req and "<" in torch_req, torch_req
    assert "pip install -q torch==2.13.0" in (ROOT / "Makefile").read_text()
    assert project["license"]["text"] == "MIT" and "MIT License" in (ROOT / "LICENSE").read_text()


def test_the_readme_starts_short():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    assert "## Set-up" in readme and "## A five-minute tour" in readme
    assert (ROOT / "docs" / "benchmarks.md").is_file() and "docs/benchmarks.md" in readme
