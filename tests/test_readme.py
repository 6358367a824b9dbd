"""The README's two commands are the ones CI runs."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _block_after(text: str, heading: str) -> str:
    section = text.split(heading, 1)[1]
    return re.search(r"```bash\n(.*?)\n```", section, re.S).group(1).strip()


def test_ci_runs_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    install = _block_after(readme, "## Install and run the demo")
    tests = _block_after(readme, "## Run the tests")
    assert "\n" not in install and "\n" not in tests, "each README command is one line"
    assert "clipcore demo" in install and "pytest" in tests
    assert install in ci and tests in ci
