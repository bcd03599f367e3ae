"""The house's code checks, run by every `make test` as import-linter is (tests/test_architecture.py): ruff
(lint, [tool.ruff] in pyproject.toml) on the sources, tests, benchmarks, notebooks and examples, and mypy (types,
[tool.mypy]) on src/genmodels. Each must report zero findings; a failure prints them."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    """The venv's own executable of a pinned test extra, beside the Python running the tests."""
    path = Path(sys.executable).with_name(name)
    assert path.is_file(), f"{name} is not installed beside {sys.executable}: pip install -e '.[test]'"
    return str(path)


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_ruff_finds_nothing():
    done = _run(_tool("ruff"), "check", "--output-format", "concise", "src", "tests", "benchmarks", "notebooks",
               "examples")
    assert done.returncode == 0, f"ruff found:\n{done.stdout}{done.stderr}"


def test_mypy_finds_nothing():
    done = _run(_tool("mypy"))  # the files and settings are pyproject.toml's
    assert done.returncode == 0, f"mypy found:\n{done.stdout}{done.stderr}"
    assert done.stdout.startswith("Success: no issues found"), done.stdout
