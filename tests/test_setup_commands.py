"""The README's set-up contract: `.ci/run` runs the README's test command verbatim, and the test extra
installs what that command needs (pytest-xdist for ``-n``)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text()
    commands = [line for block in re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
                for line in block.splitlines() if "pytest" in line]
    assert commands, "README has no bash block that runs pytest"
    return commands[0].strip()


def test_ci_runs_the_readme_test_command():
    command = _readme_test_command()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert command in ci_lines


def test_test_extra_installs_xdist_when_the_command_uses_it():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    command = _readme_test_command()
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    if re.search(r"\s-n\s", command):
        assert any(req.startswith("pytest-xdist") for req in extra)
